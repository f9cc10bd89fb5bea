package rest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/cors"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/accesslog"
)

const headerRequestID = "X-Request-Id"

// headerValue is h.Get(key) for a key already in canonical form: it skips the
// canonicalisation Get and Set run on every call (a dozen per request on the hot routes).
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// wellFormedRequestID is ^[a-zA-Z0-9_-]{1,64}$ without a regexp (it runs on every request).
func wellFormedRequestID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestID echoes a well-formed X-Request-Id and otherwise makes one (compat-v1.md §4.2).
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := headerValue(r.Header, headerRequestID)
		if !wellFormedRequestID(id) {
			id = core.NewShortID()
		}
		w.Header()[headerRequestID] = []string{id}
		next.ServeHTTP(w, r)
	})
}

// Header values set on every response, shared rather than allocated per request (keys are in
// canonical form). net/http only reads them, Set and Del replace the map entry, and each slice
// is full (cap = len), so an Add copies before it appends: no response changes another's.
var (
	hstsValue     = []string{"max-age=31536000; includeSubDomains"}
	nosniffValue  = []string{"nosniff"}
	denyValue     = []string{"DENY"}
	referrerValue = []string{"strict-origin-when-cross-origin"}
	cspValue      = []string{"default-src 'none'"}
	jsonValue     = []string{"application/json"}
)

// securityHeaders sets v1's headers on every response (compat-v1.md §4.3), except that HSTS goes
// only over TLS, or everywhere when the public URL is https (TLS ends at a proxy in front):
// browsers ignore it over plain HTTP, and it would pin a plain-HTTP development host.
func securityHeaders(alwaysHSTS bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			if alwaysHSTS || r.TLS != nil {
				h["Strict-Transport-Security"] = hstsValue
			}
			h["X-Content-Type-Options"] = nosniffValue
			h["X-Frame-Options"] = denyValue
			h["Referrer-Policy"] = referrerValue
			h["Content-Security-Policy"] = cspValue
			next.ServeHTTP(w, r)
		})
	}
}

// corsFor answers browsers from the allowed origins as v1 does (compat-v1.md §4.3): credentialed,
// reflecting the origin, with v1's request headers; other origins get no CORS headers at all.
func corsFor(origins []string) func(http.Handler) http.Handler {
	if len(origins) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	return cors.Handler(cors.Options{
		AllowedOrigins:   origins,
		AllowCredentials: true,
		AllowedMethods:   []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "X-Request-Id", "Idempotency-Key", "X-Lease-Id", "Last-Event-ID", "If-Match", "Mcp-Session-Id", "Mcp-Protocol-Version"},
		// What a browser client needs to read back: ids, versions and its rate budget.
		ExposedHeaders: []string{"X-Request-Id", "ETag", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "Mcp-Session-Id"},
		MaxAge:         600,
	})
}

// noteCredential records the authenticated credential's id (never its secret) for the access line.
func noteCredential(ctx context.Context, p core.Principal) {
	if s := stateOf(ctx); s != nil {
		s.credentialID = p.CredentialID
	}
}

// accessLog writes one line per request at info: route pattern, status, duration, request id
// and credential id. Health probes, which orchestrators send every few seconds, log at debug.
// It reads the requestState NewHandler gives each request.
func accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := slog.Default().Handler()
		s := stateOf(r.Context())
		if s == nil || !log.Enabled(r.Context(), slog.LevelInfo) {
			next.ServeHTTP(w, r) // nothing would be written (probes log lower still)
			return
		}
		start := time.Now()
		s.rec.ResponseWriter = w
		next.ServeHTTP(&s.rec, r)
		route := "unmatched"
		if p := s.route.RoutePattern(); p != "" {
			route = p
		}
		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" {
			level = slog.LevelDebug
			if !log.Enabled(r.Context(), level) {
				return
			}
		}
		end := time.Now() // one clock read for the duration and the stamp
		accesslog.Log(r.Context(), log, end, level, &accesslog.Line{Method: r.Method, Route: route,
			Path: r.URL.Path, Status: s.rec.status, Bytes: s.rec.bytes, DurMs: end.Sub(start).Milliseconds(),
			RequestID: headerValue(w.Header(), headerRequestID), CredentialID: s.credentialID})
	})
}

