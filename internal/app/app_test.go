package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	t.Run("an empty store gets one generated key, shown once", func(t *testing.T) {
		a := testenv.Stores[1].Open(t).App(t) // a fresh embedded store is empty
		key, err := a.Bootstrap(ctx, "")
		require.NoError(t, err)
		require.True(t, core.ValidAPIKeyFormat(key))
		p, err := a.Auth.Authenticate(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "default", p.ProjectID)
		again, err := a.Bootstrap(ctx, "")
		require.NoError(t, err)
		assert.Empty(t, again, "a store with a project gets no new key")
	})
	t.Run("a configured key is ensured idempotently", func(t *testing.T) {
		a := testenv.Stores[1].Open(t).App(t)
		k := core.NewAPIKeySecret()
		for range 2 {
			shown, err := a.Bootstrap(ctx, k)
			require.NoError(t, err)
			assert.Empty(t, shown)
		}
		p, err := a.Auth.Authenticate(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, []string{"*"}, p.Scopes)
		n, _ := a.Store.Client().ZCard(ctx, "as:{default}:keys").Result()
		assert.EqualValues(t, 1, n, "ensuring twice stores one key")
	})
	t.Run("a malformed key is refused with a clear message", func(t *testing.T) {
		a := testenv.Stores[1].Open(t).App(t)
		_, err := a.Bootstrap(ctx, "as_live_tooshort")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "AGENTSTATE_BOOTSTRAP_KEY is malformed")
	})
}

// TestSecretsFromFiles: a secret setting left empty is read from the file its _FILE variable
// names (a compose or Kubernetes secret), one given directly wins, and a missing file is an
// error rather than an empty secret.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "admin_token")
	require.NoError(t, os.WriteFile(tok, []byte("s3cret-token\n"), 0o600))
	t.Setenv("AGENTSTATE_ADMIN_TOKEN_FILE", tok)
	t.Setenv("AGENTSTATE_METRICS_TOKEN_FILE", tok)
	c := &app.Config{MetricsToken: "given"}
	require.NoError(t, c.ReadSecretFiles())
	assert.Equal(t, "s3cret-token", c.AdminToken)
	assert.Equal(t, "given", c.MetricsToken)

	t.Setenv("AGENTSTATE_SIGNING_KEY_FILE", filepath.Join(dir, "missing"))
	assert.ErrorContains(t, (&app.Config{}).ReadSecretFiles(), "AGENTSTATE_SIGNING_KEY_FILE")
}
