package rest

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

func (s *Server) createClaim(w http.ResponseWriter, r *http.Request) {
	var body core.CreateClaim
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Claims.Create(r.Context(), principal(r), body)
	respond(w, r, http.StatusCreated, c, err)
}

func (s *Server) listClaims(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := s.Claims.List(r.Context(), principal(r), core.ClaimQuery{
		Limit: queryInt(r, "limit", 0), Cursor: q.Get("cursor"), Order: q.Get("order"),
		SubjectType: q.Get("subject_type"), SubjectID: q.Get("subject_id"),
	})
	respond(w, r, http.StatusOK, page, err)
}

func (s *Server) getClaim(w http.ResponseWriter, r *http.Request) {
	c, err := s.Claims.Get(r.Context(), principal(r), chi.URLParam(r, "id"))
	respond(w, r, http.StatusOK, c, err)
}

func (s *Server) verifyClaim(w http.ResponseWriter, r *http.Request) {
	run, err := s.Claims.Verify(r.Context(), principal(r), chi.URLParam(r, "id"))
	respond(w, r, http.StatusCreated, run, err)
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.Claims.Runs(r.Context(), principal(r), chi.URLParam(r, "id"))
	respond(w, r, http.StatusOK, runs, err)
}

func (s *Server) claimBundle(w http.ResponseWriter, r *http.Request) {
	b, err := s.Claims.Bundle(r.Context(), principal(r), chi.URLParam(r, "id"))
	respond(w, r, http.StatusOK, b, err)
}

func (s *Server) claimLog(w http.ResponseWriter, r *http.Request) {
	after, err := core.ParseSequenceCursor("rest.claimsLog", r.URL.Query().Get("after"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := s.Claims.Log(r.Context(), principal(r), after, queryInt(r, "limit", 0))
	respond(w, r, http.StatusOK, page, err)
}

func (s *Server) claimCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.Claims.Checkpoint(r.Context(), principal(r))
	respond(w, r, http.StatusOK, cp, err)
}

func (s *Server) exportClaimLog(w http.ResponseWriter, r *http.Request) {
	ex, err := s.Claims.Export(r.Context(), principal(r))
	respond(w, r, http.StatusOK, ex, err)
}

func (s *Server) signingKey(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Claims.SigningKey())
}
