package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// watchStates serves GET /api/v1/states/watch as server-sent events (compat-v1.md §6.7), without
// v1's backlog deadlock (D1) and with proper event objects in once mode (D2).
func (s *Server) watchStates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cursor := q.Get("after")
	if cursor == "" {
		cursor = r.Header.Get("Last-Event-ID")
	}
	after, afterLease, err := core.ParseWatchCursor(cursor)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req := core.WatchRequest{
		After: after, AfterLease: afterLease, Once: q.Get("once") == "true",
		Key: q.Get("key"), AgentID: q.Get("agent_id"), Leases: q.Get("leases") == "true",
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, r, core.Internal("rest.watchStates", fmt.Errorf("response writer cannot flush")))
		return
	}
	started := false
	var buf []byte // this stream's frame, reused: one write per frame, one flush per batch
	emit := func(f core.WatchFrame) error {
		if !started {
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		data := f.JSON // encoded once for every watcher of the project (core/watchhub.go)
		if data == nil {
			var err error
			if data, err = json.Marshal(f.Data); err != nil {
				return err
			}
		}
		buf = sseFrame(buf[:0], f, data, req.Once)
		_, err := w.Write(buf)
		if !f.More {
			flusher.Flush()
		}
		return err
	}
	err = s.Watcher.Watch(r.Context(), principal(r), req, emit)
	switch {
	case err != nil && !started:
		writeError(w, r, err)
	case err != nil:
		_ = emit(core.WatchFrame{Event: "error", Data: core.WireErrorOf(err)})
	case started:
		flusher.Flush() // a once-mode replay may stop inside a batch
	}
}

// sseFrame appends f as a server-sent event with the given data.
func sseFrame(b []byte, f core.WatchFrame, data []byte, once bool) []byte {
	idLine := func(b []byte) []byte { return append(append(append(b, "id: "...), f.ID...), '\n') }
	if f.ID != "" && !once {
		b = idLine(b)
	}
	b = append(append(append(b, "event: "...), f.Event...), "\ndata: "...)
	b = append(append(b, data...), '\n')
	if f.ID != "" && once { // v1's once-mode field order
		b = idLine(b)
	}
	return append(b, '\n')
}

// longPoll answers GET /api/v1/states/{key}?wait_version=N&wait_ms=T.
func (s *Server) longPoll(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	after, err1 := strconv.ParseInt(q.Get("wait_version"), 10, 64)
	waitMs, err2 := strconv.ParseInt(q.Get("wait_ms"), 10, 64)
	if err1 != nil || err2 != nil && q.Get("wait_ms") != "" {
		writeError(w, r, core.E("rest.longPoll", core.CodeBadRequest, "wait_version and wait_ms must be integers"))
		return
	}
	if q.Get("wait_ms") == "" {
		waitMs = 30_000
	}
	res, err := s.Watcher.WaitForChange(r.Context(), principal(r), key, after, time.Duration(waitMs)*time.Millisecond)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if res.State == nil {
		writeError(w, r, core.E("rest.longPoll", core.CodeNotFound, core.MsgStateNotFound))
		return
	}
	w.Header().Set("ETag", etag(res.State.Version))
	writeJSON(w, http.StatusOK, res.State)
}
