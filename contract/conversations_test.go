package contract

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/conversations/textindex"
	"github.com/agentstate/agentstate-go/conversations/titles"
	"github.com/agentstate/agentstate-go/webhooks"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func storeConv(t *testing.T, f Face, args map[string]any) conversations.Conversation {
	t.Helper()
	var c conversations.Conversation
	mustOK(t, f.Call(t, "store_conversation", args)).Decode(t, &c)
	return c
}

func msgs(texts ...string) []map[string]any {
	out := make([]map[string]any, len(texts))
	for i, s := range texts {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		out[i] = map[string]any{"role": role, "content": s, "token_count": 2}
	}
	return out
}

func TestConversationsStoreRecallAppendList(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		c := storeConv(t, f, map[string]any{"external_id": "ext-1", "title": "First", "metadata": map[string]any{"k": "v"},
			"messages": []map[string]any{
				{"role": "user", "content": "hello", "token_count": 3, "input_tokens": 5, "output_tokens": 7, "cost_microdollars": 11},
				{"role": "assistant", "content": "hi there", "token_count": 4, "model": "m1"},
			}})
		assert.EqualValues(t, 2, c.MessageCount)
		assert.EqualValues(t, 7, c.TokenCount)
		assert.EqualValues(t, 12, c.TotalTokens)
		assert.EqualValues(t, 11, c.TotalCostMicrodollars)
		assert.JSONEq(t, `{"k":"v"}`, string(c.Metadata))
		expectErr(t, f.Call(t, "store_conversation", map[string]any{"external_id": "ext-1"}), core.CodeConflict,
			"A conversation with this external_id already exists")

		e.Clock.Advance(time.Second)
		var app conversations.MessagesResult
		mustOK(t, f.Call(t, "append_messages", map[string]any{"id": c.ID, "messages": msgs("more", "and more")})).Decode(t, &app)
		require.Len(t, app.Messages, 2)
		var got conversations.Conversation
		mustOK(t, f.Call(t, "recall_conversation", map[string]any{"id": c.ID})).Decode(t, &got)
		assert.EqualValues(t, 4, got.MessageCount)
		assert.EqualValues(t, 11, got.TokenCount)
		assert.Equal(t, c.CreatedAt+1000, got.UpdatedAt, "appending bumps updated_at")
		var contents []string
		for _, m := range got.Messages {
			contents = append(contents, m.Content)
		}
		assert.Equal(t, []string{"hello", "hi there", "more", "and more"}, contents)
		assert.Equal(t, app.Messages[0].CreatedAt, app.Messages[1].CreatedAt, "one write shares created_at")

		e.Clock.Advance(time.Second)
		other := storeConv(t, f, map[string]any{"title": "Second"})
		var page conversations.ConversationPage
		mustOK(t, f.Call(t, "list_conversations", map[string]any{"limit": 1})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, other.ID, page.Data[0].ID, "most recently updated first")
		require.NotNil(t, page.Pagination.NextCursor)
		mustOK(t, f.Call(t, "list_conversations", map[string]any{"limit": 1, "cursor": *page.Pagination.NextCursor})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, c.ID, page.Data[0].ID)
		assert.Nil(t, page.Pagination.NextCursor, "no trailing empty page (v1 fetches limit+1)")
		r := mustOK(t, f.Call(t, "list_conversations", map[string]any{"order": "asc"}))
		r.Decode(t, &page)
		if f.Name() == "mcp" {
			assert.Contains(t, string(r.Body), `"total":2`, "v1's MCP list carries the project's conversation count")
		}
		assert.Equal(t, []string{c.ID, other.ID}, []string{page.Data[0].ID, page.Data[1].ID})

		expectErr(t, f.Call(t, "recall_conversation", map[string]any{"id": "missing"}), core.CodeNotFound, "Conversation not found")
		expectErr(t, f.Call(t, "recall_conversation", map[string]any{"id": "bad id!"}), core.CodeBadRequest, "Invalid conversation id")
		expectErr(t, f.Call(t, "append_messages", map[string]any{"id": "missing", "messages": msgs("x")}), core.CodeNotFound, "Conversation not found")
		expectErr(t, f.Call(t, "list_conversations", map[string]any{"cursor": "abc"}), core.CodeInvalidCursor, "")
		expectErr(t, f.Call(t, "list_conversations", map[string]any{"tag": "bad tag"}), core.CodeInvalidTag, "")
	})
}

