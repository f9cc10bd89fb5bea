package rest_test

// Benchmarks of the REST state routes end to end: our real handler (app.NewHandler) on an
// httptest loopback server, called by a net/http client with keep-alive from 32 goroutines,
// against the real Redis of testenv.RedisURL() and the embedded miniredis. Benchmarks run only
// with -bench; the "redis" half skips when Redis does not answer. Each benchmark writes into a
// fresh project and removes that project's keys afterwards.
//
//	go test ./rest -run '^$' -bench . -benchmem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

const (
	benchDataBytes   = 1024 // size of the data object of every PUT
	benchKeys        = 1000 // distinct state keys the benchmarks cycle through
	benchConcurrency = 32   // client goroutines, as a fleet of agents
)

// benchBody is a PUT body whose data object is exactly n bytes.
func benchBody(n int) []byte {
	const head, tail = `{"pad":"`, `"}`
	data := head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	return []byte(`{"agent_id":"bench","data":` + data + `}`)
}

func openRedis(b *testing.B) redis.UniversalClient {
	opts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		b.Fatalf("AGENTSTATE_TEST_REDIS_URL: %v", err)
	}
	opts.PoolSize = 2 * benchConcurrency
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		b.Skipf("real Redis at %s not answering (%v): skipped", testenv.RedisURL(), err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func openEmbedded(b *testing.B) redis.UniversalClient {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 2 * benchConcurrency})
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

var benchStores = []struct {
	name string
	open func(b *testing.B) redis.UniversalClient
}{{"redis", openRedis}, {"embedded", openEmbedded}}

// benchServer is the full HTTP surface over rdb with a fresh project (what testenv.NewServer
// does for a *testing.T), a keep-alive client sized for benchConcurrency, and cleanup of the
// project's keys.
type benchServer struct {
	url    string
	key    string
	client *http.Client
}

func newBenchServer(b *testing.B, rdb redis.UniversalClient) *benchServer {
	b.Helper()
	ctx := context.Background()
	a := app.New(redisstore.New(rdb), core.SystemClock{}, core.DefaultLimits())
	id := "b_" + core.NewID()
	key, err := a.Auth.CreateProjectWithKey(ctx, core.Project{ID: id, Name: b.Name()}, "")
	if err != nil {
		b.Fatalf("create project: %v", err)
	}
	b.Cleanup(func() { dropProject(b, rdb, id, key.Key) })
	ts := httptest.NewServer(a.NewHandler(0))
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConns: 2 * benchConcurrency, MaxIdleConnsPerHost: 2 * benchConcurrency}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchServer{url: ts.URL, key: key.Key, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// dropProject removes a benchmark project's keys. SCAN is fine here: this is test cleanup, not
// a request path. The loop is bounded by the number of SCAN calls.
func dropProject(b *testing.B, rdb redis.UniversalClient, id, rawKey string) {
	ctx := context.Background()
	var cursor uint64
	for range 1_000_000 {
		keys, next, err := rdb.Scan(ctx, cursor, "as:{"+id+"}:*", 1000).Result()
		if err != nil {
			b.Logf("cleanup of project %s: %v", id, err)
			return
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	rdb.Unlink(ctx, "as:cred:"+core.SHA256Hex([]byte(rawKey)))
	rdb.ZRem(ctx, "as:projects", id)
}

// do sends one request and drains the body so the connection is reused.
func (s *benchServer) do(method, key string, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+"/api/v1/states/"+key, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d", method, key, resp.StatusCode)
	}
	return nil
}

func benchKey(i uint64) string { return "bench-" + strconv.FormatUint(i%benchKeys, 10) }

// runParallel32 runs op from benchConcurrency goroutines whatever GOMAXPROCS is and reports
// the request rate.
func runParallel32(b *testing.B, op func(i uint64) error) {
	var next, failed atomic.Uint64
	b.SetParallelism((benchConcurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(next.Add(1)); err != nil && failed.Add(1) == 1 {
				b.Error(err)
			}
		}
	})
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "req/s")
	}
}

// BenchmarkRESTStatePut measures PUT /api/v1/states/{key} with a 1 KiB data object.
func BenchmarkRESTStatePut(b *testing.B) {
	body := benchBody(benchDataBytes)
	for _, st := range benchStores {
		b.Run(st.name+"/c32", func(b *testing.B) {
			s := newBenchServer(b, st.open(b))
			b.SetBytes(int64(len(body)))
			runParallel32(b, func(i uint64) error { return s.do(http.MethodPut, benchKey(i), body) })
		})
	}
}

// BenchmarkRESTStateGet measures GET /api/v1/states/{key} of current 1 KiB states.
func BenchmarkRESTStateGet(b *testing.B) {
	body := benchBody(benchDataBytes)
	for _, st := range benchStores {
		b.Run(st.name+"/c32", func(b *testing.B) {
			s := newBenchServer(b, st.open(b))
			for i := range uint64(benchKeys) {
				if err := s.do(http.MethodPut, benchKey(i), body); err != nil {
					b.Fatal(err)
				}
			}
			runParallel32(b, func(i uint64) error { return s.do(http.MethodGet, benchKey(i), nil) })
		})
	}
}
