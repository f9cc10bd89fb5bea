package jsonbench

import (
	stdjson "encoding/json"
	"errors"
)

// asStdTypeError finds the type error core.DecodeError words ("Expected string, received
// number", with the field as details.path). Libraries whose errors are not encoding/json's type
// lose the field and the received type, and their clients would read "Invalid JSON body".
func asStdTypeError(err error) (*stdjson.UnmarshalTypeError, bool) {
	var ute *stdjson.UnmarshalTypeError
	ok := errors.As(err, &ute)
	return ute, ok
}
