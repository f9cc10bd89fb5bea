package rest

import (
	"net/http"

	"github.com/agentstate/agentstate-go/core"
)

func (s *Server) acquireLease(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body core.AcquireLease
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
		writeError(w, r, err)
		return
	}
	l, err := s.Leases.Acquire(r.Context(), principal(r), key, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, l)
}

func (s *Server) leaseOnKey(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	l, err := s.Leases.OnKey(r.Context(), principal(r), key)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) leaseWaiters(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	ws, err := s.Leases.Waiters(r.Context(), principal(r), key)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ws)
}

func (s *Server) renewLease(w http.ResponseWriter, r *http.Request) {
	var body core.RenewLease
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
			writeError(w, r, err)
			return
		}
	}
	id, _ := pathParam(r, "id")
	l, err := s.Leases.Renew(r.Context(), principal(r), id, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) releaseLease(w http.ResponseWriter, r *http.Request) {
	id, _ := pathParam(r, "id")
	if err := s.Leases.Release(r.Context(), principal(r), id); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getLease(w http.ResponseWriter, r *http.Request) {
	id, _ := pathParam(r, "id")
	l, err := s.Leases.Get(r.Context(), principal(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) listLeases(w http.ResponseWriter, r *http.Request) {
	page, err := s.Leases.List(r.Context(), principal(r), r.URL.Query().Get("cursor"), queryInt(r, "limit", 0))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) listLeaseEvents(w http.ResponseWriter, r *http.Request) {
	page, err := s.Leases.Events(r.Context(), principal(r), r.URL.Query().Get("after"), queryInt(r, "limit", 0))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
