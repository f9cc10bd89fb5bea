package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// waitPing waits for a stream's opening ping: from then on it is subscribed.
func (c *sseClient) waitPing(t *testing.T) {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		require.True(t, ok, "stream closed before its opening ping")
		require.Equal(t, "ping", f.Event)
	case <-time.After(20 * time.Second):
		t.Fatal("no opening ping within 20s")
	}
}

// rest returns the frames after the current one until the stream ends (non-pings only).
func (c *sseClient) rest(t *testing.T, within time.Duration) []sseFrame {
	t.Helper()
	var out []sseFrame
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return out
			}
			if f.Event != "ping" {
				out = append(out, f)
			}
		case <-deadline:
			t.Fatalf("stream still open after %s; frames so far: %v", within, out)
		}
	}
}

// 150 SSE watches and 50 long-polls of one project hold one blocking Redis connection between
// them (the project's feed), and nothing of the ordinary pool; a write reaches every one.
func TestWatchersShareOneBlockingRead(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		own, blocking := e.WithOwnClients(t)
		s := testenv.NewServer(t, own)
		putCore(t, s, "k", "a", 0)
		const watches, polls = 150, 50
		ws := make([]*sseClient, watches)
		for i := range ws {
			ws[i] = openWatch(t, s.URL, s.Project.Key, "after=1", nil)
			require.Equal(t, 200, ws[i].resp.StatusCode)
		}
		for _, w := range ws {
			w.waitPing(t)
		}
		polled := make(chan int, polls)
		for range polls {
			go func() {
				resp, _, err := trySend("GET", s.URL+"/api/v1/states/k?wait_version=1&wait_ms=20000", s.Project.Key, nil, nil)
				if err != nil {
					t.Error(err)
					polled <- 0
					return
				}
				polled <- resp.StatusCode
			}()
		}
		// Long-polls are in once the process counts them.
		require.Eventually(t, func() bool { return s.App.Watcher.Open() == watches+polls }, 10*time.Second, 10*time.Millisecond)
		time.Sleep(300 * time.Millisecond) // every watcher settles into waiting
		assert.LessOrEqual(t, testenv.PoolInUse(blocking), 2, "one feed read per project (plus one ending)")
		idle := 0
		if e.Name == "cluster" {
			idle = 3 // the blocking client asks some node for the slot map: an idle connection per master at most
		}
		assert.LessOrEqual(t, testenv.PoolConns(blocking), 2+idle, "no connection per watcher")
		assert.LessOrEqual(t, testenv.PoolInUse(own.Rdb), 2, "waiting watchers hold no ordinary connection")
		putCore(t, s, "k", "a", 1)
		for i, w := range ws {
			f := w.next(t)
			require.Equal(t, "2", f.ID, "watcher %d", i)
		}
		for range polls {
			select {
			case code := <-polled:
				require.Equal(t, 200, code)
			case <-time.After(20 * time.Second):
				t.Fatal("a long-poll was not answered")
			}
		}
	})
}

// Watches joining at different moments of a write burst each see every sequence exactly once,
// in order: the feed's batches and each watch's own store reads meet without gap or duplicate.
func TestWatchesJoiningDuringWritesSeeEverySequenceOnce(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		const writers, each, watchers = 4, 50, 24
		total := writers * each
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					_, _, err := s.App.States.Put(context.Background(), s.Project.P, core.PutState{Key: fmt.Sprintf("k%d", g), Body: core.StateWrite{
						AgentID: "w", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
					}})
					if err != nil {
						t.Error(err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		ws := make([]*sseClient, watchers)
		for i := range ws {
			ws[i] = openWatch(t, s.URL, s.Project.Key, "after=0", nil)
			time.Sleep(5 * time.Millisecond)
		}
		wg.Wait()
		for i, w := range ws {
			for want := 1; want <= total; want++ {
				require.Equal(t, strconv.Itoa(want), w.next(t).ID, "watcher %d: sequence %d next, exactly once", i, want)
			}
		}
	})
}

