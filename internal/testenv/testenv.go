// Package testenv runs tests against every store AgentState supports: the real Redis named by
// AGENTSTATE_TEST_REDIS_URL (default redis://127.0.0.1:6379/0), the Redis Cluster named by
// AGENTSTATE_TEST_REDIS_CLUSTER (redis://h1:p1?addr=h2:p2&addr=h3:p3; skipped when unset) and
// the embedded miniredis.
// Each test gets its own project, so tests never flush or see each other's data.
package testenv

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/redisstore"
)

// RedisURL is the real Redis the suite uses.
func RedisURL() string {
	if u := os.Getenv("AGENTSTATE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Env is one store under test.
type Env struct {
	Name  string // "redis", "cluster" or "embedded"
	Rdb   redis.UniversalClient
	Store *redisstore.Store
	Mini  *miniredis.Miniredis // nil on real Redis
	Clock *Clock
	FT    *redisstore.FTIndex // the RediSearch search path, on "redisearch" only
}

// shared is a client opened once per test binary and kept for all its tests.
type shared struct {
	once  sync.Once
	rdb   redis.UniversalClient
	store *redisstore.Store // one per client: New hooks the client
	err   error
}

func (sh *shared) get(open func() (redis.UniversalClient, error)) (redis.UniversalClient, error) {
	sh.once.Do(func() {
		c, err := open()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err = c.Ping(ctx).Err(); err != nil {
				_ = c.Close()
			}
		}
		sh.rdb, sh.err = c, err
		if err == nil {
			sh.store = redisstore.New(c)
		}
	})
	return sh.rdb, sh.err
}

var realRedis, realClockRedis, clusterRedis shared

// ClusterURL is the Redis Cluster the suite uses, "" when none is configured.
func ClusterURL() string { return os.Getenv("AGENTSTATE_TEST_REDIS_CLUSTER") }

func openClusterClient() (redis.UniversalClient, error) {
	opts, err := redis.ParseClusterURL(ClusterURL())
	if err != nil {
		return nil, err
	}
	opts.PoolSize = 64
	return redis.NewClusterClient(opts), nil
}

// dial connects to url with a test-sized pool and checks that the server answers.
func dial(url string) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.PoolSize = 64
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Store opens one kind of store for a test or benchmark.
type Store struct {
	Name string
	Open func(tb testing.TB) *Env // skips tb when the store is unavailable
}

// Stores are the stores every store/contract test and benchmark runs against.
var Stores = []Store{{"redis", openReal}, {"embedded", openEmbedded}, {"cluster", openCluster}}

// openReal uses the real Redis. Without one the test is skipped, unless
// AGENTSTATE_TEST_REQUIRE_REDIS=1 (CI), where that is a failure.
func openReal(tb testing.TB) *Env { return openRealDB(tb, &realRedis, 0) }

// OpenRealClock is the real Redis on a database of its own (the test URL's database + 1), for
// a test whose server runs the background jobs on the system clock. Its lease sweeper ends the
// due leases of every project in the database it runs on, and every lease of a test on
// testenv's Clock (January 2026) is long past due by the system clock: on the shared database
// it would expire them under the tests of other packages running at the same time.
func OpenRealClock(tb testing.TB) *Env { return openRealDB(tb, &realClockRedis, 1) }

// openRealDB opens the real Redis on the test URL's database + offset, once per binary in sh.
func openRealDB(tb testing.TB, sh *shared, offset int) *Env {
	tb.Helper()
	rdb, err := sh.get(func() (redis.UniversalClient, error) {
		opts, err := redis.ParseURL(RedisURL())
		if err != nil {
			return nil, err
		}
		opts.DB += offset
		opts.PoolSize = 64
		return redis.NewClient(opts), nil
	})
	if err != nil {
		if os.Getenv("AGENTSTATE_TEST_REQUIRE_REDIS") == "1" {
			tb.Fatalf("real Redis at %s (database +%d) is required: %v", RedisURL(), offset, err)
		}
		tb.Skipf("real Redis at %s (database +%d) not answering (%v): skipped; the embedded half still runs", RedisURL(), offset, err)
	}
	return &Env{Name: "redis", Rdb: rdb, Store: sh.store, Clock: NewClock()}
}

// openCluster uses the Redis Cluster of AGENTSTATE_TEST_REDIS_CLUSTER; unset, the test is
// skipped; set but not answering, it fails.
func openCluster(tb testing.TB) *Env {
	if ClusterURL() == "" {
		tb.Skip("AGENTSTATE_TEST_REDIS_CLUSTER not set: no Redis Cluster to run against (.ci/run starts one)")
	}
	rdb, err := clusterRedis.get(openClusterClient)
	if err != nil {
		tb.Fatalf("Redis Cluster at %s is required: %v", ClusterURL(), err)
	}
	return &Env{Name: "cluster", Rdb: rdb, Store: clusterRedis.store, Clock: NewClock()}
}

func openEmbedded(tb testing.TB) *Env {
	mr := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 64})
	tb.Cleanup(func() { _ = rdb.Close() })
	return &Env{Name: "embedded", Rdb: rdb, Store: redisstore.New(rdb), Mini: mr, Clock: NewClock()}
}

