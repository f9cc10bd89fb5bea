package textindex

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

func TestSearchTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only separators", "  ,,, !? \n\t", nil},
		{"ascii", "Hello World", []string{"hello", "world"}},
		{"punctuation", "hello,world!", []string{"hello", "world"}},
		// Apostrophes, hyphens and underscores separate: the index has no notion of words
		// beyond runs of letters/digits, and queries are split the same way.
		{"apostrophe and hyphen", "don't e-mail snake_case", []string{"don", "t", "e", "mail", "snake", "case"}},
		{"digits", "v2 release 2024-06-01", []string{"v2", "release", "2024", "06", "01"}},
		{"non-ascii digits", "build ٣٤ done", []string{"build", "٣٤", "done"}},
		{"german sharp s", "Straße STRASSE strasse", []string{"strasse"}},
		{"capital sharp s", "GROẞ", []string{"gross"}},
		{"composed accent", "Caf\u00e9", []string{"caf\u00e9"}},
		{"decomposed accent", "Cafe\u0301", []string{"caf\u00e9"}},
		{"composed and decomposed dedupe", "Caf\u00e9 CAFE\u0301", []string{"caf\u00e9"}},
		{"greek final sigma", "ΟΔΟΣ οδος οδοσ", []string{"οδοσ"}},
		{"ligature", "ﬃx", []string{"ffix"}},
		// There is no word segmentation: a run of Han characters (or Han next to Latin
		// letters) is one token, so CJK text is only found by its whole run.
		{"cjk run is one token", "我爱北京 天安门", []string{"我爱北京", "天安门"}},
		{"cjk joined to latin", "Redis是数据库", []string{"redis是数据库"}},
		{"kana with prolonged mark", "東京タワー", []string{"東京タワー"}},
		{"emoji separate", "deploy🚀redis👍ok", []string{"deploy", "redis", "ok"}},
		{"emoji with zwj separate", "a👩\u200d💻b", []string{"a", "b"}},
		{"dedupe keeps first occurrence order", "b a B c A b", []string{"b", "a", "c"}},
		{"token at max bytes kept", strings.Repeat("a", 64), []string{strings.Repeat("a", 64)}},
		{"token over max bytes dropped", strings.Repeat("a", 65) + " ok", []string{"ok"}},
		{"multibyte token at max bytes kept", strings.Repeat("é", 32), []string{strings.Repeat("é", 32)}},
		{"multibyte token over max bytes dropped", strings.Repeat("é", 33) + " ok", []string{"ok"}},
		// The limit applies to the folded form: 22 × ẞ is 66 bytes raw but 44 folded.
		{"limit measured after folding", strings.Repeat("ẞ", 22), []string{strings.Repeat("ss", 22)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Tokens(tc.in))
		})
	}
}

func TestSearchTokensAreNFCAndStable(t *testing.T) {
	// ǰ and ΐ fold to decomposed sequences; tokens must still be NFC, and tokenising
	// tokens again must change nothing, or stored tokens and query terms could drift apart.
	inputs := []string{"ǰ", "ΐ", "J\u030c", "İstanbul", "Straße", "Cafe\u0301", "ﬃ", "ΣΊΣΥΦΟΣ"}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			toks := Tokens(in)
			require.NotEmpty(t, toks)
			for _, tok := range toks {
				assert.True(t, norm.NFC.IsNormalString(tok), "token %q is not NFC", tok)
			}
			assert.Equal(t, toks, Tokens(strings.Join(toks, " ")))
		})
	}
	assert.Equal(t, Tokens("ǰ"), Tokens("J\u030c"))
}

func TestSearchQueryTerms(t *testing.T) {
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("w%d", i)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"blank", "   \t\n", nil},
		{"punctuation only", "!!! ...", nil},
		{"trimmed and folded", "  Redis  DEPLOY ", []string{"redis", "deploy"}},
		{"capped", strings.Join(many, " "), many[:MaxTerms]},
		{"duplicates do not use up the cap", strings.Repeat("x ", 30) + "y", []string{"x", "y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := QueryTerms(tc.in)
			assert.Equal(t, tc.want, got)
			assert.LessOrEqual(t, len(got), MaxTerms)
		})
	}
}

func tokenSet(text string) map[string]bool {
	m := map[string]bool{}
	for _, t := range Tokens(text) {
		m[t] = true
	}
	return m
}

