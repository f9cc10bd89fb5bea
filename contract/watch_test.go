package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

type sseFrame struct {
	ID, Event, Data string
}

// sseClient reads frames of one watch request until closed.
type sseClient struct {
	resp   *http.Response
	frames chan sseFrame
	cancel context.CancelFunc
}

func openWatch(t *testing.T, base, key, query string, hdr map[string]string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/states/watch?"+query, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	c := &sseClient{resp: resp, frames: make(chan sseFrame, 4096), cancel: cancel}
	t.Cleanup(c.close)
	if resp.StatusCode != 200 {
		return c
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	go func() {
		defer close(c.frames)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var f sseFrame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				c.frames <- f
				f = sseFrame{}
			case strings.HasPrefix(line, "id: "):
				f.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				f.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				f.Data = line[6:]
			}
		}
	}()
	return c
}

func (c *sseClient) close() {
	c.cancel()
	_ = c.resp.Body.Close()
}

// next returns the next frame that is not a ping.
func (c *sseClient) next(t *testing.T) sseFrame {
	t.Helper()
	// One deadline for the whole call: pings keep arriving, so a per-iteration timer would
	// never fire and a missing event would hang the suite instead of failing it.
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			require.True(t, ok, "stream closed")
			if f.Event != "ping" {
				return f
			}
		case <-deadline:
			t.Fatal("no frame within 20s")
		}
	}
}

func putCore(t *testing.T, s *testenv.Server, key, agent string, n int) core.State {
	t.Helper()
	st, _, err := s.App.States.Put(context.Background(), s.Project.P, core.PutState{Key: key, Body: core.StateWrite{
		AgentID: agent, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}})
	require.NoError(t, err)
	return st
}

// 500 events of backlog, then a watch from 0 while 8 writers keep writing: every sequence is
// seen exactly once, in order, across the backlog/live boundary (v1 defect D1 deadlocked here).
func TestWatchBacklogThenLiveInOrder(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		for i := range 500 {
			putCore(t, s, fmt.Sprint("k", i%20), "w", i)
		}
		w := openWatch(t, s.URL, s.Project.Key, "after=0", nil)
		require.Equal(t, 200, w.resp.StatusCode)
		const writers, each = 8, 40
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					_, _, err := s.App.States.Put(context.Background(), s.Project.P, core.PutState{Key: fmt.Sprintf("live-%d", g), Body: core.StateWrite{
						AgentID: "w", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
					}})
					if err != nil {
						t.Error(err) // not require: this is a worker goroutine
						return
					}
				}
			}()
		}
		total := 500 + writers*each
		for want := int64(1); want <= int64(total); want++ {
			f := w.next(t)
			require.Equal(t, strconv.FormatInt(want, 10), f.ID, "sequence %d next, exactly once, in order", want)
			require.Equal(t, "state.upsert", f.Event)
			var ev core.StateEvent
			require.NoError(t, json.Unmarshal([]byte(f.Data), &ev))
			require.Equal(t, want, ev.Sequence)
		}
		wg.Wait()
	})
}

func TestWatchResumeWithLastEventID(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		for i := range 10 {
			putCore(t, s, "k", "a", i)
		}
		w := openWatch(t, s.URL, s.Project.Key, "", nil)
		var last string
		for range 4 {
			last = w.next(t).ID
		}
		w.close() // the connection drops
		for i := range 5 {
			putCore(t, s, "k", "a", 100+i)
		}
		w2 := openWatch(t, s.URL, s.Project.Key, "", map[string]string{"Last-Event-ID": last})
		for want := 5; want <= 15; want++ {
			assert.Equal(t, strconv.Itoa(want), w2.next(t).ID)
		}
	})
}

