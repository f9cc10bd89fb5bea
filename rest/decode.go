package rest

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/jsonx"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// decodeBody reads a bounded JSON object body into dst (internal/jsonx: encoding/json's semantics,
// faster). Unknown fields are ignored, as v1 does.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	const op = "rest.decodeBody"
	b, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	if err := core.RequireUTF8(op, b); err != nil {
		return err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return core.E(op, core.CodeBadRequest, "Invalid JSON body")
	}
	if kind := core.JSONKind(b); kind != "object" {
		if !jsonx.Valid(b) {
			return core.E(op, core.CodeBadRequest, "Invalid JSON body")
		}
		return core.E(op, core.CodeBadRequest, "Expected object, received "+kind)
	}
	if err := jsonx.Unmarshal(b, dst); err != nil {
		return core.DecodeError(op, err)
	}
	return nil
}

// pathParam returns a percent-decoded path segment: "a%2Fb" names the state key "a/b".
func pathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v, nil // no escapes in the path: chi already has the decoded value
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", core.E("rest.pathParam", core.CodeBadRequest, "Malformed percent-encoding in "+name)
	}
	return u, nil
}

// queryInt reads an integer query parameter; absent or malformed gives def.
func queryInt(r *http.Request, name string, def int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil {
		return def
	}
	return n
}

// versionHeader parses If-Match: a version number, optionally quoted as an ETag.
func versionHeader(r *http.Request, name string) (*int64, error) {
	v := strings.TrimSpace(r.Header.Get(name))
	if v == "" {
		return nil, nil
	}
	v = strings.TrimPrefix(v, "W/")
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 0 {
		return nil, core.E("rest.versionHeader", core.CodeBadRequest, name+" must be a state version (a non-negative integer)")
	}
	return &n, nil
}

func etag(version int64) string { return `"` + itoa(version) + `"` }

// fencingHeader reads X-Fencing-Token (or ?fencing_token= where headers are awkward).
func fencingHeader(r *http.Request) (*int64, error) {
	v := r.Header.Get("X-Fencing-Token")
	if v == "" && r.URL.RawQuery != "" {
		v = r.URL.Query().Get("fencing_token")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return nil, core.E("rest.fencingHeader", core.CodeBadRequest, "X-Fencing-Token must be a positive integer")
	}
	return &n, nil
}
