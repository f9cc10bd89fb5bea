// Package jsonx decodes and checks request bodies and tool arguments with goccy/go-json, which
// does the work of encoding/json's Unmarshal and Valid in about a quarter of the instructions
// (issue #20; see docs/benchmarks.md "JSON libraries for the request body"). It answers as
// encoding/json does: what is accepted (unknown fields ignored, duplicate names with the last
// winning, names matched case-insensitively, 10,000 levels of nesting) and what it decodes to
// (the bytes of a json.RawMessage kept as sent, U+FFFD for a lone surrogate escape) are the
// same, and every error comes from encoding/json itself.
package jsonx

import (
	"bytes"
	"encoding/json"
	"reflect"

	goccy "github.com/goccy/go-json"
)

// Unmarshal is json.Unmarshal.
func Unmarshal(b []byte, v any) error {
	if goccy.Unmarshal(b, v) == nil {
		return nil
	}
	reset(v)
	return json.Unmarshal(b, v)
}

// DecodeStrict decodes the first value of b as a json.Decoder with DisallowUnknownFields does
// (tool arguments: a misspelt argument must not be ignored).
func DecodeStrict(b []byte, v any) error {
	d := goccy.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if d.Decode(v) == nil {
		return nil
	}
	reset(v)
	std := json.NewDecoder(bytes.NewReader(b))
	std.DisallowUnknownFields()
	return std.Decode(v)
}

// Valid is json.Valid.
func Valid(b []byte) bool { return goccy.Valid(b) }

// reset zeroes what a failed decoding left in v, so that encoding/json decodes b afresh. A
// refused body is decoded twice, but clients read the wording of its error (core.DecodeError:
// "Expected string, received number", the field in details.path, and which of two faults is
// reported first), and encoding/json is the one that words it.
func reset(v any) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv.Elem().SetZero()
	}
}
