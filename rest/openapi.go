package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/invopop/jsonschema"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/oauth"
	"github.com/agentstate/agentstate-go/schemas"
)

// The document is plain structs marshalled to JSON rather than kin-openapi: kin-openapi models
// OpenAPI 3.0 (nullable, no type arrays, no 2020-12 keywords), while invopop already emits
// JSON Schema 2020-12, which OpenAPI 3.1 embeds unchanged. Plain structs keep the tool
// schemas and the REST schemas byte-for-byte the same reflection, with no lossy conversion.

var (
	idempotencyKeyParam = Param{Name: "Idempotency-Key", In: "header", Schema: &jsonschema.Schema{Type: "string", MaxLength: ptr[uint64](255)},
		Description: "Retry-safe key: a repeat with the same request returns the first response (with Idempotency-Replayed: true); a different request under the same key is 409 IDEMPOTENCY_CONFLICT."}
	ifMatchParam = Param{Name: "If-Match", In: "header", Schema: &jsonschema.Schema{Type: "string"},
		Description: `Compare-and-set: act only if the state is at this version (a non-negative integer, bare or as the ETag "<version>"). On mismatch: 409 VERSION_CONFLICT carrying the current state.`}
	fencingHeaderParam = Param{Name: "X-Fencing-Token", In: "header", Schema: intSchema(1),
		Description: "Fencing token of your lease: refused (409 STALE_FENCING_TOKEN) unless it is the key's latest issued token."}
	fencingQueryParam = Param{Name: "fencing_token", In: "query", Schema: intSchema(1),
		Description: "X-Fencing-Token for clients that cannot set headers."}
	cursorParam = func(format string) Param {
		return Param{Name: "cursor", In: "query", Schema: &jsonschema.Schema{Type: "string"},
			Description: "next_cursor of the previous page (" + format + ")."}
	}
	orderParam = func(field string) Param {
		return Param{Name: "order", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"asc", "desc"}},
			Description: "desc (default) or asc by " + field + "."}
	}
	periodStart = Param{Name: "start", In: "query", Schema: intSchema(0), Description: "Window start, Unix ms (default: end - 30 days); filters by created_at."}
	periodEnd   = Param{Name: "end", In: "query", Schema: intSchema(0), Description: "Window end, Unix ms (default: now)."}
	tagsParam   = Param{Name: "tag", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Repeatable: only conversations with all these tags."}
	limitParam  = func(def, max int) Param {
		s := intSchema(1)
		s.Maximum = json.Number(fmt.Sprint(max))
		return Param{Name: "limit", In: "query", Schema: s,
			Description: fmt.Sprintf("Rows per page (default %d; out-of-range values are clamped).", def)}
	}
)

var responseHeaders = map[string]header{
	"ETag": {Description: `The state's version as a strong ETag, "<version>": send it back as If-Match.`,
		Schema: &jsonschema.Schema{Type: "string"}},
	"Idempotency-Replayed": {Description: "true when an earlier request with the same Idempotency-Key answered.",
		Schema: &jsonschema.Schema{Type: "string", Enum: []any{"true"}}},
}

// pathParams describes every path Param name a pattern may use.
var pathParams = map[string]string{
	"state_key":  "The state's key, percent-encoded: a%2Fb names the key a/b.",
	"id":         "The id of the lease, key, token or project the route names.",
	"projectId":  "The caller's own project id (legacy route).",
	"externalId": "The conversation's external_id, percent-encoded.",
	"tag":        "A tag.",
}

// errorEnvelope is the body of every 4xx and 5xx.
type errorEnvelope struct {
	Error core.WireError `json:"error"`
}

type document struct {
	OpenAPI    string                          `json:"openapi"`
	Info       info                            `json:"info"`
	Servers    []server                        `json:"servers"`
	Security   []map[string][]string           `json:"security"`
	Tags       []tag                           `json:"tags"`
	Paths      map[string]map[string]operation `json:"paths"`
	Components components                      `json:"components"`
}

type info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

type server struct {
	URL         string `json:"url"`
	Description string `json:"description"`
}

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type operation struct {
	OperationID   string                `json:"operationId"`
	Summary       string                `json:"summary"`
	Description   string                `json:"description,omitempty"`
	Deprecated    bool                  `json:"deprecated,omitempty"`
	Tags          []string              `json:"tags"`
	RequiredScope string                `json:"x-required-scope,omitempty"`
	Security      []map[string][]string `json:"security"`
	Parameters    []Param               `json:"parameters,omitempty"`
	RequestBody   *requestBody          `json:"requestBody,omitempty"`
	Responses     map[string]response   `json:"responses"`
}

