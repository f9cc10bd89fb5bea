package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/alicebob/miniredis/v2"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
)

// Store implements core's store interfaces on one Redis (or Redis-protocol) server.
type Store struct {
	rdb  redis.UniversalClient
	rs   *redsync.Redsync // elects the replica that runs a background job (LeadJob)
	wake wakeHub          // this replica's lease waiters, woken over pub/sub
	// ft is on while conversation writes create RediSearch documents (the FT search path).
	ft atomic.Bool
}

// New wraps a client.
func New(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, rs: redsync.New(goredis.NewPool(rdb))}
}

// Client exposes the client for the pieces built on it directly (health checks, tests).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping checks the server answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// minPoolSize leaves room for blocked watchers beside ordinary requests.
const minPoolSize = 256

// Connection is an opened store and how to close it.
type Connection struct {
	Store    *Store
	Embedded bool // true when the data lives in this process's memory only
	Addr     string
	close    func()
}

// Close releases the client and, when embedded, the in-process server.
func (c *Connection) Close() { c.close() }

// Open connects to url, or with url empty starts an in-process Redis-protocol server
// (miniredis): nothing to install, but everything is lost on exit.
func Open(ctx context.Context, url string) (*Connection, error) {
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("start embedded store: %w", err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: minPoolSize})
		st := New(rdb)
		return &Connection{Store: st, Embedded: true, Addr: mr.Addr(), close: func() {
			_ = st.Close()
			_ = rdb.Close()
			mr.Close()
		}}, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse AGENTSTATE_REDIS_URL: %w", err)
	}
	// Watches and long-polls each hold a connection while they block (XREAD BLOCK).
	opts.PoolSize = max(opts.PoolSize, minPoolSize)
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w", opts.Addr, err)
	}
	st := New(rdb)
	return &Connection{Store: st, Addr: opts.Addr, close: func() {
		_ = st.Close()
		_ = rdb.Close()
	}}, nil
}
