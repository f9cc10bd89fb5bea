package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/rest"
)

// undocumented are the routes outside the OpenAPI document by design: MCP speaks JSON-RPC
// (its tools carry their own schemas), the console is HTML, /metrics is Prometheus text.
var undocumented = regexp.MustCompile(`^(/api/mcp(/.*)?|/console(/.*)?|/metrics)$`)

// maxChecked is how much of a body is kept for validation; larger bodies are validated as cut
// and fail, which says the limit needs raising rather than letting them through unchecked.
const maxChecked = 8 << 20

// servedDocument is the served /openapi.json, loaded once per test binary.
var servedDocument = sync.OnceValues(func() (*openapi3.T, error) {
	b, err := rest.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	anyAdmitsNull(doc)
	return doc, nil
})

// anyAdmitsNull spells out, in the loaded copy only, what a schema without a type ("any JSON
// value") means in OpenAPI 3.1: any of the seven JSON types, null included. kin-openapi
// validates schemas holding $refs with its OpenAPI 3.0 engine, which refuses null where no type
// names it. Nothing else is relaxed.
func anyAdmitsNull(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil || seen[r.Value] {
			return
		}
		s := r.Value
		seen[s] = true
		if (s.Type == nil || len(*s.Type) == 0) && len(s.AnyOf) == 0 && len(s.OneOf) == 0 && len(s.AllOf) == 0 && len(s.Enum) == 0 {
			s.Type = &openapi3.Types{"null", "boolean", "object", "array", "number", "string"}
		}
		walk(s.Items)
		if s.AdditionalProperties.Schema != nil {
			walk(s.AdditionalProperties.Schema)
		}
		for _, p := range s.Properties {
			walk(p)
		}
		for _, list := range []openapi3.SchemaRefs{s.AnyOf, s.OneOf, s.AllOf} {
			for _, c := range list {
				walk(c)
			}
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
}

// CheckOpenAPI wraps our handler so that every response it gives is validated against the
// OpenAPI document the server serves (kin-openapi's openapi3filter, JSON Schema 2020-12): the
// route and method must be documented, the status listed, the headers and the body valid.
// Mismatches fail tb when it ends, so no contract test's response can drift from the document
// unnoticed. The operation is found from the route chi matched, not from the URL, so a
// percent-encoded key cannot send it to the wrong one.
func CheckOpenAPI(tb testing.TB, h http.Handler) http.Handler {
	tb.Helper()
	doc, err := servedDocument()
	if err != nil {
		tb.Fatalf("the served OpenAPI document does not load: %v", err)
	}
	var (
		mu       sync.Mutex
		failures []string
	)
	tb.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range failures {
			tb.Errorf("response does not match /openapi.json: %s", f)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.NewRouteContext()
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if msg := validateResponse(doc, rctx.RoutePattern(), r, rec); msg != "" {
			mu.Lock()
			failures = append(failures, msg)
			mu.Unlock()
		}
	})
}

var chiParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

func validateResponse(doc *openapi3.T, pattern string, r *http.Request, rec *recorder) string {
	if pattern == "" || pattern == "/*" || undocumented.MatchString(pattern) {
		return "" // no route matched (a 404 from NotFound), or a route outside the document
	}
	path := chiParam.ReplaceAllString(pattern, "{$1}")
	where := fmt.Sprintf("%s %s (route %s) answered %d", r.Method, r.URL.RequestURI(), path, rec.status)
	item := doc.Paths.Find(path)
	if item == nil {
		return where + ": the route is not in the document"
	}
	op := item.GetOperation(r.Method)
	if op == nil {
		if rec.status == http.StatusMethodNotAllowed {
			return ""
		}
		return where + ": the method is not in the document"
	}
	params := map[string]string{}
	for _, m := range chiParam.FindAllStringSubmatch(pattern, -1) {
		params[m[1]] = chi.RouteContext(r.Context()).URLParam(m[1])
	}
	ct := rec.Header().Get("Content-Type")
	prose := strings.HasPrefix(ct, "text/event-stream") || strings.HasPrefix(ct, "text/html")
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params,
			Route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: r.Method, Operation: op},
		},
		Status: rec.status,
		Header: rec.Header(),
		Body:   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			// An event stream's body is the events and a page's is HTML, described in prose, not
			// a JSON value (their status and headers are still checked).
			ExcludeResponseBody: prose,
		},
	}
	if err := openapi3filter.ValidateResponse(r.Context(), in); err != nil {
		body := rec.body.String()
		if len(body) > 600 {
			body = body[:600] + "…"
		}
		return fmt.Sprintf("%s: %v\n  body: %s", where, err, body)
	}
	return ""
}

// recorder passes the response through and keeps its status and body for validation. It
// forwards Flush (SSE) and exposes the writer beneath to http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	if !strings.HasPrefix(r.Header().Get("Content-Type"), "text/event-stream") && r.body.Len() < maxChecked {
		r.body.Write(b[:min(len(b), maxChecked-r.body.Len())])
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
