package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/agentstate/agentstate-go/core"
)

// The document is plain structs marshalled to JSON rather than kin-openapi: kin-openapi models
// OpenAPI 3.0 (nullable, no type arrays, no 2020-12 keywords), while invopop already emits
// JSON Schema 2020-12, which OpenAPI 3.1 embeds unchanged. Plain structs keep the tool
// schemas and the REST schemas byte-for-byte the same reflection, with no lossy conversion.

// Route is what the document needs of a REST route. It mirrors rest.Route field for field;
// schemas does not import rest so that rest stays free to import schemas (to serve the
// document, say) without a cycle. The generator converts rest.Routes.
type Route struct {
	Method, Pattern, Scope, Summary string
	Request, Response               any // zero values of the body types; nil when there is none
	Status                          int
	KeyOnly, AdminOnly              bool // capability tokens refused; operator token instead of a project credential
}

// restDetail is what the handlers read beyond the JSON body and path: rest.Route does not
// carry it, so it lives here, keyed by "METHOD pattern". OpenAPI fails on a route without an
// entry and on an entry without a route, so a new handler cannot go undocumented.
type restDetail struct {
	ID           string      // operationId: the handler's name
	Params       []parameter // headers and query parameters
	Headers      []string    // success response headers, from responseHeaders
	BodyOptional bool        // the handler accepts an empty body
	Stream       string      // set for server-sent events: what the stream carries
	QueryToken   bool        // also accepts ?token=as_cap_… (SSE clients cannot set headers)
}

var (
	idempotencyKey = parameter{Name: "Idempotency-Key", In: "header", Schema: &jsonschema.Schema{Type: "string", MaxLength: ptr[uint64](255)},
		Description: "Retry-safe key: a repeat with the same request returns the first response (with Idempotency-Replayed: true); a different request under the same key is 409 IDEMPOTENCY_CONFLICT."}
	ifMatch = parameter{Name: "If-Match", In: "header", Schema: &jsonschema.Schema{Type: "string"},
		Description: `Compare-and-set: act only if the state is at this version (a non-negative integer, bare or as the ETag "<version>"). On mismatch: 409 VERSION_CONFLICT carrying the current state.`}
	fencingHeader = parameter{Name: "X-Fencing-Token", In: "header", Schema: intSchema(1),
		Description: "Fencing token of your lease: refused (409 STALE_FENCING_TOKEN) unless it is the key's latest issued token."}
	fencingQuery = parameter{Name: "fencing_token", In: "query", Schema: intSchema(1),
		Description: "X-Fencing-Token for clients that cannot set headers."}
	cursorParam = func(format string) parameter {
		return parameter{Name: "cursor", In: "query", Schema: &jsonschema.Schema{Type: "string"},
			Description: "next_cursor of the previous page (" + format + ")."}
	}
	orderParam = func(field string) parameter {
		return parameter{Name: "order", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"asc", "desc"}},
			Description: "desc (default) or asc by " + field + "."}
	}
	periodStart = parameter{Name: "start", In: "query", Schema: intSchema(0), Description: "Window start, Unix ms (default: end - 30 days); filters by created_at."}
	periodEnd   = parameter{Name: "end", In: "query", Schema: intSchema(0), Description: "Window end, Unix ms (default: now)."}
	tagsParam   = parameter{Name: "tag", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Repeatable: only conversations with all these tags."}
	limitParam  = func(def, max int) parameter {
		s := intSchema(1)
		s.Maximum = json.Number(fmt.Sprint(max))
		return parameter{Name: "limit", In: "query", Schema: s,
			Description: fmt.Sprintf("Rows per page (default %d; out-of-range values are clamped).", def)}
	}
)

var responseHeaders = map[string]header{
	"ETag": {Description: `The state's version as a strong ETag, "<version>": send it back as If-Match.`,
		Schema: &jsonschema.Schema{Type: "string"}},
	"Idempotency-Replayed": {Description: "true when an earlier request with the same Idempotency-Key answered.",
		Schema: &jsonschema.Schema{Type: "string", Enum: []any{"true"}}},
}

