package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/buger/jsonparser"
)

// JSONPath is v1's restricted path grammar, shared by state queries and claims:
// "$" then zero or more ".identifier" or "[digits]" segments. No wildcards, "..", quotes or slices.
type JSONPath struct {
	raw      string
	segments []string // in jsonparser form: "name" or "[3]"
}

var jsonPathRe = regexp.MustCompile(`^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$`)
var jsonPathSegRe = regexp.MustCompile(`\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\]`)

// ErrUnsupportedJSONPath carries v1's message for a path outside the grammar.
const msgUnsupportedJSONPath = "Unsupported JSON path"

// ParseJSONPath validates p against the grammar.
func ParseJSONPath(op, p string) (JSONPath, error) {
	if !jsonPathRe.MatchString(p) {
		return JSONPath{}, &Error{Op: op, Code: CodeBadRequest, Message: msgUnsupportedJSONPath,
			Details: map[string]string{"path": p}}
	}
	jp := JSONPath{raw: p}
	for _, seg := range jsonPathSegRe.FindAllString(p[1:], -1) {
		jp.segments = append(jp.segments, strings.TrimPrefix(seg, "."))
	}
	return jp, nil
}

// Lookup returns the raw JSON value at the path in doc, or ok=false when the path is absent.
func (jp JSONPath) Lookup(doc []byte) (json.RawMessage, bool) {
	if len(jp.segments) == 0 {
		return doc, true
	}
	v, typ, _, err := jsonparser.Get(doc, jp.segments...)
	if err != nil {
		return nil, false
	}
	if typ == jsonparser.String {
		// jsonparser strips the quotes of strings; put them back to keep valid JSON.
		return append(append([]byte{'"'}, v...), '"'), true
	}
	return v, true
}

// JSONEqual is v1's equality rule: both sides are serialised as JavaScript's JSON.stringify
// would (object key order kept) and compared as text. A nil side means "undefined".
func JSONEqual(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ca, err1 := CanonicalJSON(a)
	cb, err2 := CanonicalJSON(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb)
}

// CanonicalJSON re-serialises raw the way JSON.stringify(JSON.parse(raw)) does: compact,
// key order kept, numbers in JavaScript's shortest form, strings re-escaped minimally.
func CanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := writeCanonical(dec, &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return out.Bytes(), nil
}

func writeCanonical(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				k, err := dec.Token()
				if err != nil {
					return err
				}
				writeJSString(out, k.(string))
				out.WriteByte(':')
				if err := writeCanonical(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				if err := writeCanonical(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		writeJSString(out, t)
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return err
		}
		out.WriteString(jsNumber(f))
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	}
	return nil
}

func writeJSString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out.Truncate(out.Len() - 1) // Encode appends a newline
}

// jsNumber formats f as JavaScript's Number.prototype.toString does.
func jsNumber(f float64) string {
	if f == 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return "0" // JSON cannot carry Inf/NaN; -0 prints as 0 in JS
	}
	abs := math.Abs(f)
	if abs >= 1e21 || abs < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		return mant + "e" + string(sign) + exp
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
