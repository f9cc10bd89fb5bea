package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reference is what slog.JSONHandler itself writes for l.
func reference(t testing.TB, opts *slog.HandlerOptions, at time.Time, level slog.Level, l *Line) string {
	var b bytes.Buffer
	rec := slog.NewRecord(at, level, "http", 0)
	rec.AddAttrs(slog.String("method", l.Method), slog.String("route", l.Route), slog.String("path", l.Path),
		slog.Int("status", l.Status), slog.Int("bytes", l.Bytes), slog.Int64("dur_ms", l.DurMs),
		slog.String("request_id", l.RequestID), slog.String("credential_id", l.CredentialID))
	require.NoError(t, slog.NewJSONHandler(&b, opts).Handle(context.Background(), rec))
	return b.String()
}

// logged is what Log writes through a NewJSON handler, and whether it wrote it directly.
func logged(opts *slog.HandlerOptions, at time.Time, level slog.Level, l *Line) (string, bool) {
	var b bytes.Buffer
	h := NewJSON(&b, opts).(*jsonHandler)
	if h.direct(at, level, l) {
		Flush(h)
		return b.String(), true
	}
	Log(context.Background(), h, at, level, l)
	return b.String(), false
}

// TestLineAsJSONHandler: the direct line is byte for byte what slog.JSONHandler writes, for
// every line it takes; the others (escapes, invalid UTF-8, a year RFC 3339 cannot write, options
// that change the line) go to the handler and come out as it writes them.
func TestLineAsJSONHandler(t *testing.T) {
	typical := Line{Method: "PUT", Route: "/api/v1/states/{state_key}", Path: "/api/v1/states/k-1", Status: 200,
		Bytes: 1230, DurMs: 3, RequestID: "7YsOok1xOtseBRKM", CredentialID: "XXNKNR-3S6OGOek4FmENd"}
	with := func(f func(l *Line)) Line { l := typical; f(&l); return l }
	at := time.Date(2026, 12, 2, 5, 20, 51, 123456789, time.UTC)
	cases := []struct {
		name   string
		at     time.Time
		level  slog.Level
		line   Line
		opts   *slog.HandlerOptions
		direct bool
	}{
		{"typical", at, slog.LevelInfo, typical, nil, true},
		{"a probe at debug", at, slog.LevelDebug, with(func(l *Line) { l.Route, l.Path = "/healthz", "/healthz" }), nil, true},
		{"a custom level", at, slog.LevelInfo + 2, typical, nil, true},
		{"whole seconds", at.Truncate(time.Second), slog.LevelInfo, typical, nil, true},
		{"the clock's monotonic reading", time.Now(), slog.LevelInfo, typical, nil, true},
		{"another zone", at.In(time.FixedZone("x", -(3*3600 + 30*60))), slog.LevelInfo, typical, nil, true},
		{"empty strings, zero numbers", at, slog.LevelInfo, Line{}, nil, true},
		{"negative and large numbers", at, slog.LevelInfo, with(func(l *Line) { l.Status, l.Bytes, l.DurMs = -1, 1<<40, -7 }), nil, true},
		{"HTML characters", at, slog.LevelInfo, with(func(l *Line) { l.Path = "/a<b>&c?d=e'f" }), nil, true},
		{"a quote", at, slog.LevelInfo, with(func(l *Line) { l.Path = `/a"b` }), nil, false},
		{"a backslash", at, slog.LevelInfo, with(func(l *Line) { l.Path = `/a\b` }), nil, false},
		{"a control byte", at, slog.LevelInfo, with(func(l *Line) { l.RequestID = "a\x01\nb" }), nil, false},
		{"DEL", at, slog.LevelInfo, with(func(l *Line) { l.Path = "/a\x7f" }), nil, false},
		{"UTF-8", at, slog.LevelInfo, with(func(l *Line) { l.Path = "/états/\u2028" }), nil, false},
		{"invalid UTF-8", at, slog.LevelInfo, with(func(l *Line) { l.Path = "/\xff\xfe" }), nil, false},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, typical, nil, false},
		{"zero time", time.Time{}, slog.LevelInfo, typical, nil, false},
		{"AddSource", at, slog.LevelInfo, typical, &slog.HandlerOptions{AddSource: true}, false},
		{"ReplaceAttr", at, slog.LevelInfo, typical, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == "path" {
				a.Value = slog.StringValue(strings.ToUpper(a.Value.String()))
			}
			return a
		}}, false},
		{"a level option", at, slog.LevelInfo, typical, &slog.HandlerOptions{Level: slog.LevelWarn}, true},
	}
	for _, c := range cases {
		got, direct := logged(c.opts, c.at, c.level, &c.line)
		assert.Equal(t, c.direct, direct, "%s: written directly", c.name)
		assert.Equal(t, reference(t, c.opts, c.at, c.level, &c.line), got, c.name)
	}
}

