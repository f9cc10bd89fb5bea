package contract

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func ok(t *testing.T, r Result) Result {
	t.Helper()
	require.Empty(t, r.Code, "unexpected error %s: %s", r.Code, r.Message)
	return r
}

func fails(t *testing.T, r Result, code core.Code, msg string) Result {
	t.Helper()
	require.Equal(t, code, r.Code, "body: %s", r.Body)
	if msg != "" {
		require.Equal(t, msg, r.Message)
	}
	return r
}

func state(t *testing.T, r Result) core.State {
	t.Helper()
	var st core.State
	ok(t, r).Decode(t, &st)
	return st
}

func put(t *testing.T, f Face, key, agent string, data string, extra ...any) core.State {
	t.Helper()
	args := map[string]any{"state_key": key, "agent_id": agent, "data": rawJSON(data)}
	for i := 0; i+1 < len(extra); i += 2 {
		args[extra[i].(string)] = extra[i+1]
	}
	return state(t, f.Call(t, "upsert_state", args))
}

func TestStateCreateReplaceAndRead(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		st := put(t, f, "task/1", "planner", `{"z":1,"a":{"y":[1,2.50,"x"],"b":null}}`,
			"tags", []string{"z", "a", "a"}, "metadata", map[string]any{"m": 1})
		assert.Equal(t, "task/1", st.StateKey)
		assert.Equal(t, "planner", st.AgentID)
		assert.Equal(t, `{"z":1,"a":{"y":[1,2.50,"x"],"b":null}}`, string(st.Data), "data bytes kept exactly, key order and number text included")
		assert.JSONEq(t, `{"m":1}`, string(st.Metadata))
		assert.Equal(t, []string{"a", "z"}, st.Tags)
		assert.EqualValues(t, 1, st.Version)
		assert.Equal(t, st.CreatedAt, st.UpdatedAt)
		assert.Nil(t, st.DeletedAt)
		created := st.CreatedAt

		e.Clock.Advance(time.Second)
		st2 := put(t, f, "task/1", "executor", `{"n":2}`)
		assert.EqualValues(t, 2, st2.Version)
		assert.Greater(t, st2.LatestSequence, st.LatestSequence)
		assert.Equal(t, "executor", st2.AgentID, "agent_id is overwritten on every write")
		assert.Equal(t, "null", string(orNull(st2.Metadata)), "full replace: omitted metadata becomes null")
		assert.Equal(t, []string{}, st2.Tags, "full replace: omitted tags become []")
		assert.Equal(t, created, st2.CreatedAt)
		assert.Equal(t, created+1000, st2.UpdatedAt)

		got := state(t, f.Call(t, "get_state", map[string]any{"state_key": "task/1"}))
		assert.Equal(t, st2, got)

		fails(t, f.Call(t, "get_state", map[string]any{"state_key": "missing"}), core.CodeNotFound, "State not found")
	})
}

func orNull(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

func TestStateCompareAndSet(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		st := put(t, f, "doc", "a", `{"v":1}`, "expected_version", 0)
		assert.EqualValues(t, 1, st.Version)

		r := fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "doc", "agent_id": "a", "data": map[string]any{"v": 2}, "expected_version": 0}),
			core.CodeVersionConflict, "State already exists")
		var werr core.WireError
		r.Decode(t, &werr)
		cur := werr.Details.(map[string]any)["current"].(map[string]any)
		assert.EqualValues(t, 1, cur["version"], "the conflict carries the current state")

		st = put(t, f, "doc", "a", `{"v":2}`, "expected_version", 1)
		assert.EqualValues(t, 2, st.Version)
		fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "doc", "agent_id": "a", "data": map[string]any{"v": 3}, "expected_version": 1}),
			core.CodeVersionConflict, "State is at version 2, not the expected 1")
		fails(t, f.Call(t, "delete_state", map[string]any{"state_key": "doc", "expected_version": 1}), core.CodeVersionConflict, "")
		ok(t, f.Call(t, "delete_state", map[string]any{"state_key": "doc", "expected_version": 2}))

		got := state(t, f.Call(t, "get_state", map[string]any{"state_key": "doc", "at_sequence": st.LatestSequence}))
		assert.JSONEq(t, `{"v":2}`, string(got.Data), "failed writes changed nothing")
		fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "nothing", "agent_id": "a", "data": map[string]any{}, "expected_version": 3}),
			core.CodeVersionConflict, "State does not exist, not at the expected version 3")
	})
}

