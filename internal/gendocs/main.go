// Command gendocs writes every generated file of the repository from the code:
//
//   - docs/openapi.json: the OpenAPI 3.1 document, from rest.Routes and the operations they name
//   - docs/api.md: the Markdown API reference (internal/apidocs), from the same table and the MCP inventory
//   - tools/testdata/snapshots/<tool>.json: each MCP tool's definition as models see it
//
// Run it from anywhere in the module after changing a route, a tool or a type they expose:
//
//	go run ./internal/gendocs
//
// TestGeneratedFilesAreCurrent fails, naming this command, when a committed file differs.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentstate/agentstate-go/internal/apidocs"
	"github.com/agentstate/agentstate-go/rest"
	"github.com/agentstate/agentstate-go/tools"
)

// snapshotDir holds the tool snapshots; gendocs owns every file in it.
const snapshotDir = "tools/testdata/snapshots"

// outputs maps each generated file, relative to the module root, to its content.
func outputs() (map[string][]byte, error) {
	doc, err := rest.OpenAPI()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"docs/openapi.json": doc,
		"docs/api.md":       apidocs.Render(),
	}
	for _, t := range tools.Inventory() {
		b, err := json.MarshalIndent(t.Definition(), "", "  ")
		if err != nil {
			return nil, err
		}
		files[filepath.Join(snapshotDir, t.Name+".json")] = append(b, '\n')
	}
	return files, nil
}

// strays are files in snapshotDir that no tool generates any more (a renamed or removed tool).
func strays(root string, files map[string][]byte) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, snapshotDir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name := filepath.Join(snapshotDir, e.Name())
		if _, ok := files[name]; !ok {
			out = append(out, name)
		}
	}
	return out, nil
}

// moduleRoot finds the directory holding go.mod, so the command works from any directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	files, err := outputs()
	if err != nil {
		return err
	}
	for name, b := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			return err
		}
	}
	old, err := strays(root, files)
	if err != nil {
		return err
	}
	for _, name := range old {
		if err := os.Remove(filepath.Join(root, name)); err != nil {
			return err
		}
	}
	fmt.Printf("gendocs: wrote %d files, removed %d (%s)\n", len(files), len(old), strings.Join(old, ", "))
	return nil
}
