// Package app wires configuration, the store and the core services together; both binaries
// and the admin command start from here.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/conversations/titles"
	"github.com/agentstate/agentstate-go/oauth"
	"github.com/agentstate/agentstate-go/webhooks"
	"golang.org/x/net/netutil"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/console"
	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/accesslog"
	"github.com/agentstate/agentstate-go/internal/metrics"
	"github.com/agentstate/agentstate-go/internal/telemetry"
	"github.com/agentstate/agentstate-go/redisstore"
	"github.com/agentstate/agentstate-go/rest"
	"github.com/agentstate/agentstate-go/tools"
)

// Config is every setting; each is a flag and an AGENTSTATE_* environment variable.
type Config struct {
	RedisURL        string
	Redis           redisstore.Options // RedisURL is copied in by Open
	Search          string
	LogLevel        string
	LogFormat       string
	MaxBodyBytes    int64
	SigningKey      string
	WebhookLoopback bool
	WebhookRetries  string
	WebhookTimeout  time.Duration

	// HTTP server only (HTTPFlags).
	Addr             string
	BootstrapKey     string
	AuthFailureDelay time.Duration
	AdminToken       string
	RateLimitPerMin  int
	MaxConnections   int
	IdleTimeout      time.Duration
	MCPFastCalls     bool
	BodyTimeout      time.Duration
	MetricsToken     string
	MetricsAddr      string
	CORSOrigins      string
	PublicURL        string
}

// Flags registers the settings every binary that opens the store shares.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL, e.g. redis://127.0.0.1:6379/0; empty = embedded in-memory store (AGENTSTATE_REDIS_URL)")
	fs.BoolVar(&c.Redis.Cluster, "redis-cluster", false, "AGENTSTATE_REDIS_URL names Redis Cluster seed nodes: redis://h1:p1?addr=h2:p2&addr=h3:p3 (AGENTSTATE_REDIS_CLUSTER)")
	fs.StringVar(&c.Redis.SentinelMaster, "redis-sentinel-master", "", "use Sentinel: the monitored master's name; AGENTSTATE_REDIS_URL then names the sentinels (AGENTSTATE_REDIS_SENTINEL_MASTER)")
	fs.IntVar(&c.Redis.WaitReplicas, "redis-wait-replicas", 0, "acknowledge a write only after WAIT confirms this many replicas have it; 0 = do not wait (AGENTSTATE_REDIS_WAIT_REPLICAS)")
	fs.DurationVar(&c.Redis.WaitTimeout, "redis-wait-timeout", time.Second, "longest one WAIT may take; an unconfirmed write answers 503 STORE_UNAVAILABLE (AGENTSTATE_REDIS_WAIT_TIMEOUT)")
	fs.StringVar(&c.Redis.StateFile, "state-file", "", "file (one per replica, kept across restarts) where the server remembers the store generation it last saw, so it notices at start that Redis lost data while no server ran; empty = not noticed (AGENTSTATE_STATE_FILE)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (AGENTSTATE_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text (AGENTSTATE_LOG_FORMAT)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest accepted request body or tool argument (AGENTSTATE_MAX_BODY_BYTES)")
	fs.StringVar(&c.SigningKey, "signing-key", "", "base64 32-byte Ed25519 seed that signs claims-log checkpoints; empty = generated once and kept in Redis (AGENTSTATE_SIGNING_KEY)")
	fs.BoolVar(&c.WebhookLoopback, "webhook-allow-loopback", false, "let webhooks target this machine (http or https on loopback), for local development (AGENTSTATE_WEBHOOK_ALLOW_LOOPBACK)")
	fs.StringVar(&c.WebhookRetries, "webhook-retry-delays", "15s,1m,5m,30m", "waits between the starts of a webhook delivery's attempts (attempts = delays+1), then it is dead-lettered; kept in Redis across restarts (AGENTSTATE_WEBHOOK_RETRY_DELAYS)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", 10*time.Second, "longest one webhook attempt may take; retry delays are at least this (AGENTSTATE_WEBHOOK_TIMEOUT)")
	fs.StringVar(&c.Search, "search", SearchAuto, "conversation search: auto (RediSearch >= 2.6 when the server has it, else portable), portable or redisearch (refuse to start without it); docs/search.md (AGENTSTATE_SEARCH)")
	return c
}

