package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesAreCurrent keeps the committed generated files from going stale: each must
// be exactly what `go run ./internal/gendocs` writes now, and nothing it would delete may remain.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	const fix = "run: go run ./internal/gendocs"
	root := filepath.Join("..", "..")
	files, err := outputs(root)
	require.NoError(t, err)
	for name, got := range files {
		want, err := os.ReadFile(filepath.Join(root, name))
		require.NoError(t, err, "%s is missing: %s", name, fix)
		if line, w, g, differ := firstDifference(string(want), string(got)); differ {
			t.Errorf("%s is stale at line %d: %s\ncommitted: %s\ngenerated: %s", name, line, fix, w, g)
		}
	}
	old, err := strays(root, files)
	require.NoError(t, err)
	assert.Empty(t, old, "files no tool generates any more: %s", fix)
}

// firstDifference names the first line where two documents differ: the whole file in a
// failure message would bury it.
func firstDifference(want, got string) (line int, w, g string, differ bool) {
	if want == got {
		return 0, "", "", false
	}
	ws, gs := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; ; i++ {
		if i >= len(ws) || i >= len(gs) || ws[i] != gs[i] {
			return i + 1, at(ws, i), at(gs, i), true
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end of file)"
}
