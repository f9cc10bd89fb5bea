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
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/internal/testenv"
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

// benchServer is the full HTTP surface over rdb with a fresh project (what testenv.NewServer
// does for a *testing.T), a keep-alive client sized for benchConcurrency, and cleanup of the
// project's keys.
type benchServer struct {
	url    string
	key    string
	client *http.Client
}

func newBenchServer(b *testing.B, st testenv.Store) *benchServer {
	b.Helper()
	srv := testenv.NewServer(b, st.Open(b))
	tr := &http.Transport{MaxIdleConns: 2 * benchConcurrency, MaxIdleConnsPerHost: 2 * benchConcurrency}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchServer{url: srv.URL, key: srv.Project.Key, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends one request to /api/v1<path>, expecting status want, and returns the body (read in
// full so the connection is reused).
func (s *benchServer) do(method, path string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+"/api/v1"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	return out, err
}

// put and get are the state requests the benchmarks repeat.
func (s *benchServer) put(key string, body []byte) error {
	_, err := s.do(http.MethodPut, "/states/"+key, body, http.StatusOK)
	return err
}

func (s *benchServer) get(key string) error {
	_, err := s.do(http.MethodGet, "/states/"+key, nil, http.StatusOK)
	return err
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
	for _, st := range testenv.Stores {
		b.Run(st.Name+"/c32", func(b *testing.B) {
			s := newBenchServer(b, st)
			b.SetBytes(int64(len(body)))
			runParallel32(b, func(i uint64) error { return s.put(benchKey(i), body) })
		})
	}
}

// BenchmarkRESTStateGet measures GET /api/v1/states/{key} of current 1 KiB states.
func BenchmarkRESTStateGet(b *testing.B) {
	body := benchBody(benchDataBytes)
	for _, st := range testenv.Stores {
		b.Run(st.Name+"/c32", func(b *testing.B) {
			s := newBenchServer(b, st)
			for i := range uint64(benchKeys) {
				if err := s.put(benchKey(i), body); err != nil {
					b.Fatal(err)
				}
			}
			runParallel32(b, func(i uint64) error { return s.get(benchKey(i)) })
		})
	}
}
