package rest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkRESTLeaseCycle measures an uncontended acquire + release over HTTP (two requests).
func BenchmarkRESTLeaseCycle(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			s := newBenchServer(b, st)
			body := []byte(`{"holder":"bench","ttl_ms":30000}`)
			var i uint64
			for b.Loop() {
				out, err := s.do(http.MethodPost, "/states/"+benchKey(i)+"/lease", body, http.StatusCreated)
				if err != nil {
					b.Fatal(err)
				}
				var l struct{ ID string }
				if err := json.Unmarshal(out, &l); err != nil {
					b.Fatal(err)
				}
				if _, err := s.do(http.MethodDelete, "/leases/"+l.ID, nil, http.StatusNoContent); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if sec := b.Elapsed().Seconds(); sec > 0 {
				b.ReportMetric(float64(b.N)/sec, "cycles/s")
			}
		})
	}
}
