package tools

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
)

// Snapshots of every definition are generated files (internal/gendocs keeps them current).

// TestToolDefinitionsAreComplete checks what every model-facing definition must carry.
func TestToolDefinitionsAreComplete(t *testing.T) {
	names := map[string]bool{}
	for _, tool := range Inventory() {
		assert.False(t, names[tool.Name], "duplicate tool %s", tool.Name)
		names[tool.Name] = true
		def := tool.Definition()
		a := def.Annotations
		// Hints that default to true are always sent; those that default to false only when true.
		for hint, v := range map[string]*bool{"destructive": a.DestructiveHint, "openWorld": a.OpenWorldHint} {
			assert.NotNil(t, v, "%s: %sHint must be set", tool.Name, hint)
		}
		assert.Equal(t, tool.Hints.ReadOnly, a.ReadOnlyHint != nil, tool.Name)
		assert.Equal(t, tool.Hints.Idempotent, a.IdempotentHint != nil, tool.Name)
		assert.NotEmpty(t, a.Title, tool.Name)
		assert.True(t, len(def.Description) > 40, "%s needs a description a model can act on", tool.Name)
		assert.True(t, slices.Contains(core.AllScopes, tool.Op.Scope) || tool.Name == "whoami", "%s: unknown scope %q", tool.Name, tool.Op.Scope)
		assert.Equal(t, !tool.Op.Mutates, tool.Hints.ReadOnly, "%s: read-only hint and operation %s disagree", tool.Name, tool.Op.Name)
		assert.False(t, tool.Hints.ReadOnly && tool.Hints.Destructive, "%s: read-only tools are not destructive", tool.Name)
		assert.False(t, tool.Hints.OpenWorld, "%s: AgentState is a closed world", tool.Name)
		var in, out map[string]any
		require.NoError(t, json.Unmarshal(def.RawInputSchema, &in))
		assert.Equal(t, "object", in["type"], tool.Name)
		assert.Equal(t, false, in["additionalProperties"], "%s: unknown arguments are refused, so the schema says so", tool.Name)
		if tool.Structured {
			require.NoError(t, json.Unmarshal(def.RawOutputSchema, &out))
			assert.Equal(t, "object", out["type"], "%s: structured content must be an object", tool.Name)
		} else {
			assert.Empty(t, def.RawOutputSchema, tool.Name)
		}
		assert.NotContains(t, string(def.RawInputSchema)+string(def.RawOutputSchema), ":true", "%s: no boolean schemas", tool.Name)
		assert.True(t, strings.ToLower(tool.Name) == tool.Name, tool.Name)
	}
}