func TestConversationBadInputWritesNothing(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		c := storeConv(t, f, map[string]any{"messages": msgs("one")})
		for name, m := range map[string]map[string]any{
			"bad role":       {"role": "robot", "content": "x"},
			"empty content":  {"role": "user", "content": ""},
			"negative count": {"role": "user", "content": "x", "token_count": -1},
			"long model":     {"role": "user", "content": "x", "model": strings.Repeat("m", 101)},
			"bad level":      {"role": "user", "content": "x", "level": "loud"},
			"meta not obj":   {"role": "user", "content": "x", "metadata": []int{1}},
		} {
			r := f.Call(t, "append_messages", map[string]any{"id": c.ID, "messages": []map[string]any{{"role": "user", "content": "ok"}, m}})
			assert.Equal(t, core.CodeBadRequest, r.Code, name)
			r = f.Call(t, "store_conversation", map[string]any{"messages": []map[string]any{m}})
			assert.Equal(t, core.CodeBadRequest, r.Code, name)
		}
		assert.Equal(t, "Invalid enum value. Expected 'system' | 'user' | 'assistant' | 'tool', received 'robot'",
			f.Call(t, "append_messages", map[string]any{"id": c.ID, "messages": []map[string]any{{"role": "robot", "content": "x"}}}).Message)
		expectErr(t, f.Call(t, "append_messages", map[string]any{"id": c.ID, "messages": []map[string]any{}}), core.CodeBadRequest, "Array must contain at least 1 element(s)")
		var got conversations.Conversation
		mustOK(t, f.Call(t, "recall_conversation", map[string]any{"id": c.ID})).Decode(t, &got)
		assert.EqualValues(t, 1, got.MessageCount, "nothing was written")
		var page conversations.ConversationPage
		mustOK(t, f.Call(t, "list_conversations", nil)).Decode(t, &page)
		assert.Len(t, page.Data, 1, "no conversation was created")
		expectErr(t, f.Call(t, "conversation_tags", map[string]any{"id": c.ID, "add": []string{"ok", "bad tag"}}), core.CodeBadRequest, "")
		var tags conversations.TagList
		mustOK(t, f.Call(t, "conversation_tags", map[string]any{"id": c.ID})).Decode(t, &tags)
		assert.Empty(t, tags.Data.Tags, "a bad tag adds none")
	})
}