// RediSearchURL is a Redis with RediSearch >= 2.6 for the FT search path's tests
// (AGENTSTATE_TEST_REDISEARCH_URL); empty = those subtests skip.
func RediSearchURL() string { return os.Getenv("AGENTSTATE_TEST_REDISEARCH_URL") }

// RediSearch is the store with the FT search path on: search tests run against it too.
var RediSearch = Store{"redisearch", openRediSearch}

// SearchStores are Stores and RediSearch: where search must give the same answers.
var SearchStores = append(slices.Clone(Stores), RediSearch)

var (
	ftOnce sync.Once
	ftRdb  redis.UniversalClient
	ftVer  int64
	ftErr  error
)

func openRediSearch(tb testing.TB) *Env {
	if RediSearchURL() == "" {
		tb.Skip("AGENTSTATE_TEST_REDISEARCH_URL is not set: the RediSearch search path is not tested in this run " +
			"(point it at a Redis with RediSearch >= 2.6 to run it; see docs/search.md)")
	}
	ftOnce.Do(func() {
		if ftRdb, ftErr = dial(RediSearchURL()); ftErr == nil {
			ftVer = redisstore.New(ftRdb).SearchModuleVersion(context.Background())
		}
	})
	if ftErr != nil {
		tb.Fatalf("AGENTSTATE_TEST_REDISEARCH_URL=%s: %v", RediSearchURL(), ftErr)
	}
	if ftVer < redisstore.MinSearchModuleVersion {
		tb.Fatalf("AGENTSTATE_TEST_REDISEARCH_URL=%s has no RediSearch >= 2.6 (MODULE LIST: %d)", RediSearchURL(), ftVer)
	}
	e := &Env{Name: "redisearch", Rdb: ftRdb, Store: redisstore.New(ftRdb), Clock: NewClock()}
	e.FT = e.EnableFT(tb)
	return e
}

// EnableFT switches e's store to writing RediSearch documents and backfills, returning the
// ready index.
func (e *Env) EnableFT(tb testing.TB) *redisstore.FTIndex {
	tb.Helper()
	ctx := context.Background()
	ft, _, err := e.Store.OpenFTIndex(ctx, ftVer)
	if err != nil {
		tb.Fatalf("open the RediSearch index: %v", err)
	}
	tb.Cleanup(ft.Close)
	if err := e.Store.NewBackfill(ft, slog.New(slog.DiscardHandler)).Run(ctx); err != nil {
		tb.Fatalf("search backfill: %v", err)
	}
	return ft
}

// ForEachStore runs fn as a subtest against each of Stores.
func ForEachStore(t *testing.T, fn func(t *testing.T, e *Env)) {
	t.Helper()
	ForEachStoreOf(t, Stores, fn)
}

// ForEachStoreOf runs fn as a subtest against each of stores.
func ForEachStoreOf(t *testing.T, stores []Store, fn func(t *testing.T, e *Env)) {
	t.Helper()
	for _, s := range stores {
		t.Run(s.Name, func(t *testing.T) { fn(t, s.Open(t)) })
	}
}

// Clock is a settable clock for tests; it starts at a fixed instant and moves only when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at 2026-01-01T00:00:00Z.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// App builds the services over e's store with e's clock.
func (e *Env) App(tb testing.TB) *app.App {
	a := app.New(e.Store, e.Clock, core.DefaultLimits())
	if e.FT != nil {
		a.Convs.Text = e.FT
	}
	return a
}

// Project is a fresh project with a full-access key.
type Project struct {
	ID  string
	Key string // raw API key
	P   core.Principal
}

