package app

import (
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver (what a collector listens with on :4318),
// keeping every span it is sent.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	scope map[string]string // span id -> instrumentation scope name
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{scope: map[string]string{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces in protobuf", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(req.Body)
		var in coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range in.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, s)
					r.scope[hex.EncodeToString(s.SpanId)] = ss.Scope.GetName()
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// trace returns the spans of one trace by span id.
func (r *otlpReceiver) trace(traceID string) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		if hex.EncodeToString(s.TraceId) == traceID {
			out[hex.EncodeToString(s.SpanId)] = s
		}
	}
	return out
}

// descends reports whether span s has ancestor in spans (following parent ids).
func descends(spans map[string]*tracepb.Span, s *tracepb.Span, ancestor string) bool {
	for p := hex.EncodeToString(s.ParentSpanId); p != ""; {
		if p == ancestor {
			return true
		}
		parent, ok := spans[p]
		if !ok {
			return false
		}
		p = hex.EncodeToString(parent.ParentSpanId)
	}
	return false
}

func spanNamed(spans map[string]*tracepb.Span, name string) *tracepb.Span {
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// TestTracesReachAnOTLPCollector: with OTEL_EXPORTER_OTLP_ENDPOINT set, a REST request and an
// MCP tool call each produce a server span continuing the caller's traceparent, named by route;
// the tool call a span of its own under it; and the Redis commands they ran client spans under
// those, all exported over OTLP/HTTP to the receiver.
func TestTracesReachAnOTLPCollector(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "agentstate-test")
	ctx := t.Context()
	a, err := Open(ctx, &Config{LogLevel: "error", MaxBodyBytes: 1 << 20}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer a.Close()
	require.NotNil(t, a.Tracing, "tracing is on when the endpoint is set")
	key, err := a.Bootstrap(ctx, "")
	require.NoError(t, err)
	ts := httptest.NewServer(a.NewHandler(0))
	defer ts.Close()

	call := func(traceparent, method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Traceparent", traceparent)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "%s", b)
	}
	const restTrace, restParent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	const mcpTrace, mcpParent = "1bf7651916cd43dd8448eb211c80319d", "c7ad6b7169203332"
	call("00-"+restTrace+"-"+restParent+"-01", "PUT", "/api/v1/states/job", `{"agent_id":"a","data":{"n":1}}`)
	call("00-"+mcpTrace+"-"+mcpParent+"-01", "POST", "/api/mcp",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_state","arguments":{"state_key":"job"}}}`)
	require.NoError(t, a.Tracing.Shutdown(ctx), "flush")

	rest := recv.trace(restTrace)
	srv := spanNamed(rest, "PUT /api/v1/states/{state_key}")
	require.NotNil(t, srv, "a server span named by route; got %v", names(rest))
	assert.Equal(t, restParent, hex.EncodeToString(srv.ParentSpanId), "continues the caller's trace")
	assert.Equal(t, tracepb.Span_SPAN_KIND_SERVER, srv.Kind)
	assert.Equal(t, "/api/v1/states/{state_key}", attr(srv, "http.route"))
	assert.True(t, anyRedisUnder(recv, rest, hex.EncodeToString(srv.SpanId)), "Redis spans under the request; got %v", names(rest))

	mcpSpans := recv.trace(mcpTrace)
	msrv := spanNamed(mcpSpans, "POST /api/mcp")
	require.NotNil(t, msrv, "got %v", names(mcpSpans))
	assert.Equal(t, mcpParent, hex.EncodeToString(msrv.ParentSpanId))
	tool := spanNamed(mcpSpans, "mcp.tool get_state")
	require.NotNil(t, tool, "a span per tool call; got %v", names(mcpSpans))
	assert.True(t, descends(mcpSpans, tool, hex.EncodeToString(msrv.SpanId)), "the tool span is inside the request's")
	assert.Equal(t, "get_state", attr(tool, "mcp.tool.name"))
	assert.True(t, anyRedisUnder(recv, mcpSpans, hex.EncodeToString(tool.SpanId)), "the tool's Redis commands are under its span")
}

func anyRedisUnder(r *otlpReceiver, spans map[string]*tracepb.Span, ancestor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range spans {
		if strings.Contains(r.scope[id], "redisotel") && s.Kind == tracepb.Span_SPAN_KIND_CLIENT && descends(spans, s, ancestor) {
			return true
		}
	}
	return false
}

func names(spans map[string]*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