// recoverer turns a panic into v1's 500 envelope instead of a dropped connection.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.ErrorContext(r.Context(), "panic", "value", v, "path", r.URL.Path)
				writeError(w, r, core.Internal("rest.recoverer", errors.New("panic")))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the credential from "Authorization: Bearer <token>".
func bearer(r *http.Request) string {
	h := headerValue(r.Header, "Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticator resolves the credential, stores the principal in the request context and
// charges the request to the credential's rate limit.
type authenticator struct {
	auth         *core.Auth
	limiter      *core.RateLimiter
	failureDelay time.Duration // v1 pads every auth failure to at least this long
	onFail       func(w http.ResponseWriter, r *http.Request)
	access       core.Access
	queryToken   bool // also accept ?token=as_cap_… (capability tokens only)
	// resource is the OAuth resource this face is (its canonical URI), for audience-bound
	// tokens; nil = none (REST), where such tokens are refused.
	resource func(*http.Request) string
	// readsState is set on the routes of operations that ReadsState (core.StateRead).
	readsState bool
	// mcpSessionIdle is set on the streamable HTTP MCP route, which reads the session its
	// Mcp-Session-Id header names (core.MCPSessionRead), refreshing its idle time this long.
	mcpSessionIdle time.Duration
	// guardsAdmission is set on the routes of operations that GuardsAdmission, and on the
	// streamable HTTP MCP POST route (its tools settle the admission before anything but an
	// operation that settles it itself: tools.Tool.Handler; a legacy request's session check
	// goes in whichever round trip settles it, a write script's included): a remembered
	// credential's admission is settled by the write or read (or by settleWriter) instead of first.
	guardsAdmission bool
}

func (a authenticator) middleware(next http.Handler) http.Handler {
	if a.access == core.Operator {
		return a.admin(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cred := bearer(r)
		if a.queryToken && cred == "" {
			// Parsed only on the routes that take it: the query is a map built per call.
			if t := r.URL.Query().Get("token"); strings.HasPrefix(t, core.CapabilityTokenPrefix) {
				cred = t
			}
		}
		resource := ""
		if a.resource != nil {
			resource = a.resource(r)
		}
		var want core.Prefetch
		if a.readsState && r.URL.RawQuery == "" {
			// A plain current read; any query option (time travel, long poll) reads its own way.
			// A key that does not decode is refused by the handler, unread.
			want.StateKey, _ = pathParam(r, "state_key")
		}
		want.GuardsAdmission = a.guardsAdmission
		if a.mcpSessionIdle > 0 && !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
			// mcp-go ignores the session header of a 2026-07-28 request: reading it would keep
			// alive a session nothing checks. A legacy request's session check reads the
			// session with the credential: in this round trip, or, when the admission is
			// deferred, in the one that settles it (a get_state's read, a write's script).
			want.MCPSession, want.MCPSessionIdle = r.Header.Get("Mcp-Session-Id"), a.mcpSessionIdle
		}
		p, st, err := a.auth.Admit(r.Context(), cred, resource, a.limiter, a.access == core.KeysOnly, want)
		if err != nil && st.Limit == 0 { // refused before it was charged: not a rate-limit refusal
			a.fail(w, r, start, err)
			return
		}
		noteCredential(r.Context(), p)
		rateHeaders(w.Header(), st)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if p.AdmissionDeferred() {
			w = &settleWriter{ResponseWriter: w, r: r, a: a, start: start, p: p}
		}
		if a.access == core.KeysAndTokens {
			// v1 pads scope-denied 403s of these routes like 401s; the scope is checked in core,
			// so the pad happens where the status is written.
			w = &padForbidden{ResponseWriter: w, ctx: r.Context(), start: start, delay: a.failureDelay}
		}
		next.ServeHTTP(w, withPrincipal(r, p))
	})
}

// rateHeaders tells the client its budget (X-RateLimit-*, and Retry-After when refused); nothing
// with the limiter off.
func rateHeaders(h http.Header, st core.RateStatus) {
	if st.Limit == 0 {
		return
	}
	// One backing array for the values, each a full slice (an Add copies); the keys in the
	// canonical form Set would give them (X-Ratelimit-…, as v1 sends on the wire).
	v := [4]string{itoa(st.Limit), itoa(st.Remaining), itoa(st.Reset)}
	vals := v[:]
	h["X-Ratelimit-Limit"], h["X-Ratelimit-Remaining"], h["X-Ratelimit-Reset"] = vals[0:1:1], vals[1:2:2], vals[2:3:3]
	if st.RetryAfter > 0 {
		vals[3] = itoa(st.RetryAfter)
		h["Retry-After"] = vals[3:4:4]
	}
}

// settleWriter answers a request whose admission was deferred to its write (core.Principal.Settle).
// Before the status goes out it settles the admission, if the write has not: a request refused
// before its write (a bad body, a missing scope) has not been authenticated yet. When the
// credential is refused, that refusal is the answer, as if it had been checked first: the
// handler's headers are put back as they were and its body is dropped.
type settleWriter struct {
	http.ResponseWriter
	r               *http.Request
	a               authenticator
	start           time.Time
	p               core.Principal
	saved           http.Header // the headers before the handler set any, while it might be refused
	wrote, replaced bool
}

// Header keeps a copy of the headers the first time a handler asks while its admission is
// unsettled: that handler is answering without its write, and might be refused.
func (s *settleWriter) Header() http.Header {
	h := s.ResponseWriter.Header()
	if s.saved == nil && !s.wrote && s.p.AdmissionDeferred() {
		s.saved = h.Clone()
	}
	return h
}

func (s *settleWriter) WriteHeader(code int) {
	if s.wrote {
		if !s.replaced {
			s.ResponseWriter.WriteHeader(code)
		}
		return
	}
	s.wrote = true
	_, st, err := s.p.Settle(s.r.Context())
	h := s.ResponseWriter.Header()
	if err != nil {
		s.replaced = true
		if s.saved != nil {
			clear(h)
			maps.Copy(h, s.saved)
		}
		rateHeaders(h, st)
		s.a.fail(s.ResponseWriter, s.r, s.start, err)
		return
	}
	rateHeaders(h, st)
	s.ResponseWriter.WriteHeader(code)
}

func (s *settleWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	if s.replaced {
		return len(b), nil
	}
	return s.ResponseWriter.Write(b)
}

// Flush keeps server-sent events working through the wrapper.
func (s *settleWriter) Flush() {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok && !s.replaced {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *settleWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// padForbidden delays a 403 until the failure delay has passed since the request began.
type padForbidden struct {
	http.ResponseWriter
	ctx   context.Context
	start time.Time
	delay time.Duration
}

func (p *padForbidden) WriteHeader(code int) {
	if code == http.StatusForbidden {
		padTo(p.ctx, p.start, p.delay)
	}
	p.ResponseWriter.WriteHeader(code)
}

// Flush keeps server-sent events working through the wrapper.
func (p *padForbidden) Flush() {
	if f, ok := p.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (p *padForbidden) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// admin guards project management with the operator token.
func (a authenticator) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if err := a.auth.Admin(bearer(r)); err != nil {
			a.fail(w, r, start, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a authenticator) fail(w http.ResponseWriter, r *http.Request, start time.Time, err error) {
	if core.IsCode(err, core.CodeUnauthorized) {
		padTo(r.Context(), start, a.failureDelay)
		if a.onFail != nil {
			a.onFail(w, r)
		}
	}
	writeError(w, r, err)
}

// padTo sleeps until d has passed since start, so failures do not reveal how far they got.
func padTo(ctx context.Context, start time.Time, d time.Duration) {
	wait := d - time.Since(start)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func principal(r *http.Request) core.Principal {
	p, _ := core.PrincipalFrom(r.Context())
	return p
}

// readBody reads a bounded body; an oversized one is a 413 in the envelope.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= limit {
		// net/http ends the body at its Content-Length, within the limit: read into one buffer of
		// that size (io.ReadAll grows its own from 512 bytes, and the limit cannot be reached).
		b = make([]byte, n)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &core.Error{Op: "rest.readBody", Code: core.CodePayloadTooLarge,
			Message: "Request body exceeds the limit of " + itoa(limit) + " bytes"}
	}
	if err != nil {
		return nil, core.E("rest.readBody", core.CodeBadRequest, "Invalid JSON body")
	}
	return b, nil
}
