package contract

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// TestSearchBackfillResumesThenServesFT: conversations written while the FT path was off have
// no RediSearch document. Turning it on, search keeps answering from the portable index until
// the backfill is done; a backfill resumed from a saved position indexes only what follows it;
// the full backfill makes the FT path give the portable answers.
func TestSearchBackfillResumesThenServesFT(t *testing.T) {
	e := testenv.RediSearch.Open(t) // skips without AGENTSTATE_TEST_REDISEARCH_URL
	ctx := context.Background()
	plain := &testenv.Env{Name: "redisearch-off", Rdb: e.Rdb, Store: redisstore.New(e.Rdb), Clock: e.Clock}
	s := testenv.NewServer(t, plain)
	p := s.Project.P
	var ids []string
	for i := range 12 {
		e.Clock.Advance(time.Millisecond)
		c, err := s.App.Convs.Create(ctx, p, conversations.CreateConversation{Messages: []conversations.MessageInput{
			{Role: "user", Content: "backfill deployment number " + strconv.Itoa(i)}}})
		require.NoError(t, err)
		ids = append(ids, c.ID)
	}
	search := func(q string) []string {
		page, err := s.App.Convs.Search(ctx, p, conversations.SearchQuery{Q: q, Limit: 100})
		require.NoError(t, err)
		var out []string
		for _, h := range page.Data {
			out = append(out, h.ID)
		}
		return out
	}
	newestFirst := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[len(ids)-1-i] = id
		}
		return out
	}
	want := search("backfill deploy*") // portable: the FT path is off
	require.Equal(t, newestFirst(ids), want)
	found, err := e.FT.Matches(ctx, p.ProjectID, "", [][]string{{"backfill"}}, nil, 100)
	require.NoError(t, err)
	assert.Empty(t, found, "written with the FT path off: no documents")

	require.NoError(t, plain.Store.ForgetFTBackfill(ctx))
	ft, _, err := plain.Store.OpenFTIndex(ctx, e.FT.Version)
	require.NoError(t, err)
	t.Cleanup(ft.Close)
	s.App.Convs.Text = ft
	require.False(t, ft.Ready())
	assert.Equal(t, want, search("backfill deploy*"), "until the backfill is done, the portable index answers")

	// A saved position after the 8th conversation: a resumed run indexes only the 4 after it.
	eighth, err := plain.Store.Conversation(ctx, p.ProjectID, ids[7])
	require.NoError(t, err)
	require.NoError(t, e.Rdb.HSet(ctx, "as:search-backfill", "project", p.ProjectID, "at", eighth.CreatedAt, "id", ids[7], "ft", "1").Err())
	bf := plain.Store.NewBackfill(ft, slog.New(slog.DiscardHandler))
	require.NoError(t, bf.Run(ctx))
	require.True(t, ft.Ready())
	assert.Equal(t, newestFirst(ids[8:]), search("backfill deploy*"), "resumed after the 8th: only the last 4 have documents")

	require.NoError(t, plain.Store.ForgetFTBackfill(ctx))
	require.NoError(t, e.Rdb.HDel(ctx, "as:search-backfill", "project", "at", "id").Err())
	require.NoError(t, plain.Store.NewBackfill(ft, slog.New(slog.DiscardHandler)).Run(ctx))
	assert.Equal(t, want, search("backfill deploy*"), "after the full backfill the FT path gives the portable answer")
	found, err = ft.Matches(ctx, p.ProjectID, "", [][]string{{"backfill"}}, nil, 100)
	require.NoError(t, err)
	assert.Len(t, found, 12)
}

// TestPrefixVocabularyFollowsConversations: a word enters the project's vocabulary with its
// first conversation and leaves with its last, so prefixes never expand to words no longer held.
func TestPrefixVocabularyFollowsConversations(t *testing.T) {
	testenv.ForEachStoreOf(t, testenv.SearchStores, func(t *testing.T, e *testenv.Env) {
		ctx := context.Background()
		s := testenv.NewServer(t, e)
		p := s.Project.P
		mk := func(text string) string {
			c, err := s.App.Convs.Create(ctx, p, conversations.CreateConversation{Messages: []conversations.MessageInput{{Role: "user", Content: text}}})
			require.NoError(t, err)
			return c.ID
		}
		a, b := mk("Zebrafish zebra"), mk("zebrafish")
		words, err := e.Store.ExpandPrefix(ctx, p.ProjectID, "zebr", 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"zebra", "zebrafish"}, words)
		require.NoError(t, s.App.Convs.Delete(ctx, p, a))
		words, _ = e.Store.ExpandPrefix(ctx, p.ProjectID, "zebr", 10)
		assert.Equal(t, []string{"zebrafish"}, words, "zebra left with its only conversation")
		page, err := s.App.Convs.Search(ctx, p, conversations.SearchQuery{Q: "ZEBR*"})
		require.NoError(t, err)
		require.Len(t, page.Data, 1)
		assert.Equal(t, b, page.Data[0].ID)
		assert.Equal(t, "zebrafish", page.Data[0].Snippet)
	})
}
