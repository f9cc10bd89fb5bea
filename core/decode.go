package core

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// zodType words a Go kind the way v1's validator names JSON types.
var zodType = map[string]string{
	"bool": "boolean", "int": "number", "int64": "number", "float64": "number", "slice": "array",
	"map": "object", "struct": "object",
}

// DecodeError turns a JSON decoding failure of a request body or tool arguments into a 400
// worded like v1's validator ("Expected string, received number"), with the field in details.
func DecodeError(op string, err error) *Error {
	var ute *json.UnmarshalTypeError
	if !errors.As(err, &ute) {
		return E(op, CodeBadRequest, "Invalid JSON body")
	}
	want := ute.Type.Kind().String()
	if z, ok := zodType[want]; ok {
		want = z
	}
	// Embedded structs show up as "StateWrite.agent_id"; clients know "agent_id".
	path := ute.Field
	for i := strings.IndexByte(path, '.'); i > 0 && unicode.IsUpper(rune(path[0])); i = strings.IndexByte(path, '.') {
		path = path[i+1:]
	}
	return BadRequest(op, path, "Expected "+want+", received "+ute.Value)
}

// RequireUTF8 refuses a JSON text that is not valid UTF-8 (RFC 8259 §8.1). encoding/json does
// not: it keeps the bytes inside a json.RawMessage (state data would be stored and echoed as a
// response that is not valid JSON text) and silently turns them into U+FFFD in strings (an
// agent_id unlike the one sent).
func RequireUTF8(op string, b []byte) error {
	if !utf8.Valid(b) {
		return E(op, CodeBadRequest, MsgInvalidUTF8)
	}
	return nil
}