// NewProject creates an isolated project with a full-access key, deleted when the test ends.
func NewProject(tb testing.TB, a *app.App) Project {
	tb.Helper()
	id := "t_" + core.NewID()
	key, err := a.Auth.CreateProjectWithKey(context.Background(), core.Project{ID: id, Name: tb.Name()}, "")
	if err != nil {
		tb.Fatalf("create project: %v", err)
	}
	p, err := a.Auth.Authenticate(context.Background(), key.Key)
	if err != nil {
		tb.Fatalf("authenticate new key: %v", err)
	}
	// The product's own project deletion: every credential the test minted goes with its data,
	// so the shared Redis does not fill up.
	tb.Cleanup(func() { _, _ = a.Store.DeleteProject(context.Background(), id) })
	return Project{ID: id, Key: key.Key, P: p}
}

// Server is our real HTTP handler on a loopback port.
type Server struct {
	URL     string
	App     *app.App
	Project Project
}

// NewServer starts the full HTTP surface over e's store with no auth-failure padding;
// configure, when given, adjusts the services before the handler is built.
func NewServer(tb testing.TB, e *Env, configure ...func(*app.App)) *Server {
	tb.Helper()
	a := e.App(tb)
	for _, c := range configure {
		c(a)
	}
	var h http.Handler = a.NewHandler(0)
	if _, bench := tb.(*testing.B); !bench {
		// Benchmarks measure the server, not kin-openapi's validator (~4,000 allocations per
		// response): every test still validates every response it gets.
		h = CheckOpenAPI(tb, h)
	}
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	return &Server{URL: ts.URL, App: a, Project: NewProject(tb, a)}
}

// ReportPercentiles reports the p50 and p99 of ds in microseconds as <name>_p50_us and
// <name>_p99_us (benchmarks of latencies, such as lease hand-offs).
func ReportPercentiles(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) }
	b.ReportMetric(at(0.50), name+"_p50_us")
	b.ReportMetric(at(0.99), name+"_p99_us")
}

// ProjectKeys lists every key of the project (tests only: KEYS). On a cluster it asks the
// master owning the project's slot, where all of them live.
func (e *Env) ProjectKeys(tb testing.TB, project string) []string {
	tb.Helper()
	ctx := context.Background()
	var node redis.Cmdable = e.Rdb
	if c, ok := e.Rdb.(*redis.ClusterClient); ok {
		m, err := c.MasterForKey(ctx, "as:{"+project+"}:")
		if err != nil {
			tb.Fatalf("find the project's master: %v", err)
		}
		node = m
	}
	keys, err := node.Keys(ctx, "as:{"+project+"}:*").Result()
	if err != nil {
		tb.Fatalf("list project keys: %v", err)
	}
	return keys
}

// CountRoundTrips adds a hook to rdb that counts its round trips (a command, or a whole
// pipeline) and returns the counter.
func CountRoundTrips(rdb redis.UniversalClient) *atomic.Int64 {
	n := new(atomic.Int64)
	rdb.AddHook(countHook{n: n})
	return n
}

// CountCommands adds a hook to rdb that counts the commands it sends, each command of a
// pipeline counted, and returns the counter.
func CountCommands(rdb redis.UniversalClient) *atomic.Int64 {
	n := new(atomic.Int64)
	rdb.AddHook(countHook{n: n, each: true})
	return n
}

type countHook struct {
	n    *atomic.Int64
	each bool // count a pipeline's commands, not the pipeline
}

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.each {
			h.n.Add(int64(len(cmds)))
		} else {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// WithOwnClients is e over clients of its own (same server, fresh pools) with the blocking
// reads on a third, returned so a test can count the connections each pool holds. Hooks a
// test adds to the returned Env's Rdb touch no other test.
func (e *Env) WithOwnClients(tb testing.TB) (*Env, redis.UniversalClient) {
	tb.Helper()
	clone := func() redis.UniversalClient {
		switch c := e.Rdb.(type) {
		case *redis.ClusterClient:
			o := *c.Options()
			return redis.NewClusterClient(&o)
		case *redis.Client:
			o := *c.Options()
			return redis.NewClient(&o)
		}
		tb.Fatalf("WithOwnClients: unexpected client %T", e.Rdb)
		return nil
	}
	main, blocking := clone(), clone()
	tb.Cleanup(func() { _ = main.Close(); _ = blocking.Close() })
	own := *e
	own.Rdb, own.Store = main, redisstore.New(main)
	own.Store.UseBlockingClient(blocking)
	return &own, blocking
}

// PoolConns is how many connections a client holds open (on a cluster, over all its nodes).
func PoolConns(c redis.UniversalClient) int {
	return int(c.PoolStats().TotalConns)
}

// PoolInUse is how many of a client's connections are taken (not idle in the pool).
func PoolInUse(c redis.UniversalClient) int {
	st := c.PoolStats()
	return int(st.TotalConns) - int(st.IdleConns)
}
