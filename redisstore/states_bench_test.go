package redisstore_test

// BenchmarkRedisPut measures what one state PUT costs Redis: MutateState of a 200-byte object
// over 1,000 existing keys, beside a plain SET of the same bytes (the floor). It reports the
// INFO commandstats deltas per PUT; run Redis under callgrind to count its instructions per
// PUT (docs/benchmarks.md, "Redis instructions per PUT (callgrind)"). Real Redis only.
//
//	go test ./redisstore -run '^$' -bench RedisPut -benchtime 10000x

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

const (
	putBenchKeys  = 1000
	putBenchBytes = 200
)

func BenchmarkRedisPut(b *testing.B) {
	const head, tail = `{"pad":"`, `"}`
	data := json.RawMessage(head + strings.Repeat("x", putBenchBytes-len(head)-len(tail)) + tail)
	ctx := context.Background()
	b.Run("mutate_state", func(b *testing.B) {
		e := testenv.Stores[0].Open(b)
		p := testenv.NewProject(b, e.App(b))
		put := func(i int) {
			_, _, err := e.Store.MutateState(ctx, p.ID, core.StateMutation{
				Op: core.EventUpsert, Key: "k" + strconv.Itoa(i%putBenchKeys), EventID: core.NewID(),
				AgentID: "bench", Data: data, Tags: []string{}, NowMs: time.Now().UnixMilli(),
				Writer: core.LeaseWriter{FullAccess: true},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		for i := range putBenchKeys { // every PUT below replaces a current state
			put(i)
		}
		before := commandStats(b, e.Rdb)
		i := 0
		for b.Loop() {
			put(i)
			i++
		}
		reportCommandStats(b, before, commandStats(b, e.Rdb))
	})
	b.Run("set_floor", func(b *testing.B) {
		e := testenv.Stores[0].Open(b)
		prefix := "as:{t_" + core.NewID() + "}:set:"
		b.Cleanup(func() {
			for i := range putBenchKeys {
				e.Rdb.Del(ctx, prefix+strconv.Itoa(i))
			}
		})
		before := commandStats(b, e.Rdb)
		i := 0
		for b.Loop() {
			if err := e.Rdb.Set(ctx, prefix+strconv.Itoa(i%putBenchKeys), []byte(data), 0).Err(); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportCommandStats(b, before, commandStats(b, e.Rdb))
	})
}

type cmdStat struct{ calls, usec float64 }

// commandStats parses INFO commandstats ("cmdstat_evalsha:calls=3,usec=120,...").
func commandStats(b *testing.B, rdb redis.UniversalClient) map[string]cmdStat {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]cmdStat{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var s cmdStat
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				s.calls = f
			case "usec":
				s.usec = f
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = s
	}
	return out
}

// reportCommandStats reports, per operation, each command's calls and the usec Redis spent in
// it (a script's usec include those of the commands it calls); commands other clients ran on
// the same Redis meanwhile count too (use a private one).
func reportCommandStats(b *testing.B, before, after map[string]cmdStat) {
	n := float64(b.N)
	for name, a := range after {
		d := cmdStat{a.calls - before[name].calls, a.usec - before[name].usec}
		if d.calls == 0 || name == "info" {
			continue
		}
		b.ReportMetric(d.calls/n, name+"_calls/op")
		b.ReportMetric(d.usec/n, name+"_usec/op")
	}
}
