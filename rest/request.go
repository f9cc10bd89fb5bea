package rest

import (
	"context"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

// requestState is the context NewHandler gives each request, in one allocation: chi's routing
// context, the access line's response recorder and credential id, and the principal once the
// request is admitted. Otherwise the request would be copied three times on its way in (by chi
// for its routing context, by the access log for its entry, by the authenticator for the
// principal), each copy with a context value of its own, and wrapped by an allocated recorder.
type requestState struct {
	core.PrincipalSlot // the server's request context beneath, and the principal
	route              *chi.Context
	rec                statusRecorder
	credentialID       string // the authenticated credential (never its secret), for the access line
}

type requestStateKey struct{}

// Value answers for chi's routing context and for the state itself; the principal and anything
// else are the slot's.
func (s *requestState) Value(key any) any {
	switch key {
	case chi.RouteCtxKey:
		return s.route
	case requestStateKey{}:
		return s
	}
	return s.PrincipalSlot.Value(key)
}

func stateOf(ctx context.Context) *requestState {
	s, _ := ctx.Value(requestStateKey{}).(*requestState)
	return s
}

// routeContexts recycles chi's routing contexts, as chi's mux does with a pool of its own when it
// finds none in the request.
var routeContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// withRequestState serves mux with a requestState as each request's context. chi takes the
// routing context it finds there as a parent router's and adds none.
func withRequestState(mux *chi.Mux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := routeContexts.Get().(*chi.Context)
		rc.Reset()
		rc.Routes = mux
		s := &requestState{route: rc}
		s.Context = r.Context()
		mux.ServeHTTP(w, r.WithContext(s))
		routeContexts.Put(rc)
	})
}

// withPrincipal is r with p as its principal: set in r's requestState (no copy), or, where the
// request has none, in a copy of r.
func withPrincipal(r *http.Request, p core.Principal) *http.Request {
	if s := stateOf(r.Context()); s != nil {
		s.Set(p)
		return r
	}
	return r.WithContext(core.WithPrincipal(r.Context(), p))
}

// statusRecorder is the response as the access line and metrics see it: its status and body
// bytes, as chi's middleware.WrapResponseWriter counts them (it lives in the requestState, so
// it costs no allocation of its own).
type statusRecorder struct {
	http.ResponseWriter
	status, bytes int
	wroteHeader   bool
}

func (w *statusRecorder) WriteHeader(code int) {
	switch {
	case code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols:
		w.ResponseWriter.WriteHeader(code) // informational: the final status is still to come
	case !w.wroteHeader: // later calls are dropped, as net/http would drop them
		w.status, w.wroteHeader = code, true
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Status is the status written, 0 before any.
func (w *statusRecorder) Status() int { return w.status }

// Flush keeps server-sent events working through the recorder.
func (w *statusRecorder) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer (deadlines, hijacking).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