// HTTPFlags registers the HTTP server's own settings on top of Flags.
func HTTPFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "HTTP listen address (AGENTSTATE_ADDR)")
	fs.StringVar(&c.BootstrapKey, "bootstrap-key", "", "ensure project 'default' with this full-access key, as_live_ + 40 base62 (AGENTSTATE_BOOTSTRAP_KEY)")
	fs.DurationVar(&c.AuthFailureDelay, "auth-failure-delay", 300*time.Millisecond, "minimum duration of an authentication failure (AGENTSTATE_AUTH_FAILURE_DELAY)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "operator token for /api/v1/projects; empty = project API disabled (AGENTSTATE_ADMIN_TOKEN)")
	fs.IntVar(&c.RateLimitPerMin, "rate-limit-per-min", 600, "requests per credential per minute, counted in Redis; 0 = off (AGENTSTATE_RATE_LIMIT_PER_MIN)")
	fs.StringVar(&c.MetricsToken, "metrics-token", "", "serve Prometheus /metrics on the main address to this bearer token (AGENTSTATE_METRICS_TOKEN)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this separate address, e.g. 127.0.0.1:9090 (AGENTSTATE_METRICS_ADDR); with neither set /metrics is off")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "", "comma-separated browser origins allowed to call the API with credentials, e.g. https://app.example.com; empty = no CORS (AGENTSTATE_CORS_ORIGINS)")
	fs.IntVar(&c.MaxConnections, "max-connections", 4096, "open client connections at most; further ones wait to be accepted (AGENTSTATE_MAX_CONNECTIONS)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 2*time.Minute, "how long an idle keep-alive connection is kept (AGENTSTATE_IDLE_TIMEOUT)")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", 30*time.Second, "how long a client may take to send a request's headers and body (AGENTSTATE_BODY_TIMEOUT)")
	fs.BoolVar(&c.MCPFastCalls, "mcp-fast-calls", true, "answer the common streamable HTTP tools/call from one decoding of its body instead of through mcp-go's full path (same answers; false = everything through mcp-go) (AGENTSTATE_MCP_FAST_CALLS)")
	fs.StringVar(&c.PublicURL, "public-url", "", "the URL clients reach this server at; an https URL turns on HSTS behind a TLS-terminating proxy (AGENTSTATE_PUBLIC_URL)")
}

// NewLogger returns a slog logger on w at the configured level, as JSON lines ("json" or "")
// or logfmt-style text ("text").
func NewLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "json":
		return slog.New(accesslog.NewJSON(w, opts)), nil // slog.JSONHandler, access lines written directly
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}

// GenerationCheckEvery is how often a running server checks that its store was not reset: the
// writes a reset can let through are those within one interval.
const GenerationCheckEvery = 2 * time.Second

// App is an opened store with the services built on it.
type App struct {
	Conn    *redisstore.Connection // nil when the caller owns the store
	Store   *redisstore.Store
	Auth    *core.Auth
	Keys    *core.Keys
	Claims  *core.Claims
	Convs   *conversations.Service
	Hooks   *webhooks.Service
	OAuth   *oauth.Service
	States  *core.States
	Leases  *core.Leases
	Watcher *core.Watcher
	Limits  core.Limits
	// RateLimiter charges REST and MCP requests to their credential; nil = unlimited.
	RateLimiter *core.RateLimiter

	// Metrics is the Prometheus instrumentation Open sets up; nil (New) = nothing measured.
	Metrics *metrics.Metrics
	// Tracing is OpenTelemetry, when Open found an OTLP endpoint in the environment; nil = off.
	Tracing *telemetry.Tracing
	// HTTP are the HTTP server's settings NewHandler applies (Open fills them from Config).
	HTTP HTTPOptions

	jobs   []*core.Loop      // started by Start
	mcpSSE *server.SSEServer // set by NewHandler; its sessions end at shutdown
	search *searchState      // nil until OpenSearch; its backfill runs from Start
}

// HTTPOptions are the settings of the HTTP surface beyond the services.
type HTTPOptions struct {
	MetricsToken string   // serve /metrics on the main handler to this bearer token
	CORSOrigins  []string // browser origins allowed to call with credentials
	HSTS         bool     // send Strict-Transport-Security on plain HTTP too (public URL is https)
	// MCPSessionIdle is how long a streamable HTTP MCP session is remembered without a
	// request; 0 = MCPSessionIdle (tests shorten it).
	MCPSessionIdle time.Duration
	PublicURL      string // the origin in OAuth metadata and the audience of access tokens; "" = the request's
	// NoFastCalls sends every streamable HTTP MCP request through mcp-go (tools.Server.FastCalls
	// off: -mcp-fast-calls=false).
	NoFastCalls bool
}