// A watch too slow for the feed's buffer loses nothing: the dropped batches tell it to read the
// store, a batch that starts past its cursor is not used, and it still sees every event once,
// in order, including the last ones. "stuck" blocks in its first emit for the whole burst (the
// last batches are dropped: only the resync signal brings them); "slow" drains the buffer a
// little at a time (batches arrive that start past its cursor).
func TestSlowWatcherReadsWhatTheFeedDropped(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		for _, mode := range []string{"stuck", "slow"} {
			t.Run(mode, func(t *testing.T) {
				s := testenv.NewServer(t, e)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				release := make(chan struct{})
				var got []string
				var mu sync.Mutex
				subscribed := make(chan struct{})
				done := make(chan error, 1)
				go func() {
					first := true
					done <- s.App.Watcher.Watch(ctx, s.Project.P, core.WatchRequest{}, func(f core.WatchFrame) error {
						if f.Event == "ping" {
							if first {
								first = false
								close(subscribed)
							}
							return nil
						}
						if mode == "stuck" {
							<-release // stuck while the writes go on: the feed's buffer fills
						} else {
							time.Sleep(3 * time.Millisecond)
						}
						mu.Lock()
						got = append(got, f.ID)
						mu.Unlock()
						return nil
					})
				}()
				<-subscribed
				time.Sleep(200 * time.Millisecond) // caught up: event 1 then comes from the feed
				const n = 150
				for i := range n {
					putCore(t, s, "k", "a", i)
					// Separate feed batches: far more of them than the feed buffers per watch.
					time.Sleep(map[string]time.Duration{"stuck": 2 * time.Millisecond, "slow": 500 * time.Microsecond}[mode])
				}
				close(release)
				require.Eventually(t, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(got) >= n
				}, 20*time.Second, 10*time.Millisecond)
				time.Sleep(50 * time.Millisecond) // nothing more may come
				mu.Lock()
				require.Len(t, got, n)
				for i, id := range got {
					require.Equal(t, strconv.Itoa(i+1), id)
				}
				mu.Unlock()
				cancel()
				require.NoError(t, <-done)
			})
		}
	})
}

// A resume point past the log's head (a cursor this log never issued, or one from before the
// store lost writes) is an error frame, then the end of the stream: not a silent wait.
func TestWatchCursorPastHeadIsAnErrorFrame(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		putCore(t, s, "k", "a", 1)
		putCore(t, s, "k", "a", 2)
		for _, q := range []string{"after=3", "after=9000", "leases=true&after=2.99999999999999-0"} {
			w := openWatch(t, s.URL, s.Project.Key, q, nil)
			require.Equal(t, 200, w.resp.StatusCode)
			frames := w.rest(t, 10*time.Second)
			require.Len(t, frames, 1, q)
			assert.Equal(t, "error", frames[0].Event, q)
			var we core.WireError
			require.NoError(t, json.Unmarshal([]byte(frames[0].Data), &we))
			assert.Equal(t, core.CodeInvalidCursor, we.Code, q)
			assert.Equal(t, core.MsgCursorAhead, we.Message)
			assert.Contains(t, frames[0].Data, `"latest_sequence":2`)
		}
		// At the head is fine: the watch waits for the next write.
		w := openWatch(t, s.URL, s.Project.Key, "after=2", nil)
		w.waitPing(t)
		putCore(t, s, "k", "a", 3)
		assert.Equal(t, "3", w.next(t).ID)
	})
}

// The watch's bounds (oldest entry, latest sequence, lease head) are one atomic read: a
// project's first write landing while a watch opens must not look like a trimmed log (the
// watch used to report a false `compacted` and skip event 1). The hook lands that write
// exactly between the two reads the bounds used to be, so the test does not depend on luck.
func TestWatchBoundsAreReadAtomically(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		own, _ := e.WithOwnClients(t)
		s := testenv.NewServer(t, own)
		writer := e.App(t) // an unhooked replica makes the intervening write
		var armed atomic.Bool
		logKey := "as:{" + s.Project.ID + "}:log"
		own.Rdb.AddHook(interleave{after: func(cmd redis.Cmder) {
			if a := cmd.Args(); strings.EqualFold(cmd.Name(), "xrange") && len(a) > 1 && a[1] == logKey && armed.CompareAndSwap(true, false) {
				_, _, err := writer.States.Put(context.Background(), s.Project.P, core.PutState{Key: "first",
					Body: core.StateWrite{AgentID: "a", Data: json.RawMessage(`{}`)}})
				require.NoError(t, err)
			}
		}})
		armed.Store(true)
		w := openWatch(t, s.URL, s.Project.Key, "", nil)
		w.waitPing(t) // the bounds are read before the ping
		if armed.CompareAndSwap(true, false) {
			// The bounds were read without a lone XRANGE (as they should be): write now.
			putCore(t, s, "first", "a", 0)
		}
		f := w.next(t)
		assert.Equal(t, "state.upsert", f.Event, "the project's first event, not a false compacted notice")
		assert.Equal(t, "1", f.ID)
	})
}

// interleave runs after once a single command (not a pipeline or transaction) has executed.
type interleave struct{ after func(redis.Cmder) }