func TestConversationRESTSurface(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		k := s.Project.Key
		call := func(method, path string, body any) (int, []byte) {
			resp, out := send(t, method, s.URL+path, k, body, nil)
			return resp.StatusCode, out
		}
		st, out := call("POST", "/api/v1/conversations", map[string]any{"external_id": "a/b", "messages": msgs("q1", "a1", "q2")})
		require.Equal(t, 201, st, string(out))
		var c conversations.Conversation
		require.NoError(t, json.Unmarshal(out, &c))
		assert.Len(t, c.Messages, 3, "REST create returns the messages")

		st, out = call("GET", "/api/v1/conversations/"+c.ID+"?fields=id,title,messages", nil)
		require.Equal(t, 200, st)
		var picked map[string]any
		require.NoError(t, json.Unmarshal(out, &picked))
		assert.Len(t, picked, 3)
		st, out = call("GET", "/api/v1/conversations/"+c.ID+"?fields=!messages", nil)
		require.Equal(t, 200, st)
		assert.NotContains(t, string(out), `"messages"`)
		st, out = call("GET", "/api/v1/conversations/"+c.ID+"?fields=id,nope", nil)
		assert.Equal(t, 400, st)
		assert.Contains(t, string(out), "INVALID_FIELD")

		st, out = call("GET", "/api/v1/conversations/by-external-id/"+url.PathEscape("a/b"), nil)
		require.Equal(t, 200, st, string(out))
		assert.Contains(t, string(out), c.ID)

		// The seed README's spellings: ?include=messages and PATCH.
		st, out = call("GET", "/api/v1/conversations/"+c.ID+"?include=messages", nil)
		require.Equal(t, 200, st, string(out))
		var withMsgs conversations.Conversation
		require.NoError(t, json.Unmarshal(out, &withMsgs))
		assert.Len(t, withMsgs.Messages, 3)
		st, out = call("PATCH", "/api/v1/conversations/"+c.ID, map[string]any{"title": "patched"})
		require.Equal(t, 200, st, string(out))
		assert.Contains(t, string(out), `"title":"patched"`)
		st, _ = call("PATCH", "/v1/conversations/"+c.ID, map[string]any{"title": "legacy"})
		assert.Equal(t, 200, st, "the legacy prefix too")

		st, out = call("GET", "/api/v1/conversations/"+c.ID+"/messages?limit=2", nil)
		require.Equal(t, 200, st)
		var mp conversations.MessagePage
		require.NoError(t, json.Unmarshal(out, &mp))
		require.Len(t, mp.Data, 2)
		st, out = call("GET", "/api/v1/conversations/"+c.ID+"/messages?limit=2&after="+*mp.Pagination.NextCursor, nil)
		require.Equal(t, 200, st)
		require.NoError(t, json.Unmarshal(out, &mp))
		require.Len(t, mp.Data, 1)
		assert.Equal(t, "q2", mp.Data[0].Content)

		e.Clock.Advance(time.Second)
		st, out = call("PUT", "/api/v1/conversations/"+c.ID, map[string]any{"title": "Renamed", "metadata": map[string]any{"x": 1}})
		require.Equal(t, 200, st, string(out))
		var upd conversations.Conversation
		require.NoError(t, json.Unmarshal(out, &upd))
		assert.Equal(t, "Renamed", *upd.Title)
		assert.Greater(t, upd.UpdatedAt, c.UpdatedAt)

		st, out = call("POST", "/api/v1/conversations/"+c.ID+"/tags", map[string]any{"tags": []string{"b", "a", "b"}})
		require.Equal(t, 201, st, string(out))
		assert.JSONEq(t, `{"data":{"tags":["a","b"]}}`, string(out))
		st, _ = call("DELETE", "/api/v1/conversations/"+c.ID+"/tags/b", nil)
		assert.Equal(t, 204, st)
		st, _ = call("DELETE", "/api/v1/conversations/"+c.ID+"/tags/never", nil)
		assert.Equal(t, 204, st, "removing an absent tag is fine")
		st, out = call("GET", "/api/v1/tags", nil)
		require.Equal(t, 200, st, string(out))
		assert.JSONEq(t, `{"data":{"tags":["a"]}}`, string(out))
		st, out = call("GET", "/v1/conversations?tag=a", nil)
		require.Equal(t, 200, st, "the legacy /v1 prefix")
		assert.Contains(t, string(out), c.ID)
		st, out = call("GET", "/api/v1/conversations?tag=b", nil)
		require.Equal(t, 200, st, string(out))
		assert.NotContains(t, string(out), c.ID)

		st, out = call("GET", "/api/v1/conversations/"+c.ID+"/analytics", nil)
		require.Equal(t, 200, st, string(out))
		var an conversations.ConversationAnalytics
		require.NoError(t, json.Unmarshal(out, &an))
		assert.Equal(t, conversations.RoleStat{Count: 2, Tokens: 4}, an.MessagesByRole["user"])
		assert.Equal(t, []string{"a"}, an.Tags)
		assert.EqualValues(t, 1000, an.DurationMs)

		st, out = call("POST", "/api/v1/conversations/"+c.ID+"/generate-title", nil)
		require.Equal(t, 200, st, string(out))
		var gt conversations.GeneratedTitle
		require.NoError(t, json.Unmarshal(out, &gt))
		assert.NotEmpty(t, gt.Title)
		assert.NotEqual(t, titles.UntitledConversation, gt.Title, "the local provider makes a real title")
		st, out = call("POST", "/api/v1/conversations/"+c.ID+"/generate-all", nil)
		require.Equal(t, 200, st, string(out))
		assert.Contains(t, string(out), `"follow_ups":[`)
		st, _ = call("POST", "/api/v1/conversations/missing/follow-ups", nil)
		assert.Equal(t, 404, st)

		other := storeConv(t, newREST(s, k), map[string]any{"messages": msgs("x")})
		st, out = call("POST", "/api/v1/conversations/export", map[string]any{"ids": []string{c.ID, "unknown"}})
		require.Equal(t, 200, st, string(out))
		var ex conversations.ExportResult
		require.NoError(t, json.Unmarshal(out, &ex))
		assert.Equal(t, 1, ex.Count)
		assert.Len(t, ex.Data[0].Messages, 3)
		st, out = call("POST", "/api/v1/conversations/export", nil)
		require.Equal(t, 200, st, string(out))
		require.NoError(t, json.Unmarshal(out, &ex))
		assert.Equal(t, 2, ex.Count, "without ids: the most recent")
		ids := make([]string, 101)
		st, _ = call("POST", "/api/v1/conversations/export", map[string]any{"ids": ids})
		assert.Equal(t, 400, st, ">100 ids")
		st, _ = call("POST", "/api/v1/conversations/bulk-delete", map[string]any{"ids": ids})
		assert.Equal(t, 400, st, ">100 ids")
		st, out = call("POST", "/api/v1/conversations/bulk-delete", map[string]any{"ids": []string{other.ID, "nope"}})
		require.Equal(t, 200, st)
		assert.JSONEq(t, `{"deleted":1}`, string(out))

		st, _ = call("DELETE", "/api/v1/conversations/"+c.ID, nil)
		assert.Equal(t, 204, st)
		st, _ = call("DELETE", "/api/v1/conversations/"+c.ID, nil)
		assert.Equal(t, 404, st)
		st, out = call("GET", "/api/v1/tags", nil)
		require.Equal(t, 200, st, string(out))
		assert.JSONEq(t, `{"data":{"tags":[]}}`, string(out), "a deleted conversation's tags are gone")
		st, _ = call("GET", "/api/v1/conversations/by-external-id/"+url.PathEscape("a/b"), nil)
		assert.Equal(t, 404, st, "and its external_id is free")
	})
}

