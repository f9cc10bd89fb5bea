package rest

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	var body core.CreateProjectRequest
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := s.Auth.CreateProject(r.Context(), body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	l, err := s.Auth.ListProjects(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	if err := s.Auth.DeleteProject(r.Context(), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) {
	var body core.UpdateProjectRequest
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := s.Auth.SetRetention(r.Context(), chi.URLParam(r, "id"), body)
	respond(w, r, http.StatusOK, p, err)
}
