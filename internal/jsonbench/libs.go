// Package jsonbench measures the REST PUT body decode (issue #20) with encoding/json and with
// third-party JSON libraries. It is its own module so that the product's go.mod carries none of
// them: run it from this directory (`go test -bench . -benchmem`).
package jsonbench

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/jsonx"
	"github.com/bytedance/sonic"
	goccy "github.com/goccy/go-json"
	jsoniter "github.com/json-iterator/go"
	segjson "github.com/segmentio/encoding/json"
)

// lib is one JSON library's Unmarshal and Valid.
type lib struct {
	name      string
	unmarshal func([]byte, any) error
	valid     func([]byte) bool
}

var libs = []lib{
	{"encoding/json", stdjson.Unmarshal, stdjson.Valid},
	{"goccy/go-json", goccy.Unmarshal, goccy.Valid},
	{"segmentio/encoding", segjson.Unmarshal, segjson.Valid},
	{"bytedance/sonic", sonic.ConfigStd.Unmarshal, sonic.ConfigStd.Valid},
	{"json-iterator", jsoniter.ConfigCompatibleWithStandardLibrary.Unmarshal, jsoniter.ConfigCompatibleWithStandardLibrary.Valid},
}

// stdVariants are encoding/json used differently, for the question whether its two passes
// (Unmarshal's checkValid, then the decode) can be cut without a new dependency.
var stdVariants = []lib{
	// json.Decoder validates while it reads the value (readValue), then decodes without
	// Unmarshal's checkValid; the body is already bounded and trimmed, so the value must end it.
	{"encoding/json Decoder", func(b []byte, v any) error {
		d := stdjson.NewDecoder(bytes.NewReader(b))
		if err := d.Decode(v); err != nil {
			return err
		}
		if d.InputOffset() != int64(len(b)) {
			return errInvalid
		}
		return nil
	}, stdjson.Valid},
	// What compactObject's json.Valid of data adds after Unmarshal validated the whole body.
	{"encoding/json no re-check of data", stdjson.Unmarshal, func([]byte) bool { return true }},
}

var errInvalid = errors.New("invalid JSON body")

// decodePut is what a REST PUT does to its body before the store sees it (rest.decodeBody,
// then core.States.Put's compactObject for data and metadata), with l in place of
// encoding/json's Unmarshal and Valid.
func decodePut(l lib, b []byte) (core.StateWrite, error) {
	var w core.StateWrite
	if !utf8.Valid(b) {
		return w, errInvalid
	}
	b = bytes.TrimSpace(b)
	if core.JSONKind(b) != "object" {
		return w, errInvalid
	}
	if err := l.unmarshal(b, &w); err != nil {
		return w, err
	}
	for _, raw := range []stdjson.RawMessage{w.Data, w.Metadata} {
		// Compact objects are checked with Valid (core's scan for whitespace between tokens,
		// which picks Compact instead, costs the same with every library and is left out).
		if len(raw) > 0 && core.JSONKind(raw) == "object" && !l.valid(raw) {
			return w, errInvalid
		}
	}
	return w, nil
}

// goccyMapped is goccy/go-json as the product uses it: internal/jsonx, which turns its type
// errors into encoding/json's.
var goccyMapped = lib{"goccy/go-json mapped", jsonx.Unmarshal, jsonx.Valid}