func TestTracesIngestListTree(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		obs := []map[string]any{
			{"observation_type": "agent", "content": "root", "start_time": 10},
			{"observation_type": "generation", "content": "child b", "parent_message_id": "$1", "start_time": 30},
			{"observation_type": "tool", "content": "child a", "parent_message_id": "$1", "start_time": 20},
			{"observation_type": "span", "content": "grandchild", "parent_message_id": "$3", "start_time": 25},
		}
		resp, out := send(t, "POST", s.URL+"/api/v1/conversations/traces/ingest", s.Project.Key,
			map[string]any{"trace": map[string]any{"title": "run"}, "observations": obs}, nil)
		require.Equal(t, 201, resp.StatusCode, string(out))
		var tr conversations.TraceResult
		require.NoError(t, json.Unmarshal(out, &tr))
		assert.Equal(t, "assistant", tr.Observations[0].Role, "role defaults to assistant")
		assert.Equal(t, tr.Observations[0].ID, *tr.Observations[1].ParentMessageID, "$1 resolved")
		storeConv(t, newREST(s, s.Project.Key), map[string]any{"messages": msgs("not a trace")})

		resp, out = send(t, "GET", s.URL+"/api/v1/conversations/traces", s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		var page conversations.TracePage
		require.NoError(t, json.Unmarshal(out, &page))
		require.Len(t, page.Data, 1, "only conversations with observations")
		assert.False(t, page.HasMore)

		resp, out = send(t, "GET", s.URL+"/api/v1/conversations/traces/"+tr.Conversation.ID, s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode, string(out))
		var tree struct {
			Observations []struct {
				Content  string
				Children []struct {
					Content  string
					Children []struct{ Content string }
				}
			}
		}
		require.NoError(t, json.Unmarshal(out, &tree))
		require.Len(t, tree.Observations, 1)
		root := tree.Observations[0]
		require.Len(t, root.Children, 2)
		assert.Equal(t, "child a", root.Children[0].Content, "children sorted by start_time")
		assert.Equal(t, "grandchild", root.Children[0].Children[0].Content)

		for name, body := range map[string]any{
			"no observations": map[string]any{"trace": map[string]any{}, "observations": []any{}},
			"no type":         map[string]any{"trace": map[string]any{}, "observations": []map[string]any{{"content": "x"}}},
		} {
			resp, _ = send(t, "POST", s.URL+"/api/v1/conversations/traces/ingest", s.Project.Key, body, nil)
			assert.Equal(t, 400, resp.StatusCode, name)
		}
		// v1 stores a "$N" it cannot resolve verbatim; the node is a root of the tree.
		resp, out = send(t, "POST", s.URL+"/api/v1/conversations/traces/ingest", s.Project.Key, map[string]any{"trace": map[string]any{},
			"observations": []map[string]any{{"observation_type": "span", "content": "x", "parent_message_id": "$5"}}}, nil)
		require.Equal(t, 201, resp.StatusCode, string(out))
		var kept conversations.TraceResult
		require.NoError(t, json.Unmarshal(out, &kept))
		assert.Equal(t, "$5", *kept.Observations[0].ParentMessageID)
		resp, out = send(t, "GET", s.URL+"/api/v1/conversations/traces/"+kept.Conversation.ID, s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		var lone conversations.Trace
		require.NoError(t, json.Unmarshal(out, &lone))
		assert.Len(t, lone.Observations, 1, "an unresolved parent leaves the node a root")
		resp, _ = send(t, "GET", s.URL+"/api/v1/conversations/traces/nope", s.Project.Key, nil, nil)
		assert.Equal(t, 404, resp.StatusCode)
	})
}

