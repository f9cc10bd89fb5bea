package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/console"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestConsolePagesCarryAStrictCSP: the console's pages and files replace the REST face's
// default-src 'none' with a policy that allows our own scripts, styles and API only, never
// inline code; everything else on the server keeps the REST policy.
func TestConsolePagesCarryAStrictCSP(t *testing.T) {
	srv := testenv.NewServer(t, testenv.Stores[1].Open(t))
	get := func(path string) (*http.Response, string) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.Get(srv.URL + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, p := range console.Pages {
		res, body := get("/console/" + p.Path)
		require.Equal(t, http.StatusOK, res.StatusCode, p.Name)
		csp := res.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "script-src 'self'", p.Name)
		assert.Contains(t, csp, "frame-ancestors 'none'", p.Name)
		assert.NotContains(t, csp, "unsafe", p.Name)
		assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), p.Name)
		assert.Contains(t, body, `<script type="module" src="/console/static/`+p.Name+`.js">`, p.Name)
		assert.NotRegexp(t, `<script(?: type="module")?>|style="|\son[a-z]+="`, body, "no inline script, style or handler in %s", p.Name)
		js, _ := get("/console/static/" + p.Name + ".js")
		assert.Equal(t, http.StatusOK, js.StatusCode, p.Name+".js")
		assert.True(t, strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript"), js.Header.Get("Content-Type"))
	}
	res, _ := get("/console")
	assert.Equal(t, http.StatusMovedPermanently, res.StatusCode)
	res, _ = get("/console/nope")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = get("/api/v1/leases")
	assert.Equal(t, "default-src 'none'", res.Header.Get("Content-Security-Policy"), "the REST face keeps its own policy")

	r := httptest.NewRecorder()
	console.Handler().ServeHTTP(r, httptest.NewRequest(http.MethodPost, "/console/", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, r.Code)
}