var restDetails = map[string]restDetail{
	"PUT /api/v1/states/{state_key}": {ID: "putState", Headers: []string{"ETag", "Idempotency-Replayed"}, Params: []parameter{
		idempotencyKey, ifMatch,
		{Name: "If-None-Match", In: "header", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"*"}},
			Description: "* writes only if the state does not exist (same as expected_version 0)."},
		fencingHeader, fencingQuery,
	}},
	"GET /api/v1/states/{state_key}": {ID: "getState", Headers: []string{"ETag"}, Params: []parameter{
		{Name: "at_sequence", In: "query", Schema: intSchema(1), Description: "Time travel: the state as of this sequence (values other than a positive integer are ignored)."},
		{Name: "at_time", In: "query", Schema: intSchema(1), Description: "Time travel: the state as of this time in Unix ms (values other than a positive integer are ignored)."},
		{Name: "wait_version", In: "query", Schema: intSchema(0), Description: "Long poll: answer once the state's version is greater than this (or wait_ms passes)."},
		{Name: "wait_ms", In: "query", Schema: intSchema(0), Description: "Long poll bound in ms (default 30000, at most 60000); only with wait_version."},
	}},
	"DELETE /api/v1/states/{state_key}": {ID: "deleteState", Headers: []string{"Idempotency-Replayed"}, Params: []parameter{
		idempotencyKey, ifMatch,
		{Name: "X-Lease-Id", In: "header", Schema: &jsonschema.Schema{Type: "string"}, Description: "Id of the live lease on this key; required while one is held."},
		{Name: "lease_id", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "X-Lease-Id for clients that cannot set headers."},
		fencingHeader, fencingQuery,
	}},
	"GET /api/v1/states/{state_key}/events": {ID: "listStateEvents", Params: []parameter{
		{Name: "after", In: "query", Schema: intSchema(0), Description: "Events with a sequence greater than this (next_cursor of the previous page)."},
		limitParam(50, 500),
	}},
	"GET /api/v1/states/watch": {ID: "watchStates", QueryToken: true, Params: []parameter{
		{Name: "after", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Resume after this event id: <sequence>, or <sequence>.<lease event id> when watching leases too."},
		{Name: "Last-Event-ID", In: "header", Schema: &jsonschema.Schema{Type: "string"}, Description: "As after; what EventSource sends on reconnect."},
		{Name: "once", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"true"}}, Description: "Replay the backlog (at most 1000 events) and close."},
		{Name: "key", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Only this state key, or keys with this prefix when it ends in *."},
		{Name: "agent_id", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Only events written by this agent."},
		{Name: "leases", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"true"}}, Description: "Also deliver lease events."},
	}, Stream: "Server-sent events. Frames: state.upsert and state.delete (data: a StateEvent, as listed by /events), " +
		"lease.acquired / lease.renewed / lease.released / lease.expired (data: a LeaseEvent), " +
		"ping (data: {}; first frame and heartbeat), compacted (data: requested_after, resume_after, latest_sequence) " +
		"and error (data: the error object). Each event frame's id is the resume cursor."},
	"POST /api/v1/states/query":             {ID: "queryStates"},
	"POST /api/v1/states/{state_key}/lease": {ID: "acquireLease"},
	"GET /api/v1/states/{state_key}/lease":  {ID: "leaseOnKey"},
	"POST /api/v1/leases/{id}/renew":        {ID: "renewLease", BodyOptional: true},
	"DELETE /api/v1/leases/{id}":            {ID: "releaseLease"},
	"GET /api/v1/leases/{id}":               {ID: "getLease"},
	"GET /api/v1/leases": {ID: "listLeases", Params: []parameter{
		{Name: "cursor", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "next_cursor of the previous page."},
		limitParam(50, 100),
	}},
	"GET /api/v1/leases/events": {ID: "listLeaseEvents", Params: []parameter{
		{Name: "after", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Lease event id to read on from (next_cursor of the previous page)."},
		limitParam(50, 500),
	}},
	"POST /api/v1/capability-tokens":             {ID: "mintToken"},
	"GET /api/v1/capability-tokens":              {ID: "listTokens"},
	"DELETE /api/v1/capability-tokens/{id}":      {ID: "revokeToken"},
	"POST /api/v1/keys":                          {ID: "createKey"},
	"GET /api/v1/keys":                           {ID: "listKeys"},
	"DELETE /api/v1/keys/{id}":                   {ID: "revokeKey"},
	"POST /api/projects/{projectId}/keys":        {ID: "legacyCreateKey"},
	"GET /api/projects/{projectId}/keys":         {ID: "legacyListKeys"},
	"DELETE /api/projects/{projectId}/keys/{id}": {ID: "legacyRevokeKey"},
	"POST /api/v1/projects":                      {ID: "createProject"},
	"PATCH /api/v1/projects/{id}":                {ID: "updateProject"},
	"POST /api/v1/claims":                        {ID: "createClaim"},
	"GET /api/v1/claims": {ID: "listClaims", Params: []parameter{
		cursorParam("<created_at>.<id>"),
		orderParam("created_at"),
		{Name: "subject_type", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Only claims about this subject type."},
		{Name: "subject_id", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Only claims about this subject id."},
		limitParam(50, 100),
	}},
	"GET /api/v1/claims/{id}":               {ID: "getClaim"},
	"POST /api/v1/claims/{id}/verify":       {ID: "verifyClaim"},
	"GET /api/v1/claims/{id}/verifications": {ID: "listClaimRuns"},
	"GET /api/v1/claims/{id}/bundle":        {ID: "claimBundle"},
	"GET /api/v1/claims/log": {ID: "claimLog", Params: []parameter{
		{Name: "after", In: "query", Schema: intSchema(0), Description: "Entries with a seq greater than this (next_cursor of the previous page)."},
		limitParam(50, 500),
	}},
	"GET /api/v1/claims/log/checkpoint": {ID: "claimLogCheckpoint"},
	"GET /api/v1/claims/log/export":     {ID: "exportClaimLog"},
	"POST /api/v1/conversations":        {ID: "createConversation"},
	"GET /api/v1/conversations": {ID: "listConversations", Params: []parameter{
		cursorParam("<updated_at>.<id>"),
		orderParam("updated_at"),
		{Name: "tag", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Only conversations with this tag."},
		limitParam(50, 100),
	}},
	"GET /api/v1/conversations/search": {ID: "searchConversations", Params: []parameter{
		{Name: "q", In: "query", Required: true, Schema: &jsonschema.Schema{Type: "string"}, Description: "Words that must all occur in the conversation's messages."},
		{Name: "cursor", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "next_cursor of the previous page."},
		{Name: "order", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"updated", "relevance"}}, Description: "updated (default) or relevance."},
		limitParam(20, 100),
	}},
	"POST /api/v1/conversations/export":        {ID: "exportConversations", BodyOptional: true},
	"POST /api/v1/conversations/bulk-delete":   {ID: "bulkDeleteConversations"},
	"POST /api/v1/conversations/traces/ingest": {ID: "ingestTrace"},
	"GET /api/v1/conversations/traces": {ID: "listTraces", Params: []parameter{
		cursorParam("<updated_at>.<id>"),
		orderParam("updated_at"),
		limitParam(50, 100),
	}},
	"GET /api/v1/conversations/traces/{id}":                 {ID: "getTrace"},
	"GET /api/v1/conversations/by-external-id/{externalId}": {ID: "getConversationByExternalID"},
	"GET /api/v1/conversations/{id}": {ID: "getConversation", Params: []parameter{
		{Name: "fields", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "Comma-separated conversation fields and/or messages, or !messages for everything but messages."},
	}},
	"PUT /api/v1/conversations/{id}":           {ID: "updateConversation"},
	"DELETE /api/v1/conversations/{id}":        {ID: "deleteConversation"},
	"POST /api/v1/conversations/{id}/messages": {ID: "appendMessages"},
	"GET /api/v1/conversations/{id}/messages": {ID: "listMessages", Params: []parameter{
		{Name: "after", In: "query", Schema: &jsonschema.Schema{Type: "string"}, Description: "A message id: the page starts after it (an unknown id starts from the beginning)."},
		limitParam(100, 500),
	}},
	"GET /api/v1/conversations/{id}/analytics":       {ID: "conversationAnalytics"},
	"POST /api/v1/conversations/{id}/generate-title": {ID: "generateTitle"},
	"POST /api/v1/conversations/{id}/follow-ups":     {ID: "followUps"},
	"POST /api/v1/conversations/{id}/generate-all":   {ID: "generateAll"},
	"GET /api/v1/conversations/{id}/tags":            {ID: "conversationTags"},
	"POST /api/v1/conversations/{id}/tags":           {ID: "addConversationTags"},
	"DELETE /api/v1/conversations/{id}/tags/{tag}":   {ID: "removeConversationTag"},
	"GET /api/v1/tags":                               {ID: "projectTags"},
	"GET /api/v1/analytics/summary": {ID: "analyticsSummary", Params: []parameter{
		periodStart, periodEnd,
		tagsParam,
	}},
	"GET /api/v1/analytics/timeseries": {ID: "analyticsTimeseries", Params: []parameter{
		periodStart, periodEnd,
		tagsParam,
		{Name: "metric", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"conversations", "messages", "tokens"}}, Description: "What to sum per bucket (default conversations)."},
		{Name: "granularity", In: "query", Schema: &jsonschema.Schema{Type: "string", Enum: []any{"day", "week", "month"}}, Description: "Bucket size (default day)."},
	}},
	"GET /api/v1/analytics/tags": {ID: "analyticsTags", Params: []parameter{
		periodStart, periodEnd,
		limitParam(50, 200),
	}},
	"POST /api/v1/webhooks":        {ID: "createWebhook"},
	"GET /api/v1/webhooks":         {ID: "listWebhooks"},
	"GET /api/v1/webhooks/{id}":    {ID: "getWebhook"},
	"PUT /api/v1/webhooks/{id}":    {ID: "updateWebhook"},
	"DELETE /api/v1/webhooks/{id}": {ID: "deleteWebhook"},
	"GET /api/v1/projects":         {ID: "listProjects"},
	"DELETE /api/v1/projects/{id}": {ID: "deleteProject"},
}

