package tools

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
)

const snapshotDir = "testdata/snapshots"

// TestToolSchemaSnapshots makes every change to what models see a reviewed diff: each tool's
// definition is compared with its committed snapshot. UPDATE_SNAPSHOTS=1 rewrites them.
func TestToolSchemaSnapshots(t *testing.T) {
	update := os.Getenv("UPDATE_SNAPSHOTS") == "1"
	seen := map[string]bool{}
	for _, tool := range Inventory() {
		got, err := json.MarshalIndent(tool.Definition(), "", "  ")
		require.NoError(t, err)
		got = append(got, '\n')
		path := filepath.Join(snapshotDir, tool.Name+".json")
		seen[tool.Name+".json"] = true
		if update {
			require.NoError(t, os.WriteFile(path, got, 0o644))
			continue
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "no snapshot for %s: run UPDATE_SNAPSHOTS=1 go test ./tools/", tool.Name)
		assert.Equal(t, string(want), string(got), "%s changed: review, then UPDATE_SNAPSHOTS=1 go test ./tools/", tool.Name)
	}
	files, err := os.ReadDir(snapshotDir)
	require.NoError(t, err)
	for _, f := range files {
		if !seen[f.Name()] {
			if update {
				require.NoError(t, os.Remove(filepath.Join(snapshotDir, f.Name())))
				continue
			}
			t.Errorf("snapshot %s has no tool: delete it", f.Name())
		}
	}
}

// TestToolDefinitionsAreComplete checks what every model-facing definition must carry.
func TestToolDefinitionsAreComplete(t *testing.T) {
	names := map[string]bool{}
	for _, tool := range Inventory() {
		assert.False(t, names[tool.Name], "duplicate tool %s", tool.Name)
		names[tool.Name] = true
		def := tool.Definition()
		a := def.Annotations
		for hint, v := range map[string]*bool{"readOnly": a.ReadOnlyHint, "destructive": a.DestructiveHint, "idempotent": a.IdempotentHint, "openWorld": a.OpenWorldHint} {
			assert.NotNil(t, v, "%s: %sHint must be set", tool.Name, hint)
		}
		assert.NotEmpty(t, a.Title, tool.Name)
		assert.True(t, len(def.Description) > 40, "%s needs a description a model can act on", tool.Name)
		assert.True(t, slices.Contains(core.AllScopes, tool.Scope), "%s: unknown scope %q", tool.Name, tool.Scope)
		assert.False(t, tool.Hints.ReadOnly && tool.Hints.Destructive, "%s: read-only tools are not destructive", tool.Name)
		assert.False(t, tool.Hints.OpenWorld, "%s: AgentState is a closed world", tool.Name)
		var in, out map[string]any
		require.NoError(t, json.Unmarshal(def.RawInputSchema, &in))
		require.NoError(t, json.Unmarshal(def.RawOutputSchema, &out))
		assert.Equal(t, "object", in["type"], tool.Name)
		assert.Equal(t, "object", out["type"], "%s: structured content must be an object", tool.Name)
		assert.True(t, strings.ToLower(tool.Name) == tool.Name, tool.Name)
	}
}