type Param struct {
	Name        string             `json:"name"`
	In          string             `json:"in"`
	Description string             `json:"description"`
	Required    bool               `json:"required,omitempty"`
	Schema      *jsonschema.Schema `json:"schema"`
}

type requestBody struct {
	Required bool                 `json:"required"`
	Content  map[string]mediaType `json:"content"`
}

type response struct {
	Ref         string               `json:"$ref,omitempty"`
	Description string               `json:"description,omitempty"`
	Headers     map[string]header    `json:"headers,omitempty"`
	Content     map[string]mediaType `json:"content,omitempty"`
}

type header struct {
	Description string             `json:"description"`
	Schema      *jsonschema.Schema `json:"schema"`
}

type mediaType struct {
	Schema *jsonschema.Schema `json:"schema"`
}

type components struct {
	Schemas         map[string]*jsonschema.Schema `json:"schemas"`
	Responses       map[string]response           `json:"responses"`
	SecuritySchemes map[string]securityScheme     `json:"securitySchemes"`
}

type securityScheme struct {
	Type        string `json:"type"`
	Scheme      string `json:"scheme,omitempty"`
	In          string `json:"in,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description"`
}

// chi allows {name:regexp}; OpenAPI wants {name}.
var pathParamRe = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// openAPIDocument is served at /openapi.json: built once from the route table, so what the
// server describes is what it routes (docs/openapi.json is the same bytes, checked current).
// (Set in init: OpenAPI reads PublicRoutes, which serves this.)
var openAPIDocument func() ([]byte, error)

func init() { openAPIDocument = sync.OnceValues(OpenAPI) }

