// Package schemas generates JSON Schemas from core's Go types (invopop/jsonschema). MCP tool
// schemas, the OpenAPI document and the API reference all come from here, so what models and people read is what
// the code accepts.
package schemas

import (
	"encoding/json"

	"github.com/invopop/jsonschema"
)

// Reflect returns the inlined schema of v's type.
func Reflect(v any) *jsonschema.Schema {
	r := jsonschema.Reflector{DoNotReference: true, ExpandedStruct: true}
	s := r.Reflect(v)
	s.Version = ""
	s.ID = ""
	return s
}

// JSON returns Reflect(v) encoded.
func JSON(v any) json.RawMessage {
	b, err := json.Marshal(Reflect(v))
	if err != nil {
		panic("schema of " + err.Error())
	}
	return b
}
