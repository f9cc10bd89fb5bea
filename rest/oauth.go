package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/agentstate/agentstate-go/core"
)

// The OAuth endpoints are the oauth package's; the route table holds them so that the router,
// the OpenAPI document and the reference list them with everything else.
func (s *Server) oauthRegister(w http.ResponseWriter, r *http.Request)  { s.OAuth.Register(w, r) }
func (s *Server) oauthAuthorize(w http.ResponseWriter, r *http.Request) { s.OAuth.Authorize(w, r) }
func (s *Server) oauthDecision(w http.ResponseWriter, r *http.Request)  { s.OAuth.Decision(w, r) }
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request)     { s.OAuth.Token(w, r) }
func (s *Server) oauthRevoke(w http.ResponseWriter, r *http.Request)    { s.OAuth.Revoke(w, r) }

// oauthMetadata is 404 on a server without the authorization server.
func (s *Server) oauthMetadata(w http.ResponseWriter, r *http.Request) {
	if s.OAuth == nil {
		writeError(w, r, core.E("rest", core.CodeNotFound, "Not found"))
		return
	}
	s.OAuth.Metadata(w, r)
}

// stepUp answers an OAuth access token's tools/call of a tool whose scope it lacks with 403
// insufficient_scope naming the scopes to ask for (MCP authorization's scope challenge, RFC
// 6750 §3.1): the client can then get a wider grant, where an isError result would leave it
// stuck. Other credentials (API keys, minted tokens) cannot re-authorize, so they keep the
// tool's own FORBIDDEN result.
func (s *Server) stepUp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		if s.ToolOp == nil || p.Audience == "" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := readBody(w, r, s.limits.MaxBodyBytes)
		if err != nil {
			writeError(w, r, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
			op, ok := s.ToolOp(msg.Params.Name)
			if ok && op.AcceptsTokens() && slices.Contains(core.CapabilityScopes, op.Scope) && p.Authorize(op) != nil {
				want := slices.Clone(p.Scopes)
				want = append(want, op.Scope)
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(want, " ")+
					`", resource_metadata="`+s.resourceMetadataURL(r)+`"`)
				writeError(w, r, core.E("rest.mcp", core.CodeForbidden, core.MsgMissingScope+op.Scope))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
