package textindex

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseSearchQueryMarksPrefixes(t *testing.T) {
	assert.Equal(t, []QueryTerm{{"deplo", true}, {"deploy", false}, {"strass", true}, {"deplo", false}},
		ParseQuery("deplo* DEPLOY, Straß* deplo deplo*"), "folded; a word and its prefix are two terms; repeats dropped")
	assert.Equal(t, []QueryTerm{{"a", false}, {"b", false}}, ParseQuery("a *b"), "a star before a word marks nothing")
	assert.Empty(t, ParseQuery("*** !"))
}
