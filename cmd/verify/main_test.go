package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// rewriteLog replaces the project's claims log in Redis with fn's version of its entries, as
// someone with write access to Redis could.
func rewriteLog(t *testing.T, rdb redis.UniversalClient, project string, fn func([]redis.XMessage) []redis.XMessage) {
	ctx := context.Background()
	key := "as:{" + project + "}:claimlog"
	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, key).Err())
	for i, m := range fn(msgs) {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", i+1), Values: m.Values}).Err())
	}
}

func TestVerifierNamesTheTamperedEntry(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx, cl := context.Background(), s.App.Claims
		var ids []string
		for i := range 4 {
			c, err := cl.Create(ctx, s.Project.P, core.CreateClaim{SubjectType: "t", SubjectID: fmt.Sprint(i), Statement: "s",
				Evidence: []core.EvidenceInput{{Kind: "text_hash", Source: "s", Data: []byte(`"x"`), Hash: core.SHA256Hex([]byte("x"))}}})
			require.NoError(t, err)
			ids = append(ids, c.ID)
		}
		_, err := cl.Verify(ctx, s.Project.P, ids[1])
		require.NoError(t, err)
		check := func(since *core.Checkpoint) (string, error) {
			ex, err := cl.Export(ctx, s.Project.P)
			require.NoError(t, err)
			b, _ := json.MarshalIndent(ex, "", "  ") // pretty-printed files verify too
			return verify(bytes.NewReader(b), cl.SigningKey().KeyID, since)
		}
		msg, err := check(nil)
		require.NoError(t, err)
		assert.Contains(t, msg, "5 entries")
		before, err := cl.Checkpoint(ctx, s.Project.P)
		require.NoError(t, err)

		bundle := func(id string) error {
			b, err := cl.Bundle(ctx, s.Project.P, id)
			require.NoError(t, err)
			raw, _ := json.Marshal(b)
			_, err = verify(bytes.NewReader(raw), "", nil)
			return err
		}
		require.NoError(t, bundle(ids[1]))

		orig, err := e.Rdb.XRange(ctx, "as:{"+s.Project.ID+"}:claimlog", "-", "+").Result()
		require.NoError(t, err)
		restore := func() { rewriteLog(t, e.Rdb, s.Project.ID, func([]redis.XMessage) []redis.XMessage { return orig }) }
		edit := func(m redis.XMessage, from, to string) redis.XMessage {
			v := map[string]any{"entry": strings.Replace(m.Values["entry"].(string), from, to, 1)}
			return redis.XMessage{ID: m.ID, Values: v}
		}

		rewriteLog(t, e.Rdb, s.Project.ID, func(m []redis.XMessage) []redis.XMessage {
			m[2] = edit(m[2], `"at":`, `"at":1`)
			return m
		})
		_, err = check(nil)
		assert.ErrorContains(t, err, "entry 3: entry_hash does not match", "a changed entry")
		restore()

		rewriteLog(t, e.Rdb, s.Project.ID, func(m []redis.XMessage) []redis.XMessage { return append(m[:1], m[2:]...) })
		_, err = check(nil)
		assert.ErrorContains(t, err, "entry 3: expected entry 2 here", "a deleted entry")
		restore()

		rewriteLog(t, e.Rdb, s.Project.ID, func(m []redis.XMessage) []redis.XMessage {
			m[1], m[2] = m[2], m[1]
			return m
		})
		_, err = check(nil)
		assert.ErrorContains(t, err, "entry 3: expected entry 2 here", "reordered entries")
		restore()

		_, err = check(&before)
		require.NoError(t, err)
		// Cut the last entry and re-point the head: a fresh checkpoint signs the shorter log,
		// but an earlier checkpoint no longer matches.
		rewriteLog(t, e.Rdb, s.Project.ID, func(m []redis.XMessage) []redis.XMessage { return m[:4] })
		var last core.ClaimLogEntry
		require.NoError(t, json.Unmarshal([]byte(orig[3].Values["entry"].(string)), &last))
		require.NoError(t, e.Rdb.HSet(ctx, "as:{"+s.Project.ID+"}:claimlog-head", "size", 4, "hash", last.Hash).Err())
		_, err = check(&before)
		assert.ErrorContains(t, err, "entry 5: is not the entry the earlier checkpoint signed")
		restore()
		require.NoError(t, e.Rdb.HSet(ctx, "as:{"+s.Project.ID+"}:claimlog-head", "size", before.Size, "hash", before.HeadHash).Err())

		// A changed claim record no longer matches the hash its entry holds.
		ck := "as:{" + s.Project.ID + "}:claim:" + ids[1]
		doc, err := e.Rdb.HGet(ctx, ck, "doc").Result()
		require.NoError(t, err)
		require.NoError(t, e.Rdb.HSet(ctx, ck, "doc", strings.Replace(doc, `"statement":"s"`, `"statement":"forged"`, 1)).Err())
		assert.ErrorContains(t, bundle(ids[1]), "entry 2: claim "+ids[1]+" differs from what the log recorded")
		require.NoError(t, e.Rdb.HSet(ctx, ck, "doc", doc).Err())
		// So does a changed run, or a status that its runs do not give.
		require.NoError(t, e.Rdb.HSet(ctx, ck, "status", "pending").Err())
		assert.ErrorContains(t, bundle(ids[1]), "does not follow from its runs")
		_, err = verify(strings.NewReader(`{"entries":[]}`), "", nil)
		assert.ErrorContains(t, err, "no checkpoint")
	})
}

// TestVerifyWithoutKeyIsNotOK: a consistent export re-signed with another key passes every
// check the file alone allows, so without -key or -since the command refuses to say OK.
func TestVerifyWithoutKeyIsNotOK(t *testing.T) {
	testenv.ForEachStoreOf(t, testenv.Stores[1:2], func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx, cl := context.Background(), s.App.Claims
		_, err := cl.Create(ctx, s.Project.P, core.CreateClaim{SubjectType: "t", SubjectID: "1", Statement: "s",
			Evidence: []core.EvidenceInput{{Kind: "text_hash", Source: "s", Data: []byte(`"x"`), Hash: core.SHA256Hex([]byte("x"))}}})
		require.NoError(t, err)
		ex, err := cl.Export(ctx, s.Project.P)
		require.NoError(t, err)
		raw, _ := json.Marshal(ex)
		file := t.TempDir() + "/log.json"
		require.NoError(t, os.WriteFile(file, raw, 0o600))
		verifyCmd := func(args ...string) (int, string, string) {
			var out, errOut bytes.Buffer
			code := run(args, strings.NewReader(""), &out, &errOut)
			return code, out.String(), errOut.String()
		}
		code, out, _ := verifyCmd(file)
		assert.Equal(t, 1, code)
		assert.Contains(t, out, "NOT VERIFIED")
		assert.Contains(t, out, "-key")
		code, out, warn := verifyCmd("-trust-file-key", file)
		assert.Equal(t, 0, code)
		assert.Contains(t, out, "OK:")
		assert.Contains(t, warn, "warning:")
		code, out, _ = verifyCmd("-key", cl.SigningKey().KeyID, file)
		assert.Equal(t, 0, code, out)
		assert.Contains(t, out, "OK:")
		code, out, _ = verifyCmd("-key", "someone-else", file)
		assert.Equal(t, 1, code)
		assert.Contains(t, out, "FAIL:")
		code, _, _ = verifyCmd("-h")
		assert.Equal(t, 0, code, "-h is not an error")
	})
}
