package conversations

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/conversations/textindex"
)

// vocab is a sorted word list standing in for the store's vocabulary.
type vocab []string

func (v vocab) ExpandPrefix(_ context.Context, _, prefix string, n int) ([]string, error) {
	var out []string
	for _, w := range v {
		if len(out) < n && len(w) >= len(prefix) && w[:len(prefix)] == prefix {
			out = append(out, w)
		}
	}
	return out, nil
}

func TestTermGroupsBounds(t *testing.T) {
	ctx := context.Background()
	v := vocab{"deploy", "deployed", "deployment", "other"}
	g, err := TermGroups(ctx, "op", v, "p", textindex.ParseQuery("deplo* other nothing*"))
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"deploy", "deployed", "deployment"}, {"other"}, nil}, g)

	_, err = TermGroups(ctx, "op", v, "p", textindex.ParseQuery("de*"))
	assert.ErrorContains(t, err, "A prefix (de*) needs at least 3 letters")
	_, err = TermGroups(ctx, "op", v, "p", textindex.ParseQuery("日本*"))
	assert.ErrorContains(t, err, "needs at least 3 letters", "letters, not bytes")

	var many vocab
	for i := range MaxPrefixExpansions + 1 {
		many = append(many, "wor"+strconv.Itoa(1000+i))
	}
	_, err = TermGroups(ctx, "op", many, "p", textindex.ParseQuery("wor*"))
	assert.ErrorContains(t, err, "matches more than 200 words")
	_, err = TermGroups(ctx, "op", many[:MaxPrefixExpansions], "p", textindex.ParseQuery("wor*"))
	assert.NoError(t, err, "exactly the bound is fine")

	assert.True(t, textindex.MatchesAllGroups(map[string]bool{"deployed": true, "other": true}, [][]string{{"deploy", "deployed"}, {"other"}}))
	assert.False(t, textindex.MatchesAllGroups(map[string]bool{"deployed": true}, [][]string{{"deploy", "deployed"}, {"other"}}))
	assert.False(t, textindex.MatchesAllGroups(map[string]bool{"x": true}, nil))
}
