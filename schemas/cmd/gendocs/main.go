// Command gendocs writes the generated API documents: schemas/openapi.json (OpenAPI 3.1, from
// rest.Routes and core's types) and docs/api.md (the Markdown reference rendered by
// internal/apidocs from the same route table and the MCP tool inventory). It lives apart from
// package schemas because it needs rest and tools, and tools imports schemas.
//
//	go run ./schemas/cmd/gendocs     (or: go generate ./schemas/)
//
// TestGeneratedFilesAreCurrent fails when a committed file differs from what this writes.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentstate/agentstate-go/internal/apidocs"
	"github.com/agentstate/agentstate-go/rest"
	"github.com/agentstate/agentstate-go/schemas"
)

// outputs maps each generated file, relative to the module root, to its content.
func outputs() (map[string][]byte, error) {
	routes := make([]schemas.Route, len(rest.Routes))
	for i, r := range rest.Routes {
		routes[i] = schemas.Route{Method: r.Method, Pattern: r.Pattern, Scope: r.Scope, Summary: r.Summary,
			Request: r.Request, Response: r.Response, Status: r.Status, KeyOnly: !r.AcceptsTokens() && !r.AdminOnly(), AdminOnly: r.AdminOnly()}
	}
	doc, err := schemas.OpenAPI(routes)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"schemas/openapi.json": doc,
		"docs/api.md":          apidocs.Render(),
	}, nil
}

// moduleRoot finds the directory holding go.mod, so the command works from the root (go run)
// and from schemas/ (go generate) alike.
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
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
