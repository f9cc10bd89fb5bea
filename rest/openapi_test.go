package rest_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/rest"
)

// The committed copy, docs/openapi.json, is kept current by TestGeneratedFilesAreCurrent
// (internal/gendocs); these tests check that what the served document says matches the
// router, read as a client would read it.

func loadOpenAPI(t *testing.T) map[string]any {
	b, err := rest.OpenAPI()
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

// TestOpenAPIDescribesEveryRoute: each route (and its legacy /v1 twin) appears with its scope,
// success status, path parameters and error responses, so the document cannot promise less or
// other than the router. The contract suite checks every real response against it
// (testenv.CheckOpenAPI).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	assert.Equal(t, "3.1.0", doc["openapi"])
	assert.Equal(t, core.ProductVersion, dig(doc, "info", "version"))
	paths := doc["paths"].(map[string]any)
	ops := 0
	for _, item := range paths {
		ops += len(item.(map[string]any))
	}
	routes := append(slices.Clone(rest.PublicRoutes), rest.Routes...)
	for _, r := range rest.Routes {
		if legacy, ok := strings.CutPrefix(r.Pattern, "/api"); ok && !strings.HasPrefix(legacy, "/v1/states") &&
			(strings.HasPrefix(legacy, "/v1/conversations") || strings.HasPrefix(legacy, "/v1/tags") || strings.HasPrefix(legacy, "/v1/analytics")) {
			r.Pattern = legacy
			routes = append(routes, r)
		}
	}
	assert.Equal(t, len(routes), ops, "one operation per route")
	param := regexp.MustCompile(`\{([^}:]+)`)
	for _, r := range routes {
		name := r.Method + " " + r.Pattern
		op, ok := dig(paths, r.Pattern, strings.ToLower(r.Method)).(map[string]any)
		require.True(t, ok, "%s is missing", name)
		responses := op["responses"].(map[string]any)
		assert.Contains(t, responses, fmt.Sprint(r.Status), name)
		switch {
		case r.Op.Access == core.Public: // OAuth: RFC 6749 error bodies or HTML pages, no credential
			assert.Nil(t, dig(responses, "500", "$ref"), "%s: not the v1 envelope", name)
			assert.NotNil(t, dig(responses, "500", "content"), name)
			assert.Equal(t, []any{}, op["security"], "%s is public", name)
		case slices.ContainsFunc(rest.PublicRoutes, func(p rest.Route) bool { return p.Pattern == r.Pattern }):
			assert.Equal(t, "#/components/responses/Error500", dig(responses, "500", "$ref"), name)
			assert.Equal(t, []any{}, op["security"], "%s is public", name)
		default:
			assert.Equal(t, "#/components/responses/Error500", dig(responses, "500", "$ref"), name)
			scope, _ := op["x-required-scope"].(string) // absent where only the operator token is asked for
			assert.Equal(t, r.Op.Scope, scope, name)
			assert.Contains(t, fmt.Sprint(op["security"]), r.Op.Scope, name)
			assert.Equal(t, "#/components/responses/Error401", dig(responses, "401", "$ref"), name)
		}
		assert.Equal(t, r.Request != nil, op["requestBody"] != nil, "%s: request body", name)
		declared := map[string]bool{}
		for _, p := range asSlice(op["parameters"]) {
			p := p.(map[string]any)
			if p["in"] == "path" {
				declared[p["name"].(string)] = true
				assert.Equal(t, true, p["required"], "%s: path parameter %s", name, p["name"])
			}
		}
		for _, m := range param.FindAllStringSubmatch(r.Pattern, -1) {
			assert.True(t, declared[m[1]], "%s: path parameter %s undeclared", name, m[1])
			delete(declared, m[1])
		}
		assert.Empty(t, declared, "%s: path parameters not in the path", name)
	}
}

// TestOpenAPIRefsResolve: a dangling $ref breaks every client generator.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				assert.NotNil(t, dig(doc, parts...), "dangling $ref %s", ref)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
}

// TestOpenAPIDocumentsTheErrorEnvelope pins the v1 envelope every 4xx/5xx carries.
func TestOpenAPIDocumentsTheErrorEnvelope(t *testing.T) {
	doc := loadOpenAPI(t)
	inner := dig(doc, "components", "schemas", "Error", "properties", "error").(map[string]any)
	assert.ElementsMatch(t, []any{"code", "message", "retryable"}, inner["required"])
	assert.Contains(t, inner["properties"], "details")
}

// TestEveryRouteHasAnOperationID: generated clients name their methods by operationId, so
// each route needs one of its own.
func TestEveryRouteHasAnOperationID(t *testing.T) {
	seen := map[string]string{}
	for _, r := range append(slices.Clone(rest.PublicRoutes), rest.Routes...) {
		name := r.Method + " " + r.Pattern
		require.NotEmpty(t, r.ID, name)
		assert.NotContains(t, seen, r.ID, "%s and %s share operationId %s", seen[r.ID], name, r.ID)
		seen[r.ID] = name
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
