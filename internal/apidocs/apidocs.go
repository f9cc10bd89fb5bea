// Package apidocs renders docs/api.md, the API reference, from the REST route table and the MCP
// tool inventory and the JSON Schemas of their Go types, so the reference cannot drift from
// the code. `go run ./internal/gendocs` rewrites it.
package apidocs

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/rest"
	"github.com/agentstate/agentstate-go/schemas"
	"github.com/agentstate/agentstate-go/tools"
)

// Render returns the Markdown reference.
func Render() []byte {
	var b bytes.Buffer
	b.WriteString("# API reference\n\n")
	b.WriteString("Generated from `rest/routes.go`, `tools/` and the JSON Schemas of `core`'s types " +
		"(`go run ./internal/gendocs`); do not edit by hand.\n\n")
	b.WriteString("Every route and tool takes `Authorization: Bearer <credential>`: an API key (`as_live_…`) or, where the " +
		"Credential column says so, a capability token (`as_cap_…`); a token elsewhere gets 401. Project routes take the operator's " +
		"`AGENTSTATE_ADMIN_TOKEN`. Errors are " +
		"`{\"error\":{\"code\",\"message\",\"retryable\",\"details\"?}}` on REST and `isError` results with text " +
		"`Error: <CODE>: <message>` (or `INVALID_PARAMS: <field>: <message>`) followed, on a second line, by the same object as compact JSON " +
		"with a `hint` saying whether and how retrying helps (no structured content: it would fail the tool's output schema). " +
		"MCP successes are compact JSON text; tools with an `outputSchema` also send it as structured content.\n\n")
	b.WriteString("## REST\n\n| Method | Path | Credential | Scope | Success | Summary |\n|---|---|---|---|---|---|\n")
	for _, r := range rest.Routes {
		fmt.Fprintf(&b, "| %s | `%s` | %s | `%s` | %d | %s |\n", r.Method, r.Pattern, credential(r), r.Op.Scope, r.Status, r.Summary)
	}
	b.WriteString("\nUnauthenticated:\n\n| Method | Path | Success | Summary |\n|---|---|---|---|\n")
	for _, r := range rest.PublicRoutes {
		fmt.Fprintf(&b, "| %s | `%s` | %d | %s |\n", r.Method, r.Pattern, r.Status, r.Summary)
	}
	b.WriteString("\nThe conversation, tag and analytics routes are also served under v1's older `/v1` prefix " +
		"(`/v1/conversations/…`, `/v1/tags`, `/v1/analytics/…`).\n")
	b.WriteString("\n### Error statuses\n\nEach route below lists the statuses it can answer besides its success; these are the codes " +
		"each status carries (`retryable` says whether the same request may later succeed; 503 also sends `Retry-After`).\n\n" +
		"| Status | Codes |\n|---|---|\n")
	for _, st := range []int{400, 401, 403, 404, 405, 409, 413, 429, 500, 503} {
		fmt.Fprintf(&b, "| %d | `%s` |\n", st, strings.Join(rest.ErrorCodes(st), "`, `"))
	}
	for _, r := range append(slices.Clone(rest.PublicRoutes), rest.Routes...) {
		fmt.Fprintf(&b, "\n### %s %s\n\n%s. ", r.Method, r.Pattern, r.Summary)
		if r.Op.Name != "" {
			fmt.Fprintf(&b, "Scope `%s`; ", r.Op.Scope)
		}
		fmt.Fprintf(&b, "success %d; errors %s.\n", r.Status, statuses(r.ErrorStatuses()))
		if params, err := r.Parameters(); err == nil && len(params) > 0 {
			b.WriteString("\nParameters:\n\n| Name | In | Type | Required | Description |\n|---|---|---|---|---|\n")
			for _, p := range params {
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", p.Name, p.In, typeOf(p.Schema), yes(p.Required), cell(p.Description))
			}
		}
		for _, h := range r.Headers {
			fmt.Fprintf(&b, "\nResponse header `%s`: %s\n", h, rest.ResponseHeader(h))
		}
		if r.Request != nil {
			b.WriteString("\nRequest body:\n\n")
			fields(&b, schemas.Reflect(r.Request))
		}
		if r.Response != nil {
			b.WriteString("\nResponse:\n\n")
			fields(&b, schemas.Reflect(r.Response))
		}
	}
	b.WriteString("\n## MCP tools\n\nServed over stdio (`cmd/mcp-server`), streamable HTTP (`POST /api/mcp`) and SSE " +
		"(`/api/mcp/sse`). `tools/list` shows only the tools the credential's scopes allow.\n\n" +
		"| Tool | Scope | Read-only | Destructive | Idempotent |\n|---|---|---|---|---|\n")
	inv := tools.Inventory()
	sort.Slice(inv, func(i, j int) bool { return inv[i].Name < inv[j].Name })
	for _, t := range inv {
		fmt.Fprintf(&b, "| `%s` | `%s` | %v | %v | %v |\n", t.Name, t.Op.Scope, t.Hints.ReadOnly, t.Hints.Destructive, t.Hints.Idempotent)
	}
	for _, t := range inv {
		fmt.Fprintf(&b, "\n### %s — %s\n\n%s\n\nArguments:\n\n", t.Name, t.Title, t.Description)
		fields(&b, schemas.Reflect(t.Input))
	}
	fmt.Fprintf(&b, "\n---\nAgentState %s wire version.\n", core.ProductVersion)
	return b.Bytes()
}