// OpenAPI returns the OpenAPI 3.1 document of Routes, indented, with a final newline.
func OpenAPI() ([]byte, error) {
	doc := document{
		OpenAPI: "3.1.0",
		Info: info{Title: "AgentState", Version: core.ProductVersion, Description: "State and coordination for AI agent fleets, " +
			"wire-compatible with AgentState v1. Every error is {\"error\":{\"code\",\"message\",\"retryable\",\"details\"?}}; " +
			"every response carries X-Request-Id (a well-formed one sent by the client is echoed). " +
			"The same operations are MCP tools at /api/mcp."},
		Servers:  []server{{URL: "http://127.0.0.1:8080", Description: "cmd/http-server's default address (-addr, AGENTSTATE_ADDR)"}},
		Security: []map[string][]string{{"bearerAuth": {}}},
		Tags: []tag{{"States", "Versioned JSON objects under string keys, their event log and watch."}, {"Leases", "Fenced, expiring locks on state keys."},
			{"Credentials", "API keys and delegable capability tokens."}, {"Projects", "Operator-only project management (AGENTSTATE_ADMIN_TOKEN)."},
			{"Claims", "Assertions with evidence, verified by the server, in a signed hash-chained log."},
			{"Conversations", "Message history, tags, full-text search, traces and analytics (also under the legacy /v1 prefix)."},
			{"Webhooks", "Signed conversation.created deliveries."},
			{"Service", "Unauthenticated discovery and health."},
			{"OAuth", "The OAuth 2.1 authorization server for /api/mcp (metadata at /.well-known/oauth-authorization-server). Errors here are RFC 6749's {\"error\",\"error_description\"}."},
			{"Legacy", "v1's older /v1 prefix for conversations, tags and analytics: the same operations as under /api/v1."}},
		Paths: map[string]map[string]operation{},
		Components: components{
			Schemas:   map[string]*jsonschema.Schema{},
			Responses: map[string]response{},
			SecuritySchemes: map[string]securityScheme{
				"bearerAuth": {Type: "http", Scheme: "bearer",
					Description: "An API key (as_live_…) or a capability token (as_cap_…). A route needs the scope in x-required-scope."},
				"apiKeyOnly": {Type: "http", Scheme: "bearer",
					Description: "An API key (as_live_…) only: a capability token is refused with 401."},
				"adminToken": {Type: "http", Scheme: "bearer",
					Description: "The operator token configured as AGENTSTATE_ADMIN_TOKEN; without one the route always answers 401."},
				"capabilityTokenQuery": {Type: "apiKey", In: "query", Name: "token",
					Description: "A capability token (as_cap_…) as ?token=, only where a browser EventSource cannot set headers."},
			},
		},
	}
	typeOf := map[string]reflect.Type{}
	// component registers v's schema: requests as accepted (Reflect, open to unknown fields,
	// which the server ignores as v1 does), responses as produced (Output: every field that
	// can be null says so).
	component := func(v any, gen func(any) *jsonschema.Schema) (string, error) {
		t := reflect.TypeOf(v)
		if prev, ok := typeOf[t.Name()]; ok && prev != t {
			return "", fmt.Errorf("schema name %s is used by %v and %v", t.Name(), prev, t)
		}
		typeOf[t.Name()] = t
		sch := gen(v)
		if prev, ok := doc.Components.Schemas[t.Name()]; ok && !sameSchema(prev, sch) {
			return "", fmt.Errorf("schema %s is both a request and a response and they differ (nullable fields): give one its own type", t.Name())
		}
		doc.Components.Schemas[t.Name()] = sch
		return t.Name(), nil
	}
	request := func(v any) *jsonschema.Schema {
		s := schemas.Reflect(v)
		schemas.Walk(s, func(s *jsonschema.Schema) { s.AdditionalProperties = nil })
		return s
	}
	output := func(v any) *jsonschema.Schema {
		s := schemas.Output(v)
		if _, ok := openSchemas[reflect.TypeOf(v)]; ok {
			s.AdditionalProperties = nil
		}
		return s
	}
	env := schemas.Output(errorEnvelope{})
	env.Description = "The error envelope of every 4xx and 5xx response."
	if code, ok := env.Properties.Get("error"); ok {
		if c, ok := code.Properties.Get("code"); ok {
			c.Enum = errorCodes()
		}
	}
	doc.Components.Schemas["Error"] = env
	for status, codes := range errorResponses() {
		doc.Components.Responses[errorResponseName(status)] = response{
			Description: http.StatusText(status) + ": " + strings.Join(codes, ", ") + ".",
			Content:     jsonContent("Error")}
	}

	type entry struct {
		r      Route
		path   string
		public bool
		legacy bool
	}
	var entries []entry
	for _, r := range PublicRoutes {
		entries = append(entries, entry{r: r, path: r.Pattern, public: true})
	}
	for _, r := range Routes {
		entries = append(entries, entry{r: r, path: r.Pattern})
		if legacy, ok := legacyPath(r.Pattern); ok {
			entries = append(entries, entry{r: r, path: legacy, legacy: true})
		}
	}
	for _, e := range entries {
		r := e.r
		key := r.Method + " " + e.path
		path := pathParamRe.ReplaceAllString(e.path, "{$1}")
		op := operation{
			OperationID: r.ID, Summary: r.Summary, Tags: []string{"States"}, RequiredScope: r.Op.Scope,
			Security:  []map[string][]string{{"bearerAuth": {r.Op.Scope}}},
			Responses: map[string]response{},
		}
		if e.legacy {
			op.OperationID = "legacy" + strings.ToUpper(r.ID[:1]) + r.ID[1:]
			op.Deprecated = true
			op.Description = "v1's older prefix: the same operation as " + r.ID + " (" + r.Pattern + ")."
		}
		for _, status := range r.ErrorStatuses() {
			switch {
			case status == http.StatusSeeOther: // OAuth's error redirect to the client (RFC 6749 §4.1.2.1)
				op.Responses[fmt.Sprint(status)] = response{Description: "See Other: the error goes to the client's redirect_uri as error and state"}
			case r.HTML: // the consent screen answers its errors as pages too
				op.Responses[fmt.Sprint(status)] = response{Description: http.StatusText(status) + " (an HTML page)",
					Content: map[string]mediaType{"text/html": {Schema: &jsonschema.Schema{Type: "string"}}}}
			case r.Op.Access == core.Public: // OAuth clients parse RFC 6749's shape, not the envelope
				name, err := component(oauth.ErrorBody{}, output)
				if err != nil {
					return nil, err
				}
				op.Responses[fmt.Sprint(status)] = response{Description: http.StatusText(status) + " (RFC 6749 §5.2)", Content: jsonContent(name)}
			default:
				op.Responses[fmt.Sprint(status)] = response{Ref: "#/components/responses/" + errorResponseName(status)}
			}
		}
		switch {
		case e.public:
			op.Tags = []string{"Service"}
			op.Security = []map[string][]string{}
		case strings.Contains(path, "lease"):
			op.Tags = []string{"Leases"}
		case strings.Contains(path, "keys") || strings.Contains(path, "capability-tokens"):
			op.Tags = []string{"Credentials"}
		case strings.HasPrefix(path, "/api/v1/projects"):
			op.Tags = []string{"Projects"}
		case strings.HasPrefix(path, "/api/v1/claims"):
			op.Tags = []string{"Claims"}
		case strings.HasPrefix(r.Pattern, "/api/v1/conversations"), strings.HasPrefix(r.Pattern, "/api/v1/tags"), strings.HasPrefix(r.Pattern, "/api/v1/analytics"):
			op.Tags = []string{"Conversations"}
		case strings.HasPrefix(path, "/api/v1/webhooks"):
			op.Tags = []string{"Webhooks"}
		case strings.HasPrefix(path, "/api/oauth"):
			op.Tags = []string{"OAuth"}
		}
		if e.legacy {
			op.Tags = append(op.Tags, "Legacy")
		}
		switch {
		case e.public || r.Op.Access == core.Public:
			op.Security = []map[string][]string{}
		case r.Op.Access == core.Operator:
			op.Security = []map[string][]string{{"adminToken": {}}}
		case r.Op.Access == core.KeysOnly:
			op.Security = []map[string][]string{{"apiKeyOnly": {r.Op.Scope}}}
		}
		if r.QueryToken {
			op.Security = append(op.Security, map[string][]string{"capabilityTokenQuery": {r.Op.Scope}})
		}
		params, err := parameters(e.path, r.Params)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", key, err)
		}
		op.Parameters = params
		if r.Request != nil {
			name, err := component(r.Request, request)
			if err != nil {
				return nil, err
			}
			content := jsonContent(name)
			if r.Form {
				content = map[string]mediaType{"application/x-www-form-urlencoded": content["application/json"]}
			}
			op.RequestBody = &requestBody{Required: !r.BodyOptional, Content: content}
		}
		success := response{Description: http.StatusText(r.Status)}
		switch {
		case r.HTML && r.Status == http.StatusSeeOther: // a redirect to the client: no body
		case r.HTML:
			success.Content = map[string]mediaType{"text/html": {Schema: &jsonschema.Schema{Type: "string"}}}
		case r.Stream != "":
			success.Content = map[string]mediaType{"text/event-stream": {Schema: &jsonschema.Schema{Type: "string", Description: r.Stream}}}
		case r.Response != nil:
			name, err := component(r.Response, output)
			if err != nil {
				return nil, err
			}
			success.Content = jsonContent(name)
			if r.Projection {
				// ?fields= drops keys, so the projected body has none required.
				proj := *doc.Components.Schemas[name]
				proj.Required = nil
				proj.Description = name + " with only the keys ?fields= asked for."
				doc.Components.Schemas[name+"Fields"] = &proj
				success.Content = map[string]mediaType{"application/json": {Schema: &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
					{Ref: "#/components/schemas/" + name}, {Ref: "#/components/schemas/" + name + "Fields"}}}}}
			}
		}
		for _, h := range r.Headers {
			if success.Headers == nil {
				success.Headers = map[string]header{}
			}
			success.Headers[h] = responseHeaders[h]
		}
		op.Responses[fmt.Sprint(r.Status)] = success
		if doc.Paths[path] == nil {
			doc.Paths[path] = map[string]operation{}
		}
		doc.Paths[path][strings.ToLower(r.Method)] = op
	}
	treeSchemas(doc.Components.Schemas)
	shareComponents(doc.Components.Schemas)
	// No HTML escaping: descriptions say "<version>", and \u003c helps no reader.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func jsonContent(schema string) map[string]mediaType {
	return map[string]mediaType{"application/json": {Schema: &jsonschema.Schema{Ref: "#/components/schemas/" + schema}}}
}