func TestWatchAcrossTwoServers(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s1 := testenv.NewServer(t, e)
		s2 := testenv.NewServer(t, e) // a second replica on the same Redis
		w := openWatch(t, s2.URL, s1.Project.Key, "", nil)
		require.Equal(t, 200, w.resp.StatusCode)
		resp, _ := send(t, "PUT", s1.URL+"/api/v1/states/x", s1.Project.Key, map[string]any{"agent_id": "a", "data": map[string]any{}}, nil)
		require.Equal(t, 200, resp.StatusCode)
		f := w.next(t)
		assert.Equal(t, "state.upsert", f.Event)
		assert.Contains(t, f.Data, `"state_key":"x"`)
	})
}

func TestWatchOnceFiltersLeasesAndCompaction(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		putCore(t, s, "jobs/1", "a", 1)
		putCore(t, s, "other", "b", 2)
		putCore(t, s, "jobs/2", "b", 3)
		_, _, err := s.App.States.Delete(context.Background(), s.Project.P, core.DeleteState{Key: "jobs/1"})
		require.NoError(t, err)

		t.Run("once mode replays proper event objects and closes", func(t *testing.T) {
			w := openWatch(t, s.URL, s.Project.Key, "once=true&after=1", nil)
			var got []string
			for f := range w.frames {
				if f.Event == "ping" {
					continue
				}
				var ev core.StateEvent
				require.NoError(t, json.Unmarshal([]byte(f.Data), &ev), "data is the mapped event object (v1 defect D2 sent strings)")
				got = append(got, f.ID+":"+f.Event+":"+ev.StateKey)
			}
			assert.Equal(t, []string{"2:state.upsert:other", "3:state.upsert:jobs/2", "4:state.delete:jobs/1"}, got)
		})
		t.Run("key prefix and agent filters", func(t *testing.T) {
			w := openWatch(t, s.URL, s.Project.Key, "once=true&key=jobs/*&agent_id=b", nil)
			assert.Equal(t, "3", w.next(t).ID)
			w = openWatch(t, s.URL, s.Project.Key, "once=true&key=other", nil)
			assert.Equal(t, "2", w.next(t).ID)
		})
		t.Run("lease events on the same stream", func(t *testing.T) {
			w := openWatch(t, s.URL, s.Project.Key, "after=4&leases=true", nil)
			l, err := s.App.Leases.Acquire(context.Background(), s.Project.P, "jobs/2", core.AcquireLease{Holder: "h"})
			require.NoError(t, err)
			f := w.next(t)
			assert.Equal(t, "lease.acquired", f.Event)
			assert.Contains(t, f.Data, l.ID)
			seq, leaseID, err := core.ParseWatchCursor(f.ID)
			require.NoError(t, err)
			assert.EqualValues(t, 4, seq)
			assert.NotEmpty(t, leaseID)
			require.NoError(t, s.App.Leases.Release(context.Background(), s.Project.P, l.ID))
			assert.Equal(t, "lease.released", w.next(t).Event)
		})
		t.Run("lease events obey the key filter and the credential's resources", func(t *testing.T) {
			ctx := context.Background()
			byKey := openWatch(t, s.URL, s.Project.Key, "after=4&leases=true&key=mine/*", nil)
			k, err := s.App.Keys.CreateAPIKey(ctx, s.Project.P, core.CreateKeyRequest{Name: "mine", Resources: []string{"mine/*"}})
			require.NoError(t, err)
			byResource := openWatch(t, s.URL, k.Key, "after=4&leases=true", nil)
			other, err := s.App.Leases.Acquire(ctx, s.Project.P, "theirs/1", core.AcquireLease{Holder: "h"})
			require.NoError(t, err)
			mine, err := s.App.Leases.Acquire(ctx, s.Project.P, "mine/1", core.AcquireLease{Holder: "h"})
			require.NoError(t, err)
			for name, w := range map[string]*sseClient{"key filter": byKey, "resources": byResource} {
				f := w.next(t)
				assert.Equal(t, "lease.acquired", f.Event, name)
				// By state key: the resource-limited key did not acquire the lease, so it sees no id.
				assert.Contains(t, f.Data, `"state_key":"mine/1"`, "%s: the first lease event is mine/1's, theirs/1's was filtered out", name)
				assert.NotContains(t, f.Data, other.ID, name)
			}
			require.NoError(t, s.App.Leases.Release(ctx, s.Project.P, other.ID))
			require.NoError(t, s.App.Leases.Release(ctx, s.Project.P, mine.ID))
		})
		t.Run("a resume point older than the log says compacted", func(t *testing.T) {
			require.NoError(t, e.Rdb.XTrimMinID(context.Background(), fmt.Sprintf("as:{%s}:log", s.Project.ID), "3-0").Err())
			w := openWatch(t, s.URL, s.Project.Key, "after=1", nil)
			f := w.next(t)
			assert.Equal(t, "compacted", f.Event)
			assert.JSONEq(t, `{"requested_after":1,"resume_after":2,"latest_sequence":4}`, f.Data)
			assert.Equal(t, "3", w.next(t).ID)
		})
		t.Run("bad cursor and missing scope", func(t *testing.T) {
			resp, out := send(t, "GET", s.URL+"/api/v1/states/watch?after=x", s.Project.Key, nil, nil)
			assert.Equal(t, 400, resp.StatusCode, string(out))
			resp, _ = send(t, "GET", s.URL+"/api/v1/states/watch", "", nil, nil)
			assert.Equal(t, 401, resp.StatusCode)
		})
	})
}