func TestStateDeleteIsSoftAndKeepsHistory(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		first := put(t, f, "k", "a", `{"n":1}`, "tags", []string{"t1"}, "metadata", map[string]any{"x": true})
		e.Clock.Advance(time.Second)
		r := ok(t, f.Call(t, "delete_state", map[string]any{"state_key": "k"}))
		var del core.DeleteResult
		r.Decode(t, &del)
		assert.True(t, del.Deleted)
		assert.Equal(t, core.EventDelete, del.Event.EventType)
		assert.Equal(t, "null", string(orNull(del.Event.Data)))
		if f.Name() == "mcp" {
			assert.Equal(t, "Default", del.Event.AgentID, "MCP records the deleting agent (here the key's name)")
		} else {
			assert.Equal(t, "a", del.Event.AgentID, "REST (v1) copies the previous agent")
		}
		assert.Equal(t, []string{"t1"}, del.Event.Tags)
		assert.JSONEq(t, `{"x":true}`, string(del.Event.Metadata))
		assert.Nil(t, del.Event.IdempotencyKey)
		assert.EqualValues(t, 2, del.Event.Version)

		fails(t, f.Call(t, "get_state", map[string]any{"state_key": "k"}), core.CodeNotFound, "State not found")
		fails(t, f.Call(t, "delete_state", map[string]any{"state_key": "k"}), core.CodeNotFound, "State not found")
		fails(t, f.Call(t, "delete_state", map[string]any{"state_key": "never"}), core.CodeNotFound, "State not found")

		q := queryPage(t, f, map[string]any{"tags": []string{"t1"}})
		assert.Empty(t, q.Data, "a deleted state leaves the indexes")

		e.Clock.Advance(time.Second)
		again := put(t, f, "k", "b", `{"n":3}`)
		assert.Equal(t, first.CreatedAt, again.CreatedAt, "created_at survives delete and re-create")
		assert.EqualValues(t, 3, again.Version, "versions keep counting across a delete")

		var page core.EventPage
		ok(t, f.Call(t, "list_state_events", map[string]any{"state_key": "k"})).Decode(t, &page)
		require.Len(t, page.Data, 3)
		assert.Equal(t, []string{"upsert", "delete", "upsert"}, []string{page.Data[0].EventType, page.Data[1].EventType, page.Data[2].EventType})
	})
}

func TestStateEventsPaginate(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		var seqs []int64
		for i := range 5 {
			seqs = append(seqs, put(t, f, "log", "a", fmt.Sprintf(`{"i":%d}`, i), "idempotency_key", fmt.Sprintf("ik-%d", i)).LatestSequence)
		}
		put(t, f, "other", "a", `{}`)

		var p1 core.EventPage
		ok(t, f.Call(t, "list_state_events", map[string]any{"state_key": "log", "limit": 2})).Decode(t, &p1)
		require.Len(t, p1.Data, 2)
		assert.Equal(t, 2, p1.Pagination.Limit)
		assert.Equal(t, fmt.Sprint(seqs[1]), *p1.Pagination.NextCursor)
		assert.Equal(t, "ik-0", *p1.Data[0].IdempotencyKey, "the idempotency key is recorded on upsert events")

		var p2 core.EventPage
		ok(t, f.Call(t, "list_state_events", map[string]any{"state_key": "log", "after": seqs[1], "limit": 500})).Decode(t, &p2)
		require.Len(t, p2.Data, 3)
		assert.Equal(t, seqs[2], p2.Data[0].Sequence)

		var p3 core.EventPage
		ok(t, f.Call(t, "list_state_events", map[string]any{"state_key": "log", "after": seqs[4]})).Decode(t, &p3)
		assert.Empty(t, p3.Data)
		assert.Nil(t, p3.Pagination.NextCursor, "next_cursor is null only on an empty page")
	})
}