func TestMatchesAllTerms(t *testing.T) {
	doc := tokenSet("Die Straße in München, café au lait, 東京")
	tests := []struct {
		name   string
		tokens map[string]bool
		query  string
		want   bool
	}{
		{"no terms", doc, "", false},
		{"no terms on empty tokens", map[string]bool{}, "", false},
		{"empty tokens", map[string]bool{}, "strasse", false},
		{"single term", doc, "STRASSE", true},
		{"all terms", doc, "münchen strasse", true},
		{"decomposed query", doc, "MU\u0308NCHEN cafe\u0301", true},
		{"one missing", doc, "strasse berlin", false},
		{"substring is not a match", doc, "stras", false},
		{"cjk run", doc, "東京", true},
		{"cjk part of run", doc, "東", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, MatchesAllTerms(tc.tokens, QueryTerms(tc.query)))
		})
	}
	assert.False(t, MatchesAllTerms(doc, nil))
	assert.False(t, MatchesAllTerms(nil, []string{"x"}))
}

func TestSearchSnippet(t *testing.T) {
	rep := strings.Repeat
	const ell = "…"
	tests := []struct {
		name    string
		content string
		query   string
		want    string
	}{
		{"empty content", "", "x", ""},
		{"hit at start", "Redis is fast", "redis", "Redis is fast"},
		{"hit at start of long text", "needle " + rep("b", 250), "needle",
			"needle " + rep("b", 193) + ell},
		{"hit within lead keeps start", rep("a", 30) + " needle " + rep("b", 250), "needle",
			rep("a", 30) + " needle " + rep("b", 162) + ell},
		// Hit at rune 61: the snippet starts 40 runes earlier, at rune 21.
		{"hit in middle both ellipses", rep("a", 60) + " needle " + rep("b", 300), "NEEDLE",
			ell + rep("a", 39) + " needle " + rep("b", 153) + ell},
		{"hit near end", rep("a", 280) + " needle end", "needle",
			ell + rep("a", 39) + " needle end"},
		{"no hit short", "nothing to see", "needle", "nothing to see"},
		{"no hit long", rep("c", 250), "needle", rep("c", 200) + ell},
		{"no hit exactly max", rep("c", 200), "needle", rep("c", 200)},
		{"no terms", rep("c", 201), "", rep("c", 200) + ell},
		// Two- and three-byte runes: byte offsets would cut elsewhere or split a character.
		{"multibyte", rep("é", 60) + " Ünïcödé " + rep("日", 300), "ÜNÏCÖDÉ",
			ell + rep("é", 39) + " Ünïcödé " + rep("日", 152) + ell},
		// "ß" folds to "ss", so folded text is longer than the original before the hit;
		// offsets taken from folded text would land 60 runes too late.
		// The hit is "Straße" at rune 65, not "Die".
		{"folding changes length", rep("ß", 60) + " Die Straße ist lang " + rep("x", 300), "STRASSE",
			ell + rep("ß", 35) + " Die Straße ist lang " + rep("x", 144) + ell},
		{"decomposed in content", rep("a", 60) + " Cafe\u0301 " + rep("b", 300), "café",
			ell + rep("a", 39) + " Cafe\u0301 " + rep("b", 154) + ell},
		// Matching is on whole tokens, like the index: "redis" inside "redisson" is no hit.
		{"substring is not a hit", rep("z", 60) + " redisson " + rep("y", 300), "redis",
			rep("z", 60) + " redisson " + rep("y", 130) + ell},
		{"earliest of several terms", rep("a", 60) + " beta " + rep("b", 100) + " alpha " + rep("c", 100), "alpha beta",
			ell + rep("a", 39) + " beta " + rep("b", 100) + " alpha " + rep("c", 48) + ell},
		{"hit is last token", rep("a", 100) + " needle", "needle",
			ell + rep("a", 39) + " needle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Snippet(tc.content, QueryTerms(tc.query))
			require.True(t, utf8.ValidString(got))
			assert.Equal(t, tc.want, got)
			body := strings.TrimSuffix(strings.TrimPrefix(got, ell), ell)
			assert.LessOrEqual(t, utf8.RuneCountInString(body), SnippetMaxRunes)
		})
	}
}

func TestSearchSnippetAcceptsRawTerms(t *testing.T) {
	content := strings.Repeat("a", 60) + " Straße " + strings.Repeat("b", 300)
	want := Snippet(content, QueryTerms("strasse"))
	require.True(t, strings.HasPrefix(want, "…"))
	assert.Equal(t, want, Snippet(content, []string{"STRASSE"}))
	assert.Equal(t, want, Snippet(content, []string{"Straße"}))
}

func TestSearchTokensAll(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"repeats kept in order", "Redis redis REDIS, Straße strasse", []string{"redis", "redis", "redis", "strasse", "strasse"}},
		{"long dropped", strings.Repeat("a", 65) + " x " + strings.Repeat("a", 65) + " x", []string{"x", "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, AllTokens(tc.in))
		})
	}
}
