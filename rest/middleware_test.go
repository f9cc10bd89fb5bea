package rest

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

// The security headers share their value slices between responses: what one handler adds to
// its response must never show in another's.
func TestSharedHeaderValuesStayPerResponse(t *testing.T) {
	serve := func(extra string) http.Header {
		rec := httptest.NewRecorder()
		securityHeaders(true)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-Frame-Options", extra)
			writeJSON(w, http.StatusOK, map[string]int{})
			w.Header().Add("Content-Type", extra)
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Header()
	}
	a := serve("a")
	b := serve("b")
	if got := a.Values("X-Frame-Options"); !slices.Equal(got, []string{"DENY", "a"}) {
		t.Fatalf("first response's X-Frame-Options = %q after a second response", got)
	}
	if got := b.Values("X-Frame-Options"); !slices.Equal(got, []string{"DENY", "b"}) {
		t.Fatalf("second response's X-Frame-Options = %q", got)
	}
	if got := a.Values("Content-Type"); !slices.Equal(got, []string{"application/json", "a"}) {
		t.Fatalf("first response's Content-Type = %q after a second response", got)
	}
	if !slices.Equal(denyValue, []string{"DENY"}) || !slices.Equal(jsonValue, []string{"application/json"}) {
		t.Fatalf("shared values changed: %q %q", denyValue, jsonValue)
	}
}

// The request a handler gets is the one withRequestState made: chi's routing context, the
// access log and the principal each live in its requestState, so none of them copies it again;
// and the principal, route parameters and access line still come through.
func TestPipelineCopiesTheRequestOnce(t *testing.T) {
	var buf strings.Builder
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer slog.SetDefault(prev)

	var first, last *http.Request
	var got core.Principal
	mux := chi.NewRouter()
	mux.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { first = r; next.ServeHTTP(w, r) })
	}, requestID, securityHeaders(false), accessLog, recoverer)
	admit := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := core.Principal{ProjectID: "proj", CredentialID: "cred-1"}
			noteCredential(r.Context(), p)
			next.ServeHTTP(w, withPrincipal(r, p))
		})
	}
	mux.With(admit).Get("/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		last = r
		got, _ = core.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusTeapot)
		w.WriteHeader(http.StatusOK) // dropped, as net/http drops it
		_, _ = w.Write([]byte(chi.URLParam(r, "id")))
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/things/abc", nil)
	req.Header.Set(headerRequestID, "req-1")
	withRequestState(mux).ServeHTTP(rec, req)

	if _, ok := first.Context().(*requestState); !ok {
		t.Fatalf("chi copied the request to add its routing context (%T)", first.Context())
	}
	if last != first {
		t.Fatalf("the handler's request is a copy of the pipeline's (%p, %p)", first, last)
	}
	if got.CredentialID != "cred-1" {
		t.Fatalf("principal = %+v", got)
	}
	if rec.Code != http.StatusTeapot || rec.Body.String() != "abc" {
		t.Fatalf("response %d %q", rec.Code, rec.Body)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
		t.Fatalf("access line %q: %v", buf.String(), err)
	}
	want := map[string]any{"level": "INFO", "msg": "http", "method": "GET", "route": "/things/{id}", "path": "/things/abc",
		"status": 418.0, "bytes": 3.0, "dur_ms": 0.0, "request_id": "req-1", "credential_id": "cred-1"}
	delete(line, "time")
	if !maps.Equal(line, want) {
		t.Fatalf("access line = %v, want %v", line, want)
	}
}

// The recorder passes flushes and informational statuses through; only the final status counts.
func TestStatusRecorderPassesThrough(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusRecorder{ResponseWriter: rec}
	w.WriteHeader(http.StatusEarlyHints)
	if w.Status() != 0 {
		t.Fatalf("status after 103 = %d", w.Status())
	}
	w.Flush()
	if !rec.Flushed || w.Status() != http.StatusOK {
		t.Fatalf("flushed %v, status %d", rec.Flushed, w.Status())
	}
	if http.NewResponseController(w).Flush() != nil {
		t.Fatal("ResponseController does not reach the writer beneath")
	}
}

// A body is read whole up to the limit and refused with 413 past it, whether its length is
// declared (Content-Length, read into one buffer) or not (chunked).
func TestReadBodyLimit(t *testing.T) {
	const limit = 8
	for _, c := range []struct {
		body    string
		chunked bool
		code    core.Code // "" = read
	}{
		{"12345678", false, ""}, {"123456789", false, core.CodePayloadTooLarge},
		{"12345678", true, ""}, {"123456789", true, core.CodePayloadTooLarge}, {"", false, ""},
	} {
		r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader(c.body))
		if c.chunked {
			r.ContentLength = -1
		}
		b, err := readBody(httptest.NewRecorder(), r, limit)
		if c.code != "" {
			if !core.IsCode(err, c.code) {
				t.Errorf("%q (chunked %v): err %v, want %s", c.body, c.chunked, err, c.code)
			}
			continue
		}
		if err != nil || string(b) != c.body {
			t.Errorf("%q (chunked %v): read %q, %v", c.body, c.chunked, b, err)
		}
	}
}