// Start runs the background jobs: the lease sweeper, the conversation retention purge, the
// webhook delivery worker and the store generation check. Shutdown stops them.
func (a *App) Start(ctx context.Context, log *slog.Logger) {
	a.jobs = []*core.Loop{
		a.Leases.Sweeper(time.Second, func(err error) { log.Error("lease sweep", "err", err) }),
		a.Convs.Retention(a.Auth.ListProjects, time.Hour, func(err error) { log.Error("retention", "err", err) }),
		a.Hooks.Worker(func(err error) { log.Error("webhook outbox", "err", err) }),
		{Name: "store generation", Every: GenerationCheckEvery, Pass: a.Store.CheckGeneration, OnErr: func(err error) {
			if core.IsCode(err, core.CodeStoreReset) {
				log.Error("STORE_RESET: refusing every request until an operator restores the data and restarts", "err", err)
			} else if !core.IsCode(err, core.CodeStoreUnavailable) {
				log.Warn("store generation check", "err", err) // e.g. the state file cannot be written
			}
		}},
	}
	for _, j := range a.jobs {
		j.Start(ctx)
	}
	if a.search != nil {
		a.search.backfill.Start(ctx)
	}
}

// EndStreams ends every open stream (SSE watches with a final frame, long-polls with the
// current state, MCP SSE sessions and subscriptions) so that an http.Server's Shutdown, which
// waits for handlers, can finish. Run it beside Shutdown of the http.Server.
func (a *App) EndStreams(ctx context.Context) error {
	if a.mcpSSE != nil {
		a.mcpSSE.CloseSessions() // embedded in our http.Server, so Shutdown would do nothing
	}
	return a.Watcher.Shutdown(ctx)
}

// Shutdown stops the background jobs and waits for webhook deliveries under way, within ctx.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	for _, j := range a.jobs {
		errs = append(errs, j.Shutdown(ctx))
	}
	if a.search != nil {
		errs = append(errs, a.search.backfill.Shutdown(ctx))
	}
	errs = append(errs, a.Hooks.Shutdown(ctx))
	errs = append(errs, a.Tracing.Shutdown(ctx)) // last: flushes the spans of everything above
	return errors.Join(errs...)
}

// secretFiles are the settings that may also come from a file named by <variable>_FILE, as
// Docker and Compose secrets (/run/secrets/<name>) and mounted Kubernetes secrets provide them.
func (c *Config) secretFiles() map[string]*string {
	return map[string]*string{"AGENTSTATE_REDIS_URL": &c.RedisURL, "AGENTSTATE_ADMIN_TOKEN": &c.AdminToken,
		"AGENTSTATE_SIGNING_KEY": &c.SigningKey, "AGENTSTATE_METRICS_TOKEN": &c.MetricsToken, "AGENTSTATE_BOOTSTRAP_KEY": &c.BootstrapKey}
}

// ReadSecretFiles fills each secret setting left empty from the file its _FILE variable names
// (trailing newline trimmed). A named file that cannot be read is an error, not an empty secret.
func (c *Config) ReadSecretFiles() error {
	for name, v := range c.secretFiles() {
		path := os.Getenv(name + "_FILE")
		if path == "" || *v != "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s_FILE: %w", name, err)
		}
		*v = strings.TrimRight(string(b), "\r\n")
	}
	return nil
}