func TestStateTimeTravel(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		v1 := put(t, f, "tt", "a", `{"v":1}`)
		t1 := core.NowMs(e.Clock)
		e.Clock.Advance(time.Minute)
		v2 := put(t, f, "tt", "a", `{"v":2}`)
		e.Clock.Advance(time.Minute)
		ok(t, f.Call(t, "delete_state", map[string]any{"state_key": "tt"}))

		got := state(t, f.Call(t, "get_state", map[string]any{"state_key": "tt", "at_sequence": v1.LatestSequence}))
		assert.JSONEq(t, `{"v":1}`, string(got.Data))
		assert.Equal(t, got.UpdatedAt, got.CreatedAt, "historical reads show the event time as created_at and updated_at")
		got = state(t, f.Call(t, "get_state", map[string]any{"state_key": "tt", "at_time": t1 + 30_000}))
		assert.JSONEq(t, `{"v":1}`, string(got.Data))
		got = state(t, f.Call(t, "get_state", map[string]any{"state_key": "tt", "at_sequence": v2.LatestSequence, "at_time": t1 + 30_000}))
		assert.JSONEq(t, `{"v":1}`, string(got.Data), "at_sequence and at_time are ANDed")
		got = state(t, f.Call(t, "get_state", map[string]any{"state_key": "tt", "at_sequence": v2.LatestSequence}))
		assert.JSONEq(t, `{"v":2}`, string(got.Data))
		fails(t, f.Call(t, "get_state", map[string]any{"state_key": "tt", "at_time": t1 - 1}), core.CodeNotFound, "")
		fails(t, f.Call(t, "get_state", map[string]any{"state_key": "tt"}), core.CodeNotFound, "")
	})
}

func queryPage(t *testing.T, f Face, q map[string]any) core.StatePage {
	t.Helper()
	var p core.StatePage
	ok(t, f.Call(t, "query_states", q)).Decode(t, &p)
	return p
}

func keysOf(p core.StatePage) []string {
	out := []string{}
	for _, s := range p.Data {
		out = append(out, s.StateKey)
	}
	return out
}

func TestStateQuery(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		put(t, f, "s1", "qa", `{"status":"ok","n":1,"items":[{"id":"x"}]}`, "tags", []string{"red", "big"})
		e.Clock.Advance(time.Second)
		mid := core.NowMs(e.Clock)
		put(t, f, "s2", "qa", `{"status":"bad","n":1.0}`, "tags", []string{"red"})
		e.Clock.Advance(time.Second)
		put(t, f, "s3", "dev", `{"status":"ok","o":{"a":1,"b":2}}`, "tags", []string{"big"})
		put(t, f, "s4", "qa", `{"status":"ok"}`)
		ok(t, f.Call(t, "delete_state", map[string]any{"state_key": "s4"}))

		assert.Equal(t, []string{"s3", "s2", "s1"}, keysOf(queryPage(t, f, map[string]any{})), "newest write first; deleted states excluded")
		assert.Equal(t, []string{"s2", "s1"}, keysOf(queryPage(t, f, map[string]any{"agent_id": "qa"})))
		assert.Equal(t, []string{"s1"}, keysOf(queryPage(t, f, map[string]any{"tags": []string{"red", "big"}})), "tags: all must match")
		assert.Equal(t, []string{"s3", "s1"}, keysOf(queryPage(t, f, map[string]any{"json_path": "$.status", "json_equals": "ok"})))
		assert.Equal(t, []string{"s2", "s1"}, keysOf(queryPage(t, f, map[string]any{"json_path": "$.n", "json_equals": 1})), "1.0 equals 1 as JSON.stringify would print it")
		assert.Equal(t, []string{"s1"}, keysOf(queryPage(t, f, map[string]any{"json_path": "$.items[0].id", "json_equals": "x"})))
		assert.Equal(t, []string{"s3"}, keysOf(queryPage(t, f, map[string]any{"json_path": "$.o", "json_equals": rawJSON(`{"a":1,"b":2}`)})))
		assert.Empty(t, keysOf(queryPage(t, f, map[string]any{"json_path": "$.o", "json_equals": rawJSON(`{"b":2,"a":1}`)})), "object key order matters (v1 rule)")
		assert.Equal(t, []string{"s3", "s2"}, keysOf(queryPage(t, f, map[string]any{"json_path": "$.items"})), "a path without json_equals matches where the path is absent")
		assert.Equal(t, []string{"s1"}, keysOf(queryPage(t, f, map[string]any{"predicates": []map[string]any{{"path": "$.status", "equals": "ok"}, {"path": "$.n", "equals": 1}}})))
		assert.Equal(t, []string{"s3", "s2"}, keysOf(queryPage(t, f, map[string]any{"updated_after": mid})), "updated bounds are inclusive")
		assert.Equal(t, []string{"s2", "s1"}, keysOf(queryPage(t, f, map[string]any{"updated_before": mid})))

		p := queryPage(t, f, map[string]any{"limit": 1})
		require.Equal(t, []string{"s3"}, keysOf(p))
		require.NotNil(t, p.Pagination.NextCursor)
		assert.Equal(t, 1, p.Pagination.Limit)
		p = queryPage(t, f, map[string]any{"limit": 1, "cursor": *p.Pagination.NextCursor})
		assert.Equal(t, []string{"s2"}, keysOf(p))
		p = queryPage(t, f, map[string]any{"limit": 5, "cursor": *p.Pagination.NextCursor})
		assert.Equal(t, []string{"s1"}, keysOf(p))
		assert.Nil(t, p.Pagination.NextCursor)
	})
}

