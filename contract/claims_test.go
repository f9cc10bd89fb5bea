package contract

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func logSize(t *testing.T, s *testenv.Server) int64 {
	t.Helper()
	cp, err := s.App.Claims.Checkpoint(context.Background(), s.Project.P)
	require.NoError(t, err)
	return cp.Size
}

func TestClaimEvidenceKindsAndMessages(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		// The key-order case: the hash is over the bytes as sent, not a re-marshalled map.
		var st core.State
		mustOK(t, f.Call(t, "upsert_state", map[string]any{"state_key": "doc", "agent_id": "a",
			"data": rawJSON(`{"b":2,"a":1,"status":"new"}`)})).Decode(t, &st)
		var evs core.EventPage
		mustOK(t, f.Call(t, "list_state_events", map[string]any{"state_key": "doc"})).Decode(t, &evs)
		require.Len(t, evs.Data, 1)
		ordered := core.SHA256Hex([]byte(`{"b":2,"a":1,"status":"new"}`))
		sorted := core.SHA256Hex([]byte(`{"a":1,"b":2,"status":"new"}`))
		seq := fmt.Sprint(st.LatestSequence)

		var c core.Claim
		mustOK(t, f.Call(t, "create_claim", map[string]any{"subject_type": "task", "subject_id": "doc", "statement": "checked",
			"evidence": []map[string]any{
				{"kind": "text_hash", "source": "t1", "data": "hello", "hash": core.SHA256Hex([]byte("hello"))},
				{"kind": "text_hash", "source": "t2", "data": "hello", "hash": core.SHA256Hex([]byte("bye"))},
				{"kind": "json_value", "source": "j1", "data": map[string]any{"a": []int{1, 2}}, "json_path": "$.a[1]", "expected_value": 2},
				{"kind": "json_value", "source": "j2", "data": map[string]any{"a": 1}, "json_path": "$.a", "expected_value": 3},
				{"kind": "json_value", "source": "j3", "data": map[string]any{"a": 1}, "json_path": "$.zz", "expected_value": 1},
				{"kind": "state_event", "source": seq, "hash": ordered},
				{"kind": "state_event", "source": evs.Data[0].ID, "hash": sorted},
				{"kind": "state_event", "source": evs.Data[0].ID, "json_path": "$.status", "expected_value": "new"},
				{"kind": "state_event", "source": seq, "json_path": "$.status", "expected_value": "old"},
				{"kind": "state_event", "source": "999999", "hash": ordered},
			}})).Decode(t, &c)
		assert.Equal(t, core.ClaimPending, c.Status)
		assert.Len(t, c.Evidence, 10)
		assert.Equal(t, s.Project.P.CredentialID, c.Issuer.CredentialID, "the issuer is the authenticated credential")

		var run core.VerificationRun
		mustOK(t, f.Call(t, "verify_claim", map[string]any{"claim_id": c.ID})).Decode(t, &run)
		var msgs []string
		for _, r := range run.Details.Results {
			msgs = append(msgs, fmt.Sprintf("%s:%v:%s", r.Source, r.Passed, r.Message))
		}
		assert.Equal(t, []string{
			"t1:true:hash matched", "t2:false:hash mismatch",
			"j1:true:json value matched", "j2:false:json value mismatch", "j3:false:json path did not resolve",
			seq + ":true:state event hash matched",
			evs.Data[0].ID + ":false:state event hash mismatch",
			evs.Data[0].ID + ":true:state event json value matched",
			seq + ":false:state event json value mismatch",
			"999999:false:state event not found",
		}, msgs)
		assert.Equal(t, core.ClaimFailed, run.Status)
		var got core.Claim
		mustOK(t, f.Call(t, "get_claim", map[string]any{"claim_id": c.ID})).Decode(t, &got)
		assert.Equal(t, core.ClaimFailed, got.Status)

		e.Clock.Advance(time.Millisecond) // a later created_at: the list order below is by time
		var ok core.Claim
		mustOK(t, f.Call(t, "create_claim", map[string]any{"subject_type": "task", "subject_id": "doc", "statement": "fine",
			"evidence": []map[string]any{{"kind": "state_event", "source": seq, "hash": ordered}}})).Decode(t, &ok)
		mustOK(t, f.Call(t, "verify_claim", map[string]any{"claim_id": ok.ID})).Decode(t, &run)
		assert.Equal(t, core.ClaimVerified, run.Status)

		var page core.ClaimPage
		mustOK(t, f.Call(t, "list_claims", map[string]any{"limit": 1})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, ok.ID, page.Data[0].ID, "newest first")
		assert.Nil(t, page.Data[0].Evidence, "lists carry no evidence (v1)")
		require.NotNil(t, page.Pagination.NextCursor)
		mustOK(t, f.Call(t, "list_claims", map[string]any{"limit": 1, "cursor": *page.Pagination.NextCursor})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, c.ID, page.Data[0].ID)
		expectErr(t, f.Call(t, "get_claim", map[string]any{"claim_id": "nope"}), core.CodeNotFound, "Claim not found")
		expectErr(t, f.Call(t, "verify_claim", map[string]any{"claim_id": "nope"}), core.CodeNotFound, "Claim not found")
		expectErr(t, f.Call(t, "list_claims", map[string]any{"cursor": "abc"}), core.CodeInvalidCursor,
			"Cursor must be a valid positive number (Unix timestamp in milliseconds)")
	})
}

