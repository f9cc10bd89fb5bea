package redisstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The conversation scripts must refuse a key list that no longer matches the conversation's
// tags (a tag added or removed after the caller read them): otherwise the write would leave a
// tag ordering with a stale score or a stale member. Driven directly, so the race is certain.
func TestConversationScriptsRefuseStaleTagKeys(t *testing.T) {
	for name, rdb := range scriptStores(t) {
		t.Run(name, func(t *testing.T) { testStaleTagKeys(t, rdb) })
	}
}

// scriptStores are the two servers the scripts run on: real Redis (this package's tests cannot
// import testenv, which imports it) and the embedded one.
func scriptStores(t *testing.T) map[string]redis.UniversalClient {
	mr := miniredis.RunT(t)
	out := map[string]redis.UniversalClient{"embedded": redis.NewClient(&redis.Options{Addr: mr.Addr()})}
	url := os.Getenv("AGENTSTATE_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	real := redis.NewClient(opts)
	switch err := real.Ping(context.Background()).Err(); {
	case err == nil:
		out["redis"] = real
	case os.Getenv("AGENTSTATE_TEST_REQUIRE_REDIS") == "1":
		t.Fatalf("real Redis at %s is required: %v", url, err)
	default:
		t.Logf("skipping real Redis (%v)", err)
	}
	t.Cleanup(func() {
		for _, c := range out {
			_ = c.Close()
		}
	})
	return out
}

// scratchProject is a fresh project id starting with prefix, whose keys are removed when the
// test ends.
func scratchProject(t *testing.T, rdb redis.UniversalClient, prefix string) string {
	p := prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, "as:{"+p+"}:*").Result() // test cleanup, not a request path
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return p
}

func testStaleTagKeys(t *testing.T, rdb redis.UniversalClient) {
	ctx, p, id := context.Background(), scratchProject(t, rdb, "t_scripts_"), "c1"
	require.NoError(t, rdb.HSet(ctx, convKey(p, id), "id", id, "message_count", 0, "updated_at", 1).Err())
	require.NoError(t, rdb.SAdd(ctx, convTagsKey(p, id), "x", "y").Err())

	base := []string{convKey(p, id), convMsgsKey(p, id), convMsgIDsKey(p, id), convsKey(p), convsCreatedKey(p),
		convExtKey(p), tracesKey(p), convTagsKey(p, id)}
	appends := 0 // every append is a new request with a message id of its own
	appendWith := func(tags ...string) []any {
		appends++
		keys := append([]string{}, base...)
		argv := []any{"append", id, 5, "", "", "", "", "null", 1, 0, 0, 0, "", len(tags), 0, "", "", "", ""}
		for _, tg := range tags {
			keys = append(keys, tagConvsKey(p, tg))
			argv = append(argv, tg)
		}
		keys = append(keys, vocabKey(p), ftDocKey(p, id))
		m := fmt.Sprint("m", appends)
		argv = append(argv, m, `{"id":"`+m+`"}`)
		res, err := writeConversationScript.Run(ctx, rdb, keys, argv...).StringSlice()
		require.NoError(t, err)
		return []any{res[0]}
	}
	assert.Equal(t, []any{"RETRY"}, appendWith("x"), "a tag the caller did not see")
	assert.Equal(t, []any{"RETRY"}, appendWith("x", "z"), "a tag the caller saw but which is gone")
	n, _ := rdb.XLen(ctx, convMsgsKey(p, id)).Result()
	assert.Zero(t, n, "a refused write writes nothing")
	assert.Equal(t, []any{"OK"}, appendWith("x", "y"))

	touch := func(tags ...string) any {
		keys := []string{convKey(p, id), convsKey(p), tracesKey(p), convTagsKey(p, id), tagCountsKey(p)}
		argv := []any{id, 9, "1", "t", "", "", len(tags), 0, ""}
		for _, tg := range tags {
			keys = append(keys, tagConvsKey(p, tg))
			argv = append(argv, tg)
		}
		res, err := touchConversationScript.Run(ctx, rdb, append(keys, ftDocKey(p, id)), append(argv, "", "")...).Result()
		require.NoError(t, err)
		return res
	}
	assert.Equal(t, "RETRY", touch("x"))
	assert.EqualValues(t, 1, touch("x", "y"))
	score, err := rdb.ZScore(ctx, tagConvsKey(p, "y"), id).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 9, score, "every tag ordering moved with updated_at")

	del := func(count string, tags ...string) any {
		keys := []string{convKey(p, id), convMsgsKey(p, id), convMsgIDsKey(p, id), convsKey(p), convsCreatedKey(p),
			convExtKey(p), tracesKey(p), convTagsKey(p, id), tagCountsKey(p)}
		argv := []any{id, len(tags), 0, count}
		for _, tg := range tags {
			keys = append(keys, tagConvsKey(p, tg))
			argv = append(argv, tg)
		}
		res, err := deleteConversationScript.Run(ctx, rdb, append(keys, vocabKey(p), ftDocKey(p, id)), argv...).Result()
		require.NoError(t, err)
		return res
	}
	mark, err := deleteConversationScript.Run(ctx, rdb, []string{convKey(p, id)}, "mark").Int64()
	require.NoError(t, err)
	assert.EqualValues(t, 1, mark, "mark returns the message count the caller must tokenise")
	assert.Equal(t, []any{"ERR"}, appendWith("x", "y"), "a conversation being deleted takes no more messages")
	assert.Equal(t, int64(0), touch("x", "y"), "nor tag or title changes")
	assert.Equal(t, "RETRY", del("1", "y"), "a tag the caller did not see")
	assert.Equal(t, "RETRY", del("0", "x", "y"), "a message appended since the caller tokenised them")
	assert.EqualValues(t, 1, del("1", "x", "y"))
	n, _ = rdb.Exists(ctx, convKey(p, id), convTagsKey(p, id), tagConvsKey(p, "x")).Result()
	assert.Zero(t, n)
}
