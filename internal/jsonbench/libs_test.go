package jsonbench

import (
	stdjson "encoding/json"
	"fmt"
	"strings"
	"testing"
)

// padBody is loadgen's PUT body: {"agent_id":"loadgen","data":{"pad":"xxx…"}} with size-byte data.
func padBody(size int) []byte {
	const head, tail = `{"pad":"`, `"}`
	return []byte(`{"agent_id":"loadgen","data":` + head + strings.Repeat("x", size-len(head)-len(tail)) + tail + `}`)
}

// fieldsBody is a body shaped like an agent's checkpoint: many short fields, numbers, nesting,
// metadata and tags, about size bytes of data.
func fieldsBody(size int) []byte {
	var d strings.Builder
	d.WriteString(`{"step":12,"status":"running","score":0.875,"done":false,"messages":[`)
	for i := 0; d.Len() < size-40; i++ {
		if i > 0 {
			d.WriteByte(',')
		}
		fmt.Fprintf(&d, `{"role":"user","n":%d,"text":"hello é"}`, i)
	}
	d.WriteString(`],"cursor":null}`)
	return []byte(`{"agent_id":"planner-1","data":` + d.String() + `,"metadata":{"run":"r-42","attempt":1},"tags":["agentstate:thread:0b6f","prod"],"expected_version":7}`)
}

var bodies = []struct {
	name string
	b    []byte
}{
	{"pad-200B", padBody(200)}, {"pad-1KiB", padBody(1024)}, {"fields-200B", fieldsBody(200)}, {"fields-1KiB", fieldsBody(1024)},
}

func BenchmarkDecodePut(b *testing.B) {
	for _, body := range bodies {
		for _, l := range append(libs[:len(libs):len(libs)], stdVariants...) {
			b.Run(body.name+"/"+strings.ReplaceAll(l.name, "/", "-"), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body.b)))
				for b.Loop() {
					if _, err := decodePut(l, body.b); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestSameResults: every library decodes the benchmark bodies into what encoding/json does.
func TestSameResults(t *testing.T) {
	for _, body := range bodies {
		want, err := decodePut(libs[0], body.b)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := stdjson.Marshal(want)
		for _, l := range libs[1:] {
			got, err := decodePut(l, body.b)
			g, _ := stdjson.Marshal(got)
			if err != nil || string(g) != string(w) {
				t.Errorf("%s %s: %s %v, want %s", l.name, body.name, g, err, w)
			}
		}
	}
}
