package contract

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// 50 clients each add 1 to a counter with read → If-Match write → retry on 409. v1 (no
// concurrency control) ends far below 50; with compare-and-set no increment may be lost.
func TestNoLostUpdateUnderCAS(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		u := s.URL + "/api/v1/states/counter"
		key := s.Project.Key
		resp, _ := send(t, "PUT", u, key, map[string]any{"agent_id": "init", "data": map[string]any{"n": 0}}, nil)
		require.Equal(t, 200, resp.StatusCode)

		const clients = 50
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan string, clients)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 1000 {
					resp, body, err := trySend("GET", u, key, nil, nil)
					var st core.State
					if err != nil || resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil {
						errs <- fmt.Sprintf("read: %v %s", err, body)
						return
					}
					var d struct{ N int }
					_ = json.Unmarshal(st.Data, &d)
					resp, body, err = trySend("PUT", u, key, map[string]any{"agent_id": fmt.Sprint("c", c), "data": map[string]any{"n": d.N + 1}},
						map[string]string{"If-Match": strconv.FormatInt(st.Version, 10)})
					if err != nil {
						errs <- fmt.Sprintf("write: %v", err)
						return
					}
					switch resp.StatusCode {
					case 200:
						wins.Add(1)
						return
					case 409:
						conflicts.Add(1)
					default:
						errs <- fmt.Sprintf("write: %d %s", resp.StatusCode, body)
						return
					}
				}
				errs <- "gave up after 1000 conflicts"
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		resp, body := send(t, "GET", u, s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		var st core.State
		require.NoError(t, json.Unmarshal(body, &st))
		assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, wins.Load()), string(st.Data))
		assert.EqualValues(t, clients, wins.Load())
		assert.EqualValues(t, clients+1, st.Version)

		page, err := s.App.States.Events(t.Context(), s.Project.P, "counter", 0, 500)
		require.NoError(t, err)
		assert.Len(t, page.Data, clients+1, "one event per accepted write, none for the %d rejected ones", conflicts.Load())
	})
}

// Concurrent duplicates of one idempotent request write once; every other copy is a replay.
func TestConcurrentIdempotentDuplicatesWriteOnce(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		const copies = 20
		var replays, firsts atomic.Int64
		var wg sync.WaitGroup
		bodies := make([]string, copies)
		for i := range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body, err := trySend("PUT", s.URL+"/api/v1/states/once", s.Project.Key,
					map[string]any{"agent_id": "a", "data": map[string]any{"x": 1}}, map[string]string{"Idempotency-Key": "same"})
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("%v: %s", err, body)
					return
				}
				bodies[i] = string(body)
				if resp.Header.Get("Idempotency-Replayed") == "true" {
					replays.Add(1)
				} else {
					firsts.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.EqualValues(t, 1, firsts.Load())
		assert.EqualValues(t, copies-1, replays.Load())
		for _, b := range bodies[1:] {
			assert.JSONEq(t, bodies[0], b, "every copy gets the same response")
		}
		page, err := s.App.States.Events(t.Context(), s.Project.P, "once", 0, 500)
		require.NoError(t, err)
		assert.Len(t, page.Data, 1)
	})
}
