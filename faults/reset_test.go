package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// Redis restarted from an older RDB: everything written after the SAVE is gone, but the
// generation key (older than the snapshot) survived. These tests prove that no sequence and
// no fencing token acknowledged before the loss is issued again, and that an old holder's
// token never matches a new one: under a running server the loss is refused with 503
// STORE_RESET (and logged with the reason), a restarted server continues in a new generation
// above everything issued before, and with a state file a server that was down during the
// loss notices it at start. Ports 7330-7332.

// genServer is an HTTP server over its own store on addr, which adopted the store's
// generation before creating anything (as app.Open does), with project p (created once).
type genServer struct {
	*testenv.Server
	Conn *redisstore.Connection
}

func openGen(t *testing.T, addr, stateFile string, project *testenv.Project) *genServer {
	t.Helper()
	conn, err := redisstore.Open(context.Background(), redisstore.Options{URL: "redis://" + addr, StateFile: stateFile})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	require.NoError(t, conn.Store.CheckGeneration(context.Background()), "adopt the generation")
	e := &testenv.Env{Name: "reset", Rdb: conn.Store.Client(), Store: conn.Store, Clock: testenv.NewClock()}
	a := e.App(t)
	a.Leases = core.NewLeases(conn.Store, core.SystemClock{})
	ts := httptest.NewServer(a.NewHandler(0))
	t.Cleanup(ts.Close)
	g := &genServer{Server: &testenv.Server{URL: ts.URL, App: a}, Conn: conn}
	if project == nil {
		key, err := a.Auth.CreateProjectWithKey(context.Background(), core.Project{ID: "reset", Name: "reset"}, "")
		require.NoError(t, err)
		project = &testenv.Project{ID: "reset", Key: key.Key}
	}
	g.Project = *project
	return g
}

// do sends one REST request and decodes the JSON answer.
func (g *genServer) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.URL+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+g.Project.Key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (g *genServer) put(t *testing.T, key string, body map[string]any) (int, map[string]any) {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["agent_id"], body["data"] = "a", map[string]any{"at": time.Now().UnixNano()}
	return g.do(t, "PUT", "/states/"+key, body)
}

// putSeq writes key and returns the sequence it was given.
func (g *genServer) putSeq(t *testing.T, key string) int64 {
	t.Helper()
	status, out := g.put(t, key, nil)
	require.Equal(t, 200, status, "%v", out)
	return int64(out["latest_sequence"].(float64))
}

// acquire takes key's lease and returns its id and fencing token.
func (g *genServer) acquire(t *testing.T, key string) (string, int64) {
	t.Helper()
	status, out := g.do(t, "POST", "/states/"+key+"/lease", map[string]any{"holder": "h", "ttl_ms": 60000})
	require.Equal(t, 201, status, "%v", out)
	return out["id"].(string), int64(out["fencing_token"].(float64))
}

func (g *genServer) release(t *testing.T, id string) {
	t.Helper()
	status, out := g.do(t, "DELETE", "/leases/"+id, nil)
	require.Equal(t, 204, status, "%v", out)
}

// history is what the clients were told before the loss.
type history struct {
	seqs   []int64
	tokens []int64
}

func (h *history) maxSeq() int64   { return maxOf(h.seqs) }
func (h *history) maxToken() int64 { return maxOf(h.tokens) }