func TestAnalyticsSummaryTimeseriesTags(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newREST(s, s.Project.Key)
		day := 24 * time.Hour
		a := storeConv(t, f, map[string]any{"messages": msgs("a", "b")})
		mustOK(t, f.Call(t, "conversation_tags", map[string]any{"id": a.ID, "add": []string{"x", "y"}}))
		e.Clock.Advance(day)
		b := storeConv(t, f, map[string]any{"messages": msgs("c")})
		mustOK(t, f.Call(t, "conversation_tags", map[string]any{"id": b.ID, "add": []string{"x"}}))
		e.Clock.Advance(8 * day)
		storeConv(t, f, map[string]any{"messages": msgs("d", "e", "f")})
		get := func(path string, v any) {
			resp, out := send(t, "GET", s.URL+path, s.Project.Key, nil, nil)
			require.Equal(t, 200, resp.StatusCode, string(out))
			require.NoError(t, json.Unmarshal(out, v))
		}
		var sum conversations.Summary
		get("/api/v1/analytics/summary", &sum)
		assert.EqualValues(t, 3, sum.TotalConversations)
		assert.EqualValues(t, 6, sum.TotalMessages)
		assert.EqualValues(t, 12, sum.TotalTokens)
		assert.Equal(t, 2.0, sum.AvgMessagesPerConversation)
		get("/api/v1/analytics/summary?tag=x&tag=y", &sum)
		assert.EqualValues(t, 1, sum.TotalConversations, "a conversation must have all the tags")
		var ts conversations.Timeseries
		get("/api/v1/analytics/timeseries?metric=messages&granularity=day", &ts)
		assert.Equal(t, []conversations.Bucket{{Bucket: "2026-01-01", Value: 2}, {Bucket: "2026-01-02", Value: 1}, {Bucket: "2026-01-10", Value: 3}}, ts.Data)
		get("/api/v1/analytics/timeseries?granularity=week&metric=bogus", &ts)
		assert.Equal(t, "conversations", ts.Metric, "invalid values fall back")
		assert.Equal(t, []conversations.Bucket{{Bucket: "2026-W00", Value: 2}, {Bucket: "2026-W01", Value: 1}}, ts.Data, "Jan 10 is in the week of Monday Jan 5")
		var tags conversations.TagStats
		get("/api/v1/analytics/tags", &tags)
		assert.Equal(t, []conversations.TagStat{{Tag: "x", ConversationCount: 2, MessageCount: 3, TokenCount: 6}, {Tag: "y", ConversationCount: 1, MessageCount: 2, TokenCount: 4}}, tags.Data)
	})
}

func TestBucketWeeksFollowSQLite(t *testing.T) {
	at := func(s string) int64 { tm, _ := time.Parse("2006-01-02", s); return tm.UnixMilli() }
	// SQLite: strftime('%W', d) counts Monday-started weeks; days before the first Monday are 00.
	for d, want := range map[string]string{"2026-01-01": "2026-W00", "2026-01-04": "2026-W00", "2026-01-05": "2026-W01",
		"2026-11-23": "2026-W47", "2024-01-01": "2024-W01", "2023-12-31": "2023-W52"} {
		assert.Equal(t, want, conversations.BucketOf(at(d), "week"), d)
	}
}

