package schemas

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"
)

// Output returns the schema of what v's type encodes to, for results: every field that
// encoding/json may write as null (a pointer, slice, map, interface or json.RawMessage
// without omitempty) admits null, and no sub-schema is the bare boolean true (strict clients
// such as the MCP Inspector refuse those). Clients validate results against this, so it must
// describe every value the code can produce, not only the usual one.
func Output(v any, opts ...func(*jsonschema.Schema)) *jsonschema.Schema {
	s := Reflect(v)
	nullable(reflect.TypeOf(v), s)
	for _, o := range opts {
		o(s)
	}
	noTrue(s)
	return s
}

// OutputJSON returns Output(v, opts...) encoded.
func OutputJSON(v any, opts ...func(*jsonschema.Schema)) json.RawMessage {
	b, err := json.Marshal(Output(v, opts...))
	if err != nil {
		panic("schema of " + err.Error())
	}
	return b
}

var rawMessage = reflect.TypeOf(json.RawMessage(nil))

// nullable walks t and its schema s side by side (Reflect inlines every type, so they match).
func nullable(t reflect.Type, s *jsonschema.Schema) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || s == nil || t == rawMessage {
		return
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		nullable(t.Elem(), s.Items)
	case reflect.Map:
		nullable(t.Elem(), s.AdditionalProperties)
	case reflect.Struct:
		if s.Properties == nil {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" && f.Anonymous {
				nullable(f.Type, s) // embedded fields are flattened into this object
				continue
			}
			if name == "" {
				name = f.Name
			}
			prop, ok := s.Properties.Get(name)
			if !ok {
				continue
			}
			nullable(f.Type, prop)
			if canBeNull(f.Type) && !slices.Contains(strings.Split(opts, ","), "omitempty") {
				allowNull(prop)
			}
		}
	}
}

func canBeNull(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// allowNull widens s to admit null: type X becomes type [X, "null"]; a oneOf/anyOf gains a
// null branch.
func allowNull(s *jsonschema.Schema) {
	if admitsNull(s) {
		return
	}
	nullSchema := &jsonschema.Schema{Type: "null"}
	switch {
	case len(s.OneOf) > 0:
		s.OneOf = append(s.OneOf, nullSchema)
	case len(s.AnyOf) > 0:
		s.AnyOf = append(s.AnyOf, nullSchema)
	case s.Type != "":
		if s.Extras == nil {
			s.Extras = map[string]any{}
		}
		s.Extras["type"] = []string{s.Type, "null"}
		s.Type = ""
		if s.Enum != nil {
			s.Enum = append(s.Enum, nil)
		}
	}
}

func admitsNull(s *jsonschema.Schema) bool {
	if s.Type == "null" || isTrue(s) {
		return true
	}
	if t, ok := s.Extras["type"].([]string); ok && slices.Contains(t, "null") {
		return true
	}
	return slices.ContainsFunc(s.OneOf, admitsNull) || slices.ContainsFunc(s.AnyOf, admitsNull)
}

func isTrue(s *jsonschema.Schema) bool {
	b, err := json.Marshal(s)
	return err == nil && string(b) == "true"
}

// anyValue stands for "any JSON value" without the boolean schema true.
func anyValue() *jsonschema.Schema { return &jsonschema.Schema{Description: "Any JSON value."} }

// noTrue replaces every boolean-true sub-schema with an equivalent object schema.
func noTrue(s *jsonschema.Schema) {
	if s == nil {
		return
	}
	fix := func(p **jsonschema.Schema) {
		if *p != nil && isTrue(*p) {
			*p = anyValue()
		}
		noTrue(*p)
	}
	fix(&s.Items)
	if s.AdditionalProperties != nil && isTrue(s.AdditionalProperties) {
		// additionalProperties: true is the default; say nothing rather than "true".
		s.AdditionalProperties = nil
	} else {
		noTrue(s.AdditionalProperties)
	}
	for _, list := range [][]*jsonschema.Schema{s.OneOf, s.AnyOf, s.AllOf, s.PrefixItems} {
		for i := range list {
			fix(&list[i])
		}
	}
	if s.Properties != nil {
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			fix(&pair.Value)
		}
	}
}

// WithoutDescriptions drops every description: a tool's output schema is for validating
// clients, its description already tells the model what comes back, and tools/list is paid in
// tokens on every session.
func WithoutDescriptions(s *jsonschema.Schema) {
	Walk(s, func(s *jsonschema.Schema) { s.Description = "" })
}

// Walk calls fn on s and every sub-schema.
func Walk(s *jsonschema.Schema, fn func(*jsonschema.Schema)) {
	if s == nil {
		return
	}
	fn(s)
	Walk(s.Items, fn)
	Walk(s.AdditionalProperties, fn)
	for _, list := range [][]*jsonschema.Schema{s.OneOf, s.AnyOf, s.AllOf, s.PrefixItems} {
		for _, c := range list {
			Walk(c, fn)
		}
	}
	if s.Properties != nil {
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			Walk(pair.Value, fn)
		}
	}
}
