package redisstore

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/agentstate/agentstate-go/core"
)

// A hint follows the state's agent and tags through every change, whether saw rebuilds it or
// finds it unchanged, and is dropped with the state.
func TestLabelHintsFollowTheState(t *testing.T) {
	h := newLabelHints()
	up := func(agent string, tags ...string) core.StateEvent {
		return core.StateEvent{StateKey: "k", EventType: core.EventUpsert, AgentID: agent, Tags: tags}
	}
	for _, c := range []struct {
		ev   core.StateEvent
		want []string
	}{
		{up("a"), []string{"a:a"}},
		{up("a"), []string{"a:a"}}, // unchanged
		{up("a", "x"), []string{"a:a", "t:x"}},
		{up("a", "x"), []string{"a:a", "t:x"}},
		{up("a", "y"), []string{"a:a", "t:y"}},
		{up("a", "x", "y"), []string{"a:a", "t:x", "t:y"}},
		{up("a", "y"), []string{"a:a", "t:y"}},
		{up("b", "y"), []string{"a:b", "t:y"}},
		{up("t:y"), []string{"a:t:y"}}, // an agent named like a label
		{up("a:"), []string{"a:a:"}},
		{up(""), []string{"a:"}},
		{core.StateEvent{StateKey: "k", EventType: core.EventDelete, AgentID: "b"}, nil},
		{up("b"), []string{"a:b"}},
	} {
		h.saw("p", c.ev)
		assert.Equal(t, c.want, h.get("p", "k"), "%+v", c.ev)
	}
	assert.Nil(t, h.get("q", "k"), "another project's")
}