func TestStateQueryHistorical(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		a1 := put(t, f, "a", "x", `{"v":1}`)
		put(t, f, "b", "x", `{"v":1}`)
		mark := put(t, f, "c", "x", `{"v":1}`).LatestSequence
		put(t, f, "a", "x", `{"v":2}`)
		ok(t, f.Call(t, "delete_state", map[string]any{"state_key": "b"}))
		put(t, f, "d", "x", `{"v":1}`)

		p := queryPage(t, f, map[string]any{"at_sequence": mark})
		assert.Equal(t, []string{"c", "b", "a"}, keysOf(p))
		assert.JSONEq(t, `{"v":1}`, string(p.Data[2].Data))
		assert.Equal(t, a1.LatestSequence, p.Data[2].LatestSequence)
		p = queryPage(t, f, map[string]any{"at_sequence": mark, "limit": 2})
		assert.Equal(t, []string{"c", "b"}, keysOf(p))
		p = queryPage(t, f, map[string]any{"at_sequence": mark, "limit": 2, "cursor": *p.Pagination.NextCursor})
		assert.Equal(t, []string{"a"}, keysOf(p))
		p = queryPage(t, f, map[string]any{"at_sequence": mark + 100, "json_path": "$.v", "json_equals": 1})
		assert.Equal(t, []string{"d", "c"}, keysOf(p), "b is deleted and a moved on to v=2")
	})
}

func TestStateIdempotency(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		args := map[string]any{"state_key": "idem", "agent_id": "a", "data": map[string]any{"n": 1}, "idempotency_key": "req-1"}
		first := f.Call(t, "upsert_state", args)
		st := state(t, first)
		e.Clock.Advance(time.Second)
		again := f.Call(t, "upsert_state", args)
		assert.Equal(t, st, state(t, again), "a replay returns the stored response")
		if f.Name() == "rest" {
			assert.Equal(t, "true", again.Header.Get("Idempotency-Replayed"))
			assert.Empty(t, first.Header.Get("Idempotency-Replayed"))
		}
		args["data"] = map[string]any{"n": 2}
		fails(t, f.Call(t, "upsert_state", args), core.CodeIdempotencyConflict, "Idempotency-Key was already used for a different request")

		var page core.EventPage
		ok(t, f.Call(t, "list_state_events", map[string]any{"state_key": "idem"})).Decode(t, &page)
		assert.Len(t, page.Data, 1, "the replay wrote nothing")

		del := map[string]any{"state_key": "idem", "idempotency_key": "req-2"}
		d1 := ok(t, f.Call(t, "delete_state", del))
		d2 := ok(t, f.Call(t, "delete_state", del))
		assert.JSONEq(t, string(d1.Body), string(d2.Body), "a replayed delete answers as the first did, not 404")
	})
}

// projectKeys lists the project's Redis keys (a test-only SCAN).
func projectKeys(t *testing.T, e *testenv.Env, project string) []string {
	t.Helper()
	return e.ProjectKeys(t, project)
}

