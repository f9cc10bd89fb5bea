package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
)

// frozenClock keeps the rate-limit window still, so the budget is exact.
type frozenClock struct{ t time.Time }

func (c frozenClock) Now() time.Time { return c.t }

const metricsToken = "scrape-secret"

// scrape reads /metrics through the real handler and returns every sample as name{labels} -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name + labels(m)
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels(m)] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	if len(m.Label) == 0 {
		return ""
	}
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestMetricsCountAScriptedWorkload drives REST, MCP, leases, a watch, a webhook and the rate
// limit through a server built by Open (as the binary builds it), then checks that each counter
// moved by exactly what the workload did.
func TestMetricsCountAScriptedWorkload(t *testing.T) {
	ctx := t.Context()
	cfg := &Config{LogLevel: "error", MaxBodyBytes: 1 << 20, WebhookLoopback: true, RateLimitPerMin: 20, MetricsToken: metricsToken}
	a, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer a.Close()
	a.RateLimiter = core.NewRateLimiter(a.Store, frozenClock{time.Now()}, cfg.RateLimitPerMin)
	a.Start(ctx, slog.New(slog.DiscardHandler)) // the webhook worker delivers from the outbox
	defer func() { _ = a.Shutdown(context.WithoutCancel(ctx)) }()
	a.instrument(a.Metrics)
	key, err := a.Bootstrap(ctx, "")
	require.NoError(t, err)
	ts := httptest.NewServer(a.NewHandler(0))
	defer ts.Close()

	call := func(cred, method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// The scrape is guarded.
	resp, err := http.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	before := scrape(t, ts.URL)

	// Requests with the bootstrap key: 3 + 1 + 3 + 2 + 2 = 11, under its budget of 20.
	for i := range 3 {
		st, b := call(key, "PUT", "/api/v1/states/job", `{"agent_id":"a","data":{"n":`+string(rune('0'+i))+`}}`)
		require.Equal(t, 200, st, "%s", b)
	}
	st, _ := call(key, "GET", "/api/v1/states/nope", "")
	require.Equal(t, 404, st)

	st, b := call(key, "POST", "/api/v1/states/job/lease", `{"holder":"w1","ttl_ms":60000}`)
	require.Equal(t, 201, st, "%s", b)
	var lease core.Lease
	require.NoError(t, json.Unmarshal(b, &lease))
	held := scrape(t, ts.URL)["agentstate_leases_held"]
	st, _ = call(key, "POST", "/api/v1/states/job/lease", `{"holder":"w2","ttl_ms":60000}`)
	require.Equal(t, 409, st)
	st, _ = call(key, "DELETE", "/api/v1/leases/"+lease.ID, "")
	require.Equal(t, 204, st)
	assert.Equal(t, 1.0, held-before["agentstate_leases_held"], "the lease is held while it lives")
	assert.Equal(t, before["agentstate_leases_held"], scrape(t, ts.URL)["agentstate_leases_held"], "and not after its release")

	rpc := func(name string, args map[string]any) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
			"params": map[string]any{"name": name, "arguments": args}})
		st, b := call(key, "POST", "/api/mcp", string(body))
		require.Equal(t, 200, st, "%s", b)
	}
	rpc("get_state", map[string]any{"state_key": "job"})
	rpc("get_state", map[string]any{"state_key": "missing"})

	receiver := make(chan string, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		receiver <- string(b)
	}))
	defer hook.Close()
	st, b = call(key, "POST", "/api/v1/webhooks", `{"url":"`+hook.URL+`","events":["conversation.created"]}`)
	require.Equal(t, 201, st, "%s", b)
	st, b = call(key, "POST", "/api/v1/conversations", `{"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 201, st, "%s", b)
	<-receiver
	a.Hooks.Wait()

	// A second credential spends its budget of 20 and is refused twice.
	other, err := a.Auth.CreateProject(ctx, core.CreateProjectRequest{Name: "other"})
	require.NoError(t, err)
	refused := 0
	for range 22 {
		if st, _ := call(other.APIKey.Key, "GET", "/api/v1/states/x", ""); st == 429 {
			refused++
		}
	}
	require.Equal(t, 2, refused)

	// One command Redis rejects.
	require.Error(t, a.Store.Client().Do(ctx, "NOSUCHCOMMAND").Err())

	// A watch is open while it streams.
	wctx, endWatch := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(wctx, "GET", ts.URL+"/api/v1/states/watch", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	wresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, err = bufio.NewReader(wresp.Body).ReadString('\n')
	require.NoError(t, err)
	during := scrape(t, ts.URL)
	endWatch()
	wresp.Body.Close()

	after := scrape(t, ts.URL)
	moved := func(name string) float64 { return after[name] - before[name] }
	assert.Equal(t, 3.0, moved("agentstate_http_requests_total{method=PUT,route=/api/v1/states/{state_key},status=200}"))
	assert.Equal(t, 3.0, moved("agentstate_http_request_duration_seconds_count{method=PUT,route=/api/v1/states/{state_key}}"))
	assert.Equal(t, 21.0, moved("agentstate_http_requests_total{method=GET,route=/api/v1/states/{state_key},status=404}"),
		"one missing state, and the other key's 20 allowed reads")
	assert.Equal(t, 2.0, moved("agentstate_http_requests_total{method=GET,route=/api/v1/states/{state_key},status=429}"))
	assert.Equal(t, 2.0, moved("agentstate_rate_limit_rejections_total"))
	assert.Equal(t, 1.0, moved("agentstate_lease_grants_total"))
	assert.Equal(t, 1.0, moved("agentstate_lease_conflicts_total"))
	assert.Equal(t, 1.0, moved("agentstate_lease_releases_total"))
	assert.Equal(t, 1.0, moved("agentstate_mcp_tool_calls_total{outcome=ok,tool=get_state}"))
	assert.Equal(t, 1.0, moved("agentstate_mcp_tool_calls_total{outcome=NOT_FOUND,tool=get_state}"))
	assert.Equal(t, 1.0, moved("agentstate_webhook_deliveries_total{outcome=ok}"))
	assert.Equal(t, 1.0, moved("agentstate_redis_errors_total{command=nosuchcommand}"))
	assert.Positive(t, moved("agentstate_redis_command_duration_seconds_count{command=evalsha}"), "scripts are timed")
	assert.Equal(t, 1.0, during["agentstate_watches_open"])
	assert.Equal(t, 1.0, after["agentstate_search_path{path=portable}"], "the embedded store has no RediSearch")
	assert.Equal(t, 0.0, after["agentstate_search_path{path=redisearch}"])
	_, exported := after["agentstate_redis_coalesced_round_trips_total"]
	assert.True(t, exported, "the coalesced round trips counter is exported (it moves only under load: contract's TestStatesAreLinearizableWhenCoalesced)")
	assert.Eventually(t, func() bool { return scrape(t, ts.URL)["agentstate_watches_open"] == 0 }, 10*time.Second, 20*time.Millisecond,
		"the watch gauge drops when the client goes")
}

// TestAccessLogOneInfoLinePerRequest: each request logs one info line with its route pattern,
// status, request id and credential id, and never the secret.
func TestAccessLogOneInfoLinePerRequest(t *testing.T) {
	var buf strings.Builder
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer slog.SetDefault(prev)
	a, err := Open(t.Context(), &Config{LogLevel: "info"}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer a.Close()
	key, err := a.Bootstrap(t.Context(), "")
	require.NoError(t, err)
	p, err := a.Auth.Authenticate(t.Context(), key)
	require.NoError(t, err)
	ts := httptest.NewServer(a.NewHandler(0))
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/states/some-key", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Request-Id", "trace-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if m["msg"] == "http" {
			lines = append(lines, m)
		}
	}
	require.Len(t, lines, 1, buf.String())
	l := lines[0]
	assert.Equal(t, "INFO", l["level"])
	assert.Equal(t, "/api/v1/states/{state_key}", l["route"])
	assert.Equal(t, 404.0, l["status"])
	assert.Equal(t, "trace-1", l["request_id"])
	assert.Equal(t, p.CredentialID, l["credential_id"])
	assert.Contains(t, l, "dur_ms")
	assert.NotContains(t, buf.String(), key, "the secret never reaches the log")
}