// pathParams describes every path parameter name a pattern may use.
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
	Tags          []string              `json:"tags"`
	RequiredScope string                `json:"x-required-scope"`
	Security      []map[string][]string `json:"security"`
	Parameters    []parameter           `json:"parameters,omitempty"`
	RequestBody   *requestBody          `json:"requestBody,omitempty"`
	Responses     map[string]response   `json:"responses"`
}

type parameter struct {
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

// OpenAPI returns the OpenAPI 3.1 document of routes, indented, with a final newline.
func OpenAPI(routes []Route) ([]byte, error) {
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
			{"Webhooks", "Signed conversation.created deliveries."}},
		Paths: map[string]map[string]operation{},
		Components: components{
			Schemas: map[string]*jsonschema.Schema{},
			Responses: map[string]response{"Error": {Description: "The error envelope; code is machine-readable, retryable says whether the same request may later succeed.",
				Content: jsonContent("Error")}},
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
	component := func(v any) (string, error) {
		t := reflect.TypeOf(v)
		if prev, ok := typeOf[t.Name()]; ok && prev != t {
			return "", fmt.Errorf("schema name %s is used by %v and %v", t.Name(), prev, t)
		}
		typeOf[t.Name()] = t
		doc.Components.Schemas[t.Name()] = Reflect(v)
		return t.Name(), nil
	}
	env := Reflect(errorEnvelope{})
	env.Description = "The error envelope of every 4xx and 5xx response."
	doc.Components.Schemas["Error"] = env

	seen := map[string]bool{}
	for _, r := range routes {
		key := r.Method + " " + r.Pattern
		d, ok := restDetails[key]
		if !ok {
			return nil, fmt.Errorf("route %s has no entry in schemas.restDetails: add its operation id and parameters", key)
		}
		seen[key] = true
		path := pathParamRe.ReplaceAllString(r.Pattern, "{$1}")
		op := operation{
			OperationID: d.ID, Summary: r.Summary, Tags: []string{"States"}, RequiredScope: r.Scope,
			Security:  []map[string][]string{{"bearerAuth": {r.Scope}}},
			Responses: map[string]response{"4XX": {Ref: "#/components/responses/Error"}, "5XX": {Ref: "#/components/responses/Error"}},
		}
		switch {
		case strings.Contains(path, "lease"):
			op.Tags = []string{"Leases"}
		case strings.Contains(path, "keys") || strings.Contains(path, "capability-tokens"):
			op.Tags = []string{"Credentials"}
		case strings.HasPrefix(path, "/api/v1/projects"):
			op.Tags = []string{"Projects"}
		case strings.HasPrefix(path, "/api/v1/claims"):
			op.Tags = []string{"Claims"}
		case strings.HasPrefix(path, "/api/v1/conversations"), strings.HasPrefix(path, "/api/v1/tags"), strings.HasPrefix(path, "/api/v1/analytics"):
			op.Tags = []string{"Conversations"}
		case strings.HasPrefix(path, "/api/v1/webhooks"):
			op.Tags = []string{"Webhooks"}
		}
		switch {
		case r.AdminOnly:
			op.Security = []map[string][]string{{"adminToken": {}}}
		case r.KeyOnly:
			op.Security = []map[string][]string{{"apiKeyOnly": {r.Scope}}}
		}
		if d.QueryToken {
			op.Security = append(op.Security, map[string][]string{"capabilityTokenQuery": {r.Scope}})
		}
		for _, m := range pathParamRe.FindAllStringSubmatch(r.Pattern, -1) {
			desc, ok := pathParams[m[1]]
			if !ok {
				return nil, fmt.Errorf("route %s: path parameter %s has no entry in schemas.pathParams", key, m[1])
			}
			op.Parameters = append(op.Parameters, parameter{Name: m[1], In: "path", Required: true, Description: desc, Schema: &jsonschema.Schema{Type: "string"}})
		}
		op.Parameters = append(op.Parameters, d.Params...)
		if r.Request != nil {
			name, err := component(r.Request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &requestBody{Required: !d.BodyOptional, Content: jsonContent(name)}
		}
		success := response{Description: http.StatusText(r.Status)}
		switch {
		case d.Stream != "":
			success.Content = map[string]mediaType{"text/event-stream": {Schema: &jsonschema.Schema{Type: "string", Description: d.Stream}}}
		case r.Response != nil:
			name, err := component(r.Response)
			if err != nil {
				return nil, err
			}
			success.Content = jsonContent(name)
		}
		for _, h := range d.Headers {
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
	for key := range restDetails {
		if !seen[key] {
			return nil, fmt.Errorf("schemas.restDetails has %s, which is not a route: delete it", key)
		}
	}
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