func TestStateBadInputChangesNothing(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		before := projectKeys(t, e, s.Project.ID)
		base := func(extra map[string]any) map[string]any {
			a := map[string]any{"state_key": "bad", "agent_id": "a", "data": map[string]any{"x": 1}}
			for k, v := range extra {
				a[k] = v
			}
			return a
		}
		manyTags := make([]string, 51)
		for i := range manyTags {
			manyTags[i] = fmt.Sprintf("t%d", i)
		}
		cases := []struct {
			name string
			tool string
			args map[string]any
			code core.Code
			msg  string
		}{
			{"data is an array", "upsert_state", base(map[string]any{"data": []int{1}}), core.CodeBadRequest, "Expected object, received array"},
			{"data is a string", "upsert_state", base(map[string]any{"data": "x"}), core.CodeBadRequest, "Expected object, received string"},
			{"data missing", "upsert_state", map[string]any{"state_key": "bad", "agent_id": "a"}, core.CodeBadRequest, "data is required"},
			{"agent too long", "upsert_state", base(map[string]any{"agent_id": strings.Repeat("a", 256)}), core.CodeBadRequest, "String must contain at most 255 character(s)"},
			{"agent not a string", "upsert_state", base(map[string]any{"agent_id": 5}), core.CodeBadRequest, "Expected string, received number"},
			{"bad tag", "upsert_state", base(map[string]any{"tags": []string{"ok", "no spaces"}}), core.CodeBadRequest, core.MsgStateTagChars},
			{"long tag", "upsert_state", base(map[string]any{"tags": []string{strings.Repeat("t", 129)}}), core.CodeBadRequest, "String must contain at most 128 character(s)"},
			{"51 tags", "upsert_state", base(map[string]any{"tags": manyTags}), core.CodeBadRequest, "Array must contain at most 50 element(s)"},
			{"metadata not an object", "upsert_state", base(map[string]any{"metadata": []int{}}), core.CodeBadRequest, "Expected object, received array"},
			{"negative expected_version", "upsert_state", base(map[string]any{"expected_version": -1}), core.CodeBadRequest, ""},
			{"oversized key", "upsert_state", base(map[string]any{"state_key": strings.Repeat("k", 1025)}), core.CodeBadRequest, ""},
			{"unknown lease id", "upsert_state", base(map[string]any{"lease_id": "nope"}), core.CodeLeaseConflict, "lease_id does not match active lease"},
			{"fencing token never issued", "upsert_state", base(map[string]any{"fencing_token": 1}), core.CodeStaleFencingToken, ""},
			{"unsupported path", "query_states", map[string]any{"json_path": "$..status", "json_equals": 1}, core.CodeBadRequest, "Unsupported JSON path"},
			{"wildcard path", "query_states", map[string]any{"predicates": []map[string]any{{"path": "$.a[*]", "equals": 1}}}, core.CodeBadRequest, "Unsupported JSON path"},
			{"bad cursor", "query_states", map[string]any{"cursor": "abc"}, core.CodeInvalidCursor, ""},
			{"limit 0", "query_states", map[string]any{"limit": 0}, core.CodeBadRequest, "Number must be greater than or equal to 1"},
			{"limit 101", "query_states", map[string]any{"limit": 101}, core.CodeBadRequest, "Number must be less than or equal to 100"},
			{"51 query tags", "query_states", map[string]any{"tags": manyTags}, core.CodeBadRequest, ""},
			{"11 predicates", "query_states", map[string]any{"predicates": make([]map[string]any, 11)}, core.CodeBadRequest, ""},
		}
		if f.Name() == "rest" { // MCP defaults agent_id to the credential's agent
			cases = append(cases, struct {
				name string
				tool string
				args map[string]any
				code core.Code
				msg  string
			}{"agent missing", "upsert_state", base(map[string]any{"agent_id": ""}), core.CodeBadRequest, ""})
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				fails(t, f.Call(t, c.tool, c.args), c.code, c.msg)
			})
		}
		assert.ElementsMatch(t, before, projectKeys(t, e, s.Project.ID), "rejected requests wrote nothing to Redis")
	})
}

// TestLangGraphStyleTags: v1's LangGraph checkpointers and AI-SDK stores tag states
// agentstate:thread:<uuid> (':' and 54 characters); such tags round-trip through a write and a
// tag query on both faces, up to 128 characters.
func TestLangGraphStyleTags(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		thread := "agentstate:thread:" + "7f3c2a9e-1b4d-4c8a-9e2f-3d5b6a7c8d9e"
		long := "lg.ns:" + strings.Repeat("x", 122)
		st := put(t, f, "ckpt/1", "graph", `{"step":1}`, "tags", []string{thread, "agentstate:checkpoint", long})
		assert.Equal(t, []string{"agentstate:checkpoint", thread, long}, st.Tags)
		put(t, f, "ckpt/2", "graph", `{"step":2}`, "tags", []string{"agentstate:thread:other"})
		assert.Equal(t, []string{"ckpt/1"}, keysOf(queryPage(t, f, map[string]any{"tags": []string{thread}})))
		assert.Equal(t, []string{"ckpt/1"}, keysOf(queryPage(t, f, map[string]any{"tags": []string{long, "agentstate:checkpoint"}})))
	})
}