// TestSearchMatchesBruteForceOracle: on generated corpora (non-ASCII, punctuation, appends,
// deletes), every search returns exactly the conversations whose messages hold all the query's
// words (a word written "abc*" being any word starting with it), newest first, across pages,
// on every search path: the portable index (sorted matches, and the recency walk of very common
// words) and RediSearch when AGENTSTATE_TEST_REDISEARCH_URL names a server with it.
func TestSearchMatchesBruteForceOracle(t *testing.T) {
	words := []string{"redis", "Straße", "STRASSE", "café", "cafe\u0301", "日本語", "naïve", "lease", "token", "agent", "écrit",
		"Ωmega", "ωmega", "x1", "go", "42", "deploy", "deployment", "Deployed", "straßenbahn"}
	forEachFaceOn(t, testenv.SearchStores, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		rng := rand.New(rand.NewPCG(7, uint64(len(f.Name()))))
		sentence := func() string {
			var b strings.Builder
			for range 1 + rng.IntN(6) {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteString([]string{" ", ", ", "! ", "—", "\n", "...", " (", ") "}[rng.IntN(8)])
			}
			return b.String()
		}
		corpus := map[string][]string{} // conversation id -> message texts
		order := []string{}
		at := map[string]int64{} // conversation id -> updated_at
		// A third of the writes share the millisecond of the one before: results and cursors
		// must order ties by id.
		tick := func() {
			if rng.IntN(3) > 0 {
				e.Clock.Advance(time.Millisecond)
			}
		}
		for range 30 {
			tick()
			var texts []string
			for range 1 + rng.IntN(3) {
				texts = append(texts, sentence())
			}
			c := storeConv(t, f, map[string]any{"messages": msgs(texts...)})
			corpus[c.ID], order, at[c.ID] = texts, append(order, c.ID), e.Clock.Now().UnixMilli()
		}
		for range 10 { // appends move a conversation to the front
			tick()
			id := order[rng.IntN(len(order))]
			text := sentence()
			mustOK(t, f.Call(t, "append_messages", map[string]any{"id": id, "messages": msgs(text)}))
			corpus[id], at[id] = append(corpus[id], text), e.Clock.Now().UnixMilli()
			order = append(slices.DeleteFunc(order, func(x string) bool { return x == id }), id)
		}
		for range 5 {
			id := order[rng.IntN(len(order))]
			require.NoError(t, s.App.Convs.Delete(context.Background(), s.Project.P, id))
			delete(corpus, id)
			order = slices.DeleteFunc(order, func(x string) bool { return x == id })
			if e.FT != nil {
				n, err := e.Rdb.Exists(context.Background(), "as:ft:{"+s.Project.ID+"}:c:"+id).Result()
				require.NoError(t, err)
				assert.Zero(t, n, "a deleted conversation's RediSearch document goes with it")
			}
		}
		// Half the conversations carry the tag "blue"; a few lose it again.
		blue := map[string]bool{}
		for _, id := range order {
			if rng.IntN(2) == 0 {
				_, err := s.App.Convs.AddTags(context.Background(), s.Project.P, id, conversations.AddTagsRequest{Tags: []string{"blue", "x"}})
				require.NoError(t, err)
				blue[id] = true
			}
		}
		for _, id := range order[:8] {
			if blue[id] && rng.IntN(2) == 0 {
				require.NoError(t, s.App.Convs.RemoveTag(context.Background(), s.Project.P, id, "blue"))
				delete(blue, id)
			}
		}
		slices.SortStableFunc(order, func(a, b string) int { // oldest first, ties by id
			if at[a] != at[b] {
				return int(at[a] - at[b])
			}
			return strings.Compare(a, b)
		})
		// holds is the rule itself, by brute force: every query word is a token of the text,
		// or, written with a trailing "*", the start of one.
		holds := func(toks map[string]bool, q string) bool {
			terms := textindex.ParseQuery(q)
			for _, qt := range terms {
				found := toks[qt.Text] && !qt.Prefix
				for tk := range toks {
					found = found || (qt.Prefix && strings.HasPrefix(tk, qt.Text))
				}
				if !found {
					return false
				}
			}
			return len(terms) > 0
		}
		oracle := func(q, tag string) []string {
			var out []string
			for i := len(order) - 1; i >= 0; i-- { // newest first
				if tag != "" && !blue[order[i]] {
					continue
				}
				toks := map[string]bool{}
				for _, m := range corpus[order[i]] {
					for _, tk := range textindex.Tokens(m) {
						toks[tk] = true
					}
				}
				if holds(toks, q) {
					out = append(out, order[i])
				}
			}
			return out
		}
		queries := []string{"straße", "Strasse", "CAFÉ", "日本語", "redis lease", "Ωmega", "naïve, agent!", "x1 42", "nothing-here", "go go",
			"deplo*", "DEPLOY*", "deployment*", "str*", "STRAß*", "caf*", "ωme* redis", "日本語*", "écr*", "ecr*", "lea* tok*", "naï*", "deplo* deploy"}
		for range 10 {
			queries = append(queries, words[rng.IntN(len(words))]+" "+words[rng.IntN(len(words))])
			// and a random word cut to a prefix of 3 or 4 letters
			w := []rune(textindex.Tokens(words[rng.IntN(len(words))])[0])
			if len(w) >= 3 {
				queries = append(queries, string(w[:min(len(w), 3+rng.IntN(2))])+"*")
			}
		}
		// The same service with a tiny cap walks the recency order instead of sorting matches:
		// the path very common words take. It must give the same answers. With RediSearch on,
		// this copy has it off: the portable index answers from the same data.
		scan := *s.App.Convs
		scan.SearchCap = 2
		scan.Text = nil
		matched := 0
		// Each query four times: on the face and on the scan copy, without and with tag=blue.
		for i, q := range slices.Concat(queries, queries, queries, queries) {
			viaScan, tag := (i/len(queries))%2 == 1, map[bool]string{true: "blue"}[i >= 2*len(queries)]
			var got []string
			cursor := ""
			for range 50 {
				args := map[string]any{"q": q, "limit": 3}
				if cursor != "" {
					args["cursor"] = cursor
				}
				if tag != "" {
					args["tag"] = tag
				}
				var page conversations.SearchPage
				if viaScan {
					var err error
					page, err = scan.Search(context.Background(), s.Project.P, conversations.SearchQuery{Q: q, Limit: 3, Cursor: cursor, Tag: tag})
					require.NoError(t, err)
				} else {
					mustOK(t, f.Call(t, "search_conversations", args)).Decode(t, &page)
				}
				for _, h := range page.Data {
					got = append(got, h.ID)
					shows := false
					for _, tk := range textindex.Tokens(h.Snippet) {
						for _, qt := range textindex.ParseQuery(q) {
							shows = shows || holds(map[string]bool{tk: true}, qt.Text+map[bool]string{true: "*"}[qt.Prefix])
						}
					}
					assert.True(t, shows, "snippet %q shows a word of %q", h.Snippet, q)
				}
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			want := oracle(q, tag)
			if len(want) > 3 {
				matched++ // needs more than one page
			}
			if want == nil {
				want = []string{}
			}
			if got == nil {
				got = []string{}
			}
			assert.Equal(t, want, got, "query %q (scan path: %v, tag %q)", q, viaScan, tag)
		}
		assert.Greater(t, matched, 10, "the generated queries must exercise multi-page results")
		expectErr(t, f.Call(t, "search_conversations", map[string]any{"q": "  "}), core.CodeBadRequest,
			"Query parameter 'q' is required and must not be empty")
		expectErr(t, f.Call(t, "search_conversations", map[string]any{"q": "redis de*"}), core.CodeBadRequest,
			"A prefix (de*) needs at least 3 letters")
		expectErr(t, f.Call(t, "search_conversations", map[string]any{"q": "redis", "tag": "no tag"}), core.CodeInvalidTag,
			"Tag must be 1..50 characters of letters, digits, _ or -")
	})
}

