package redisstore_test

// BenchmarkRedisPut measures what one state PUT costs Redis: MutateState of a 200-byte object
// over 1,000 existing keys, beside a plain SET of the same bytes (the floor); BenchmarkRedisGet
// the read of such a state beside a plain GET. They report the INFO commandstats deltas per
// operation; run Redis under callgrind to count its instructions per operation
// (docs/benchmarks.md, "Redis instructions per PUT (callgrind)"). Real Redis only.
//
//	go test ./redisstore -run '^$' -bench 'Redis(Put|Get)' -benchtime 10000x

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

var putBenchData = func() json.RawMessage {
	const head, tail = `{"pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", putBenchBytes-len(head)-len(tail)) + tail)
}()

// putBenchStates opens real Redis and a fresh project holding putBenchKeys states; put
// replaces the state k<i mod putBenchKeys>, with a deferred admission of the project's key
// (one rate counter) when admitted is set, as a REST PUT from a remembered key sends it.
func putBenchStates(b *testing.B, admitted bool) (e *testenv.Env, project string, put func(i int)) {
	e = testenv.Stores[0].Open(b)
	p := testenv.NewProject(b, e.App(b))
	project = p.ID
	put = func(i int) {
		m := core.StateMutation{
			Op: core.EventUpsert, Key: "k" + strconv.Itoa(i%putBenchKeys), EventID: core.NewID(),
			AgentID: "bench", Data: putBenchData, Tags: []string{}, NowMs: time.Now().UnixMilli(),
			Writer: core.LeaseWriter{FullAccess: true},
		}
		if admitted && i >= putBenchKeys {
			m.Admission = &core.AdmissionCheck{Kind: p.P.Kind, CredentialID: p.P.CredentialID,
				Lineage: []string{p.P.CredentialID}, Window: time.Now().Truncate(core.RateWindow).UnixMilli(),
				Counters: []core.RateCounter{{ID: p.P.CredentialID}}, Limit: 1 << 40}
		}
		_, _, err := e.Store.MutateState(context.Background(), project, m)
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := range putBenchKeys {
		put(i)
	}
	return e, project, put
}

// setFloorKeys fills putBenchKeys plain strings of the same bytes; they are removed afterwards.
func setFloorKeys(b *testing.B, e *testenv.Env) func(i int) string {
	prefix := "as:{t_" + core.NewID() + "}:set:"
	key := func(i int) string { return prefix + strconv.Itoa(i%putBenchKeys) }
	b.Cleanup(func() {
		for i := range putBenchKeys {
			e.Rdb.Del(context.Background(), key(i))
		}
	})
	for i := range putBenchKeys {
		if err := e.Rdb.Set(context.Background(), key(i), []byte(putBenchData), 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return key
}

func BenchmarkRedisPut(b *testing.B) {
	ctx := context.Background()
	for _, admitted := range []bool{false, true} {
		name := "mutate_state"
		if admitted {
			name = "mutate_state_admitted"
		}
		b.Run(name, func(b *testing.B) {
			e, _, put := putBenchStates(b, admitted) // every PUT below replaces a current state
			before := commandStats(b, e.Rdb)
			i := putBenchKeys
			for b.Loop() {
				put(i)
				i++
			}
			reportCommandStats(b, before, commandStats(b, e.Rdb))
		})
	}
	b.Run("set_floor", func(b *testing.B) {
		e := testenv.Stores[0].Open(b)
		key := setFloorKeys(b, e)
		before := commandStats(b, e.Rdb)
		i := 0
		for b.Loop() {
			if err := e.Rdb.Set(ctx, key(i), []byte(putBenchData), 0).Err(); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportCommandStats(b, before, commandStats(b, e.Rdb))
	})
}

func BenchmarkRedisGet(b *testing.B) {
	ctx := context.Background()
	b.Run("state", func(b *testing.B) {
		e, project, _ := putBenchStates(b, false)
		keys := make([][]string, putBenchKeys)
		for i := range keys {
			keys[i] = []string{"k" + strconv.Itoa(i)}
		}
		before := commandStats(b, e.Rdb)
		i := 0
		for b.Loop() {
			if _, err := e.Store.StateEventsAt(ctx, project, keys[i%putBenchKeys], 0, 0); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportCommandStats(b, before, commandStats(b, e.Rdb))
	})
	b.Run("get_floor", func(b *testing.B) {
		e := testenv.Stores[0].Open(b)
		key := setFloorKeys(b, e)
		before := commandStats(b, e.Rdb)
		i := 0
		for b.Loop() {
			if err := e.Rdb.Get(ctx, key(i)).Err(); err != nil {
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