func TestClaimBadInputChangesNothing(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		good := map[string]any{"kind": "text_hash", "source": "s", "data": "x", "hash": core.SHA256Hex([]byte("x"))}
		claim := func(mod func(m map[string]any)) map[string]any {
			m := map[string]any{"subject_type": "t", "subject_id": "i", "statement": "s", "evidence": []map[string]any{good}}
			mod(m)
			return m
		}
		ev := func(item map[string]any) func(m map[string]any) {
			return func(m map[string]any) { m["evidence"] = []map[string]any{item} }
		}
		many := make([]map[string]any, 51)
		for i := range many {
			many[i] = good
		}
		cases := map[string]struct {
			mod func(m map[string]any)
			msg string
		}{
			"empty subject_type": {func(m map[string]any) { m["subject_type"] = "" }, "String must contain at least 1 character(s)"},
			"long subject_type":  {func(m map[string]any) { m["subject_type"] = fmt.Sprintf("%0101d", 0) }, "String must contain at most 100 character(s)"},
			"long subject_id":    {func(m map[string]any) { m["subject_id"] = fmt.Sprintf("%0256d", 0) }, "String must contain at most 255 character(s)"},
			"empty statement":    {func(m map[string]any) { m["statement"] = "" }, "String must contain at least 1 character(s)"},
			"long statement":     {func(m map[string]any) { m["statement"] = fmt.Sprintf("%05001d", 0) }, "String must contain at most 5000 character(s)"},
			"no evidence":        {func(m map[string]any) { m["evidence"] = []map[string]any{} }, "Array must contain at least 1 element(s)"},
			"51 evidence":        {func(m map[string]any) { m["evidence"] = many }, "Array must contain at most 50 element(s)"},
			"bad kind":           {ev(map[string]any{"kind": "guess", "source": "s"}), "Invalid discriminator value. Expected 'text_hash' | 'json_value' | 'state_event'"},
			"empty source":       {ev(map[string]any{"kind": "text_hash", "source": "", "data": "x", "hash": good["hash"]}), "String must contain at least 1 character(s)"},
			"bad hash":           {ev(map[string]any{"kind": "text_hash", "source": "s", "data": "x", "hash": "abc"}), "hash must be a SHA-256 hex digest"},
			"empty text":         {ev(map[string]any{"kind": "text_hash", "source": "s", "data": "", "hash": good["hash"]}), "String must contain at least 1 character(s)"},
			"json without data":  {ev(map[string]any{"kind": "json_value", "source": "s", "json_path": "$.a", "expected_value": 1}), "Required"},
			"json bad path":      {ev(map[string]any{"kind": "json_value", "source": "s", "data": 1, "json_path": "$..a", "expected_value": 1}), "json_path must be a simple JSON path"},
			"json no expected":   {ev(map[string]any{"kind": "json_value", "source": "s", "data": 1, "json_path": "$.a"}), "Required"},
			"state_event bare":   {ev(map[string]any{"kind": "state_event", "source": "1"}), "state_event evidence requires hash or json_path with expected_value"},
			"state_event path only": {ev(map[string]any{"kind": "state_event", "source": "1", "json_path": "$.a"}),
				"state_event evidence requires hash or json_path with expected_value"},
		}
		before := logSize(t, s)
		for name, c := range cases {
			r := f.Call(t, "create_claim", claim(c.mod))
			assert.Equal(t, core.CodeBadRequest, r.Code, name)
			assert.Equal(t, c.msg, r.Message, name)
		}
		assert.Equal(t, before, logSize(t, s), "nothing was logged")
		var page core.ClaimPage
		mustOK(t, f.Call(t, "list_claims", nil)).Decode(t, &page)
		assert.Empty(t, page.Data, "nothing was stored")
	})
}