func TestSearchSnippetAndRelevance(t *testing.T) {
	testenv.ForEachStoreOf(t, testenv.SearchStores, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newREST(s, s.Project.Key)
		long := strings.Repeat("lorem ipsum ", 10) + "the needle is here " + strings.Repeat("dolor sit ", 30)
		one := storeConv(t, f, map[string]any{"messages": msgs("nothing", long)})
		e.Clock.Advance(time.Millisecond)
		many := storeConv(t, f, map[string]any{"messages": msgs("needle needle", "needle")})
		var page conversations.SearchPage
		mustOK(t, f.Call(t, "search_conversations", map[string]any{"q": "NEEDLE"})).Decode(t, &page)
		require.Len(t, page.Data, 2)
		assert.Equal(t, many.ID, page.Data[0].ID, "default order: most recently updated")
		snip := page.Data[1].Snippet
		assert.True(t, strings.HasPrefix(snip, "…") && strings.HasSuffix(snip, "…"), snip)
		assert.Equal(t, textindex.SnippetLeadRunes, strings.Index(strings.TrimPrefix(snip, "…"), "needle"), "40 characters before the hit (ASCII here)")
		assert.Equal(t, textindex.SnippetMaxRunes, len([]rune(strings.TrimSuffix(strings.TrimPrefix(snip, "…"), "…"))))
		mustOK(t, f.Call(t, "search_conversations", map[string]any{"q": "needle lorem", "order": "relevance"})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, one.ID, page.Data[0].ID)
		mustOK(t, f.Call(t, "search_conversations", map[string]any{"q": "needle", "order": "relevance"})).Decode(t, &page)
		assert.Equal(t, many.ID, page.Data[0].ID, "three occurrences rank above one")
	})
}

