package rest

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/oauth"
	"github.com/agentstate/agentstate-go/webhooks"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

// Deps is what the HTTP server is built from.
type Deps struct {
	Auth          *core.Auth
	Keys          *core.Keys
	Claims        *core.Claims
	Conversations *conversations.Service
	Webhooks      *webhooks.Service
	OAuth         *oauth.Service // the authorization server for /api/mcp; nil = not served
	// ToolOp names the operation an MCP tool runs (scope step-up on /api/mcp); nil = no step-up.
	ToolOp           func(tool string) (core.Operation, bool)
	RateLimiter      *core.RateLimiter // nil = no limit
	States           *core.States
	Leases           *core.Leases
	Watcher          *core.Watcher
	AuthFailureDelay time.Duration               // minimum duration of a 401 (v1: 300 ms)
	Ready            func(context.Context) error // /readyz: nil when the store answers
	ReadyDetails     func() map[string]any       // /readyz: what else it reports (the search path)
	MCP              http.Handler                // streamable HTTP MCP, served at /api/mcp
	MCPSSE           http.Handler                // legacy SSE MCP, served under /api/mcp/sse and /api/mcp/message
	Console          http.Handler                // the operators' console, served under /console (it sets its own CSP)
	// MCPSessionIdle is the idle time MCP's session check starts again (its GETEX): a remembered
	// credential's auth round trip carries that check (core.MCPSessionRead); 0 = it does not.
	MCPSessionIdle time.Duration
	// Middleware runs inside the router, after the access log (metrics read the route pattern).
	Middleware  []func(http.Handler) http.Handler
	Metrics     http.Handler // served at /metrics when set (it guards itself)
	CORSOrigins []string     // origins allowed to call with credentials; empty = no CORS headers
	HSTS        bool         // send Strict-Transport-Security on plain HTTP too (the public URL is https)
	PublicURL   string       // AGENTSTATE_PUBLIC_URL: the origin in OAuth metadata and token audiences; "" = the request's
}

// Server holds the handlers' dependencies.
type Server struct {
	Deps
	limits core.Limits
}

// NewHandler builds the whole HTTP surface.
func NewHandler(d Deps) http.Handler {
	s := &Server{Deps: d, limits: d.States.Limits()}
	r := chi.NewRouter()
	r.Use(requestID, securityHeaders(d.HSTS), corsFor(d.CORSOrigins), accessLog)
	r.Use(d.Middleware...)
	r.Use(recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, core.E("rest", core.CodeNotFound, "Not found"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, core.E("rest", core.CodeMethodNotAllowed, "Method not allowed"))
	})

	for _, rt := range PublicRoutes {
		r.Method(rt.Method, rt.Pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { rt.handle(s, w, req) }))
	}
	if d.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", d.Metrics)
	}

	for _, rt := range Routes {
		if rt.Op.Access == core.Public {
			if d.OAuth != nil {
				r.Method(rt.Method, rt.Pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { rt.handle(s, w, req) }))
			}
			continue
		}
		a := authenticator{auth: d.Auth, limiter: d.RateLimiter, failureDelay: d.AuthFailureDelay,
			access: rt.Op.Access, queryToken: rt.QueryToken, readsState: rt.Op.ReadsState, guardsAdmission: rt.Op.GuardsAdmission}
		h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { rt.handle(s, w, req) })
		r.With(a.middleware).Method(rt.Method, rt.Pattern, h)
		if legacy, ok := legacyPath(rt.Pattern); ok {
			r.With(a.middleware).Method(rt.Method, legacy, h)
		}
	}

	mcpAuth := authenticator{auth: d.Auth, limiter: d.RateLimiter, failureDelay: d.AuthFailureDelay, onFail: s.wwwAuthenticate,
		resource: func(r *http.Request) string { return oauth.Resource(d.PublicURL, r) }}
	notAllowed := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, core.E("rest.mcp", core.CodeMethodNotAllowed, "Method not allowed"))
	}
	r.Delete("/api/mcp", notAllowed)
	if d.MCP != nil {
		streamAuth := mcpAuth // the SSE routes below name their session otherwise
		streamAuth.mcpSessionIdle = d.MCPSessionIdle
		post := streamAuth
		post.guardsAdmission = true
		r.With(post.middleware, s.stepUp).Post("/api/mcp", d.MCP.ServeHTTP)
		// GET is the notification stream of a streamable HTTP session; anything else that
		// GETs /api/mcp gets v1's 405.
		r.Get("/api/mcp", func(w http.ResponseWriter, req *http.Request) {
			if !strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
				notAllowed(w, req)
				return
			}
			streamAuth.middleware(d.MCP).ServeHTTP(w, req)
		})
	} else {
		r.Get("/api/mcp", notAllowed)
	}
	if d.MCPSSE != nil {
		r.With(mcpAuth.middleware).Get("/api/mcp/sse", d.MCPSSE.ServeHTTP)
		r.With(mcpAuth.middleware).Post("/api/mcp/message", d.MCPSSE.ServeHTTP)
	}
	if d.Console != nil {
		r.Handle("/console", d.Console)
		r.Handle("/console/*", d.Console)
	}
	return withRequestState(r)
}

// legacyPath is v1's older /v1 prefix, still served for conversations, tags and analytics.
func legacyPath(pattern string) (string, bool) {
	for _, p := range []string{"/api/v1/conversations", "/api/v1/tags", "/api/v1/analytics"} {
		if strings.HasPrefix(pattern, p) {
			return strings.TrimPrefix(pattern, "/api"), true
		}
	}
	return "", false
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDocument()
	if err != nil {
		writeError(w, r, core.Internal("rest.openapi", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

func (s *Server) apiInfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60, stale-while-revalidate=300")
	writeJSON(w, http.StatusOK, APIInfo{Name: "agentstate", Version: core.ProductVersion, Status: "ok"})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.ready(r.Context()); err != nil {
			writeError(w, r, &core.Error{Op: "rest.readyz", Code: core.CodeStoreUnavailable,
				Message: "Store is not answering", Err: err})
			return
		}
	}
	body := map[string]any{"status": "ready", "search": nil}
	if s.ReadyDetails != nil {
		for k, v := range s.ReadyDetails() {
			body[k] = v
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// readyTimeout bounds /readyz: a probe must get its answer in time even when the store hangs.
const readyTimeout = 2 * time.Second

// ready runs the store check bounded by readyTimeout. The check runs aside, because a client
// blocked on a dead connection returns only at its own read timeout, which the context does
// not shorten; it finishes on its own after the answer has gone.
func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Ready(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) wwwAuthenticate(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+s.resourceMetadataURL(r)+`"`)
}

func (s *Server) resourceMetadataURL(r *http.Request) string {
	return oauth.Origin(s.PublicURL, r) + "/.well-known/oauth-protected-resource"
}

func (s *Server) protectedResource(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, oauth.ProtectedResourceMetadata(s.PublicURL, r))
}
