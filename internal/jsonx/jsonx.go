// Package jsonx decodes and checks request bodies with goccy/go-json, which does the work of
// encoding/json's Unmarshal and Valid in about a quarter of the instructions (issue #20; see
// docs/benchmarks.md "A faster JSON path"). It keeps encoding/json's semantics for everything
// clients can see: what is accepted (unknown fields ignored, duplicate names with the last
// winning, names matched case-insensitively, 10,000 levels of nesting), what it decodes to
// (numbers and bytes of a json.RawMessage kept as sent, U+FFFD for a lone surrogate escape)
// and, through typeError, the errors core.DecodeError words for clients.
package jsonx

import (
	"encoding/json"
	"errors"
	"strings"

	goccy "github.com/goccy/go-json"
)

// Unmarshal is json.Unmarshal: a type error is an *encoding/json.UnmarshalTypeError.
func Unmarshal(b []byte, v any) error {
	return typeError(goccy.Unmarshal(b, v))
}

// Valid is json.Valid.
func Valid(b []byte) bool { return goccy.Valid(b) }

// typeError turns goccy's type error into encoding/json's, which core.DecodeError words as
// "Expected string, received number" with the field in details.path.
func typeError(err error) error {
	var ute *goccy.UnmarshalTypeError
	if !errors.As(err, &ute) {
		return err
	}
	return &json.UnmarshalTypeError{Value: ute.Value, Type: ute.Type, Offset: ute.Offset, Struct: ute.Struct, Field: withoutIndices(ute.Field)}
}

// withoutIndices drops the array indices goccy puts in a field path ("tags.0"): encoding/json
// names the field alone ("tags").
func withoutIndices(path string) string {
	if !strings.ContainsAny(path, "0123456789") {
		return path
	}
	parts := strings.Split(path, ".")
	out := parts[:0]
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}
