// Package rest serves the v1-compatible REST API (/api/v1) over core, plus health and the
// mounting of the MCP transports. Handlers decode, call one core method and encode.
package rest

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/agentstate/agentstate-go/core"
)

// httpStatus is the one table from error code to HTTP status.
var httpStatus = map[core.Code]int{
	core.CodeBadRequest:            http.StatusBadRequest,
	core.CodeInvalidCursor:         http.StatusBadRequest,
	core.CodeInvalidField:          http.StatusBadRequest,
	core.CodeInvalidTag:            http.StatusBadRequest,
	core.CodeUnauthorized:          http.StatusUnauthorized,
	core.CodeForbidden:             http.StatusForbidden,
	core.CodeNotFound:              http.StatusNotFound,
	core.CodeMethodNotAllowed:      http.StatusMethodNotAllowed,
	core.CodeConflict:              http.StatusConflict,
	core.CodeLeaseConflict:         http.StatusConflict,
	core.CodeLeaseRequired:         http.StatusConflict,
	core.CodeLeaseExpired:          http.StatusConflict,
	core.CodeIdempotencyConflict:   http.StatusConflict,
	core.CodeIdempotencyInProgress: http.StatusConflict,
	core.CodeVersionConflict:       http.StatusConflict,
	core.CodeStaleFencingToken:     http.StatusConflict,
	core.CodePayloadTooLarge:       http.StatusRequestEntityTooLarge,
	core.CodeRateLimited:           http.StatusTooManyRequests,
	core.CodeServiceUnavailable:    http.StatusServiceUnavailable,
	core.CodeStoreUnavailable:      http.StatusServiceUnavailable,
	core.CodeStoreReset:            http.StatusServiceUnavailable,
	core.CodeInternal:              http.StatusInternalServerError,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonValue
	if a, ok := v.(core.JSONAppender); ok {
		bp := bodyBuffers.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= 64<<10 { // a rare huge state does not stay pinned in the pool
				bodyBuffers.Put(bp)
			}
		}()
		if b, err := a.AppendJSON((*bp)[:0]); err == nil {
			*bp = append(b, '\n') // as json.Encoder ends it
			w.Header()["Content-Length"] = []string{strconv.Itoa(len(*bp))}
			w.WriteHeader(status)
			_, _ = w.Write(*bp)
			return
		}
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// bodyBuffers recycles the buffers state bodies are appended into (Write copies them out).
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := core.WireErrorOf(err)
	status, ok := httpStatus[body.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if body.Code == core.CodeStoreUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(core.RetryAfterSeconds))
	}
	if status >= 500 {
		var ce *core.Error
		errors.As(err, &ce)
		slog.ErrorContext(r.Context(), "request failed", "op", ce.Op, "code", ce.Code, "err", err,
			"request_id", w.Header().Get(headerRequestID))
	}
	writeJSON(w, status, map[string]core.WireError{"error": body})
}

// respond writes v with status, or err in the envelope.
func respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, status, v)
}
