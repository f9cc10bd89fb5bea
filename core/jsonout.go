package core

import (
	"encoding/json"
	"strconv"
)

// JSONAppender is a response body that writes itself: the same bytes encoding/json would
// produce, without its reflection walk and without re-validating and re-compacting the stored
// data and metadata of every state on every read (which the encoder does to any
// json.RawMessage). The faces use it for the state routes, the hottest ones.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendJSON appends s exactly as json.Marshal would (field order, null for nil, HTML-escaped
// strings); TestStateAppendJSONMatchesMarshal holds it to that.
func (s State) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"state_key":`...)
	b = AppendString(b, s.StateKey)
	b = append(b, `,"agent_id":`...)
	b = AppendString(b, s.AgentID)
	b = append(b, `,"data":`...)
	b, err := appendRaw(b, s.Data)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"metadata":`...)
	if b, err = appendRaw(b, s.Metadata); err != nil {
		return nil, err
	}
	b = append(b, `,"tags":`...)
	b = appendStrings(b, s.Tags)
	b = append(b, `,"latest_sequence":`...)
	b = strconv.AppendInt(b, s.LatestSequence, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, s.Version, 10)
	b = append(b, `,"fencing_token":`...)
	b = appendIntPtr(b, s.FencingToken)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, s.CreatedAt, 10)
	b = append(b, `,"updated_at":`...)
	b = strconv.AppendInt(b, s.UpdatedAt, 10)
	b = append(b, `,"deleted_at":`...)
	b = appendIntPtr(b, s.DeletedAt)
	return append(b, '}'), nil
}

// AppendJSON appends e exactly as json.Marshal would.
func (e StateEvent) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"sequence":`...)
	b = strconv.AppendInt(b, e.Sequence, 10)
	b = append(b, `,"id":`...)
	b = AppendString(b, e.ID)
	b = append(b, `,"state_key":`...)
	b = AppendString(b, e.StateKey)
	b = append(b, `,"agent_id":`...)
	b = AppendString(b, e.AgentID)
	b = append(b, `,"event_type":`...)
	b = AppendString(b, e.EventType)
	b = append(b, `,"data":`...)
	b, err := appendRaw(b, e.Data)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"metadata":`...)
	if b, err = appendRaw(b, e.Metadata); err != nil {
		return nil, err
	}
	b = append(b, `,"tags":`...)
	b = appendStrings(b, e.Tags)
	b = append(b, `,"idempotency_key":`...)
	if e.IdempotencyKey == nil {
		b = append(b, "null"...)
	} else {
		b = AppendString(b, *e.IdempotencyKey)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"fencing_token":`...)
	b = appendIntPtr(b, e.FencingToken)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, e.CreatedAt, 10)
	return append(b, '}'), nil
}

// AppendJSON appends r exactly as json.Marshal would.
func (r DeleteResult) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"deleted":`...)
	b = strconv.AppendBool(b, r.Deleted)
	b = append(b, `,"event":`...)
	b, err := r.Event.AppendJSON(b)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// AppendJSON appends p exactly as json.Marshal would.
func (p EventPage) AppendJSON(b []byte) ([]byte, error) {
	return appendPage(b, p.Data, p.Pagination)
}

// AppendJSON appends p exactly as json.Marshal would.
func (p StatePage) AppendJSON(b []byte) ([]byte, error) {
	return appendPage(b, p.Data, p.Pagination)
}

func appendPage[T JSONAppender](b []byte, rows []T, pg Pagination) ([]byte, error) {
	b = append(b, `{"data":`...)
	if rows == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = r.AppendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"pagination":{"limit":`...)
	b = strconv.AppendInt(b, int64(pg.Limit), 10)
	b = append(b, `,"next_cursor":`...)
	if pg.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = AppendString(b, *pg.NextCursor)
	}
	return append(b, "}}"...), nil
}

// AppendString appends s quoted as encoding/json quotes it. Printable ASCII that encoding/json
// leaves alone is copied; anything else (escapes, HTML characters, non-ASCII, invalid UTF-8)
// goes through json.Marshal, so the bytes are always the encoder's.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

func appendIntPtr(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

// appendRaw appends stored JSON. Stored data and metadata are compact already (compactObject
// made them so before they were written), so they are copied as they are unless they hold
// what the encoder would change: whitespace between tokens, or a character it HTML-escapes
// (<, >, &, U+2028, U+2029). Those take json.Marshal's path (which also refuses them if they
// are not valid JSON; the copied ones are trusted to be, as the store holds what Put checked).
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return append(b, "null"...), nil
	}
	if !plainJSON(raw) {
		m, err := json.Marshal(raw)
		if err != nil {
			return nil, err
		}
		return append(b, m...), nil
	}
	return append(b, raw...), nil
}

// plainJSON reports whether encoding/json would copy raw unchanged, assuming it is valid: no
// whitespace between tokens and nothing it HTML-escapes. One pass over a byte table: every
// response copies its state's data through here.
func plainJSON(raw []byte) bool {
	in := false // inside a string
	for i := 0; i < len(raw); i++ {
		k := plainClass[raw[i]]
		if k == 0 { // most bytes: one test, not the switch's
			continue
		}
		switch k {
		case plainQuote:
			in = !in
		case plainEscape: // only inside a string; the escaped byte is never a quote that ends it
			i++
		case plainSpace:
			if !in {
				return false
			}
		case plainHTML:
			return false
		case plainE2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(raw) && raw[i+1] == 0x80 && (raw[i+2] == 0xA8 || raw[i+2] == 0xA9) {
				return false
			}
		}
	}
	return true
}

// The bytes plainJSON looks at; every other is 0.
const (
	plainQuote = 1 + iota
	plainEscape
	plainSpace
	plainHTML
	plainE2
)

var plainClass = [256]byte{'"': plainQuote, '\\': plainEscape, ' ': plainSpace, '\t': plainSpace, '\n': plainSpace,
	'\r': plainSpace, '<': plainHTML, '>': plainHTML, '&': plainHTML, 0xE2: plainE2}
