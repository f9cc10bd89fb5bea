// Package telemetry is the server's OpenTelemetry tracing: a span per HTTP request (otelhttp,
// named by the chi route pattern), per Redis command (redisotel) and per MCP tool call, sent
// over OTLP/HTTP. It is configured by the standard OTEL_* environment variables and is off,
// costing nothing, unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentstate/agentstate-go/core"
)

// instrumentation names the spans' scope.
const instrumentation = "github.com/agentstate/agentstate-go"

// Tracing is an enabled tracer provider; a nil *Tracing is tracing off, and every method on it
// then returns its input unchanged.
type Tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// FromEnv starts tracing when an OTLP endpoint is configured, and returns nil otherwise. The
// exporter reads the rest of OTEL_EXPORTER_OTLP_* (headers, timeout, TLS), the provider
// OTEL_TRACES_SAMPLER*, OTEL_BSP_* and the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, as the OpenTelemetry specification says.
func FromEnv(ctx context.Context) (*Tracing, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	if os.Getenv("OTEL_SDK_DISABLED") == "true" {
		return nil, nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := os.Getenv(v); p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("%s=%q: only http/protobuf is supported (point it at the collector's 4318 port)", v, p)
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName("agentstate"), semconv.ServiceVersion(core.ProductVersion)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// Callers' traceparent and baggage continue into our spans, and our outgoing calls carry ours.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Tracing{provider: tp, tracer: tp.Tracer(instrumentation)}, nil
}

// Handler wraps the whole HTTP surface: one server span per request, continuing the caller's
// trace. RouteName (inside the router) renames it after the route pattern once it is known.
func (t *Tracing) Handler(h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http", otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(otel.GetTextMapPropagator()))
}

// RouteName names the request's span "<method> <route pattern>" and sets http.route; it must
// run inside the chi router (r.Use), which fills the pattern in while routing. Unmatched paths
// keep the generic name so that scanners cannot create span names at will.
func (t *Tracing) RouteName(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if rc := chi.RouteContext(r.Context()); rc != nil {
			if p := rc.RoutePattern(); p != "" && p != "/*" {
				span := trace.SpanFromContext(r.Context())
				span.SetName(r.Method + " " + p)
				span.SetAttributes(semconv.HTTPRoute(p))
			}
		}
	})
}

// Tool is MCP middleware: one span per tool call, a child of the HTTP request's span, marked
// as an error when the tool answers with an error result.
func (t *Tracing) Tool(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	if t == nil {
		return next
	}
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ctx, span := t.tracer.Start(ctx, "mcp.tool "+req.Params.Name,
			trace.WithAttributes(attribute.String("mcp.tool.name", req.Params.Name)))
		defer span.End()
		res, err := next(ctx, req)
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		case res != nil && res.IsError:
			span.SetStatus(codes.Error, toolErrorText(res))
		}
		return res, err
	}
}

// toolErrorText is the first line of an error result: the message, without the JSON detail.
func toolErrorText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			first, _, _ := strings.Cut(tc.Text, "\n")
			return first
		}
	}
	return "tool error"
}

// Redis adds a client span per Redis command (and per pipeline) to rdb.
func (t *Tracing) Redis(rdb redis.UniversalClient) error {
	if t == nil {
		return nil
	}
	// Command names only: arguments carry state data and credential hashes.
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.provider), redisotel.WithDBStatement(false))
}

// Shutdown flushes the spans still buffered, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