// A line written directly and one the handler writes, from many goroutines, never interleave.
func TestLinesWholeUnderConcurrency(t *testing.T) {
	var b bytes.Buffer
	h := NewJSON(&b, nil)
	log := slog.New(h)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				if g%2 == 0 {
					Log(context.Background(), h, time.Now(), slog.LevelInfo, &Line{Method: "GET", Path: "/x"})
				} else {
					log.Info("other", "k", strings.Repeat("v", 100))
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	Flush(h)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 1600)
	for _, l := range lines {
		require.True(t, strings.HasPrefix(l, `{"time":"`) && strings.HasSuffix(l, "}"), l)
	}
}

func FuzzLineAsJSONHandler(f *testing.F) {
	f.Add("GET", "/api/v1/states/{state_key}", "/api/v1/states/k", 200, 99, int64(1), "rid", "cid", int64(1796188385521123456), 0)
	f.Add("PUT", "unmatched", "/\x00\"\\é\xff", -1, 0, int64(-5), "", "", int64(0), 4)
	f.Fuzz(func(t *testing.T, method, route, path string, status, n int, dur int64, rid, cid string, nanos int64, lvl int) {
		at := time.Unix(0, nanos).In(time.FixedZone("z", (lvl%48)*1800))
		l := Line{Method: method, Route: route, Path: path, Status: status, Bytes: n, DurMs: dur, RequestID: rid, CredentialID: cid}
		level := slog.Level(lvl)
		got, _ := logged(nil, at, level, &l)
		if want := reference(t, nil, at, level, &l); got != want {
			t.Fatalf("direct line differs:\n got %s\nwant %s", got, want)
		}
	})
}

// writes records each Write the log makes, whole.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

// Access lines are held and written together: by Flush, by any other record (before it, in the
// same write, so the order holds), when BufferBytes are held, and by the timer the first held
// line arms. Nothing else is ever held.
func TestAccessLinesHeldThenWrittenTogether(t *testing.T) {
	at := time.Date(2026, 12, 2, 5, 20, 51, 0, time.UTC)
	access := func(h slog.Handler, path string) {
		Log(context.Background(), h, at, slog.LevelInfo, &Line{Method: "GET", Route: "/r", Path: path, Status: 200})
	}
	newLog := func(every time.Duration) (*writes, *jsonHandler) {
		var w writes
		h := NewJSON(&w, nil).(*jsonHandler)
		h.w.every = every
		return &w, h
	}

	t.Run("flush", func(t *testing.T) {
		w, h := newLog(time.Hour)
		access(h, "/a")
		access(h, "/b")
		assert.Empty(t, w.all(), "held")
		Flush(h)
		require.Len(t, w.all(), 1)
		assert.Equal(t, []string{"/a", "/b"}, paths(t, w.all()[0]))
		Flush(h)
		assert.Len(t, w.all(), 1, "nothing held, nothing written")
	})

	t.Run("another record writes them first", func(t *testing.T) {
		for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
			w, h := newLog(time.Hour)
			log := slog.New(h).With("k", "v") // a derived handler writes through the same writer
			log.Info("at once")
			require.Len(t, w.all(), 1, "a record with nothing held is written at once")
			access(h, "/a")
			access(h, "/b")
			log.Log(context.Background(), level, "then")
			calls := w.all()
			require.Len(t, calls, 2, "the held lines and the record in one write")
			assert.Equal(t, []string{"/a", "/b", ""}, paths(t, calls[1]), "in order")
			assert.Contains(t, calls[1], `"msg":"then"`)
			Flush(h)
			assert.Len(t, w.all(), 2)
		}
	})

	t.Run("full", func(t *testing.T) {
		w, h := newLog(time.Hour)
		n := 0
		for len(w.all()) == 0 {
			access(h, "/p"+strconv.Itoa(n))
			n++
			require.Less(t, n, BufferBytes, "never written")
		}
		calls := w.all()
		assert.GreaterOrEqual(t, len(calls[0]), BufferBytes)
		assert.Len(t, paths(t, calls[0]), n, "every held line, whole")
	})

	t.Run("timer", func(t *testing.T) {
		w, h := newLog(10 * time.Millisecond)
		access(h, "/a")
		require.Eventually(t, func() bool { return len(w.all()) == 1 }, 5*time.Second, time.Millisecond)
		access(h, "/b") // the next held line arms it again
		require.Eventually(t, func() bool { return len(w.all()) == 2 }, 5*time.Second, time.Millisecond)
		assert.Equal(t, []string{"/b"}, paths(t, w.all()[1]))
	})
}

// paths is the path of each line in one write ("" for a line without one).
func paths(t *testing.T, write string) []string {
	var out []string
	for _, line := range strings.SplitAfter(write, "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		p, _ := m["path"].(string)
		out = append(out, p)
	}
	return out
}
