package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/agentstate/agentstate-go/core"
)

// Store implements core's store interfaces on Redis: one server, a Sentinel-managed primary, or
// a Redis Cluster (every key of a project shares the project's hash tag, so one slot).
type Store struct {
	rdb redis.UniversalClient
	// blocking serves the reads that wait (XREAD BLOCK): a pool of its own, so however many
	// projects are watched, blocked reads never take a connection an ordinary request needs.
	blocking redis.UniversalClient
	rs       *redsync.Redsync // elects the replica that runs a background job (LeadJob)
	wake     wakeHub          // this replica's lease waiters, woken over pub/sub
	// waitReplicas > 0: writes return only after WAIT confirms that many replicas have them.
	waitReplicas int
	waitTimeout  time.Duration
	// ft is on while conversation writes create RediSearch documents (the FT search path).
	ft  atomic.Bool
	gen generation // the store generation this server started on (generation.go)
	// labelHints guess the index keys a state write must name (labelhints.go).
	labelHints labelHints
	// co sends the round trips of a request's work, coalesced under load (coalesce.go).
	co *coalescer
}

// New wraps a client. Its errors are classified from here on (availability.go): call it once
// per client, since each call adds the classifying hook.
func New(rdb redis.UniversalClient) *Store {
	s := &Store{rdb: rdb, blocking: rdb, rs: redsync.New(goredis.NewPool(rdb)), labelHints: newLabelHints()}
	rdb.AddHook(availabilityHook{})
	rdb.AddHook(resetHook{&s.gen})
	s.co = &coalescer{rdb: rdb}
	return s
}

// UseBlockingClient moves the blocking reads to c, a client of their own on the same store;
// New hooks it as it hooks the main client. Open does this; without it (tests) blocking reads
// share the main client.
func (s *Store) UseBlockingClient(c redis.UniversalClient) {
	c.AddHook(availabilityHook{})
	c.AddHook(resetHook{&s.gen})
	s.blocking = c
}

// BlockingClient is the client of the blocking reads (the main client unless UseBlockingClient).
func (s *Store) BlockingClient() redis.UniversalClient { return s.blocking }

// RequireReplicas makes every write wait until n replicas acknowledge it (WAIT n timeout).
// A write that n replicas do not confirm within timeout answers STORE_UNAVAILABLE: it was
// applied on the primary and may or may not survive a failover.
func (s *Store) RequireReplicas(n int, timeout time.Duration) {
	s.waitReplicas, s.waitTimeout = n, timeout
}

// Client exposes the client for the pieces built on it directly (health checks, tests).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping checks the store answers; /readyz uses it. On a cluster every master must answer, since
// any of them may own the next request's project.
func (s *Store) Ping(ctx context.Context) error {
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		return classify(c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		}))
	}
	return s.rdb.Ping(ctx).Err()
}

// master opens a connection to the server that owns key's slot: the only server unless on a
// cluster. WAIT counts the replicas that have everything *its connection* wrote, so a write
// and its WAIT must share a connection.
func (s *Store) master(ctx context.Context, key string) (*redis.Conn, error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		m, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, classify(err)
		}
		return m.Conn(), nil
	case *redis.Client:
		return c.Conn(), nil
	}
	return nil, fmt.Errorf("redisstore: WAIT needs a single, sentinel or cluster client, not %T", s.rdb)
}

// write runs fn against the store. With RequireReplicas set it runs fn on one connection to
// the master owning key (all of fn's keys must share key's slot) and then WAITs.
func (s *Store) write(ctx context.Context, key string, fn func(c redis.Cmdable) error) error {
	if s.waitReplicas == 0 {
		return fn(s.rdb)
	}
	// The direct connection bypasses the cluster client's redirect handling, so a MOVED (the
	// slot has a new master after a failover or a reshard) is followed here: nothing was
	// applied, so the write is sent again to the master the reloaded slot map names.
	for redirects := 0; ; redirects++ {
		err := s.writeOnce(ctx, key, fn)
		cc, cluster := s.rdb.(*redis.ClusterClient)
		_, moved := redis.IsMovedError(err)
		if !cluster || err == nil || (!moved && !isUnavailable(err)) {
			return err
		}
		cc.ReloadState(ctx) // the slot map is stale: refresh it for the next request too
		if !moved || redirects == maxRedirects {
			return err
		}
	}
}