func (interleave) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h interleave) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(cmd)
		return err
	}
}
func (interleave) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The watcher caps: per root credential and per project 429 RATE_LIMITED, per process (and
// per watched projects) 503, in the v1 envelope; a closed watch frees its place; a token
// counts against the key that minted it.
func TestWatcherCaps(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		limits := core.DefaultLimits()
		limits.MaxWatchersPerCredential, limits.MaxWatchersPerProject, limits.MaxWatchers, limits.MaxWatchedProjects = 2, 3, 4, 2
		a := app.New(e.Store, e.Clock, limits)
		ts := httptest.NewServer(a.NewHandler(0))
		t.Cleanup(ts.Close)
		p1, p2, p3 := testenv.NewProject(t, a), testenv.NewProject(t, a), testenv.NewProject(t, a)
		// An admitted watch would stream forever: a bounded client turns that into a failure.
		bounded := &http.Client{Timeout: 5 * time.Second}
		get := func(path, key string) (int, string) {
			t.Helper()
			req, err := http.NewRequest("GET", ts.URL+path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := bounded.Do(req)
			require.NoError(t, err, "%s was admitted", path)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err, "%s was admitted", path)
			return resp.StatusCode, string(body)
		}
		refused := func(key, wantCode, wantLimit string, wantStatus int) {
			t.Helper()
			status, body := get("/api/v1/states/watch", key)
			require.Equal(t, wantStatus, status, body)
			var env struct{ Error core.WireError }
			require.NoError(t, json.Unmarshal([]byte(body), &env))
			assert.Equal(t, core.Code(wantCode), env.Error.Code)
			assert.Contains(t, body, `"limit":"`+wantLimit+`"`)
			status, body = get("/api/v1/states/k?wait_version=0&wait_ms=1000", key)
			require.Equal(t, wantStatus, status, "long-polls count too: %s", body)
		}
		open := func(key string) *sseClient {
			t.Helper()
			w := openWatch(t, ts.URL, key, "", nil)
			require.Equal(t, 200, w.resp.StatusCode)
			w.waitPing(t)
			return w
		}
		w1 := open(p1.Key)
		open(p1.Key)
		refused(p1.Key, "RATE_LIMITED", "max_watchers_per_credential", 429)
		tok, err := a.Keys.MintToken(context.Background(), p1.P, core.MintTokenRequest{Name: "t", Scopes: []string{"state:read", "state:watch"}})
		require.NoError(t, err)
		refused(tok.Token, "RATE_LIMITED", "max_watchers_per_credential", 429) // a token is its key's budget

		k2, err := a.Keys.CreateAPIKey(context.Background(), p1.P, core.CreateKeyRequest{Name: "second"})
		require.NoError(t, err)
		open(k2.Key)
		refused(k2.Key, "RATE_LIMITED", "max_watchers_per_project", 429)

		open(p2.Key) // 4 in the process, in 2 projects
		refused(p3.Key, "SERVICE_UNAVAILABLE", "max_watchers", 503)

		w1.close() // frees a place in the process, the project and p1's credential
		require.Eventually(t, func() bool { return a.Watcher.Open() == 3 }, 10*time.Second, 10*time.Millisecond)
		refused(p3.Key, "SERVICE_UNAVAILABLE", "max_watched_projects", 503) // a third project's feed
		open(p1.Key)
	})
}

