package redisstore

import (
	"encoding/json"

	"github.com/agentstate/agentstate-go/conversations"
)

// storedMessage is a message as kept in its conversation's stream: short keys and no nulls,
// because most message fields are usually absent and every byte is paid once per message.
type storedMessage struct {
	ID               string          `json:"i"`
	Role             string          `json:"r"`
	Content          string          `json:"c"`
	Metadata         json.RawMessage `json:"m,omitempty"`
	TokenCount       int64           `json:"t,omitempty"`
	Model            *string         `json:"mo,omitempty"`
	InputTokens      *int64          `json:"it,omitempty"`
	OutputTokens     *int64          `json:"ot,omitempty"`
	CostMicrodollars *int64          `json:"co,omitempty"`
	ParentMessageID  *string         `json:"p,omitempty"`
	ObservationType  *string         `json:"ob,omitempty"`
	StartTime        *int64          `json:"s,omitempty"`
	EndTime          *int64          `json:"e,omitempty"`
	Status           *string         `json:"st,omitempty"`
	Level            *string         `json:"l,omitempty"`
	CreatedAt        int64           `json:"a"`
}

func encodeMessage(m conversations.Message) ([]byte, error) {
	sm := storedMessage(m)
	if string(sm.Metadata) == "null" {
		sm.Metadata = nil
	}
	return json.Marshal(sm)
}

func decodeMessage(raw string) (conversations.Message, error) {
	var sm storedMessage
	if err := json.Unmarshal([]byte(raw), &sm); err != nil {
		return conversations.Message{}, err
	}
	if sm.Metadata == nil {
		sm.Metadata = json.RawMessage("null")
	}
	return conversations.Message(sm), nil
}