// maxRedirects bounds how often one write follows MOVED (go-redis's own default is 3).
const maxRedirects = 3

// writeOnce runs fn and the WAIT on one connection to key's master.
func (s *Store) writeOnce(ctx context.Context, key string, fn func(c redis.Cmdable) error) error {
	c, err := s.master(ctx, key)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if err := fn(c); err != nil {
		return classify(err)
	}
	n, err := c.Wait(ctx, s.waitReplicas, s.waitTimeout).Result()
	if err != nil {
		return classify(err)
	}
	if n < int64(s.waitReplicas) {
		return unavailableError{fmt.Errorf("WAIT %d %s: only %d replicas acknowledged the write", s.waitReplicas, s.waitTimeout, n)}
	}
	return nil
}

// run runs a script as one write (keys[0]'s slot is the script's slot), its round trip
// coalesced with others under load (coalesce.go) unless writes WAIT for replicas.
func (s *Store) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.waitReplicas == 0 {
		cmd, _ := s.evalPipelined(ctx, script, keys, args, nil)
		return cmd
	}
	var cmd *redis.Cmd
	err := s.write(ctx, keys[0], func(c redis.Cmdable) error {
		cmd = script.Run(ctx, c, keys, args...)
		return cmd.Err()
	})
	if cmd == nil { // no connection to run it on
		cmd = redis.NewCmd(ctx)
	}
	if err != nil {
		cmd.SetErr(err) // the WAIT's verdict, when the script itself succeeded
	}
	return cmd
}

// tx runs fn's commands as one MULTI/EXEC write; they must all share key's slot.
func (s *Store) tx(ctx context.Context, key string, fn func(p redis.Pipeliner) error) error {
	return s.write(ctx, key, func(c redis.Cmdable) error {
		_, err := c.TxPipelined(ctx, fn)
		return err
	})
}

// minPoolSize is the ordinary requests' pool floor (per node on a cluster).
const minPoolSize = 256

// blockingPoolSize bounds the blocking-read pool: one connection per project the watch hub
// follows, which core's MaxWatchedProjects caps (plus room for a feed that is ending while
// its successor starts).
const blockingPoolSize = core.DefaultMaxWatchedProjects + 16

// Options say which store to open. Every mode takes TLS (rediss://) and ACL credentials
// (redis://user:password@host) in its URL.
type Options struct {
	// URL: redis://[user:pass@]host:port/db; with Cluster, redis://h1:p1?addr=h2:p2&addr=h3:p3
	// (seed nodes); with SentinelMaster, the sentinels the same way. "" = embedded store.
	URL            string
	Cluster        bool
	SentinelMaster string
	WaitReplicas   int           // > 0: WAIT for this many replicas after every write
	WaitTimeout    time.Duration // how long one WAIT may take (default 1 s)
	// StateFile, when set, is where this server remembers the store generation and checkpoint
	// of its last check, so that at start it notices data lost while no server ran
	// (generation.go). Not used by the embedded store, which starts empty by design.
	StateFile string
}

// Connection is an opened store and how to close it.
type Connection struct {
	Store    *Store
	Embedded bool // true when the data lives in this process's memory only
	Addr     string
	Mode     string // "embedded", "single", "cluster" or "sentinel"
	close    func()
}

// Close releases the client and, when embedded, the in-process server.
func (c *Connection) Close() { c.close() }