// Open connects the store (or starts the embedded one) and builds the services.
func Open(ctx context.Context, c *Config, log *slog.Logger) (*App, error) {
	if err := c.ReadSecretFiles(); err != nil {
		return nil, err
	}
	opts := c.Redis
	opts.URL = c.RedisURL
	conn, err := redisstore.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	redis.SetLogger(redisLogger{log})
	if conn.Embedded {
		log.Warn("EMBEDDED STORE: no AGENTSTATE_REDIS_URL set, so data lives in this process's memory and is LOST ON EXIT. " +
			"Set AGENTSTATE_REDIS_URL=redis://host:6379 for anything you want to keep.")
	} else {
		log.Info("store connected", "mode", conn.Mode, "addr", conn.Addr, "wait_replicas", opts.WaitReplicas)
	}
	// Adopt the store's generation now: from here on a flush under us is noticed (Start checks
	// it on a timer) instead of reissuing sequences and fencing tokens.
	if err := conn.Store.CheckGeneration(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	if gen, floor, why := conn.Store.AdoptedGeneration(); why != "" {
		log.Warn("STORE_RESET at start: this store lost data while no server ran; it gets a new generation, whose sequences and fencing tokens start above every one issued before",
			"why", why, "generation", gen, "floor", floor)
	} else {
		log.Info("store generation", "generation", gen, "floor", floor)
	}
	limits := core.DefaultLimits()
	limits.MaxBodyBytes = c.MaxBodyBytes
	a := New(conn.Store, core.SystemClock{}, limits)
	a.Conn = conn
	a.Auth.AdminToken = c.AdminToken
	a.RateLimiter = core.NewRateLimiter(conn.Store, core.SystemClock{}, c.RateLimitPerMin)
	seed, err := signingSeed(ctx, c.SigningKey, conn.Store)
	if err != nil {
		conn.Close()
		return nil, err
	}
	signer, err := core.NewSigner(seed)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("AGENTSTATE_SIGNING_KEY: %w", err)
	}
	a.Claims = core.NewClaims(conn.Store, core.SystemClock{}, signer)
	a.Hooks = webhooks.New(conn.Store, core.SystemClock{}, c.WebhookLoopback)
	if a.Hooks.Policy, err = webhookPolicy(c); err != nil {
		conn.Close()
		return nil, err
	}
	// Client metadata documents are fetched under the webhooks' SSRF guard and its loopback switch.
	a.OAuth = oauth.New(conn.Store, a.Auth, a.Keys, core.SystemClock{}, webhooks.NewGuardedClient(c.WebhookLoopback), c.WebhookLoopback)
	a.Convs = conversations.New(conn.Store, core.SystemClock{}, titles.FromEnv(nil))
	a.instrument(metrics.New())
	conn.Store.Client().AddHook(a.Metrics.RedisHook())
	if a.Tracing, err = telemetry.FromEnv(ctx); err == nil {
		err = a.Tracing.Redis(conn.Store.Client())
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	if a.Tracing != nil {
		log.Info("tracing on: OpenTelemetry spans go to the OTLP endpoint in OTEL_EXPORTER_OTLP_*")
	}
	a.HTTP = HTTPOptions{MetricsToken: c.MetricsToken, CORSOrigins: splitList(c.CORSOrigins),
		HSTS: strings.HasPrefix(strings.ToLower(c.PublicURL), "https://"), PublicURL: c.PublicURL, NoFastCalls: !c.MCPFastCalls}
	a.OAuth.PublicURL = c.PublicURL
	a.OAuth.RegisterPerHour, a.OAuth.TokenPerMinute = oauth.DefaultRegisterPerHour, oauth.DefaultTokenPerMinute
	log.Info("claims log checkpoints signed", "key_id", signer.PublicKey().KeyID)
	if err := a.OpenSearch(ctx, c.Search, log); err != nil {
		conn.Close()
		return nil, err
	}
	a.Metrics.WatchState(metrics.State{SearchPath: a.search.path,
		LeasesHeld: func(ctx context.Context) (int64, error) {
			return a.Store.LeasesHeld(ctx, core.NowMs(core.SystemClock{}))
		},
		CoalescedRoundTrips: a.Store.CoalescedRoundTrips})
	return a, nil
}

// signingSeed is the configured checkpoint key, or the one kept in the store (made on first use).
func signingSeed(ctx context.Context, configured string, store *redisstore.Store) ([]byte, error) {
	if configured != "" {
		seed, err := base64.StdEncoding.DecodeString(configured)
		if err != nil {
			return nil, fmt.Errorf("AGENTSTATE_SIGNING_KEY must be base64 of 32 bytes: %w", err)
		}
		return seed, nil
	}
	return store.SigningSeed(ctx)
}

// instrument points every service's observer at m.
func (a *App) instrument(m *metrics.Metrics) {
	a.Metrics = m
	a.Leases.Observer, a.Watcher.Observer, a.Hooks.Observer = m, m, m
	if a.RateLimiter != nil {
		a.RateLimiter.Observer = m
	}
}

// webhookPolicy is the outbox's retry policy from the -webhook-* settings.
func webhookPolicy(c *Config) (webhooks.Policy, error) {
	p := webhooks.DefaultPolicy() // for what a Config built in code leaves zero
	switch {
	case c.WebhookTimeout < 0:
		return p, fmt.Errorf("AGENTSTATE_WEBHOOK_TIMEOUT must be positive, got %s", c.WebhookTimeout)
	case c.WebhookTimeout > 0:
		p.Timeout = c.WebhookTimeout
	}
	if c.WebhookRetries == "" {
		return p, nil
	}
	p.Delays = nil
	for _, f := range splitList(c.WebhookRetries) {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return p, fmt.Errorf("AGENTSTATE_WEBHOOK_RETRY_DELAYS: %q is not a positive duration such as 30s or 5m", f)
		}
		p.Delays = append(p.Delays, d)
	}
	return p, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// redisLogger sends go-redis's own messages (pool and reconnect trouble) into the structured
// log instead of plain lines on stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// WarnRedisSettings flags Redis settings that hurt a server holding states; the admin command,
// which holds none, does not call it.
func (a *App) WarnRedisSettings(ctx context.Context, log *slog.Logger) {
	if a.Conn != nil && !a.Conn.Embedded {
		warnStreamNodeSize(ctx, a.Store, log)
	}
}

// warnStreamNodeSize flags a Redis setting that triples memory per state: every state key is
// its own stream, and Redis reserves stream-node-max-bytes (default 4096) for a stream's first
// node. Memory, not correctness, so a warning (docs/benchmarks.md has the numbers).
func warnStreamNodeSize(ctx context.Context, s *redisstore.Store, log *slog.Logger) {
	v, err := s.Client().ConfigGet(ctx, "stream-node-max-bytes").Result()
	if n, _ := strconv.Atoi(v["stream-node-max-bytes"]); err == nil && n > 1024 {
		log.Warn("redis stream-node-max-bytes is above 1024: each state then takes about 5 KiB instead of 2.3 KiB; set it with CONFIG SET stream-node-max-bytes 1024 or in redis.conf",
			"stream-node-max-bytes", n)
	}
}

// New builds the services over an open store; tests use it with their own clock and limits.
func New(store *redisstore.Store, clock core.Clock, limits core.Limits) *App {
	states := core.NewStates(store, clock, limits)
	// A fresh key per App; Open replaces it with the configured or shared one.
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	signer, _ := core.NewSigner(seed)
	hooks := webhooks.New(store, clock, true)
	convs := conversations.New(store, clock, titles.Local{})
	auth, keys := core.NewAuth(store, clock), core.NewKeys(store, clock)
	return &App{
		OAuth:   oauth.New(store, auth, keys, clock, webhooks.NewGuardedClient(true), true),
		Claims:  core.NewClaims(store, clock, signer),
		Convs:   convs,
		Hooks:   hooks,
		Store:   store,
		Auth:    auth,
		Keys:    keys,
		States:  states,
		Leases:  core.NewLeases(store, clock),
		Watcher: core.NewWatcher(store, states),
		Limits:  limits,
	}
}

// DefaultProject is the project the bootstrap key belongs to.
var DefaultProject = core.Project{ID: "default", Name: "Default"}

// Bootstrap makes sure a first key exists. With a configured key it ensures project "default"
// holds it (idempotent). Without one, on an empty store, it creates a key and returns it so the
// caller can print it once. It returns "" when nothing new needs showing.
func (a *App) Bootstrap(ctx context.Context, configured string) (string, error) {
	if configured != "" {
		if !core.ValidAPIKeyFormat(configured) {
			return "", fmt.Errorf("AGENTSTATE_BOOTSTRAP_KEY is malformed: want as_live_ followed by exactly 40 letters or digits (got %d characters starting %q)",
				len(configured), prefixOf(configured))
		}
		_, err := a.Auth.CreateProjectWithKey(ctx, DefaultProject, configured)
		return "", err
	}
	empty, err := a.Auth.StoreIsEmpty(ctx)
	if err != nil || !empty {
		return "", err
	}
	key, err := a.Auth.CreateProjectWithKey(ctx, DefaultProject, "")
	if err != nil {
		return "", err
	}
	return key.Key, nil
}

func prefixOf(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return strings.TrimSpace(s)
}

// Close releases the store if Open opened it.
func (a *App) Close() {
	a.closeSearch()
	if a.Conn != nil {
		a.Conn.Close()
	}
}

// NewHandler builds the full HTTP surface: REST, MCP over streamable HTTP and legacy SSE.
func (a *App) NewHandler(authFailureDelay time.Duration) http.Handler {
	mcpSrv := tools.NewServer(a.ToolDeps(), []server.ToolHandlerMiddleware{a.Metrics.Tool, a.Tracing.Tool})
	a.mcpSSE = server.NewSSEServer(mcpSrv.MCPServer, server.WithStaticBasePath("/api/mcp"),
		server.WithSSEEndpoint("/sse"), server.WithMessageEndpoint("/message"),
		server.WithSSEContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			// SSE stays on the revisions it supports: 2026-07-28 has no HTTP+SSE transport.
			return server.WithSupportedProtocolVersions(a.connection(ctx, r), mcp.LegacyProtocolVersions())
		}))
	idle := a.HTTP.MCPSessionIdle
	if idle <= 0 {
		idle = MCPSessionIdle
	}
	sessions := mcpSessions{store: a.Store, idle: idle}
	var streamable http.Handler = server.NewStreamableHTTPServer(mcpSrv.MCPServer,
		server.WithSessionIdManagerResolver(sessions), server.WithHTTPContextFunc(a.mcpContext))
	if !a.HTTP.NoFastCalls {
		// Common tools/calls are answered from one decoding of the body, the rest by mcp-go.
		streamable = mcpSrv.FastCalls(streamable, a.mcpContext, sessions.valid)
	}
	return a.Tracing.Handler(rest.NewHandler(rest.Deps{
		Auth:             a.Auth,
		Keys:             a.Keys,
		Claims:           a.Claims,
		Conversations:    a.Convs,
		Webhooks:         a.Hooks,
		OAuth:            a.OAuth,
		ToolOp:           tools.OperationOf,
		RateLimiter:      a.RateLimiter,
		States:           a.States,
		Leases:           a.Leases,
		Watcher:          a.Watcher,
		AuthFailureDelay: authFailureDelay,
		MCPSessionIdle:   idle,
		Ready:            a.Store.Ping,
		ReadyDetails:     func() map[string]any { return map[string]any{"search": a.search.details()} },
		// Streamable HTTP: v1's stateless POSTs keep working (no session needed); a client that
		// keeps the Mcp-Session-Id from initialize and opens the GET stream gets resource
		// notifications there; a 2026-07-28 client gets them on its subscriptions/listen stream.
		// Both MCP transports answer a missing resource with -32002 (tools.NotFoundHandler).
		MCP:         tools.NotFoundHandler(sessions.guardStream(streamable)),
		MCPSSE:      tools.NotFoundHandler(a.mcpSSE),
		Console:     console.Handler(),
		Middleware:  []func(http.Handler) http.Handler{a.Metrics.HTTP, a.Tracing.RouteName},
		Metrics:     a.metricsOnMain(),
		CORSOrigins: a.HTTP.CORSOrigins,
		HSTS:        a.HTTP.HSTS,
		PublicURL:   a.HTTP.PublicURL,
	}))
}

