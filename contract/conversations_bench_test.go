package contract

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/conversations"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkConversationSearch100k loads 10,000 conversations of 10 messages (100k messages,
// ~12 words each from a Zipf vocabulary of 5,000 words) into real Redis through the product's
// write path, then measures searches of one and two mid-frequency words, and of prefixes. It
// reports p50/p99 latency and the Redis memory the corpus took per message. With
// AGENTSTATE_TEST_REDISEARCH_URL set it does the same on that server with the RediSearch path
// on, where it also times the portable index on the same corpus (portable-*):
//
//	go test -run '^$' -bench ConversationSearch100k -benchtime 2000x ./contract/
func BenchmarkConversationSearch100k(b *testing.B) {
	for _, st := range []testenv.Store{testenv.Stores[0], testenv.RediSearch} {
		b.Run(st.Name, func(b *testing.B) { benchSearch100k(b, st.Open(b)) })
	}
}

func benchSearch100k(b *testing.B, e *testenv.Env) {
	s := testenv.NewServer(b, e)
	ctx, p, convs := context.Background(), s.Project.P, s.App.Convs
	rng := rand.New(rand.NewPCG(1, 1))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(2, 2)), 1.1, 1, 4999)
	word := func(i uint64) string { return "w" + strconv.FormatUint(i, 36) }
	memBefore := usedMemory(b, e)
	var textBytes int
	start := time.Now()
	for c := range 10_000 {
		msgs := make([]conversations.MessageInput, 10)
		for i := range msgs {
			ws := make([]string, 12)
			for j := range ws {
				ws[j] = word(zipf.Uint64())
			}
			msgs[i] = conversations.MessageInput{Role: "user", Content: strings.Join(ws, " ") + "."}
			textBytes += len(msgs[i].Content)
		}
		if _, err := convs.Create(ctx, p, conversations.CreateConversation{Messages: msgs}); err != nil {
			b.Fatal(c, err)
		}
	}
	load := time.Since(start)
	mem := usedMemory(b, e) - memBefore
	// timed measures queries from next on cv, reporting p50/p99 as name-p50-ms, name-p99-ms.
	timed := func(cv *conversations.Service, name string, n int, next func(i int) string) {
		var lat []time.Duration
		for i := range n {
			t0 := time.Now()
			if _, err := cv.Search(ctx, p, conversations.SearchQuery{Q: next(i)}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
	// Three base-36 digits after "w" are words of rank 1,296 and up; a prefix of two digits
	// stands for up to 37 of them.
	prefix := func(int) string { return word(uint64(36+rng.IntN(1260))) + "*" }
	midWords := func(i int) string {
		q := word(uint64(20 + rng.IntN(200)))
		if i%2 == 1 {
			q += " " + word(uint64(20+rng.IntN(200)))
		}
		return q
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := midWords(i)
		t0 := time.Now()
		if _, err := convs.Search(ctx, p, conversations.SearchQuery{Q: q}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	timed(convs, "prefix", 200, prefix)
	// The five most frequent words match nearly all 10,000 conversations: the worst case for
	// sorting the matches. The same words with the cap at 1,000 take the recency walk instead.
	common := func(i int) string { return word(uint64(1 + i%5)) }
	timed(convs, "common-sort", 200, common)
	walk := *convs
	walk.SearchCap = 1000
	walk.Text = nil
	timed(&walk, "common-walk", 200, common)
	if e.FT != nil {
		portable := *convs
		portable.Text = nil
		timed(&portable, "portable", 500, midWords)
		timed(&portable, "portable-prefix", 200, prefix)
		timed(&portable, "portable-common-sort", 200, common)
	}
	// Reported last: ResetTimer drops metrics reported before it.
	b.ReportMetric(float64(mem)/100_000, "redis-B/msg")
	b.ReportMetric(float64(mem)/float64(textBytes), "redis-B/text-B")
	b.ReportMetric(100_000/load.Seconds(), "load-msgs/s")
}

// BenchmarkConversationAppend appends one message per op, 8 goroutines, to 64 conversations.
func BenchmarkConversationAppend(b *testing.B) {
	e := testenv.Stores[0].Open(b)
	s := testenv.NewServer(b, e)
	ctx, p := context.Background(), s.Project.P
	var ids []string
	for range 64 {
		c, err := s.App.Convs.Create(ctx, p, conversations.CreateConversation{})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			in := conversations.AppendMessages{Messages: []conversations.MessageInput{{Role: "user", Content: fmt.Sprintf("append message number %d about redis leases", rng.IntN(1000))}}}
			if _, err := s.App.Convs.Append(ctx, p, ids[rng.IntN(len(ids))], in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func usedMemory(b *testing.B, e *testenv.Env) int64 {
	info, err := e.Rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}
