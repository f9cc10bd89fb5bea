package apidocs

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const path = "../../docs/api.md"

// TestAPIReferenceIsCurrent fails when docs/api.md no longer matches the code.
func TestAPIReferenceIsCurrent(t *testing.T) {
	got := Render()
	if os.Getenv("UPDATE_SNAPSHOTS") == "1" {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "docs/api.md is missing: UPDATE_SNAPSHOTS=1 go test ./internal/apidocs/")
	assert.Equal(t, string(want), string(got), "docs/api.md is stale: UPDATE_SNAPSHOTS=1 go test ./internal/apidocs/")
}