func TestLongPollAndWaitTool(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		v := putCore(t, s, "lp", "a", 1).Version
		waitFor := func(after int64, timeoutMs int) (core.WaitResult, Result) {
			if f.Name() == "mcp" {
				r := f.Call(t, "wait_for_state_change", map[string]any{"state_key": "lp", "after_version": after, "timeout_ms": timeoutMs})
				var res core.WaitResult
				if r.Code == "" {
					r.Decode(t, &res)
				}
				return res, r
			}
			resp, body := send(t, "GET", fmt.Sprintf("%s/api/v1/states/lp?wait_version=%d&wait_ms=%d", s.URL, after, timeoutMs), s.Project.Key, nil, nil)
			r := Result{Status: resp.StatusCode, Body: body}
			var res core.WaitResult
			if resp.StatusCode == 200 {
				var st core.State
				require.NoError(t, json.Unmarshal(body, &st))
				res = core.WaitResult{Changed: st.Version > after, State: &st}
			}
			return res, r
		}
		// Already past: returns at once.
		res, _ := waitFor(0, 30_000)
		assert.True(t, res.Changed)
		// Timeout: the current state comes back unchanged.
		res, _ = waitFor(v, 50)
		assert.False(t, res.Changed)
		require.NotNil(t, res.State)
		assert.Equal(t, v, res.State.Version)
		// A change wakes the waiter (well before its 30 s timeout). The write comes from a worker
		// goroutine so that the waiter, which may fail the test, runs on the test's own.
		wrote := make(chan error, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // let the waiter block first; correctness does not depend on it
			_, _, err := s.App.States.Put(context.Background(), s.Project.P, core.PutState{Key: "lp",
				Body: core.StateWrite{AgentID: "b", Data: json.RawMessage(`{"n":2}`)}})
			wrote <- err
		}()
		r, _ := waitFor(v, 30_000)
		require.NoError(t, <-wrote) // reported here, never after the test has ended
		assert.True(t, r.Changed, "waiter was not woken by the write")
		require.NotNil(t, r.State)
		assert.Equal(t, v+1, r.State.Version)
	})
}