// TestWebhookDeliveredSignedWithRetries: a local receiver started by the test gets
// conversation.created with a valid signature, after two failed attempts are retried.
func TestWebhookDeliveredSignedWithRetries(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		var attempts atomic.Int32
		got := make(chan *http.Request, 1)
		bodies := make(chan []byte, 1)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if attempts.Add(1) < 3 {
				w.WriteHeader(502)
				return
			}
			b, _ := io.ReadAll(r.Body)
			got <- r
			bodies <- b
		}))
		defer recv.Close()
		s := testenv.NewServer(t, e)
		runOutbox(t, s.App, s.Project.ID, fastPolicy(3))
		var wh webhooks.Webhook
		resp, out := send(t, "POST", s.URL+"/api/v1/webhooks", s.Project.Key, map[string]any{"url": recv.URL + "/hook", "events": []string{"conversation.created"}}, nil)
		require.Equal(t, 201, resp.StatusCode, string(out))
		require.NoError(t, json.Unmarshal(out, &wh))
		assert.Len(t, wh.Secret, 64)

		c := storeConv(t, newREST(s, s.Project.Key), map[string]any{"title": "hooked", "messages": msgs("x")})
		var r *http.Request
		select {
		case r = <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("no delivery")
		}
		body := <-bodies
		assert.EqualValues(t, 3, attempts.Load(), "two failures, then delivered")
		mac := hmac.New(sha256.New, []byte(wh.Secret))
		mac.Write([]byte(r.Header.Get("X-AgentState-Timestamp") + "." + string(body)))
		assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), r.Header.Get("X-AgentState-Signature"))
		assert.Equal(t, "AgentState-Webhooks/1.0", r.Header.Get("User-Agent"))
		assert.Contains(t, string(body), `"event":"conversation.created"`)
		assert.Contains(t, string(body), c.ID)
		s.App.Hooks.Wait()

		resp, out = send(t, "GET", s.URL+"/api/v1/webhooks/"+wh.ID, s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		assert.NotContains(t, string(out), wh.Secret, "the secret is shown once")
		assert.Contains(t, string(out), `"last_triggered_at":1`)

		before := attempts.Load()
		mustOK(t, newMCP(s, s.Project.Key).Call(t, "store_conversation", map[string]any{"title": "quiet"}))
		// The worker polls every 20 ms: a queued delivery would arrive well within this.
		assert.Never(t, func() bool { return attempts.Load() != before }, 500*time.Millisecond, 20*time.Millisecond,
			"the MCP tool does not fire webhooks (v1)")

		for _, u := range []string{"http://example.com/x", "https://10.0.0.1/x", "https://169.254.169.254/latest"} {
			resp, _ = send(t, "POST", s.URL+"/api/v1/webhooks", s.Project.Key, map[string]any{"url": u, "events": []string{"conversation.created"}}, nil)
			assert.Equal(t, 400, resp.StatusCode, u)
		}
		resp, _ = send(t, "POST", s.URL+"/api/v1/webhooks", s.Project.Key, map[string]any{"url": "https://example.com/x", "events": []string{"nope"}}, nil)
		assert.Equal(t, 400, resp.StatusCode)
		resp, _ = send(t, "PUT", s.URL+"/api/v1/webhooks/"+wh.ID, s.Project.Key, map[string]any{"active": false}, nil)
		assert.Equal(t, 200, resp.StatusCode)
		resp, _ = send(t, "DELETE", s.URL+"/api/v1/webhooks/"+wh.ID, s.Project.Key, nil, nil)
		assert.Equal(t, 204, resp.StatusCode)
		resp, _ = send(t, "DELETE", s.URL+"/api/v1/webhooks/"+wh.ID, s.Project.Key, nil, nil)
		assert.Equal(t, 404, resp.StatusCode)
	})
}

// TestRetentionPurgesOldConversations: with retention_days set through the admin API, the purge
// deletes conversations not updated for that long, oldest first, and keeps the rest.
func TestRetentionPurgesOldConversations(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		admin := "adm-" + core.NewID()
		s := testenv.NewServer(t, e, func(a *app.App) { a.Auth.AdminToken = admin })
		f := newREST(s, s.Project.Key)
		old := storeConv(t, f, map[string]any{"messages": msgs("old")})
		refreshed := storeConv(t, f, map[string]any{"messages": msgs("refreshed")})
		e.Clock.Advance(3 * 24 * time.Hour)
		mustOK(t, f.Call(t, "append_messages", map[string]any{"id": refreshed.ID, "messages": msgs("again")}))
		fresh := storeConv(t, f, map[string]any{"messages": msgs("fresh")})

		resp, out := send(t, "PATCH", s.URL+"/api/v1/projects/"+s.Project.ID, admin, map[string]any{"retention_days": 2}, nil)
		require.Equal(t, 200, resp.StatusCode, string(out))
		assert.Contains(t, string(out), `"retention_days":2`)
		resp, _ = send(t, "PATCH", s.URL+"/api/v1/projects/"+s.Project.ID, admin, map[string]any{"retention_days": 0}, nil)
		assert.Equal(t, 400, resp.StatusCode)

		n, err := s.App.Convs.PurgeExpired(t.Context(), s.Project.ID, 2)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		expectErr(t, f.Call(t, "recall_conversation", map[string]any{"id": old.ID}), core.CodeNotFound, "")
		for _, c := range []conversations.Conversation{refreshed, fresh} {
			mustOK(t, f.Call(t, "recall_conversation", map[string]any{"id": c.ID}))
		}
		var page conversations.SearchPage
		mustOK(t, f.Call(t, "search_conversations", map[string]any{"q": "old"})).Decode(t, &page)
		assert.Empty(t, page.Data, "purged conversations leave the search index")
	})
}