// metricsOnMain is /metrics for the main handler: only behind a token, since the main address
// is usually public.
func (a *App) metricsOnMain() http.Handler {
	if a.Metrics == nil || a.HTTP.MetricsToken == "" {
		return nil
	}
	return a.Metrics.Handler(a.HTTP.MetricsToken)
}

// mcpContext is a streamable HTTP MCP request's context (mcp-go's HTTP context function).
func (a *App) mcpContext(ctx context.Context, r *http.Request) context.Context {
	return tools.WithHTTPHeader(tools.WithToolsets(a.connection(ctx, r), r.URL.Query().Get("toolsets")), r.Header)
}

// connection prepares an HTTP MCP request's context: subscriptions re-authenticate its bearer
// credential as long as they run.
func (a *App) connection(ctx context.Context, r *http.Request) context.Context {
	cred, resource := bearerOf(r), oauth.Resource(a.HTTP.PublicURL, r)
	return tools.WithAuthenticate(ctx, func(ctx context.Context) (core.Principal, error) {
		return a.Auth.AuthenticateFor(ctx, cred, resource)
	})
}

func bearerOf(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// MCPSessionIdle is how long a streamable HTTP MCP session is remembered without a request.
const MCPSessionIdle = 24 * time.Hour

// mcpSessions issues streamable HTTP session ids on initialize and recognises them on later
// requests on every replica (any replica can answer a POST; only the GET stream is held by
// one): each id is recorded in the store, bound to the credential that initialized it, and
// forgotten after idle without a request. A request carrying an id the store does not know
// (never issued, expired, or opened by another credential) gets 404, so the client starts a new
// session, as the spec's session management asks; a request without one is v1's stateless POST
// and is served.
type mcpSessions struct {
	store *redisstore.Store
	idle  time.Duration
}

// errUnknownSession makes mcp-go answer 404.
var errUnknownSession = errors.New("unknown or expired MCP session")

// ResolveSessionIdManager binds the manager to the request: its context carries the
// authenticated credential. mcp-go's idle sweeper passes nil; we run none.
func (m mcpSessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	return sessionIDs{mcpSessions: m, ctx: ctx}
}

// guardStream gives the GET stream the same 404 for an unknown session id; mcp-go checks only
// POSTs and would open a stream for any id.
func (m mcpSessions) guardStream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(server.HeaderKeySessionID); r.Method == http.MethodGet && id != "" {
			if _, err := m.ResolveSessionIdManager(r).Validate(id); err != nil {
				http.Error(w, "Session not found", http.StatusNotFound)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// valid reports whether mcp-go would serve r under session id (its Validate, as on a POST).
func (m mcpSessions) valid(r *http.Request, id string) bool {
	terminated, err := m.ResolveSessionIdManager(r).Validate(id)
	return err == nil && !terminated
}

type sessionIDs struct {
	mcpSessions
	ctx context.Context
}

func (s sessionIDs) Generate() string {
	id := "mcp-session-" + core.NewID()
	if p, ok := s.principal(); ok {
		// A failed write shows as 404 on the session's next request, and the client
		// initializes again: nothing is served under an id the store does not know.
		_ = s.store.PutMCPSession(s.ctx, p.ProjectID, id, p.CredentialID, s.idle)
	}
	return id
}

func (s sessionIDs) Validate(id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	p, ok := s.principal()
	if !ok {
		return false, errUnknownSession
	}
	cred, sent, err := p.PrefetchedMCPSession(id) // read with the credential (rest: Prefetch)
	if !sent {
		cred, err = s.store.MCPSession(s.ctx, p.ProjectID, id, s.idle)
	}
	if err != nil {
		return false, err
	}
	if cred != p.CredentialID {
		return false, errUnknownSession
	}
	return false, nil
}

// principal is the request's principal with its admission settled (core.Principal.Settle):
// a session is written or refreshed only for an admitted credential. ok = false: none, or
// refused (the request is answered with that refusal).
func (s sessionIDs) principal() (core.Principal, bool) {
	p, ok := core.PrincipalFrom(s.ctx)
	if !ok {
		return p, false
	}
	p, _, err := p.Settle(s.ctx)
	return p, err == nil
}

// Terminate is refused: DELETE /api/mcp is v1's 405 before it reaches mcp-go.
func (sessionIDs) Terminate(string) (bool, error) { return true, nil }

// ToolDeps are the services the MCP tools call.
func (a *App) ToolDeps() tools.Deps {
	return tools.Deps{States: a.States, Leases: a.Leases, Watcher: a.Watcher, Keys: a.Keys, Claims: a.Claims, Conversations: a.Convs, RateLimiter: a.RateLimiter}
}

// Serve listens on c.Addr with the connection cap and timeouts that keep idle or slow clients
// from holding the server's connections and file descriptors: headers and body must arrive
// within BodyTimeout, idle keep-alive connections close after IdleTimeout, and at most
// MaxConnections are open at once. There is no write timeout, so watches and long-polls stream
// as long as they need; they end on their own bounds and at shutdown. The returned listener is
// bound, so its address can be logged as listening.
func (c *Config) Serve(h http.Handler) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, nil, err
	}
	if c.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, c.MaxConnections)
	}
	ln = rest.EnvelopeListener(ln)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: min(10*time.Second, c.BodyTimeout),
		ReadTimeout: c.BodyTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: 64 << 10}
	return srv, ln, nil
}
