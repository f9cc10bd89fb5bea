package jsonbench

import (
	stdjson "encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// semanticCases are the request bodies whose handling clients can see: what is accepted, what
// it decodes to, and which error (with its field and received type) is reported.
var semanticCases = []string{
	`{"agent_id":"a","data":{},"zzz":1}`,                                            // unknown field: ignored
	`{"agent_id":"a","agent_id":"b","data":{}}`,                                     // duplicate: last wins
	`{"AGENT_ID":"a","Data":{"x":1}}`,                                               // v1 matches names case-insensitively
	`{"agent_id":"\ud800x","data":{}}`,                                              // lone surrogate escape: U+FFFD
	`{"agent_id":"\u00e9\u2028","data":{}}`,                                         // escapes decoded
	`{"agent_id":"a","data":{"n":123456789012345678901234567890,"f":1e400,"z":-0}}`, // raw numbers kept
	`{"agent_id":"a","data":{ "a" : [ 1 , 2 ] }}`,                                   // whitespace kept for compactObject
	`{"expected_version":99999999999999999999}`,                                     // int64 overflow
	`{"expected_version":1.5}`,                                                      // float into int64
	`{"expected_version":-1}`,                                                       // negative kept for core to refuse
	`{"expected_version":null,"fencing_token":3}`,                                   // null pointer
	`{"agent_id":5,"data":{}}`,                                                      // type errors: field and received type
	`{"agent_id":true,"data":{}}`,
	`{"agent_id":"a","data":{},"tags":"x"}`,
	`{"agent_id":"a","data":{},"tags":[1]}`,
	`{"agent_id":"a","data":{},"tags":["a",null]}`,
	`{"agent_id":{"x":1},"data":{}}`,
	`{"agent_id":[],"data":{}}`,
	`{"agent_id":"a","data":{"a":01}}`, // invalid JSON inside RawMessage
	`{"agent_id":"a","data":{"a":tru}}`,
	`{"agent_id":"a","data":{"a":"\x"}}`,
	`{"agent_id":"a","data":{"a":"` + "\x01" + `"}}`, // control byte in a string
	`{"agent_id":"a","data":{"a":1,}}`,               // trailing comma
	`{"agent_id":"a","data":{}} x`,                   // trailing garbage
	`{"agent_id":"a","data":{}}{}`,
	`{"agent_id":"a","data":{"a":[1,2}}`, // mismatched bracket
	`{"agent_id":"a","data":{"a":1e}}`,
	`{"agent_id":"a","data":{"a":.5}}`,
	`{"agent_id":"a","data":{"a":+1}}`,
	`{"agent_id":"a","data":{"a":NaN}}`,
	`{"agent_id":"a","data":{'a':1}}`,
	`{"agent_id":"a" "data":{}}`,
	`{"agent_id":"a","data":{"` + strings.Repeat("é", 3) + `":"` + "\u2028" + `"}}`,
	`{"agent_id":"a","data":` + strings.Repeat(`{"a":`, 9000) + `1` + strings.Repeat(`}`, 9000) + `}`, // deep, within v1's 10,000
	`{"agent_id":"a","data":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `}`,         // past v1's 10,000
	`{"agent_id":"a","data":` + strings.Repeat(`[`, 200000) + strings.Repeat(`]`, 200000) + `}`,
	`{"agent_id":"a","data":` + strings.Repeat(`[`, 200000) + `}`, // deep and unterminated
	`{"zzz":tru,"data":{}}`, // invalid JSON in an unknown field's value
	`{"zzz":[1,,2],"data":{}}`,
	`{"zzz":"\x","data":{}}`,
	`{"zzz":01,"data":{}}`,
	`{"zzz":{"a" 1},"data":{}}`,
	`{"zzz":[1,2},"data":{}}`,
	`{"zzz":"` + "\x01" + `","data":{}}`,
	`{"zz\x":1,"data":{}}`,
	`{"zzz":1e,"data":{}}`,
	`{"zzz":-,"data":{}}`,
	`{"zzz":nul,"data":{}}`,
	`{"zzz":` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001) + `,"data":{}}`,
	`{"agent\u005fid":"a","data":{}}`, // escaped key names
	`{"agent_id":"a\u12","data":{}}`,
	`{"tags":["a\x"]}`,
	`{"expected_version":01}`,
	`{"expected_version":1e2}`,
	`{"expected_version":-0}`,
	`{"expected_version":"1"}`,
	`{"expected_version":9223372036854775807}`,
	`{"expected_version":-9223372036854775809}`,
	`{"expected_version":true}`,
	`{"lease_id":null,"agent_id":null,"data":null,"metadata":null,"tags":null}`,
	`{"data":{"a":1},"data":[2]}`,
	`{"metadata":{"k":"\u00"},"data":{}}`,
	`{"agent_id":"a","data":{"\ud83d\ude00":"\udfff"}}`,
	`{"agent_id":"a","data":{}` + "\t\n }",
	`{"agent_id":"a","data":{"a":"b"}, }`,
	`{,"data":{}}`,
	`{"data"}`,
	`{"data":}`,
	`{"data":{}`,
	`{"agent_id":"a","data":{"a":"` + strings.Repeat("\\u00e9", 50) + `"}}`,
}

// outcome says what a client would see: the decoded request, or the error as core.DecodeError
// words it (only *encoding/json.UnmarshalTypeError carries a field and a received type).
func outcome(l lib, body string) string {
	w, err := decodePut(l, []byte(body))
	if err != nil {
		if ute, ok := asStdTypeError(err); ok {
			return fmt.Sprintf("type error field=%q value=%q kind=%s", ute.Field, ute.Value, ute.Type.Kind())
		}
		return "invalid"
	}
	out, err := stdjson.Marshal(w)
	if err != nil || !utf8.Valid(out) {
		return fmt.Sprintf("decoded into invalid JSON %q (%v)", out, err)
	}
	if len(out) > 200 {
		out = append(out[:200], "…"...)
	}
	return "ok " + string(out)
}

func TestSemantics(t *testing.T) {
	for _, c := range semanticCases {
		want := outcome(libs[0], c)
		for _, l := range append(libs[1:len(libs):len(libs)], goccyMapped) {
			if got := outcome(l, c); got != want {
				short := c
				if len(short) > 80 {
					short = short[:80] + "…"
				}
				t.Logf("%-18s %q\n\tstd: %s\n\tgot: %s", l.name, short, want, got)
			}
		}
	}
}
