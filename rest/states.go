package rest

import (
	"net/http"
	"strings"

	"github.com/agentstate/agentstate-go/core"
)

func (s *Server) putState(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body core.StateWrite
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &body); err != nil {
		writeError(w, r, err)
		return
	}
	ifMatch, err := versionHeader(r, "If-Match")
	if err == nil && body.FencingToken == nil {
		body.FencingToken, err = fencingHeader(r)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	st, replayed, err := s.States.Put(r.Context(), principal(r), core.PutState{
		Key: key, Body: body, IdempotencyKey: headerValue(r.Header, "Idempotency-Key"), IfMatch: ifMatch,
		CreateOnly: strings.TrimSpace(headerValue(r.Header, "If-None-Match")) == "*",
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	if replayed {
		w.Header().Set("Idempotency-Replayed", "true")
	}
	w.Header()["Etag"] = []string{etag(st.Version)}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	var at core.At
	if r.URL.RawQuery != "" { // a plain GET has no query to parse (url.Values is a map)
		q := r.URL.Query()
		if q.Has("wait_version") {
			s.longPoll(w, r, key)
			return
		}
		at = core.At{Sequence: core.ParseAtParam(q.Get("at_sequence")), Time: core.ParseAtParam(q.Get("at_time"))}
	}
	st, err := s.States.Get(r.Context(), principal(r), key, at)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header()["Etag"] = []string{etag(st.Version)}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) deleteState(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	ifMatch, err := versionHeader(r, "If-Match")
	if err != nil {
		writeError(w, r, err)
		return
	}
	fence, err := fencingHeader(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	lease := r.Header.Get("X-Lease-Id")
	if lease == "" {
		lease = r.URL.Query().Get("lease_id")
	}
	res, replayed, err := s.States.Delete(r.Context(), principal(r), core.DeleteState{
		Key: key, LeaseID: lease, FencingToken: fence, IdempotencyKey: r.Header.Get("Idempotency-Key"), ExpectedVersion: ifMatch,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	if replayed {
		w.Header().Set("Idempotency-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) listStateEvents(w http.ResponseWriter, r *http.Request) {
	key, err := pathParam(r, "state_key")
	if err != nil {
		writeError(w, r, err)
		return
	}
	after, err := core.ParseSequenceCursor("rest.listStateEvents", r.URL.Query().Get("after"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := s.States.Events(r.Context(), principal(r), key, after, queryInt(r, "limit", 0))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) queryStates(w http.ResponseWriter, r *http.Request) {
	var q core.StateQuery
	if err := decodeBody(w, r, s.limits.MaxBodyBytes, &q); err != nil {
		writeError(w, r, err)
		return
	}
	page, err := s.States.Query(r.Context(), principal(r), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