// cell keeps a table cell's text from breaking the row.
func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func statuses(ss []int) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprint(s)
	}
	return strings.Join(out, ", ")
}

func credential(r rest.Route) string {
	switch {
	case r.Op.Access == core.Operator:
		return "admin token"
	case r.Op.Access == core.Public:
		return "none (OAuth)"
	case r.Op.AcceptsTokens():
		return "key or token"
	}
	return "key"
}

// fields writes a schema's top-level properties as a table.
func fields(b *bytes.Buffer, s *jsonschema.Schema) {
	if s.Properties == nil || s.Properties.Len() == 0 {
		b.WriteString("(no fields)\n")
		return
	}
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	b.WriteString("| Field | Type | Required | Description |\n|---|---|---|---|\n")
	for p := s.Properties.Oldest(); p != nil; p = p.Next() {
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", p.Key, typeOf(p.Value), yes(required[p.Key]), constraints(p.Value))
	}
}

func typeOf(s *jsonschema.Schema) string {
	switch {
	case s.Type == "array" && s.Items != nil:
		return typeOf(s.Items) + "[]"
	case s.Type != "":
		return s.Type
	case len(s.OneOf) > 0:
		var ts []string
		for _, o := range s.OneOf {
			ts = append(ts, o.Type)
		}
		return strings.Join(ts, " \\| ")
	}
	return "any JSON"
}

func constraints(s *jsonschema.Schema) string {
	d := strings.ReplaceAll(s.Description, "|", "\\|")
	var c []string
	if s.MinLength != nil {
		c = append(c, fmt.Sprintf("min length %d", *s.MinLength))
	}
	if s.MaxLength != nil {
		c = append(c, fmt.Sprintf("max length %d", *s.MaxLength))
	}
	if s.Minimum != "" {
		c = append(c, "≥ "+string(s.Minimum))
	}
	if s.Maximum != "" {
		c = append(c, "≤ "+string(s.Maximum))
	}
	if s.MaxItems != nil {
		c = append(c, fmt.Sprintf("at most %d items", *s.MaxItems))
	}
	if len(s.Enum) > 0 {
		c = append(c, fmt.Sprintf("one of %v", s.Enum))
	}
	if len(c) > 0 {
		d = strings.TrimSpace(d + " (" + strings.Join(c, ", ") + ")")
	}
	return d
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}
