package faults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// Single Redis with the AOF on, SIGKILLed under a write and lease load and restarted from its
// AOF. Counted: acknowledged writes lost, versions and sequences issued twice (a counter that
// went backwards), fencing tokens issued twice. With appendfsync always all must be zero; with
// everysec the numbers are reported (a process kill leaves the written AOF in the page cache,
// so everysec loses data only when the machine itself goes down within that second, which
// this test cannot do).
func TestRestartFromAOF(t *testing.T) {
	requireFaults(t)
	for i, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			srv := testenv.StartRedis(t, 7201+i, "--appendonly", "yes", "--appendfsync", fsync)
			s, _ := server(t, redisstore.Options{URL: "redis://" + srv.Addr()})
			l := startLoad(s, 8, 2)
			time.Sleep(2 * time.Second)
			srv.Kill()
			killed := time.Now()
			srv.Start()
			t.Logf("redis-server restarted from its AOF in %s", time.Since(killed).Round(time.Millisecond))
			l.waitServing(t, 2*time.Second, 30*time.Second)
			l.finish()
			v := l.check(t, s.App, s.Project.P)
			if fsync == "always" {
				assert.Zero(t, v.Lost)
				assert.Zero(t, v.VersionsReused)
				assert.Zero(t, v.SequencesReused)
				assert.Zero(t, v.TokensReissued)
			}
		})
	}
}
