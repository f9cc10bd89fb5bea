package rest

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

// legacyProject enforces the legacy /api/projects/{projectId}/keys rule: the path names the
// caller's own project.
func legacyProject(r *http.Request) error {
	if id := chi.URLParam(r, "projectId"); id != "" && id != principal(r).ProjectID {
		return core.E("rest.keys", core.CodeForbidden, "Cannot manage keys for another project")
	}
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var body core.CreateKeyRequest
	err := legacyProject(r)
	if err == nil {
		err = decodeBody(w, r, s.limits.MaxBodyBytes, &body)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	k, err := s.Keys.CreateAPIKey(r.Context(), principal(r), body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, k)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	if err := legacyProject(r); err != nil {
		writeError(w, r, err)
		return
	}
	l, err := s.Keys.ListAPIKeys(r.Context(), principal(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	err := legacyProject(r)
	if err == nil {
		err = s.Keys.RevokeAPIKey(r.Context(), principal(r), chi.URLParam(r, "id"))
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) {
	var body core.MintTokenRequest
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
		writeError(w, r, err)
		return
	}
	t, err := s.Keys.MintToken(r.Context(), principal(r), body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	l, err := s.Keys.ListTokens(r.Context(), principal(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := s.Keys.RevokeToken(r.Context(), principal(r), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) usage(w http.ResponseWriter, r *http.Request) {
	var watchers core.WatchCounter
	if s.Watcher != nil {
		watchers = s.Watcher.Watchers
	}
	u, err := core.Usage(r.Context(), principal(r), s.Keys, s.RateLimiter, watchers)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
