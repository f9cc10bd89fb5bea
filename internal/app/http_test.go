package app_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

const hsts = "max-age=31536000; includeSubDomains"

func get(t *testing.T, c *http.Client, url string, h map[string]string, method string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// TestHSTSOnlyOverTLS: HSTS goes out over TLS, or when the public URL says https (TLS ends at a
// proxy), and never over plain HTTP otherwise.
func TestHSTSOnlyOverTLS(t *testing.T) {
	a := testenv.Stores[1].Open(t).App(t)
	plain := httptest.NewServer(a.NewHandler(0))
	defer plain.Close()
	assert.Empty(t, get(t, http.DefaultClient, plain.URL+"/healthz", nil, "GET").Header.Get("Strict-Transport-Security"))

	tls := httptest.NewTLSServer(a.NewHandler(0))
	defer tls.Close()
	assert.Equal(t, hsts, get(t, tls.Client(), tls.URL+"/healthz", nil, "GET").Header.Get("Strict-Transport-Security"))

	a.HTTP = app.HTTPOptions{HSTS: true}
	proxied := httptest.NewServer(a.NewHandler(0))
	defer proxied.Close()
	assert.Equal(t, hsts, get(t, http.DefaultClient, proxied.URL+"/healthz", nil, "GET").Header.Get("Strict-Transport-Security"))
}

// TestCORSAllowList: an allowed origin is reflected with credentials (v1's semantics), a
// preflight is answered, and any other origin gets no CORS headers.
func TestCORSAllowList(t *testing.T) {
	a := testenv.Stores[1].Open(t).App(t)
	a.HTTP = app.HTTPOptions{CORSOrigins: []string{"https://tools.example.com"}}
	s := httptest.NewServer(a.NewHandler(0))
	defer s.Close()

	pre := get(t, http.DefaultClient, s.URL+"/api/v1/states/x", map[string]string{"Origin": "https://tools.example.com",
		"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,content-type,x-lease-id"}, "OPTIONS")
	assert.Less(t, pre.StatusCode, 300)
	assert.Equal(t, "https://tools.example.com", pre.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", pre.Header.Get("Access-Control-Allow-Credentials"))
	assert.Contains(t, pre.Header.Get("Access-Control-Allow-Methods"), "PUT")

	r := get(t, http.DefaultClient, s.URL+"/api", map[string]string{"Origin": "https://tools.example.com"}, "GET")
	assert.Equal(t, "https://tools.example.com", r.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, r.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id")

	other := get(t, http.DefaultClient, s.URL+"/api", map[string]string{"Origin": "https://evil.example"}, "GET")
	assert.Empty(t, other.Header.Get("Access-Control-Allow-Origin"))

	a.HTTP = app.HTTPOptions{}
	off := httptest.NewServer(a.NewHandler(0))
	defer off.Close()
	assert.Empty(t, get(t, http.DefaultClient, off.URL+"/api", map[string]string{"Origin": "https://tools.example.com"}, "GET").Header.Get("Access-Control-Allow-Origin"),
		"no origins configured: no CORS")
}