func maxOf(v []int64) int64 {
	var m int64
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// writeSome makes n writes and n lease grants (each released), recorded in h.
func writeSome(t *testing.T, g *genServer, h *history, n int) {
	t.Helper()
	for i := range n {
		h.seqs = append(h.seqs, g.putSeq(t, "k"+string(rune('a'+i))))
		id, tok := g.acquire(t, "lk")
		h.tokens = append(h.tokens, tok)
		g.release(t, id)
	}
}

// reload kills redis-server with SIGKILL and starts it again from dump, an RDB saved earlier.
func reload(t *testing.T, srv *testenv.RedisServer, dump []byte) {
	t.Helper()
	srv.Kill()
	require.NoError(t, os.WriteFile(filepath.Join(srv.Dir, "dump.rdb"), dump, 0o600))
	srv.Start()
}

// save makes redis-server write its RDB now and returns a copy of it.
func save(t *testing.T, g *genServer, srv *testenv.RedisServer) []byte {
	t.Helper()
	require.NoError(t, g.Conn.Store.Client().Save(context.Background()).Err())
	b, err := os.ReadFile(filepath.Join(srv.Dir, "dump.rdb"))
	require.NoError(t, err)
	return b
}

// lockedBuffer is a log sink the server's goroutines and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRestoreFromOlderSnapshotUnderARunningServer(t *testing.T) {
	requireFaults(t)
	ctx := context.Background()
	srv := testenv.StartRedis(t, 7330)
	a := openGen(t, srv.Addr(), "", nil)
	_, floor, _ := a.Conn.Store.AdoptedGeneration()
	require.Zero(t, floor, "a new store's first generation has floor 0")
	var h history
	writeSome(t, a, &h, 3)
	assert.Equal(t, []int64{1, 2, 3}, h.tokens, "a new store's tokens start at 1 (v1)")
	// Replica b serves the same store and only checks the generation.
	b := openGen(t, srv.Addr(), "", &a.Project)
	var log lockedBuffer
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	b.App.Start(bctx, slog.New(slog.NewTextHandler(&log, nil)))
	t.Cleanup(func() { _ = b.App.Shutdown(ctx) })

	dump := save(t, a, srv)
	require.NoError(t, b.Conn.Store.CheckGeneration(ctx)) // b draws a checkpoint the dump lacks
	writeSome(t, a, &h, 3)
	oldLease, oldToken := a.acquire(t, "lk") // the holder whose lease the loss takes
	h.tokens = append(h.tokens, oldToken)
	reload(t, srv, dump)

	// Under the running servers: b's generation check finds the checkpoint lower, and a's next
	// acquire or write finds the project's counter below the sequences it issued; both refuse
	// everything. a's first request after the loss is an acquire of the key whose lease (and
	// fencing token) the loss took: granting it would issue that token again.
	if !assert.Eventually(t, func() bool { return strings.Contains(log.String(), "checkpoint as:checkpoint drew") }, 10*time.Second, 50*time.Millisecond) {
		t.Fatalf("replica b logged no STORE_RESET with its reason; its log:\n%s", log.String())
	}
	status, out := a.do(t, "POST", "/states/lk/lease", map[string]any{"holder": "h"})
	assert.Equal(t, 503, status, "no fencing token is issued again: %v", out)
	err := a.Conn.Store.CheckGeneration(ctx)
	require.True(t, core.IsCode(err, core.CodeStoreReset), "%v", err)
	assert.Contains(t, err.Error(), `sequence counter as:{reset}:seq is 3, below sequence 6`)
	status, out = a.put(t, "ka", nil)
	assert.Equal(t, 503, status, "%v", out)
	assert.Equal(t, "STORE_RESET", out["error"].(map[string]any)["code"])
	status, _ = b.put(t, "kz", nil)
	assert.Equal(t, 503, status)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	n, err := raw.Get(ctx, "as:{reset}:seq").Int64()
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "nothing was written after the loss")

	// The operator restarts: the new server adopts the generation the first detector started,
	// and issues above everything the clients saw before the loss.
	c := openGen(t, srv.Addr(), "", &a.Project)
	gen, floor, _ := c.Conn.Store.AdoptedGeneration()
	assert.Greater(t, floor, h.maxSeq())
	assert.Contains(t, gen, "/")
	seq := c.putSeq(t, "ka")
	assert.Greater(t, seq, h.maxSeq(), "no sequence is issued again")
	status, out = c.put(t, "kb", map[string]any{"lease_id": oldLease, "fencing_token": oldToken})
	assert.NotEqual(t, 200, status, "the old holder's lease does not write: %v", out)
	id, token := c.acquire(t, "lk")
	assert.Greater(t, token, h.maxToken(), "no fencing token is issued again")
	c.release(t, id)
	status, out = c.put(t, "kb", map[string]any{"fencing_token": oldToken})
	assert.Equal(t, 409, status, "the old holder's token never matches: %v", out)
	assert.Equal(t, "STALE_FENCING_TOKEN", out["error"].(map[string]any)["code"])
	t.Logf("before the loss: sequences %v, tokens %v; after the restart: sequence %d, token %d (floor %d)", h.seqs, h.tokens, seq, token, floor)
}

// Redis restarted from an older RDB while no AgentState server ran: only a server with a
// state file can tell (the checkpoint is below the one it drew last); it starts a new
// generation. Then a FLUSHALL while it is down: the same.
func TestLossWhileNoServerRanNeedsTheStateFile(t *testing.T) {
	requireFaults(t)
	ctx := context.Background()
	srv := testenv.StartRedis(t, 7331)
	state := filepath.Join(t.TempDir(), "state.json")
	a := openGen(t, srv.Addr(), state, nil)
	var h history
	writeSome(t, a, &h, 2)
	dump := save(t, a, srv)
	writeSome(t, a, &h, 2)
	require.NoError(t, a.Conn.Store.CheckGeneration(ctx)) // remembers a checkpoint the dump lacks
	a.Conn.Close()
	reload(t, srv, dump)

	b := openGen(t, srv.Addr(), state, &a.Project)
	_, floor, why := b.Conn.Store.AdoptedGeneration()
	assert.Contains(t, why, "the store lost writes while no server ran")
	assert.Greater(t, floor, h.maxSeq())
	assert.Greater(t, b.putSeq(t, "ka"), h.maxSeq(), "no sequence is issued again")
	id, token := b.acquire(t, "lk")
	assert.Greater(t, token, h.maxToken(), "no fencing token is issued again")
	h.tokens = append(h.tokens, token)
	b.release(t, id)
	require.NoError(t, b.Conn.Store.CheckGeneration(ctx))
	b.Conn.Close()

	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	require.NoError(t, raw.FlushAll(ctx).Err()) // this test's own server only
	c := openGen(t, srv.Addr(), state, nil)
	_, floor, why = c.Conn.Store.AdoptedGeneration()
	assert.Contains(t, why, "flushed or replaced while no server ran")
	_, token = c.acquire(t, "lk")
	assert.Greater(t, token, h.maxToken(), "a flushed store does not start its tokens at 1 again")
	assert.GreaterOrEqual(t, token, floor)
}