// Open connects to the store o names, or with no URL starts an in-process Redis-protocol
// server (miniredis): nothing to install, but everything is lost on exit.
func Open(ctx context.Context, o Options) (*Connection, error) {
	if o.URL == "" {
		if o.Cluster || o.SentinelMaster != "" {
			return nil, errors.New("AGENTSTATE_REDIS_CLUSTER and AGENTSTATE_REDIS_SENTINEL_MASTER need AGENTSTATE_REDIS_URL")
		}
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("start embedded store: %w", err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: minPoolSize})
		blocking := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: blockingPoolSize})
		st := New(rdb)
		st.UseBlockingClient(blocking)
		return &Connection{Store: st, Embedded: true, Addr: mr.Addr(), Mode: "embedded", close: func() {
			_ = st.Close()
			_ = blocking.Close()
			_ = rdb.Close()
			mr.Close()
		}}, nil
	}
	rdb, mode, addr, err := newClient(o, minPoolSize)
	if err != nil {
		return nil, err
	}
	blocking, _, _, err := newClient(o, blockingPoolSize)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	store := New(rdb)
	store.UseBlockingClient(blocking)
	store.gen.stateFile = o.StateFile
	if o.WaitReplicas > 0 {
		store.RequireReplicas(o.WaitReplicas, cmp.Or(o.WaitTimeout, time.Second))
	}
	if err := store.Ping(ctx); err != nil {
		_ = rdb.Close()
		_ = blocking.Close()
		return nil, fmt.Errorf("connect to redis (%s) at %s: %w", mode, addr, err)
	}
	return &Connection{Store: store, Addr: addr, Mode: mode, close: func() {
		_ = store.Close() // the lease wake-up subscription first
		_ = blocking.Close()
		_ = rdb.Close()
	}}, nil
}

// newClient builds a client of the mode o asks for, with at least pool connections (per node
// on a cluster).
func newClient(o Options, pool int) (redis.UniversalClient, string, string, error) {
	switch {
	case o.Cluster && o.SentinelMaster != "":
		return nil, "", "", errors.New("AGENTSTATE_REDIS_CLUSTER and AGENTSTATE_REDIS_SENTINEL_MASTER exclude each other")
	case o.Cluster:
		opts, err := redis.ParseClusterURL(o.URL)
		if err != nil {
			return nil, "", "", fmt.Errorf("parse AGENTSTATE_REDIS_URL as a cluster URL (redis://h1:p1?addr=h2:p2): %w", err)
		}
		opts.PoolSize = max(opts.PoolSize, pool)
		opts.MaintNotificationsConfig = noMaintNotifications()
		return redis.NewClusterClient(opts), "cluster", strings.Join(opts.Addrs, ","), nil
	case o.SentinelMaster != "":
		opts, err := redis.ParseFailoverURL(o.URL)
		if err != nil {
			return nil, "", "", fmt.Errorf("parse AGENTSTATE_REDIS_URL as sentinel addresses (redis://s1:26379?addr=s2:26379): %w", err)
		}
		opts.MasterName = o.SentinelMaster
		// The URL's user:password authenticate to the sentinels; the data nodes use the
		// username/password query parameters, or the same credentials when those are absent.
		if opts.Username == "" && opts.Password == "" {
			opts.Username, opts.Password = opts.SentinelUsername, opts.SentinelPassword
		}
		opts.PoolSize = max(opts.PoolSize, pool)
		return redis.NewFailoverClient(opts), "sentinel", o.SentinelMaster + "@" + strings.Join(opts.SentinelAddrs, ","), nil
	default:
		opts, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, "", "", fmt.Errorf("parse AGENTSTATE_REDIS_URL (for a cluster URL with addr= set AGENTSTATE_REDIS_CLUSTER=true): %w", err)
		}
		opts.PoolSize = max(opts.PoolSize, pool)
		opts.MaintNotificationsConfig = noMaintNotifications()
		return redis.NewClient(opts), "single", opts.Addr, nil
	}
}

// noMaintNotifications turns off go-redis's maintenance notifications (a Redis Enterprise and
// Cloud feature, CLIENT MAINT_NOTIFICATIONS). In its default "auto" mode go-redis v9.23.0 tries
// the handshake on new connections and, when the server refuses it, switches the mode off by
// writing the shared options under the lock of whichever client dialled: a Client and a Conn
// made from it (Store.run's WAIT path) hold different locks over the same options, a data race
// the race detector reported in TestClusterFailover.
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}
