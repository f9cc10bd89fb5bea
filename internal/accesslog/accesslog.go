// Package accesslog writes the line every HTTP request logs. Through slog.JSONHandler that line
// costs a request ~14k instructions (8 % of a state GET's server CPU): a Record built and its
// attributes copied, every key and value escaped byte by byte. A handler made by NewJSON takes
// the same line straight from its fields and writes the bytes slog.JSONHandler writes for it
// (TestLineAsJSONHandler and FuzzLineAsJSONHandler hold it to that); any other handler, or a
// field that would need escaping, gets the slog.Record as before.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Line is one request's access-log record, logged as message "http".
type Line struct {
	Method, Route, Path string
	Status, Bytes       int
	DurMs               int64
	RequestID           string
	CredentialID        string
}

// Log writes l at level through h, stamped t.
func Log(ctx context.Context, h slog.Handler, t time.Time, level slog.Level, l *Line) {
	if j, ok := h.(*jsonHandler); ok && j.direct(t, level, l) {
		return
	}
	// As slog.LogAttrs would send it, without the caller's pc (a stack walk per request; the
	// handlers add no source).
	rec := slog.NewRecord(t, level, "http", 0)
	rec.AddAttrs(slog.String("method", l.Method), slog.String("route", l.Route),
		slog.String("path", l.Path), slog.Int("status", l.Status), slog.Int("bytes", l.Bytes),
		slog.Int64("dur_ms", l.DurMs), slog.String("request_id", l.RequestID),
		slog.String("credential_id", l.CredentialID))
	_ = h.Handle(ctx, rec)
}

// NewJSON is slog.NewJSONHandler(w, opts), whose access lines Log writes directly unless opts
// adds the source or replaces attributes (which the direct line would skip).
func NewJSON(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	lw := &lockedWriter{w: w}
	h := &jsonHandler{JSONHandler: slog.NewJSONHandler(lw, opts), w: lw}
	h.plain = opts == nil || (!opts.AddSource && opts.ReplaceAttr == nil)
	return h
}

// jsonHandler is a slog.JSONHandler (every method of it, for every other record) plus the
// direct access line. Both write through w, one Write per line.
type jsonHandler struct {
	*slog.JSONHandler
	w     *lockedWriter
	plain bool
}

// lockedWriter serialises the JSONHandler's lines and the direct ones.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// direct writes the line as slog.JSONHandler would, or reports false to leave it to the
// handler: a handler with options that change the line, a year RFC 3339 cannot write (the
// handler adds an error), or a string JSON would escape.
func (h *jsonHandler) direct(t time.Time, level slog.Level, l *Line) bool {
	if !h.plain || t.IsZero() || t.Year() < 0 || t.Year() >= 10000 ||
		!plain(l.Method) || !plain(l.Route) || !plain(l.Path) || !plain(l.RequestID) || !plain(l.CredentialID) {
		return false
	}
	bp := bufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":"http","method":"`...)
	b = append(b, l.Method...)
	b = append(b, `","route":"`...)
	b = append(b, l.Route...)
	b = append(b, `","path":"`...)
	b = append(b, l.Path...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(l.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(l.Bytes), 10)
	b = append(b, `,"dur_ms":`...)
	b = strconv.AppendInt(b, l.DurMs, 10)
	b = append(b, `,"request_id":"`...)
	b = append(b, l.RequestID...)
	b = append(b, `","credential_id":"`...)
	b = append(b, l.CredentialID...)
	b = append(b, "\"}\n"...)
	_, _ = h.w.Write(b)
	if cap(b) <= 4<<10 { // a long path's buffer is not kept
		*bp = b
		bufs.Put(bp)
	}
	return true
}

// plain: s is written as it is between quotes, printable ASCII without '"' or '\'.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}
