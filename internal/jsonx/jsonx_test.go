package jsonx_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/jsonx"
	"github.com/agentstate/agentstate-go/rest"
	"github.com/agentstate/agentstate-go/tools"
)

// bodies clients can send whose handling they can see: what is accepted, what it decodes to,
// which error is reported (field and received type).
var bodies = []string{
	`{"agent_id":"a","data":{},"zzz":1}`,
	`{"agent_id":"a","agent_id":"b","data":{"x":1},"data":[2]}`,
	`{"AGENT_ID":"a","Data":{"x":1}}`,
	`{"agent\u005fid":"a","data":{}}`,
	`{"agent_id":"\ud800x\ud83d\ude00","data":{"\udfff":"\u00e9\u2028"}}`,
	`{"agent_id":"a","data":{"n":123456789012345678901234567890,"f":1e400,"z":-0}}`,
	`{"agent_id":"a","data":{ "a" : [ 1 , 2 ] }}`,
	`{"expected_version":99999999999999999999}`,
	`{"expected_version":-9223372036854775809}`,
	`{"expected_version":1.5}`,
	`{"expected_version":1e2}`,
	`{"expected_version":"1"}`,
	`{"expected_version":true}`,
	`{"expected_version":null,"fencing_token":3}`,
	`{"agent_id":5,"data":{}}`,
	`{"agent_id":true,"data":{}}`,
	`{"agent_id":{"x":1},"data":{}}`,
	`{"agent_id":[],"data":{}}`,
	`{"agent_id":"a","data":{},"tags":"x"}`,
	`{"agent_id":"a","data":{},"tags":["a",1]}`,
	`{"agent_id":"a","data":{},"tags":["a",null]}`,
	`{"lease_id":null,"agent_id":null,"data":null,"metadata":null,"tags":null}`,
	`{"messages":[{"role":"user","content":"hi"},{"role":5}]}`,
	`{"messages":[{"role":"user","content":{"a":[1,2.5e3,"x"]},"metadata":{"k":1e400}}]}`,
	`{"filter":{"tags":["a"],"agent_id":1},"limit":"x"}`,
	`{"ttl_ms":1e30,"wait_ms":-1}`,
	`{"scopes":["states:read",7]}`,
	`{"agent_id":"a","data":{"a":01}}`,
	`{"agent_id":"a","data":{"a":tru}}`,
	`{"agent_id":"a","data":{"a":"\x"}}`,
	`{"agent_id":"a","data":{"a":"\u12"}}`,
	`{"agent_id":"a","data":{"a":"` + "\x01" + `"}}`,
	`{"agent_id":"a","data":{"a":1,}}`,
	`{"agent_id":"a","data":{"a":[1,2}}`,
	`{"agent_id":"a","data":{"a":1e}}`,
	`{"agent_id":"a","data":{"a":.5}}`,
	`{"agent_id":"a","data":{"a":+1}}`,
	`{"agent_id":"a","data":{'a':1}}`,
	`{"agent_id":"a" "data":{}}`,
	`{"agent_id":"a","data":{}} x`,
	`{"agent_id":"a","data":{}}{}`,
	`{"zzz":tru,"data":{}}`,
	`{"zzz":[1,,2],"data":{}}`,
	`{"zzz":"\x","data":{}}`,
	`{"zzz":01,"data":{}}`,
	`{"zzz":{"a" 1},"data":{}}`,
	`{"zz\x":1,"data":{}}`,
	`{,"data":{}}`,
	`{"data"}`,
	`{"data":}`,
	`{"data":{}`,
	`{"agent_id":"a","data":` + strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat(`}`, 9999) + `}`,
	`{"agent_id":"a","data":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`,
	`{"zzz":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `,"data":{}}`,
	`{"agent_id":"a","data":` + strings.Repeat(`[`, 100000) + `}`,
	`{"state_key":"k","data":{},"expected_verison":1}`,
	`{"state_key":"k","State_Key":"j","AGENT_ID":"a","data":{"a":1}} {"x":1}`,
	`{"state_key":"k","data":{}} x`,
	`{"state_key":"k","after":9223372036854775807,"limit":1e30}`,
	`{"state_key":"k","ttl_ms":-1,"wait_ms":"x","scopes":[1]}`,
	`{"messages":[{"role":"user","content":"hi","zzz":1}]}`,
}

// requestTypes are the body types of every REST route.
func requestTypes() []reflect.Type {
	var types []reflect.Type
	for _, r := range rest.Routes {
		if r.Request != nil {
			types = append(types, reflect.TypeOf(r.Request))
		}
	}
	return types
}

// toolTypes are the argument types of every MCP tool.
func toolTypes() []reflect.Type {
	var types []reflect.Type
	for _, tl := range tools.Inventory() {
		types = append(types, reflect.TypeOf(tl.Input))
	}
	return types
}

// sameAsEncodingJSON fails t unless jsonx answers b, into every request type, exactly as
// encoding/json does: both refuse it with the same client-visible error, or both decode it to
// the same value; and Valid agrees.
func sameAsEncodingJSON(t *testing.T, types []reflect.Type, b []byte) {
	if got, want := jsonx.Valid(b), json.Valid(b); got != want {
		t.Fatalf("Valid(%.200q) = %v, encoding/json says %v", b, got, want)
	}
	for _, typ := range types {
		sameAnswer(t, typ, b, func(v any) error { return jsonx.Unmarshal(b, v) },
			func(v any) error { return json.Unmarshal(b, v) },
			func(err error) any { return core.WireErrorOf(core.DecodeError("op", err)) })
	}
}

// strictSameAsEncodingJSON fails t unless DecodeStrict answers b, into every tool's argument
// type, as a json.Decoder with DisallowUnknownFields does, seen as tools.decodeArgs words it.
func strictSameAsEncodingJSON(t *testing.T, types []reflect.Type, b []byte) {
	for _, typ := range types {
		sameAnswer(t, typ, b, func(v any) error { return jsonx.DecodeStrict(b, v) },
			func(v any) error {
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				return dec.Decode(v)
			},
			func(err error) any {
				if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
					return s
				}
				return core.WireErrorOf(core.DecodeError("op", err))
			})
	}
}

// sameAnswer fails t unless decode and reference, each into a new typ, both refuse b with the
// same error as clients see it (view), or both decode it to the same value.
func sameAnswer(t *testing.T, typ reflect.Type, b []byte, decode, reference func(any) error, view func(error) any) {
	if !utf8.Valid(b) {
		return // refused before decoding (core.RequireUTF8)
	}
	got, want := reflect.New(typ).Interface(), reflect.New(typ).Interface()
	gotErr, wantErr := decode(got), reference(want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%s: %.200q: jsonx %v, encoding/json %v", typ, b, gotErr, wantErr)
	}
	if wantErr != nil {
		if g, w := view(gotErr), view(wantErr); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: %.200q: jsonx says %+v, encoding/json %+v", typ, b, g, w)
		}
		return
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("%s: %.200q: jsonx decoded %.300s, encoding/json %.300s", typ, b, g, w)
	}
}

func TestSameAsEncodingJSON(t *testing.T) {
	types, strict := requestTypes(), toolTypes()
	for _, b := range bodies {
		sameAsEncodingJSON(t, types, []byte(b))
		strictSameAsEncodingJSON(t, strict, []byte(b))
	}
}

// FuzzSameAsEncodingJSON: any bytes, into any route's body type and any tool's arguments, as
// encoding/json would.
func FuzzSameAsEncodingJSON(f *testing.F) {
	for _, b := range bodies {
		if len(b) < 1000 {
			f.Add([]byte(b))
		}
	}
	types, strict := requestTypes(), toolTypes()
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsEncodingJSON(t, types, b)
		strictSameAsEncodingJSON(t, strict, b)
	})
}
