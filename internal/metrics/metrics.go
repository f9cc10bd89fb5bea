// Package metrics is the server's Prometheus instrumentation: HTTP requests by route pattern,
// MCP tool calls by tool and outcome, Redis commands, and the events core services report
// (leases, watches, rate limits, webhooks). Everything registers on a registry of its own, so
// several servers in one process (tests) do not collide.
package metrics

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// Metrics holds the collectors. The zero of every method on a nil *Metrics is "do nothing",
// so callers need not check.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	toolCalls    *prometheus.CounterVec
	toolDuration *prometheus.HistogramVec
	redisDur     *prometheus.HistogramVec
	redisErrors  *prometheus.CounterVec
	counters     map[core.Event]prometheus.Counter
	gauges       map[core.Event]prometheus.Gauge
	webhooks     *prometheus.CounterVec

	// The children of the vectors above that requests use, by their labels: finding one in
	// a sync.Map costs a fraction of WithLabelValues (which validates and hashes every label
	// on every call), and this runs for every request and every Redis round trip.
	httpSeries  sync.Map // httpLabels → httpSeries
	redisSeries sync.Map // command name → prometheus.Observer
}

type httpLabels struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// httpSeriesFor is the request counter and latency histogram of route, method and status.
func (m *Metrics) httpSeriesFor(route, method string, status int) httpSeries {
	l := httpLabels{route, method, status}
	if s, ok := m.httpSeries.Load(l); ok {
		return s.(httpSeries)
	}
	s := httpSeries{m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)),
		m.httpDuration.WithLabelValues(route, method)}
	m.httpSeries.Store(l, s)
	return s
}

// redisDurationFor is the latency histogram of the Redis command name (lower case).
func (m *Metrics) redisDurationFor(name string) prometheus.Observer {
	if o, ok := m.redisSeries.Load(name); ok {
		return o.(prometheus.Observer)
	}
	o := m.redisDur.WithLabelValues(name)
	m.redisSeries.Store(name, o)
	return o
}

// New registers every collector, plus the Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		reg: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentstate_http_requests_total",
			Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agentstate_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern and method (streams count their whole life).", Buckets: prometheus.DefBuckets},
			[]string{"route", "method"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentstate_mcp_tool_calls_total",
			Help: "MCP tool calls by tool and outcome (ok, or the error code)."}, []string{"tool", "outcome"}),
		toolDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agentstate_mcp_tool_duration_seconds",
			Help: "MCP tool call latency by tool.", Buckets: prometheus.DefBuckets}, []string{"tool"}),
		redisDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agentstate_redis_command_duration_seconds",
			Help:    "Redis command latency by command (pipeline for pipelines and transactions).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"command"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentstate_redis_errors_total",
			Help: "Redis commands that failed (not counting nil replies) by command."}, []string{"command"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentstate_webhook_deliveries_total",
			Help: "Webhook delivery attempts and deliveries by outcome: ok (delivered), retry (an attempt failed, another follows), " +
				"dead_letter (every attempt failed), dropped (webhook deleted or deactivated first), lost (the outbox could not be written)."},
			[]string{"outcome"}),
		counters: map[core.Event]prometheus.Counter{},
		gauges:   map[core.Event]prometheus.Gauge{},
	}
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.toolCalls, m.toolDuration, m.redisDur, m.redisErrors, m.webhooks} {
		f(c)
	}
	counter := func(e core.Event, name, help string) {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		f(c)
		m.counters[e] = c
	}
	gauge := func(e core.Event, name, help string) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		f(g)
		m.gauges[e] = g
	}
	counter(core.EventLeaseGranted, "agentstate_lease_grants_total", "Leases granted at once (nobody queued).")
	counter(core.EventLeaseHandoff, "agentstate_lease_handoffs_total", "Leases granted to an acquirer that had queued for them.")
	counter(core.EventLeaseConflict, "agentstate_lease_conflicts_total", "Acquires that ended in LEASE_CONFLICT.")
	counter(core.EventLeaseReleased, "agentstate_lease_releases_total", "Leases released by their holder.")
	counter(core.EventLeaseExpired, "agentstate_lease_expiries_total", "Leases ended by the sweeper when their TTL passed.")
	counter(core.EventRateLimited, "agentstate_rate_limit_rejections_total", "Requests refused with RATE_LIMITED.")
	gauge(core.EventLeaseWaiting, "agentstate_lease_waiters", "Acquirers queued for a lease in this process.")
	gauge(core.EventWatchOpen, "agentstate_watches_open", "State watches (SSE) streaming from this process.")
	gauge(core.EventLongPollOpen, "agentstate_long_polls_open", "Long-polls waiting for a state version in this process.")
	return m
}

// Observe implements core.Observer.
func (m *Metrics) Observe(e core.Event, delta int) {
	if m == nil {
		return
	}
	switch e {
	case core.EventWebhookOK:
		m.webhooks.WithLabelValues("ok").Add(float64(delta))
	case core.EventWebhookRetry:
		m.webhooks.WithLabelValues("retry").Add(float64(delta))
	case core.EventWebhookFailed:
		m.webhooks.WithLabelValues("dead_letter").Add(float64(delta))
	case core.EventWebhookDropped:
		m.webhooks.WithLabelValues("dropped").Add(float64(delta))
	case core.EventWebhookLost:
		m.webhooks.WithLabelValues("lost").Add(float64(delta))
	default:
		if c, ok := m.counters[e]; ok {
			c.Add(float64(delta))
		} else if g, ok := m.gauges[e]; ok {
			g.Add(float64(delta))
		}
	}
}

