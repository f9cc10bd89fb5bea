package core

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// requireSameJSON fails unless v's AppendJSON gives exactly json.Marshal's bytes.
func requireSameJSON(t *testing.T, v JSONAppender) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, gerr := v.AppendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%#v: json.Marshal error %v, AppendJSON error %v", v, werr, gerr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%#v:\nAppendJSON %s\njson.Marshal %s", v, got, want)
	}
}

// Every field set, so a field added to one of these types without its appender fails here.
func fullState(key, agent, tag string, data json.RawMessage) State {
	ft, del := int64(7), int64(1700000000123)
	return State{StateKey: key, AgentID: agent, Data: data, Metadata: json.RawMessage(`{"m":[1,2]}`), Tags: []string{tag, "b"},
		LatestSequence: 42, Version: 3, FencingToken: &ft, CreatedAt: 1700000000000, UpdatedAt: 1700000000001, DeletedAt: &del}
}

func fullEvent(key, agent string, data json.RawMessage) StateEvent {
	ft, idem := int64(9), "idem-"+key
	return StateEvent{Sequence: 5, ID: "ev_1", StateKey: key, AgentID: agent, EventType: EventUpsert, Data: data,
		Metadata: json.RawMessage(`{"m":null}`), Tags: []string{"t"}, IdempotencyKey: &idem, Version: 2, FencingToken: &ft,
		CreatedAt: 1700000000000}
}

func TestStateAppendJSONMatchesMarshal(t *testing.T) {
	// The appenders know every field: a new one must be added to AppendJSON (and here).
	for typ, n := range map[reflect.Type]int{reflect.TypeFor[State](): 11, reflect.TypeFor[StateEvent](): 13,
		reflect.TypeFor[DeleteResult](): 2, reflect.TypeFor[EventPage](): 2, reflect.TypeFor[StatePage](): 2, reflect.TypeFor[Pagination](): 2} {
		if typ.NumField() != n {
			t.Fatalf("%s has %d fields, its AppendJSON knows %d", typ, typ.NumField(), n)
		}
	}
	datas := []string{`{}`, `{"a":1}`, `{"pad":"x y\tz"}`, `{"a":"<b>&amp;</b>"}`, `{"a":"<"}`, `{"a":">"}`, `{"a":"&"}`, `{"s":"\u2028 \u2029"}`, "{\"s\":\"\u2028\"}",
		`{"q":"\"}\\","n":[1,{"x":null}]}`, `{"a": 1}`, "{\n\"a\":1}", `{"é":"“quoted”"}`, `{"e":"\\"}`}
	strs := []string{"", "k", "a/b c", "<tag>", "a<b", "a>b", "a&b", "é", "\x00", "bad\xffutf8", `q"uote`, "back\\slash", "\u2028"}
	cursor := "12"
	for _, d := range datas {
		for _, s := range strs {
			st := fullState(s, s, s, json.RawMessage(d))
			requireSameJSON(t, st)
			ev := fullEvent(s, s, json.RawMessage(d))
			requireSameJSON(t, ev)
			requireSameJSON(t, DeleteResult{Deleted: true, Event: ev})
			requireSameJSON(t, EventPage{Data: []StateEvent{ev, ev}, Pagination: Pagination{Limit: 2, NextCursor: &cursor}})
			requireSameJSON(t, StatePage{Data: []State{st}, Pagination: Pagination{Limit: 1}})
		}
	}
	requireSameJSON(t, State{})
	requireSameJSON(t, StateEvent{})
	requireSameJSON(t, EventPage{})
	requireSameJSON(t, StatePage{Data: []State{}})
	if _, err := (State{Data: json.RawMessage(`{"a": }`)}).AppendJSON(nil); err == nil {
		t.Fatal("invalid JSON with whitespace was appended")
	}
}

// FuzzStateAppendJSON holds the appender to json.Marshal for any key, agent and data object.
func FuzzStateAppendJSON(f *testing.F) {
	f.Add("k", "agent", `{"a":"<b>"}`)
	f.Add("é\u2028", "\xff", "{\"s\":\"\u2029\", \"t\":[ 1 ]}")
	f.Fuzz(func(t *testing.T, key, agent, data string) {
		if !json.Valid([]byte(data)) {
			return // stored data is always valid JSON
		}
		requireSameJSON(t, fullState(key, agent, key, json.RawMessage(data)))
		requireSameJSON(t, fullEvent(key, agent, json.RawMessage(data)))
	})
}

// compactObject skips json.Compact for compact input, but never lets invalid JSON through.
func TestCompactObject(t *testing.T) {
	for in, want := range map[string]string{`{"a":1}`: `{"a":1}`, `{"a": 1}`: `{"a":1}`, `{"s":"x y\t"}`: `{"s":"x y\t"}`,
		"{\n\"s\":\"a\\\" b\"}": `{"s":"a\" b"}`, `{"s":"\\", "t":1}`: `{"s":"\\","t":1}`} {
		got, err := compactObject("op", "data", json.RawMessage(in))
		if err != nil || string(got) != want {
			t.Fatalf("compactObject(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`{"a":}`, `{"a":1`, `{"a":"x y"`, `{"a" 1}`, `{"a":1}x`} {
		if got, err := compactObject("op", "data", json.RawMessage(in)); err == nil {
			t.Fatalf("compactObject(%q) accepted invalid JSON: %q", in, got)
		}
	}
}

// plainJSON: whatever it calls plain, json.Marshal copies unchanged.
func TestPlainJSON(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"a":1}`: true, `{"s":"x y"}`: true, `{"s":"\""}`: true, `{"s":"\\"}`: true, `{"s":"é€"}`: true,
		`{"a": 1}`: false, "{\"a\":\n1}": false, `{"s":"\"", "b":1}`: false, `{"s":"\\", "b":1}`: false,
		`{"s":"<"}`: false, `{"s":">"}`: false, `{"s":"&"}`: false,
		"{\"s\":\"\u2028\"}": false, "{\"s\":\"\u2029\"}": false, "{\"s\":\"\u2027\u202a\"}": true,
	} {
		if got := plainJSON([]byte(raw)); got != want {
			t.Errorf("plainJSON(%s) = %v, want %v", raw, got, want)
		}
		if m, err := json.Marshal(json.RawMessage(raw)); want && (err != nil || string(m) != raw) {
			t.Errorf("json.Marshal(%s) = %s, %v: not copied unchanged", raw, m, err)
		}
	}
}
