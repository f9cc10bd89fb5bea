package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHealthcheckExitsByStatus: a 2xx is healthy, anything else or no answer is not.
func TestHealthcheckExitsByStatus(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/readyz", r.URL.Path)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	check := func() error { return run(t.Context(), []string{"-url", srv.URL + "/readyz"}, io.Discard, io.Discard) }
	require.NoError(t, check())
	status = http.StatusServiceUnavailable
	assert.ErrorContains(t, check(), "503")
	srv.Close()
	assert.Error(t, check(), "nothing listening")
}