// STORE_RESET: a flush under a running server (its generation key gone) makes every request
// answer 503 STORE_RESET, not 401 for keys that vanished or a fresh sequence 1; open watches
// end with an error frame and long-polls with the error. Runs on the embedded store and on a
// redis-server of its own (flushing the shared one would break every other test).
func TestStoreResetIsRefusedAndTold(t *testing.T) {
	stores := []testenv.Store{{Name: "embedded", Open: testenv.Stores[1].Open}, {Name: "redis-own", Open: func(tb testing.TB) *testenv.Env {
		srv := testenv.StartRedis(tb, resetPort)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
		tb.Cleanup(func() { _ = rdb.Close() })
		return &testenv.Env{Name: "redis-own", Rdb: rdb, Clock: testenv.NewClock()}
	}}}
	testenv.ForEachStoreOf(t, stores, func(t *testing.T, e *testenv.Env) {
		own, _ := e.WithOwnClients(t)
		s := testenv.NewServer(t, own)
		ctx := context.Background()
		require.NoError(t, s.App.Store.CheckGeneration(ctx), "adopts the generation")
		require.NoError(t, s.App.Store.CheckGeneration(ctx), "unchanged")
		putCore(t, s, "k", "a", 1)
		w := openWatch(t, s.URL, s.Project.Key, "after=1", nil)
		w.waitPing(t)
		polled := make(chan []byte, 1)
		go func() {
			_, body, _ := trySend("GET", s.URL+"/api/v1/states/k?wait_version=1&wait_ms=20000", s.Project.Key, nil, nil)
			polled <- body
		}()
		require.Eventually(t, func() bool { return s.App.Watcher.Open() == 2 }, 10*time.Second, 10*time.Millisecond)

		require.NoError(t, e.Rdb.FlushAll(ctx).Err()) // this test's own server only
		err := s.App.Store.CheckGeneration(ctx)
		require.True(t, core.IsCode(err, core.CodeStoreReset), "%v", err)

		for _, req := range [][2]string{{"PUT", "/api/v1/states/k"}, {"GET", "/api/v1/states/k"}} {
			resp, body := send(t, req[0], s.URL+req[1], s.Project.Key, map[string]any{"agent_id": "a", "data": map[string]any{}}, nil)
			assert.Equal(t, 503, resp.StatusCode, "%s %s: %s", req[0], req[1], body)
			assert.Contains(t, string(body), `"code":"STORE_RESET"`)
		}
		frames := w.rest(t, 10*time.Second)
		require.NotEmpty(t, frames)
		last := frames[len(frames)-1]
		assert.Equal(t, "error", last.Event)
		assert.Contains(t, last.Data, `"code":"STORE_RESET"`)
		select {
		case body := <-polled:
			assert.Contains(t, string(body), `"code":"STORE_RESET"`)
		case <-time.After(20 * time.Second):
			t.Fatal("the long-poll was not answered")
		}
		_, _, err = s.App.States.Put(ctx, s.Project.P, core.PutState{Key: "k", Body: core.StateWrite{AgentID: "a", Data: json.RawMessage(`{}`)}})
		require.True(t, core.IsCode(err, core.CodeStoreReset), "no sequence is issued again: %v", err)
	})
}

// resetPort is TestStoreResetIsRefusedAndTold's own redis-server.
const resetPort = 7301

// A project whose log goes backwards under a live watch (its data lost) ends the watch with an
// error frame instead of waiting for a sequence that will not come, and the store refuses
// writes from then on (STORE_RESET), instead of issuing the lost sequences again. Own clients:
// the store that sees this counts as reset.
func TestWatchEndsWhenTheLogGoesBackwards(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		own, _ := e.WithOwnClients(t)
		s := testenv.NewServer(t, own)
		for i := range 3 {
			putCore(t, s, "k", "a", i)
		}
		w := openWatch(t, s.URL, s.Project.Key, "after=3", nil)
		w.waitPing(t)
		time.Sleep(200 * time.Millisecond) // the feed follows from sequence 3
		// What a restore from an older snapshot does to this project: its counter is lower.
		require.NoError(t, e.Rdb.Set(context.Background(), "as:{"+s.Project.ID+"}:seq", 1, 0).Err())
		frames := w.rest(t, 10*time.Second)
		require.Len(t, frames, 1)
		assert.Equal(t, "error", frames[0].Event)
		assert.Contains(t, frames[0].Data, `"code":"STORE_RESET"`)
		resp, body := send(t, "PUT", s.URL+"/api/v1/states/k", s.Project.Key, map[string]any{"agent_id": "a", "data": map[string]any{}}, nil)
		assert.Equal(t, 503, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), `"code":"STORE_RESET"`)
		n, err := e.Rdb.Get(context.Background(), "as:{"+s.Project.ID+"}:seq").Int64()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "nothing was written: sequence 2 is not issued again")
	})
}

// Deleting a project is not data loss: a watch of it does not end with STORE_RESET, the
// store keeps serving, and a project created again under the id continues its sequence.
func TestProjectDeletionIsNotAStoreReset(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		own, _ := e.WithOwnClients(t)
		s := testenv.NewServer(t, own)
		ctx := context.Background()
		for i := range 3 {
			putCore(t, s, "k", "a", i)
		}
		w := openWatch(t, s.URL, s.Project.Key, "after=3", nil)
		w.waitPing(t)
		time.Sleep(200 * time.Millisecond) // the feed follows from sequence 3
		deleted, err := own.Store.DeleteProject(ctx, s.Project.ID)
		require.NoError(t, err)
		require.True(t, deleted)
		time.Sleep(2 * s.App.Watcher.MaxBlock) // the feed's idle checks see the deleted project
		key, err := s.App.Auth.CreateProjectWithKey(ctx, core.Project{ID: s.Project.ID, Name: "again"}, "")
		require.NoError(t, err)
		resp, body := send(t, "PUT", s.URL+"/api/v1/states/k", key.Key, map[string]any{"agent_id": "a", "data": map[string]any{}}, nil)
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), `"latest_sequence":4`, "the sequence continues")
		for end := time.After(time.Second); ; {
			select {
			case f := <-w.frames:
				assert.NotContains(t, f.Data, "STORE_RESET")
				continue
			case <-end:
			}
			break
		}
	})
}