func intSchema(min int) *jsonschema.Schema {
	return &jsonschema.Schema{Type: "integer", Minimum: json.Number(fmt.Sprint(min))}
}

func ptr[T any](v T) *T { return &v }

func sameSchema(a, b *jsonschema.Schema) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// openSchemas are response types whose objects may carry more keys than they list: metadata
// other specifications extend.
var openSchemas = map[reflect.Type]struct{}{reflect.TypeOf(oauth.ProtectedResource{}): {}, reflect.TypeOf(oauth.ServerMetadata{}): {}}

// openAPIDocumentBody stands for this document in its own description.
type openAPIDocumentBody struct{}

// JSONSchema says "an object": the document does not describe its own schema.
func (openAPIDocumentBody) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", Description: "An OpenAPI 3.1 document."}
}

// errorCodes are every code an error envelope may carry.
func errorCodes() []any {
	var codes []string
	for c := range httpStatus {
		codes = append(codes, string(c))
	}
	slices.Sort(codes)
	out := make([]any, len(codes))
	for i, c := range codes {
		out[i] = c
	}
	return out
}

// errorResponses lists, per HTTP status, the codes answered with it.
func errorResponses() map[int][]string {
	by := map[int][]string{}
	for c, status := range httpStatus {
		by[status] = append(by[status], string(c))
	}
	for _, codes := range by {
		slices.Sort(codes)
	}
	return by
}