// HTTP counts and times each request by its chi route pattern; it must run inside the chi
// router (r.Use), which fills the pattern in while routing. Unmatched paths share one label so
// that scanners cannot grow the series without bound.
func (m *Metrics) HTTP(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The access log's recorder, when it runs, already knows the status.
		ww, ok := w.(statusWriter)
		if !ok {
			ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		}
		next.ServeHTTP(ww, r)
		route := RoutePattern(r)
		s := m.httpSeriesFor(route, r.Method, ww.Status())
		s.requests.Inc()
		s.duration.Observe(time.Since(start).Seconds())
	})
}

// statusWriter is a response writer that tells the status written (rest's access-log recorder,
// chi's middleware.WrapResponseWriter).
type statusWriter interface {
	http.ResponseWriter
	Status() int
}

// RoutePattern is the chi pattern that served r, or "unmatched".
func RoutePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" && p != "/*" {
			return p
		}
	}
	return "unmatched"
}

// Tool counts and times MCP tool calls; the outcome is "ok" or the error code of the result.
func (m *Metrics) Tool(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	if m == nil {
		return next
	}
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		res, err := next(ctx, req)
		m.toolCalls.WithLabelValues(req.Params.Name, ToolOutcome(res, err)).Inc()
		m.toolDuration.WithLabelValues(req.Params.Name).Observe(time.Since(start).Seconds())
		return res, err
	}
}

// ToolOutcome names how a tool call ended: ok, the error code of an error result, or
// protocol_error when the handler itself failed.
func ToolOutcome(res *mcp.CallToolResult, err error) string {
	switch {
	case err != nil:
		return "protocol_error"
	case res == nil || !res.IsError:
		return "ok"
	}
	// An error result's text ends with the error as compact JSON (tools.errorResult).
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			var w struct{ Code core.Code }
			if i := strings.LastIndexByte(t.Text, '\n'); i >= 0 && json.Unmarshal([]byte(t.Text[i+1:]), &w) == nil && w.Code != "" {
				return string(w.Code)
			}
		}
	}
	return "error"
}

// RedisHook times every command and counts failures; attach it with Client.AddHook.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.record(cmd.Name(), start, err)
		return err
	}
}

// ProcessPipelineHook times a pipeline of one command as that command (a write script is sent
// as one, so that it can be coalesced with others: redisstore/coalesce.go), and any other as
// "pipeline".
func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		name := "pipeline"
		if len(cmds) == 1 {
			name = cmds[0].Name()
		}
		h.record(name, start, err)
		return err
	}
}

func (h redisHook) record(name string, start time.Time, err error) {
	name = strings.ToLower(name)
	h.m.redisDurationFor(name).Observe(time.Since(start).Seconds())
	// A nil reply is an answer, not a failure; NOSCRIPT is go-redis's script cache being
	// filled (it retries with EVAL at once).
	if err != nil && !errors.Is(err, redis.Nil) && !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		h.m.redisErrors.WithLabelValues(name).Inc()
	}
}

// Handler serves the registry in the Prometheus text format. With a token set it demands
// "Authorization: Bearer <token>" (compared in constant time) and answers 401 otherwise.
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the bearer token in AGENTSTATE_METRICS_TOKEN", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// State are the read-at-scrape gauges: what is true now rather than counted as it happens.
type State struct {
	LeasesHeld func(ctx context.Context) (int64, error) // live leases in every project, from the store
	SearchPath func() string                            // the conversation search path serving queries now
	// CoalescedRoundTrips is the store's count of round trips sent in a batch with others.
	CoalescedRoundTrips func() int64
}

// SearchPaths are the values SearchPath may return.
var SearchPaths = []string{"portable", "redisearch"}

// WatchState registers the gauges of s: agentstate_leases_held, counted in the store (so it
// is the same on every replica), and agentstate_search_path{path}, 1 for the path in use; and
// agentstate_redis_coalesced_round_trips_total, a counter kept by the store and read at scrape.
func (m *Metrics) WatchState(s State) {
	if m == nil {
		return
	}
	m.reg.MustRegister(stateCollector{s})
}

var (
	leasesHeldDesc = prometheus.NewDesc("agentstate_leases_held", "Leases live now, in every project (read from the store at scrape time).", nil, nil)
	searchPathDesc = prometheus.NewDesc("agentstate_search_path", "Conversation search path serving queries: 1 for the one in use.", []string{"path"}, nil)
	coalescedDesc  = prometheus.NewDesc("agentstate_redis_coalesced_round_trips_total",
		"Requests' Redis round trips sent in one pipeline with other requests' under load, rather than alone.", nil, nil)
)

// stateScrapeTimeout bounds the store reads one scrape makes.
const stateScrapeTimeout = 2 * time.Second

type stateCollector struct{ s State }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- leasesHeldDesc
	ch <- searchPathDesc
	ch <- coalescedDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.LeasesHeld != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stateScrapeTimeout)
		defer cancel()
		// On a store error the gauge is left out, rather than a wrong number or a failed scrape
		// (the Redis error counters say what went wrong).
		if n, err := c.s.LeasesHeld(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(leasesHeldDesc, prometheus.GaugeValue, float64(n))
		}
	}
	if c.s.SearchPath != nil {
		cur := c.s.SearchPath()
		for _, p := range SearchPaths {
			v := 0.0
			if p == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(searchPathDesc, prometheus.GaugeValue, v, p)
		}
	}
	if c.s.CoalescedRoundTrips != nil {
		ch <- prometheus.MustNewConstMetric(coalescedDesc, prometheus.CounterValue, float64(c.s.CoalescedRoundTrips()))
	}
}

// Registry is the registry the collectors live on (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
