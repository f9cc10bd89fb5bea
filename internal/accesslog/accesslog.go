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
// adds the source or replaces attributes (which the direct line would skip). Those lines are
// held and written together (see lockedWriter): call Flush before the process exits.
func NewJSON(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	lw := &lockedWriter{w: w, every: FlushEvery}
	h := &jsonHandler{JSONHandler: slog.NewJSONHandler(lw, opts), w: lw}
	h.plain = opts == nil || (!opts.AddSource && opts.ReplaceAttr == nil)
	return h
}

// jsonHandler is a slog.JSONHandler (every method of it, for every other record) plus the
// direct access line. Both write through w: a record's line at once, access lines held.
type jsonHandler struct {
	*slog.JSONHandler
	w     *lockedWriter
	plain bool
}

// FlushEvery bounds how late a held access line reaches the log; BufferBytes is how many bytes
// of them are held at most before they are written at once.
const (
	FlushEvery  = 100 * time.Millisecond
	BufferBytes = 16 << 10
)

// lockedWriter serialises the JSONHandler's lines and the direct ones, and holds the direct
// (access) lines to write them together: one write system call per BufferBytes or FlushEvery
// instead of one per request. A write per line also woke whatever reads the log (a pipe to the
// container runtime, journald) once per request: 0.45 of a GET's 2.1 context switches in the
// server, and the reader's CPU (docs/benchmarks.md, "Session 10"). Every other line (startup,
// warnings, errors) is written at once, after what is held and in the same Write, so the order
// of lines is kept and no message but an access line is ever late. A process killed before
// Flush loses at most FlushEvery of access lines.
type lockedWriter struct {
	mu      sync.Mutex
	w       io.Writer
	every   time.Duration
	pending []byte      // held access lines, whole
	timer   *time.Timer // writes pending within every; nil when nothing is held
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.pending) == 0 {
		return lw.w.Write(p)
	}
	lw.pending = append(lw.pending, p...)
	if err := lw.flushLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hold keeps an access line to write with others: at once when BufferBytes are held, else by
// the timer the first held line arms.
func (lw *lockedWriter) hold(line []byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.pending = append(lw.pending, line...)
	switch {
	case len(lw.pending) >= BufferBytes:
		_ = lw.flushLocked() // as a line written alone: the log has no one to tell
	case lw.timer == nil:
		lw.timer = time.AfterFunc(lw.every, lw.flush)
	}
}

func (lw *lockedWriter) flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	_ = lw.flushLocked()
}

func (lw *lockedWriter) flushLocked() error {
	if lw.timer != nil {
		lw.timer.Stop() // a timer already firing finds nothing held, or lines held since
		lw.timer = nil
	}
	if len(lw.pending) == 0 {
		return nil
	}
	_, err := lw.w.Write(lw.pending)
	lw.pending = lw.pending[:0]
	return err
}

// Flush writes the access lines h holds, when h is a NewJSON handler (else it does nothing).
func Flush(h slog.Handler) {
	if j, ok := h.(*jsonHandler); ok {
		j.w.flush()
	}
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
	h.w.hold(b)
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