func TestMCPStateAndLeaseResources(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := &mcpFace{base: s.URL, key: s.Project.Key}
		putCore(t, s, "a/b", "x", 7)
		var res struct {
			Contents []struct{ URI, Text string }
		}
		require.NoError(t, json.Unmarshal(f.rpc(t, "resources/read", map[string]any{"uri": "agentstate://states/a%2Fb"}), &res))
		require.Len(t, res.Contents, 1)
		var st core.State
		require.NoError(t, json.Unmarshal([]byte(res.Contents[0].Text), &st))
		assert.Equal(t, "a/b", st.StateKey)

		l, err := s.App.Leases.Acquire(context.Background(), s.Project.P, "a/b", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(f.rpc(t, "resources/read", map[string]any{"uri": "agentstate://leases/a%2Fb"}), &res))
		assert.Contains(t, res.Contents[0].Text, l.ID)

		var tpl struct {
			ResourceTemplates []struct{ URITemplate string } `json:"resourceTemplates"`
		}
		require.NoError(t, json.Unmarshal(f.rpc(t, "resources/templates/list", map[string]any{}), &tpl))
		assert.Len(t, tpl.ResourceTemplates, 2)
	})
}

// Over the SSE transport (which has sessions) a subscribed state's change is notified.
func TestMCPResourceSubscriptionNotifiesOnChange(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		putCore(t, s, "watched", "x", 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/mcp/sse", nil)
		req.Header.Set("Authorization", "Bearer "+s.Project.Key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		lines := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		nextData := func(substr string) string {
			deadline := time.After(20 * time.Second)
			for {
				select {
				case l, ok := <-lines:
					require.True(t, ok)
					if strings.HasPrefix(l, "data: ") && strings.Contains(l, substr) {
						return l[6:]
					}
				case <-deadline:
					t.Fatalf("no SSE data containing %q", substr)
				}
			}
		}
		endpoint := nextData("sessionId")
		if !strings.HasPrefix(endpoint, "http") {
			endpoint = s.URL + endpoint
		}
		post := func(id int, method string, params any) {
			r, _ := send(t, "POST", endpoint, s.Project.Key, map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params}, nil)
			require.Equal(t, 202, r.StatusCode)
		}
		post(1, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"}})
		nextData(`"id":1`)
		post(2, "resources/subscribe", map[string]any{"uri": "agentstate://states/watched"})
		nextData(`"id":2`)
		putCore(t, s, "watched", "y", 2)
		note := nextData("notifications/resources/updated")
		assert.Contains(t, note, "agentstate://states/watched")
	})
}

// Lease events on the watch stream pass the same filters as state events: the key filter of
// the request and the resources of the credential. A lease on a key outside either must not
// show, and a watcher that may not use a lease sees its events without the lease id.
func TestWatchLeaseEventsRespectKeyFilterAndResources(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx := context.Background()
		tok, err := s.App.Keys.MintToken(ctx, s.Project.P, core.MintTokenRequest{Name: "jobs-watcher",
			Scopes: []string{core.ScopeStateWatch, core.ScopeStateRead}, Resources: []string{"jobs/*"}})
		require.NoError(t, err)
		byFilter := openWatch(t, s.URL, s.Project.Key, "leases=true&key=jobs/*", nil)
		byResource := openWatch(t, s.URL, tok.Token, "leases=true", nil)

		_, err = s.App.Leases.Acquire(ctx, s.Project.P, "secret", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		l, err := s.App.Leases.Acquire(ctx, s.Project.P, "jobs/9", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)

		for name, w := range map[string]*sseClient{"key filter": byFilter, "resources": byResource} {
			f := w.next(t)
			require.Equal(t, "lease.acquired", f.Event, name)
			var ev core.LeaseEvent
			require.NoError(t, json.Unmarshal([]byte(f.Data), &ev))
			assert.Equal(t, "jobs/9", ev.StateKey, "%s: the lease on secret must not show", name)
			if name == "resources" {
				assert.Empty(t, ev.LeaseID, "a watcher that may not use the lease does not see its id")
			} else {
				assert.Equal(t, l.ID, ev.LeaseID)
			}
		}
	})
}
