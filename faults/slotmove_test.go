package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// The project's slot is migrated to another master (CLUSTER SETSLOT … MIGRATING/IMPORTING,
// MIGRATE, SETSLOT … NODE: what redis-cli --cluster reshard does) while writes go on, a watch
// is open and a long-poll waits. The watch must deliver every acknowledged write exactly once
// and in order across the move, and the long-poll must be woken by a write made after it.
func TestSlotMigrationUnderWatch(t *testing.T) {
	requireFaults(t)
	nodes, url := testenv.StartCluster(t, failoverPorts[:3], 0)
	s, conn := server(t, redisstore.Options{URL: url, Cluster: true})
	ctx := context.Background()
	cc := conn.Store.Client().(*redis.ClusterClient)
	tag := "as:{" + s.Project.ID + "}:"

	seqs := watchSequences(t, s)
	l := startLoad(s, 4, 0)
	longPoll := make(chan int, 1)
	go func() { longPoll <- waitVersion(s, "during-move", 0) }() // blocks across the move
	time.Sleep(time.Second)
	from, to := moveSlot(t, cc, nodes, tag)
	t.Logf("slot of %s moved from %s to %s", tag, from, to)
	l.waitServing(t, time.Second, 20*time.Second)
	l.finish()

	m, err := cc.MasterForKey(ctx, tag)
	require.NoError(t, err)
	assert.Equal(t, to, m.Options().Addr, "the project now lives on the other master")
	put(t, s, "during-move")
	select {
	case v := <-longPoll:
		assert.Equal(t, 1, v, "the long-poll that waited through the move is woken by the write after it")
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll was not woken by a write after the move")
	}

	v := l.check(t, s.App, s.Project.P)
	assert.Zero(t, v.Lost)
	want := map[int64]bool{}
	for _, a := range l.acks {
		want[a.sequence] = true
	}
	deadline := time.After(20 * time.Second)
	var got []int64
	for len(want) > 0 {
		select {
		case seq := <-seqs:
			if len(got) > 0 {
				require.Greater(t, seq, got[len(got)-1], "watch delivers in order, no duplicates")
			}
			got = append(got, seq)
			delete(want, seq)
		case <-deadline:
			t.Fatalf("the watch never delivered %d acknowledged writes (of %d)", len(want), len(l.acks))
		}
	}
	t.Logf("watch delivered %d events in order across the move, every acknowledged write among them", len(got))
}

// moveSlot migrates the slot of key to another master and returns both addresses.
func moveSlot(t *testing.T, cc *redis.ClusterClient, nodes []*testenv.RedisServer, key string) (string, string) {
	t.Helper()
	ctx := context.Background()
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	require.NoError(t, err)
	src, err := cc.MasterForKey(ctx, key)
	require.NoError(t, err)
	var dst *redis.Client
	for _, n := range nodes {
		if n.Addr() != src.Options().Addr {
			dst = redis.NewClient(&redis.Options{Addr: n.Addr()})
			t.Cleanup(func() { _ = dst.Close() })
			break
		}
	}
	srcID, err := src.ClusterMyID(ctx).Result()
	require.NoError(t, err)
	dstID, err := dst.ClusterMyID(ctx).Result()
	require.NoError(t, err)
	require.NoError(t, dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	require.NoError(t, src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	host, port, _ := strings.Cut(dst.Options().Addr, ":")
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 10).Result()
		require.NoError(t, err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		require.NoError(t, src.Do(ctx, args...).Err())
		time.Sleep(20 * time.Millisecond) // spread the move out, so writes meet it half done
	}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		require.NoError(t, c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
		_ = c.Close()
	}
	return src.Options().Addr, dst.Options().Addr
}

// watchSequences opens a watch from the start and sends each state event's sequence.
func watchSequences(t *testing.T, s *testenv.Server) <-chan int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v1/states/watch", nil)
	req.Header.Set("Authorization", "Bearer "+s.Project.Key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	out := make(chan int64, 1<<16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(data, `"sequence"`) {
				var ev core.StateEvent
				if json.Unmarshal([]byte(data), &ev) == nil {
					out <- ev.Sequence
				}
			}
		}
	}()
	return out
}

// waitVersion long-polls key for a version above after (up to 30 s) and returns the version.
func waitVersion(s *testenv.Server, key string, after int) int {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/states/%s?wait_version=%d&wait_ms=30000", s.URL, key, after), nil)
	req.Header.Set("Authorization", "Bearer "+s.Project.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st core.State
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return int(st.Version)
}

func put(t *testing.T, s *testenv.Server, key string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.URL+"/api/v1/states/"+key, strings.NewReader(`{"agent_id":"a","data":{"n":1}}`))
	req.Header.Set("Authorization", "Bearer "+s.Project.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300)
}
