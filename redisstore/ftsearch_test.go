package redisstore

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
)

// These run everywhere: the FT command builder and reply parser against replies recorded from
// RediSearch through go-redis's Do (RESP2 from 2.6.37, RESP3 from 2.10.32).

func TestFTEncodeKeepsOrderAndPrefixes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := []string{"a", "z", "0", "é", "ß", "日", "Ω", "\u0301", "x"}
	word := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			b.WriteString(pick[rng.IntN(len(pick))])
		}
		return b.String()
	}
	for range 2000 {
		a, b := word(), word()
		ea, eb := ftEncode(a), ftEncode(b)
		assert.Equal(t, strings.Compare(a, b), strings.Compare(ea, eb), "order of %q and %q", a, b)
		assert.Equal(t, strings.HasPrefix(a, b), strings.HasPrefix(ea, eb), "prefix %q of %q", b, a)
		assert.Equal(t, "", strings.Trim(ea, "abcdefghijklmnop"), "only the letters a-p: %q", ea)
	}
	assert.Equal(t, "gegfhagmgphj", ftEncode("deploy"), "d=0x64 e=0x65 p=0x70 l=0x6c o=0x6f y=0x79")
	// The sort key orders by updated_at first, then id, byte-wise (ids mix cases).
	assert.Less(t, ftSortKey(9, "Z"), ftSortKey(10, "A"))
	assert.Less(t, ftSortKey(10, "B"), ftSortKey(10, "a"))
}

func TestFTQueryAndSearchArgs(t *testing.T) {
	q := ftQuery("p1", "", [][]string{{"go"}, {"deploy", "deployment"}}, nil)
	assert.Equal(t, "@p:{hadb} (ghgp) (gegfhagmgphj|gegfhagmgphjgngfgohe)", q)
	assert.Equal(t, "@p:{hadb} @g:{hjcn} (ghgp)", ftQuery("p1", "y-", [][]string{{"go"}}, nil), "a tag filter, encoded like the rest")
	assert.Equal(t, "hicn,hjhj", ftTags([]string{"x-", "yy", "x-"}))
	q = ftQuery("p1", "", [][]string{{"go"}}, &core.TimeCursor{At: 1767225600000, ID: "x"})
	assert.Equal(t, "@p:{hadb} (ghgp) @u:[-inf 1767225600000]", q, "past a cursor: updated_at at most its own")
	assert.Equal(t, []any{"FT.SEARCH", "as-conv-v1", q, "VERBATIM", "SORTBY", "k", "DESC", "LIMIT", 40, 21,
		"RETURN", 1, "u", "DIALECT", 2}, ftSearchArgs(q, 40, 21))
	assert.Contains(t, ftCreateArgs, "STOPWORDS")
	assert.Contains(t, ftCreateArgs, "NOSTEM")
}

func TestParseFTSearchRESP2(t *testing.T) {
	// FT.SEARCH … RETURN 1 u on RediSearch 2.6.37, RESP2.
	reply := []any{int64(2), "as:ft:{rec}:c:b", []any{"u", "7"}, "as:ft:{rec}:c:a", []any{"u", "5"}}
	total, docs, err := parseFTSearch(reply)
	require.NoError(t, err)
	assert.EqualValues(t, 2, total)
	assert.Equal(t, []ftDoc{{Key: "as:ft:{rec}:c:b", Fields: map[string]string{"u": "7"}},
		{Key: "as:ft:{rec}:c:a", Fields: map[string]string{"u": "5"}}}, docs)

	total, docs, err = parseFTSearch([]any{int64(0)})
	require.NoError(t, err)
	assert.Zero(t, total)
	assert.Empty(t, docs)

	_, _, err = parseFTSearch([]any{})
	assert.Error(t, err)
	_, _, err = parseFTSearch([]any{"2"})
	assert.Error(t, err, "a total that is not a number")
}

func TestParseFTSearchRESP3(t *testing.T) {
	// The same query on RediSearch 2.10.32, RESP3.
	reply := map[any]any{
		"attributes":    []any{},
		"format":        "STRING",
		"total_results": int64(2),
		"warning":       []any{},
		"results": []any{
			map[any]any{"id": "as:ft:{rec}:c:b", "extra_attributes": map[any]any{"u": "7"}, "values": []any{}},
			map[any]any{"id": "as:ft:{rec}:c:a", "extra_attributes": map[any]any{"u": "5"}, "values": []any{}},
		},
	}
	total, docs, err := parseFTSearch(reply)
	require.NoError(t, err)
	assert.EqualValues(t, 2, total)
	assert.Equal(t, []ftDoc{{Key: "as:ft:{rec}:c:b", Fields: map[string]string{"u": "7"}},
		{Key: "as:ft:{rec}:c:a", Fields: map[string]string{"u": "5"}}}, docs)

	reply["warning"] = []any{"Timeout limit was reached"}
	_, _, err = parseFTSearch(reply)
	assert.ErrorContains(t, err, "Timeout limit was reached", "partial results are an error, never an answer")
}

func TestParseModuleList(t *testing.T) {
	resp2 := []any{[]any{"name", "search", "ver", int64(20637), "path", "/x/redisearch.so", "args", []any{}}}
	assert.EqualValues(t, 20637, parseModuleList(resp2))
	resp3 := []any{map[any]any{"name": "ReJSON", "ver": int64(20609)}, map[any]any{"name": "search", "ver": int64(21032), "path": "/x", "args": []any{}}}
	assert.EqualValues(t, 21032, parseModuleList(resp3))
	assert.Zero(t, parseModuleList([]any{}))
	assert.Equal(t, "2.10.32", FormatModuleVersion(21032))
	assert.Equal(t, "8.0.1", FormatModuleVersion(80001))
}
