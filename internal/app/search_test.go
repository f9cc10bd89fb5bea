package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// readySearch is /readyz's search section.
func readySearch(t *testing.T, h http.Handler) map[string]any {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var body struct {
		Status string         `json:"status"`
		Search map[string]any `json:"search"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "ready", body.Status)
	return body.Search
}

// TestSearchModeChoice: AGENTSTATE_SEARCH picks the path; redisearch refuses a server without
// the module; the choice shows in /readyz.
func TestSearchModeChoice(t *testing.T) {
	ctx, log := context.Background(), slog.New(slog.DiscardHandler)
	for _, st := range testenv.Stores { // neither has the search module
		t.Run(st.Name, func(t *testing.T) {
			a := st.Open(t).App(t)
			err := a.OpenSearch(ctx, "redisearch", log)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "AGENTSTATE_SEARCH=redisearch needs RediSearch >= 2.6 on the server")
			assert.ErrorContains(t, a.OpenSearch(ctx, "fast", log), `AGENTSTATE_SEARCH="fast": want auto, portable or redisearch`)
			require.NoError(t, a.OpenSearch(ctx, "auto", log))
			defer a.Close()
			assert.Nil(t, a.Convs.Text)
			assert.Equal(t, map[string]any{"mode": "portable"}, readySearch(t, a.NewHandler(0)))
		})
	}
	t.Run("redisearch", func(t *testing.T) {
		a := testenv.RediSearch.Open(t).App(t) // skips without AGENTSTATE_TEST_REDISEARCH_URL
		a.Convs.Text = nil
		require.NoError(t, a.OpenSearch(ctx, "auto", log))
		defer a.Close()
		a.Start(ctx, log) // runs the backfill
		defer func() { assert.NoError(t, a.Shutdown(ctx)) }()
		require.NotNil(t, a.Convs.Text)
		for deadline := time.Now().Add(30 * time.Second); !a.Convs.Text.Ready() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		got := readySearch(t, a.NewHandler(0))
		assert.Equal(t, "redisearch", got["mode"])
		assert.Equal(t, "done", got["backfill"])
		assert.NotEmpty(t, got["redisearch_version"])

		b := testenv.RediSearch.Open(t).App(t)
		require.NoError(t, b.OpenSearch(ctx, "portable", log))
		defer b.Close()
		assert.Equal(t, "portable", readySearch(t, b.NewHandler(0))["mode"], "portable on a server with the module")
	})
}