func errorResponseName(status int) string { return fmt.Sprintf("Error%d", status) }

// Parameters are the route's path parameters, then the headers and query parameters it reads.
func (r Route) Parameters() ([]Param, error) { return parameters(r.Pattern, r.Params) }

func parameters(pattern string, extra []Param) ([]Param, error) {
	var out []Param
	for _, m := range pathParamRe.FindAllStringSubmatch(pattern, -1) {
		desc, ok := pathParams[m[1]]
		if !ok {
			return nil, fmt.Errorf("path parameter %s has no entry in pathParams", m[1])
		}
		out = append(out, Param{Name: m[1], In: "path", Required: true, Description: desc, Schema: &jsonschema.Schema{Type: "string"}})
	}
	return append(out, extra...), nil
}

// ErrorCodes are the error codes answered with status.
func ErrorCodes(status int) []string { return errorResponses()[status] }

// ResponseHeader describes a success header the route names in Headers.
func ResponseHeader(name string) string { return responseHeaders[name].Description }

// ErrorStatuses are the error statuses r can answer: what every authenticated route may (bad
// input, credentials, scope, rate limit, store outage, a bug), a body too large where there is
// a body, not found where the path names something, conflicts where it takes Idempotency-Key,
// If-Match or a fencing token, and the route's own Errors. The contract suite fails on any other.
func (r Route) ErrorStatuses() []int {
	statuses := []int{http.StatusInternalServerError}
	if r.Op.Name != "" { // authenticated
		statuses = append(statuses, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
			http.StatusTooManyRequests, http.StatusServiceUnavailable)
	}
	if r.Request != nil {
		statuses = append(statuses, http.StatusRequestEntityTooLarge)
	}
	if strings.Contains(r.Pattern, "{") {
		statuses = append(statuses, http.StatusNotFound)
	}
	for _, p := range r.Params {
		switch p.Name {
		case idempotencyKeyParam.Name, ifMatchParam.Name, fencingHeaderParam.Name:
			statuses = append(statuses, http.StatusConflict) // IDEMPOTENCY_*, VERSION_CONFLICT, STALE_FENCING_TOKEN
		}
	}
	statuses = append(statuses, r.Errors...)
	slices.Sort(statuses)
	return slices.Compact(statuses)
}

// treeSchemas gives a trace's observation tree its recursive schema: Reflect inlines every
// type and so cannot express recursion (Observation leaves children out); here children is a
// list of Observation by reference.
func treeSchemas(all map[string]*jsonschema.Schema) {
	trace, ok := all["Trace"]
	if !ok {
		return
	}
	obs, ok := trace.Properties.Get("observations")
	if !ok || obs.Items == nil {
		return
	}
	node := obs.Items
	children := &jsonschema.Schema{Type: "array", Items: &jsonschema.Schema{Ref: "#/components/schemas/Observation"},
		Description: "Observations whose parent_message_id is this one, by start_time."}
	node.Properties.Set("children", children)
	node.Required = append(node.Required, "children")
	all["Observation"] = node
	obs.Items = &jsonschema.Schema{Ref: "#/components/schemas/Observation"}
}

// shareComponents replaces every sub-schema that is some component's schema (up to its
// description) with a $ref to that component. Reflect inlines everything, which tools need;
// in the document, references let generated clients give a State in a page the same type as a
// State on its own, instead of one anonymous copy per place.
func shareComponents(all map[string]*jsonschema.Schema) {
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic output when two components are the same schema
	byShape := map[string]string{}
	for _, name := range names {
		if !hasProperties(all[name]) {
			continue // a bare {"type":"object"} says nothing that would make two the same
		}
		if k := shape(all[name]); byShape[k] == "" {
			byShape[k] = name
		}
	}
	for _, name := range names {
		root := all[name]
		schemas.Walk(root, func(sub *jsonschema.Schema) {
			if sub == root || sub.Ref != "" || !hasProperties(sub) {
				return
			}
			if target, ok := byShape[shape(sub)]; ok {
				*sub = jsonschema.Schema{Ref: "#/components/schemas/" + target, Description: sub.Description}
			}
		})
	}
}

func hasProperties(s *jsonschema.Schema) bool { return s.Properties != nil && s.Properties.Len() > 0 }

// shape is s encoded without its description.
func shape(s *jsonschema.Schema) string {
	c := *s
	c.Description = ""
	b, _ := json.Marshal(&c)
	return string(b)
}
