package rest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
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
