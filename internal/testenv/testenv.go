// Package testenv runs tests against every store AgentState supports: the real Redis named by
// AGENTSTATE_TEST_REDIS_URL (default redis://127.0.0.1:6379/0) and the embedded miniredis.
// Each test gets its own project, so tests never flush or see each other's data.
package testenv

import (
	"context"
	"net/http/httptest"
	"os"
	"sync"
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
	Name  string // "redis" or "embedded"
	Rdb   redis.UniversalClient
	Store *redisstore.Store
	Mini  *miniredis.Miniredis // nil on real Redis
	Clock *Clock
}

var (
	realOnce sync.Once
	realRdb  redis.UniversalClient
	realErr  error
)

func realRedis() (redis.UniversalClient, error) {
	realOnce.Do(func() {
		opts, err := redis.ParseURL(RedisURL())
		if err != nil {
			realErr = err
			return
		}
		opts.PoolSize = 64
		c := redis.NewClient(opts)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			realErr = err
			_ = c.Close()
			return
		}
		realRdb = c
	})
	return realRdb, realErr
}

// ForEachStore runs fn as a subtest against real Redis and against the embedded store. Without
// a reachable Redis the real half is skipped, unless AGENTSTATE_TEST_REQUIRE_REDIS=1 (CI), where
// that is a failure.
func ForEachStore(t *testing.T, fn func(t *testing.T, e *Env)) {
	t.Helper()
	t.Run("redis", func(t *testing.T) {
		rdb, err := realRedis()
		if err != nil {
			if os.Getenv("AGENTSTATE_TEST_REQUIRE_REDIS") == "1" {
				t.Fatalf("real Redis at %s is required: %v", RedisURL(), err)
			}
			t.Skipf("real Redis at %s not answering (%v): skipped; the embedded half still runs", RedisURL(), err)
		}
		fn(t, &Env{Name: "redis", Rdb: rdb, Store: redisstore.New(rdb), Clock: NewClock()})
	})
	t.Run("embedded", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 64})
		t.Cleanup(func() { _ = rdb.Close() })
		fn(t, &Env{Name: "embedded", Rdb: rdb, Store: redisstore.New(rdb), Mini: mr, Clock: NewClock()})
	})
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
func (e *Env) App(t *testing.T) *app.App {
	return app.New(e.Store, e.Clock, core.DefaultLimits())
}

// Project is a fresh project with a full-access key.
type Project struct {
	ID  string
	Key string // raw API key
	P   core.Principal
}

// NewProject creates an isolated project on e with a full-access key.
func NewProject(t *testing.T, a *app.App) Project {
	t.Helper()
	id := "t_" + core.NewID()
	key, err := a.Auth.CreateProjectWithKey(context.Background(), core.Project{ID: id, Name: t.Name()}, "")
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	p, err := a.Auth.Authenticate(context.Background(), key.Key)
	if err != nil {
		t.Fatalf("authenticate new key: %v", err)
	}
	return Project{ID: id, Key: key.Key, P: p}
}

// Server is our real HTTP handler on a loopback port.
type Server struct {
	URL     string
	App     *app.App
	Project Project
}

// NewServer starts the full HTTP surface over e's store with no auth-failure padding.
func NewServer(t *testing.T, e *Env) *Server {
	t.Helper()
	a := e.App(t)
	ts := httptest.NewServer(a.NewHandler(0))
	t.Cleanup(ts.Close)
	return &Server{URL: ts.URL, App: a, Project: NewProject(t, a)}
}