// TestClaimLogConcurrentAppendsStayOneChain: 32 concurrent creations (and verifications) give
// one unbroken, signed chain.
func TestClaimLogConcurrentAppendsStayOneChain(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 32 {
			wg.Go(func() {
				c, err := s.App.Claims.Create(ctx, s.Project.P, core.CreateClaim{SubjectType: "t", SubjectID: fmt.Sprint(i), Statement: "s",
					Evidence: []core.EvidenceInput{{Kind: "text_hash", Source: "s", Data: []byte(`"x"`), Hash: core.SHA256Hex([]byte("x"))}}})
				if err == nil && i%2 == 0 {
					_, err = s.App.Claims.Verify(ctx, s.Project.P, c.ID)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		ex, err := s.App.Claims.Export(ctx, s.Project.P)
		require.NoError(t, err)
		assert.Len(t, ex.Entries, 48)
		require.NoError(t, core.VerifyLog(ex.Entries, ex.Checkpoint, ex.PublicKey, true, ""))
		runs, err := s.App.Claims.Runs(ctx, s.Project.P, ex.Entries[0].ClaimID)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(runs.Data), 1)
	})
}

func TestClaimBundleAndVerificationHistory(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newREST(s, s.Project.Key)
		var c core.Claim
		mustOK(t, f.Call(t, "create_claim", map[string]any{"subject_type": "t", "subject_id": "i", "statement": "s",
			"evidence": []map[string]any{{"kind": "text_hash", "source": "s", "data": "x", "hash": core.SHA256Hex([]byte("x"))}}})).Decode(t, &c)
		for range 2 {
			mustOK(t, f.Call(t, "verify_claim", map[string]any{"claim_id": c.ID}))
		}
		resp, out := send(t, "GET", s.URL+"/api/v1/claims/"+c.ID+"/verifications", s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		var runs core.RunList
		require.NoError(t, jsonUnmarshal(out, &runs))
		assert.Len(t, runs.Data, 2)

		resp, out = send(t, "GET", s.URL+"/api/v1/claims/"+c.ID+"/bundle", s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode, string(out))
		var b core.ClaimBundle
		require.NoError(t, jsonUnmarshal(out, &b))
		require.NoError(t, core.VerifyBundle(b, ""))
		resp, out = send(t, "GET", s.URL+"/.well-known/agentstate-signing-key", "", nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		assert.Contains(t, string(out), b.PublicKey.KeyID)
		b.Claim.Statement = "edited"
		assert.ErrorContains(t, core.VerifyBundle(b, ""), "differs from what the log recorded")
	})
}

// BenchmarkClaimCreateParallel measures claim creation with the compare-and-append log under
// contention (go test -bench ClaimCreate -run ^$ ./contract/).
func BenchmarkClaimCreateParallel(b *testing.B) {
	e := testenv.Stores[0].Open(b)
	s := testenv.NewServer(b, e)
	in := core.CreateClaim{SubjectType: "t", SubjectID: "i", Statement: "s",
		Evidence: []core.EvidenceInput{{Kind: "text_hash", Source: "s", Data: []byte(`"x"`), Hash: core.SHA256Hex([]byte("x"))}}}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.App.Claims.Create(context.Background(), s.Project.P, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestClaimSubjectFilterFindsOldMatches: the subject filter answers from an index, so matches
// behind many newer claims about other subjects are all returned, page by page, on both faces.
func TestClaimSubjectFilterFindsOldMatches(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		create := func(typ, id string) core.Claim {
			e.Clock.Advance(time.Millisecond)
			var c core.Claim
			mustOK(t, f.Call(t, "create_claim", map[string]any{"subject_type": typ, "subject_id": id, "statement": "s",
				"evidence": []map[string]any{{"kind": "text_hash", "source": "s", "data": "x", "hash": core.SHA256Hex([]byte("x"))}}})).Decode(t, &c)
			return c
		}
		older, newer := create("task", "t-1"), create("task", "t-1")
		for i := range 30 { // newer non-matching claims: same type, same id, or neither
			create([]string{"task", "doc", "run"}[i%3], []string{"t-2", "t-1", "t-3"}[i%3])
		}
		list := func(q map[string]any) []string {
			var ids []string
			for {
				var page core.ClaimPage
				mustOK(t, f.Call(t, "list_claims", q)).Decode(t, &page)
				for _, c := range page.Data {
					ids = append(ids, c.ID)
				}
				if page.Pagination.NextCursor == nil {
					return ids
				}
				require.NotEmpty(t, page.Data, "a page with a cursor has rows")
				q["cursor"] = *page.Pagination.NextCursor
			}
		}
		assert.Equal(t, []string{newer.ID, older.ID}, list(map[string]any{"subject_type": "task", "subject_id": "t-1", "limit": 1}))
		assert.Equal(t, []string{older.ID, newer.ID}, list(map[string]any{"subject_type": "task", "subject_id": "t-1", "limit": 1, "order": "asc"}))
		assert.Len(t, list(map[string]any{"subject_type": "task", "limit": 1}), 12, "type alone: 2 + 10")
		assert.Len(t, list(map[string]any{"subject_id": "t-1", "limit": 3}), 12, "id alone: 2 + 10")
		assert.Empty(t, list(map[string]any{"subject_type": "nobody"}))
	})
}
