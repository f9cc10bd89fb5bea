package redisstore

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/agentstate/agentstate-go/core"
)

// labelHints remembers, per state, the index labels ("a:<agent>", "t:<tag>") of the last
// event this replica wrote or read. mutate_state.lua must be handed the index keys of the
// state's current agent and tags; without a hint a delete, or a write that changes the agent
// or tags, costs a RETRY round trip to learn them. A hint is only a guess: the script checks
// it against the state and answers RETRY when another writer has moved on, so a stale hint
// costs that round trip and never a wrong index.
type labelHints struct{ c *lru.Cache[string, []string] }

// maxLabelHints bounds the memory of the hints (a few hundred bytes per entry).
const maxLabelHints = 100_000

func newLabelHints() labelHints {
	c, err := lru.New[string, []string](maxLabelHints)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return labelHints{c}
}

func hintKey(project, key string) string { return project + "\x00" + key }

func (h labelHints) get(project, key string) []string {
	l, _ := h.c.Get(hintKey(project, key))
	return l
}

// saw records ev as the state's latest event: a live state's labels, or none once deleted.
func (h labelHints) saw(project string, ev core.StateEvent) {
	if ev.EventType != core.EventUpsert {
		h.c.Remove(hintKey(project, ev.StateKey))
		return
	}
	hk := hintKey(project, ev.StateKey)
	if old, ok := h.c.Get(hk); ok && sameLabels(old, ev) {
		return // the common read or rewrite: nothing to build (Get keeps it recent)
	}
	l := make([]string, 0, 1+len(ev.Tags))
	l = append(l, "a:"+ev.AgentID)
	for _, t := range ev.Tags {
		l = append(l, "t:"+t)
	}
	h.c.Add(hk, l)
}

// sameLabels: l are ev's labels, in saw's order.
func sameLabels(l []string, ev core.StateEvent) bool {
	if len(l) != 1+len(ev.Tags) || !isLabel(l[0], "a:", ev.AgentID) {
		return false
	}
	for i, t := range ev.Tags {
		if !isLabel(l[1+i], "t:", t) {
			return false
		}
	}
	return true
}

func isLabel(l, kind, name string) bool {
	return len(l) == len(kind)+len(name) && l[:len(kind)] == kind && l[len(kind):] == name
}
