package rest

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"
)

// FuzzDecodeBody feeds any bytes to the body decoder of every route that takes a body, each
// into its own request type: a body is refused with a 4xx in the envelope, or decoded into a
// value whose JSON is valid UTF-8 (nothing invalid is stored or echoed).
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{}`, `{"agent_id":"a","data":{"x":1},"tags":["t"]}`, `{"data":[1]}`, `[]`, `null`, `"x"`, ``, ` `,
		`{"agent_id":"a","data":{"x":"` + "\xff" + `"}}`, `{"agent_id":1}`, `{"expected_version":99999999999999999999}`,
		`{"wait_ms":1e30}`, `{"messages":[{"role":"user","content":"hi"}]}`, `{"a":` + string(bytes.Repeat([]byte("["), 20)), `{"\ud800":1}`} {
		f.Add([]byte(s))
	}
	var types []reflect.Type
	for _, r := range Routes {
		if r.Request != nil {
			types = append(types, reflect.TypeOf(r.Request))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range types {
			dst := reflect.New(typ).Interface()
			w := httptest.NewRecorder()
			err := decodeBody(w, httptest.NewRequest("POST", "/", bytes.NewReader(b)), 1<<16, dst)
			if err != nil {
				code := core.WireErrorOf(err).Code
				if st := httpStatus[code]; st < 400 || st > 499 {
					t.Fatalf("%s: %q refused with %s (HTTP %d)", typ, b, code, st)
				}
				continue
			}
			out, err := json.Marshal(dst)
			if err != nil || !utf8.Valid(out) {
				t.Fatalf("%s: %q decoded into %q (%v)", typ, b, out, err)
			}
		}
	})
}
