package core

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONPathGrammar(t *testing.T) {
	for _, ok := range []string{"$", "$.a", "$.a_1.b", "$[0]", "$[0].x", "$.items[12].id", "$._x"} {
		_, err := ParseJSONPath("t", ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "a", "$..a", "$.*", "$[*]", "$['a']", "$[0:2]", "$.1a", "$.a.", "$[-1]", "$ .a"} {
		_, err := ParseJSONPath("t", bad)
		require.Error(t, err, bad)
		assert.Equal(t, "Unsupported JSON path", err.(*Error).Message, bad)
	}
}

func TestJSONPathLookup(t *testing.T) {
	doc := []byte(`{"a":{"b":[10,{"c":"x\"y"}]},"s":"str","n":null}`)
	for path, want := range map[string]string{
		"$": string(doc), "$.a.b[0]": "10", "$.a.b[1].c": `"x\"y"`, "$.s": `"str"`, "$.n": "null",
	} {
		jp, err := ParseJSONPath("t", path)
		require.NoError(t, err)
		got, ok := jp.Lookup(doc)
		require.True(t, ok, path)
		assert.Equal(t, want, string(got), path)
	}
	jp, _ := ParseJSONPath("t", "$.a.missing")
	_, ok := jp.Lookup(doc)
	assert.False(t, ok)
}

// JSONEqual follows JSON.stringify: numbers by value, object key order significant, strings
// by their characters rather than their escapes; absent equals only absent.
func TestJSONEqualMatchesJavaScriptStringify(t *testing.T) {
	eq := func(a, b string) bool { return JSONEqual(json.RawMessage(a), json.RawMessage(b)) }
	assert.True(t, eq(`1`, `1.0`))
	assert.True(t, eq(`1e2`, `100`))
	assert.True(t, eq(`"A"`, `"\u0041"`))
	assert.True(t, eq(`{"a":1,"b":[1,2]}`, `{ "a" : 1 , "b" : [1, 2] }`))
	assert.False(t, eq(`{"a":1,"b":2}`, `{"b":2,"a":1}`))
	assert.False(t, eq(`1`, `"1"`))
	assert.False(t, eq(`null`, `false`))
	assert.True(t, JSONEqual(nil, nil))
	assert.False(t, JSONEqual(nil, json.RawMessage(`null`)))
	for in, want := range map[float64]string{1e21: "1e+21", 1e-7: "1e-7", 123.5: "123.5", 0.000001: "0.000001", -2: "-2"} {
		assert.Equal(t, want, jsNumber(in))
	}
}
