package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesAreCurrent keeps the committed documents from going stale: each must be
// exactly what the generator writes now. UPDATE_SNAPSHOTS=1 rewrites them.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := outputs()
	require.NoError(t, err)
	for name, got := range files {
		path := filepath.Join("..", "..", "..", name)
		if os.Getenv("UPDATE_SNAPSHOTS") == "1" {
			require.NoError(t, os.WriteFile(path, got, 0o644))
			continue
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "%s is missing: go run ./schemas/cmd/gendocs", name)
		if line, w, g, differ := firstDifference(string(want), string(got)); differ {
			t.Errorf("%s is stale at line %d: go run ./schemas/cmd/gendocs (or UPDATE_SNAPSHOTS=1 go test ./schemas/...)\ncommitted: %s\ngenerated: %s", name, line, w, g)
		}
	}
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
