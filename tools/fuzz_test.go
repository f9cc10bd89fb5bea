package tools

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"
)

// FuzzDecodeArgs feeds any bytes as the arguments of every tool, decoded into its argument
// type: refused with a client error, or decoded into a value whose JSON is valid UTF-8.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{`{}`, `null`, ``, `{"state_key":"k","data":{"a":1}}`, `{"state_key":"k","after":9223372036854775807}`,
		`{"state_key":"k","after":1e30}`, `{"expected_verison":1}`, `{"state_key":"` + "\xff" + `"}`, `[1]`, `{"wait_ms":-1}`} {
		f.Add([]byte(s))
	}
	inv := Inventory()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tl := range inv {
			dst := reflect.New(reflect.TypeOf(tl.Input)).Interface()
			if err := decodeArgs(tl.Name, b, dst); err != nil {
				var ce *core.Error
				if !errors.As(err, &ce) || ce.Code != core.CodeBadRequest || ce.Message == "" {
					t.Fatalf("%s: %q refused with %v", tl.Name, b, err)
				}
				continue
			}
			out, err := json.Marshal(dst)
			if err != nil || !utf8.Valid(out) {
				t.Fatalf("%s: %q decoded into %q (%v)", tl.Name, b, out, err)
			}
		}
	})
}
