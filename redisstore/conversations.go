package redisstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/conversations/textindex"
	"github.com/agentstate/agentstate-go/webhooks"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

var (
	//go:embed scripts/write_conversation.lua
	writeConversationLua string
	//go:embed scripts/delete_conversation.lua
	deleteConversationLua string
	//go:embed scripts/touch_conversation.lua
	touchConversationLua string
	//go:embed scripts/touch_webhook.lua
	touchWebhookLua string

	writeConversationScript  = redis.NewScript(writeConversationLua)
	deleteConversationScript = redis.NewScript(deleteConversationLua)
	touchConversationScript  = redis.NewScript(touchConversationLua)
	touchWebhookScript       = redis.NewScript(touchWebhookLua)
)

// maxTagRetries bounds the retries when a concurrent tag change makes a script's key list stale.
const maxTagRetries = 16

var errRetriesExhausted = errors.New("conversation changed under every retry")

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// writeConversationMessages are the texts of write_conversation.lua's refusals.
var writeConversationMessages = map[string]string{
	string(core.CodeConflict): core.MsgExternalIDTaken,
	string(core.CodeNotFound): core.MsgConversationNotFound,
}

// WriteConversation runs write_conversation.lua, re-reading the conversation's tags when a
// concurrent tag change made the passed tag keys stale.
func (s *Store) WriteConversation(ctx context.Context, project string, w conversations.Write) error {
	const op = "redisstore.WriteConversation"
	c := w.Conv
	var ext, title string
	if c.ExternalID != nil {
		ext = *c.ExternalID
	}
	if c.Title != nil {
		title = *c.Title
	}
	var tokenDelta, totalDelta, costDelta int64
	pairs := make([]any, 0, 2*len(w.Messages))
	for _, m := range w.Messages {
		b, err := encodeMessage(m)
		if err != nil {
			return core.Internal(op, err)
		}
		pairs = append(pairs, m.ID, string(b))
		tokenDelta += m.TokenCount
		if m.InputTokens != nil {
			totalDelta += *m.InputTokens
		}
		if m.OutputTokens != nil {
			totalDelta += *m.OutputTokens
		}
		if m.CostMicrodollars != nil {
			costDelta += *m.CostMicrodollars
		}
	}
	meta := string(c.Metadata)
	if meta == "" {
		meta = "null"
	}
	mode := "append"
	if w.Create {
		mode = "create"
	}
	for range maxTagRetries {
		var tags []string
		if !w.Create {
			var err error
			if tags, err = s.rdb.SMembers(ctx, convTagsKey(project, c.ID)).Result(); err != nil {
				return core.Internal(op, err)
			}
		}
		keys, argv := s.writeArgs(project, c.ID, tags, w.SearchTokens, mode, w.Now)
		argv[3], argv[4], argv[5], argv[6], argv[7] = ext, flag(c.ExternalID != nil), title, flag(c.Title != nil), meta
		argv[8], argv[9], argv[10], argv[11], argv[12] = len(w.Messages), tokenDelta, totalDelta, costDelta, flag(w.Observations)
		res, err := s.run(ctx, writeConversationScript, keys, append(argv, pairs...)...).StringSlice()
		if err != nil {
			return core.Internal(op, err)
		}
		switch res[0] {
		case "OK":
			return nil
		case "ERR":
			return core.E(op, core.Code(res[1]), writeConversationMessages[res[1]])
		}
	}
	return core.Internal(op, errRetriesExhausted)
}

// writeArgs are write_conversation.lua's key list and arguments up to the message pairs, with
// ARGV[4..13] left for the caller (a reindex leaves them empty).
func (s *Store) writeArgs(project, id string, tags, tokens []string, mode string, now int64) ([]string, []any) {
	keys := []string{convKey(project, id), convMsgsKey(project, id), convMsgIDsKey(project, id),
		convsKey(project), convsCreatedKey(project), convExtKey(project), tracesKey(project), convTagsKey(project, id)}
	argv := []any{mode, id, now, "", "", "", "", "", 0, 0, 0, 0, "", len(tags), len(tokens),
		flag(s.ft.Load()), ftEncode(project), ftSortKey(now, id), ftTags(tags)}
	for _, t := range tags {
		keys = append(keys, tagConvsKey(project, t))
		argv = append(argv, t)
	}
	for _, t := range tokens {
		keys = append(keys, postingKey(project, t))
		argv = append(argv, t)
	}
	for _, t := range tokens {
		argv = append(argv, ftEncode(t))
	}
	return append(keys, vocabKey(project), ftDocKey(project, id)), argv
}

func conversationFrom(f map[string]string) *conversations.Conversation {
	if len(f) == 0 {
		return nil
	}
	c := &conversations.Conversation{ID: f["id"], Metadata: json.RawMessage(f["metadata"]),
		MessageCount: int64Field(f, "message_count"), TokenCount: int64Field(f, "token_count"),
		TotalCostMicrodollars: int64Field(f, "total_cost_microdollars"), TotalTokens: int64Field(f, "total_tokens"),
		CreatedAt: int64Field(f, "created_at"), UpdatedAt: int64Field(f, "updated_at")}
	if v, ok := f["external_id"]; ok {
		c.ExternalID = &v
	}
	if v, ok := f["title"]; ok {
		c.Title = &v
	}
	if len(c.Metadata) == 0 {
		c.Metadata = json.RawMessage("null")
	}
	return c
}

// Conversation reads one conversation without messages; nil when there is none.
func (s *Store) Conversation(ctx context.Context, project, id string) (*conversations.Conversation, error) {
	f, err := s.rdb.HGetAll(ctx, convKey(project, id)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Conversation", err)
	}
	c := conversationFrom(f)
	if c != nil {
		c.ProjectID = project
	}
	return c, nil
}

// ConversationIDByExternalID resolves an external_id ("" when unknown).
func (s *Store) ConversationIDByExternalID(ctx context.Context, project, ext string) (string, error) {
	id, err := s.rdb.HGet(ctx, convExtKey(project), ext).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", core.Internal("redisstore.ConversationIDByExternalID", err)
	}
	return id, nil
}

// Messages reads up to n messages after a position, in order.
func (s *Store) Messages(ctx context.Context, project, id string, after int64, n int) ([]conversations.Message, error) {
	if n <= 0 {
		return []conversations.Message{}, nil
	}
	msgs, err := s.rdb.XRangeN(ctx, convMsgsKey(project, id), seqID(after+1), "+", int64(n)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Messages", err)
	}
	out := make([]conversations.Message, len(msgs))
	for i, m := range msgs {
		raw, _ := m.Values["m"].(string)
		var err error
		if out[i], err = decodeMessage(raw); err != nil {
			return nil, core.Internal("redisstore.Messages", err)
		}
	}
	return out, nil
}

// MessagePosition returns a message's 1-based position (0 when unknown).
func (s *Store) MessagePosition(ctx context.Context, project, convID, msgID string) (int64, error) {
	pos, err := s.rdb.HGet(ctx, convMsgIDsKey(project, convID), msgID).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, core.Internal("redisstore.MessagePosition", err)
	}
	return pos, nil
}

// touch runs touch_conversation.lua with the conversation's current tags, retrying when they
// changed in between.
func (s *Store) touch(ctx context.Context, op, project, id string, now string, setTitle bool, title string,
	setMeta bool, meta string, add []string, remove string) (bool, error) {
	for range maxTagRetries {
		tags, err := s.rdb.SMembers(ctx, convTagsKey(project, id)).Result()
		if err != nil {
			return false, core.Internal(op, err)
		}
		keys := []string{convKey(project, id), convsKey(project), tracesKey(project), convTagsKey(project, id), tagCountsKey(project)}
		argv := []any{id, now, flag(setTitle), title, flag(setMeta), meta, len(tags), len(add), remove}
		for _, t := range slices.Concat(tags, add) {
			keys = append(keys, tagConvsKey(project, t))
			argv = append(argv, t)
		}
		var sortKey string
		if now != "" {
			at, _ := strconv.ParseInt(now, 10, 64)
			sortKey = ftSortKey(at, id)
		}
		after := slices.DeleteFunc(slices.Concat(tags, add), func(t string) bool { return t == remove })
		keys, argv = append(keys, ftDocKey(project, id)), append(argv, sortKey, ftTags(after))
		res, err := s.run(ctx, touchConversationScript, keys, argv...).Result()
		if err != nil {
			return false, core.Internal(op, err)
		}
		if n, ok := res.(int64); ok {
			return n == 1, nil
		}
	}
	return false, core.Internal(op, errRetriesExhausted)
}

// UpdateConversation sets the title and/or metadata and moves updated_at.
func (s *Store) UpdateConversation(ctx context.Context, project, id string, title *string, meta json.RawMessage, setMeta bool, now int64) (bool, error) {
	var t string
	if title != nil {
		t = *title
	}
	return s.touch(ctx, "redisstore.UpdateConversation", project, id, strconv.FormatInt(now, 10), title != nil, t, setMeta, string(meta), nil, "")
}

// AddTags adds tags and returns all of the conversation's tags, sorted.
func (s *Store) AddTags(ctx context.Context, project, id string, tags []string) ([]string, error) {
	ok, err := s.touch(ctx, "redisstore.AddTags", project, id, "", false, "", false, "", tags, "")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, core.E("redisstore.AddTags", core.CodeNotFound, core.MsgConversationNotFound)
	}
	return s.ConversationTags(ctx, project, id)
}

// RemoveTag removes one tag (absent is fine).
func (s *Store) RemoveTag(ctx context.Context, project, id, tag string) error {
	_, err := s.touch(ctx, "redisstore.RemoveTag", project, id, "", false, "", false, "", nil, tag)
	return err
}

// ConversationTags lists a conversation's tags, sorted.
func (s *Store) ConversationTags(ctx context.Context, project, id string) ([]string, error) {
	tags, err := s.rdb.SMembers(ctx, convTagsKey(project, id)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.ConversationTags", err)
	}
	slices.Sort(tags)
	return tags, nil
}

// ProjectTags lists the distinct tags carried by some conversation, sorted.
func (s *Store) ProjectTags(ctx context.Context, project string) ([]string, error) {
	tags, err := s.rdb.HKeys(ctx, tagCountsKey(project)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.ProjectTags", err)
	}
	slices.Sort(tags)
	return tags, nil
}

// TagsOf reads each conversation's tags in one pipeline.
func (s *Store) TagsOf(ctx context.Context, project string, ids []string) ([][]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.SMembers(ctx, convTagsKey(project, id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, core.Internal("redisstore.TagsOf", err)
		}
	}
	out := make([][]string, len(ids))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// DeleteConversation freezes the conversation ("mark"), tokenises its messages to find its
// posting sets, then deletes it with them ("delete").
func (s *Store) DeleteConversation(ctx context.Context, project, id string) (bool, error) {
	const op = "redisstore.DeleteConversation"
	count, err := s.run(ctx, deleteConversationScript, []string{convKey(project, id)}, "mark").Int64()
	if err != nil {
		return false, core.Internal(op, err)
	}
	if count < 0 {
		return false, nil
	}
	msgs, err := s.Messages(ctx, project, id, 0, int(count))
	if err != nil {
		return false, err
	}
	toks := map[string]bool{}
	for _, m := range msgs {
		for _, t := range textindex.Tokens(m.Content) {
			toks[t] = true
		}
	}
	tags, err := s.rdb.SMembers(ctx, convTagsKey(project, id)).Result()
	if err != nil {
		return false, core.Internal(op, err)
	}
	keys := []string{convKey(project, id), convMsgsKey(project, id), convMsgIDsKey(project, id), convsKey(project),
		convsCreatedKey(project), convExtKey(project), tracesKey(project), convTagsKey(project, id), tagCountsKey(project)}
	argv := []any{id, len(tags), len(toks), count}
	for _, t := range tags {
		keys = append(keys, tagConvsKey(project, t))
		argv = append(argv, t)
	}
	for t := range toks {
		keys = append(keys, postingKey(project, t))
		argv = append(argv, t)
	}
	keys = append(keys, vocabKey(project), ftDocKey(project, id))
	res, err := s.run(ctx, deleteConversationScript, keys, argv...).Result()
	if err != nil {
		return false, core.Internal(op, err)
	}
	if n, ok := res.(int64); ok {
		return n == 1, nil
	}
	// Frozen since "mark", the lists cannot be stale: a RETRY here is a bug, not a race.
	return false, core.Internal(op, errors.New("conversation changed while frozen for delete"))
}

func (s *Store) indexOf(project, index string) string {
	switch {
	case index == "created":
		return convsCreatedKey(project)
	case index == "traces":
		return tracesKey(project)
	case len(index) > 4 && index[:4] == "tag:":
		return tagConvsKey(project, index[4:])
	}
	return convsKey(project)
}

// ConversationsAfter pages an ordering zset in (score, id) order.
func (s *Store) ConversationsAfter(ctx context.Context, project, index string, after *core.TimeCursor, desc bool, n int) ([]conversations.Conversation, error) {
	const op = "redisstore.ConversationsAfter"
	ids, err := s.idsAfter(ctx, s.indexOf(project, index), after, desc, n)
	if err != nil {
		return nil, core.Internal(op, err)
	}
	return s.conversations(ctx, op, project, ids)
}

func (s *Store) conversations(ctx context.Context, op, project string, ids []string) ([]conversations.Conversation, error) {
	recs, err := s.hashes(ctx, ids, func(id string) string { return convKey(project, id) })
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out := make([]conversations.Conversation, 0, len(recs))
	for _, f := range recs {
		if c := conversationFrom(f); c != nil {
			c.ProjectID = project
			out = append(out, *c)
		}
	}
	return out, nil
}

// ConversationsBetween reads the conversations created in [from, to], oldest first, at most n.
func (s *Store) ConversationsBetween(ctx context.Context, project string, from, to int64, n int) ([]conversations.Conversation, error) {
	const op = "redisstore.ConversationsBetween"
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: convsCreatedKey(project), ByScore: true,
		Start: strconv.FormatInt(from, 10), Stop: strconv.FormatInt(to, 10), Count: int64(n)}).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	return s.conversations(ctx, op, project, ids)
}

// SearchCandidates finds the conversations holding one word of every group. With single words
// it intersects their posting sets, SINTERCARD with a limit first, so a very common word costs
// at most n+1 steps, not its set. With a prefix among them it reads the union of the smallest
// group (bounded by n through SCARD) and checks the rest with HoldAllTerms.
func (s *Store) SearchCandidates(ctx context.Context, project string, groups [][]string, n int) ([]string, bool, error) {
	const op = "redisstore.SearchCandidates"
	if !slices.ContainsFunc(groups, func(g []string) bool { return len(g) != 1 }) {
		keys := make([]string, len(groups))
		for i, g := range groups {
			keys[i] = postingKey(project, g[0])
		}
		count, err := s.rdb.SInterCard(ctx, int64(n+1), keys...).Result()
		if err != nil {
			return nil, false, core.Internal(op, err)
		}
		if count > int64(n) {
			return nil, false, nil
		}
		ids, err := s.rdb.SInter(ctx, keys...).Result()
		if err != nil {
			return nil, false, core.Internal(op, err)
		}
		return ids, true, nil
	}
	pipe := s.rdb.Pipeline()
	cards := make([][]*redis.IntCmd, len(groups))
	for i, g := range groups {
		for _, w := range g {
			cards[i] = append(cards[i], pipe.SCard(ctx, postingKey(project, w)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, core.Internal(op, err)
	}
	smallest, size := 0, int64(-1)
	for i, cs := range cards {
		var sum int64
		for _, c := range cs {
			sum += c.Val()
		}
		if size < 0 || sum < size {
			smallest, size = i, sum
		}
	}
	if size > int64(n) {
		return nil, false, nil
	}
	keys := make([]string, len(groups[smallest]))
	for i, w := range groups[smallest] {
		keys[i] = postingKey(project, w)
	}
	ids, err := s.rdb.SUnion(ctx, keys...).Result()
	if err != nil {
		return nil, false, core.Internal(op, err)
	}
	holds, err := s.HoldAllTerms(ctx, project, ids, slices.Delete(slices.Clone(groups), smallest, smallest+1))
	if err != nil {
		return nil, false, err
	}
	out := ids[:0]
	for i, id := range ids {
		if holds[i] {
			out = append(out, id)
		}
	}
	return out, true, nil
}

// HoldAllTerms checks each conversation against the posting sets, one SMISMEMBER per word: it
// must be in one set of every group.
func (s *Store) HoldAllTerms(ctx context.Context, project string, ids []string, groups [][]string) ([]bool, error) {
	out := make([]bool, len(ids))
	for i := range out {
		out[i] = true
	}
	if len(ids) == 0 || len(groups) == 0 {
		return out, nil
	}
	members := anySlice(ids)
	pipe := s.rdb.Pipeline()
	cmds := make([][]*redis.BoolSliceCmd, len(groups))
	for i, g := range groups {
		for _, w := range g {
			cmds[i] = append(cmds[i], pipe.SMIsMember(ctx, postingKey(project, w), members...))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, core.Internal("redisstore.HoldAllTerms", err)
	}
	for _, g := range cmds {
		for i := range ids {
			has := false
			for _, c := range g {
				has = has || c.Val()[i]
			}
			out[i] = out[i] && has
		}
	}
	return out, nil
}

// ExpandPrefix lists the project's tokens starting with prefix, in byte order, at most n.
func (s *Store) ExpandPrefix(ctx context.Context, project, prefix string, n int) ([]string, error) {
	// No token holds the byte 0xff (it is UTF-8), so "prefix\xff" bounds every extension.
	words, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: vocabKey(project), ByLex: true,
		Start: "[" + prefix, Stop: "(" + prefix + "\xff", Count: int64(n)}).Result()
	if err != nil {
		return nil, core.Internal("redisstore.ExpandPrefix", err)
	}
	return words, nil
}

// ConversationCount counts the project's conversations.
func (s *Store) ConversationCount(ctx context.Context, project string) (int64, error) {
	n, err := s.rdb.ZCard(ctx, convsKey(project)).Result()
	if err != nil {
		return 0, core.Internal("redisstore.ConversationCount", err)
	}
	return n, nil
}

// UpdatedAts reads each conversation's updated_at from the ordering zset (0 when gone).
func (s *Store) UpdatedAts(ctx context.Context, project string, ids []string) ([]int64, error) {
	out := make([]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	scores, err := s.rdb.ZMScore(ctx, convsKey(project), ids...).Result()
	if err != nil {
		return nil, core.Internal("redisstore.UpdatedAts", err)
	}
	for i, sc := range scores {
		out[i] = int64(sc)
	}
	return out, nil
}

// PutWebhook stores a webhook record (create or replace).
func (s *Store) PutWebhook(ctx context.Context, project string, w webhooks.Webhook) error {
	b, err := json.Marshal(w)
	if err != nil {
		return core.Internal("redisstore.PutWebhook", err)
	}
	err = s.tx(ctx, webhookKey(project, w.ID), func(p redis.Pipeliner) error {
		p.HSet(ctx, webhookKey(project, w.ID), "doc", string(b))
		p.ZAdd(ctx, webhooksKey(project), redis.Z{Score: float64(w.CreatedAt), Member: w.ID})
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.PutWebhook", err)
	}
	return nil
}

func webhookFrom(f map[string]string) (*webhooks.Webhook, error) {
	if f["doc"] == "" {
		return nil, nil
	}
	var w webhooks.Webhook
	if err := json.Unmarshal([]byte(f["doc"]), &w); err != nil {
		return nil, err
	}
	w.LastTriggeredAt = optInt64(f, "last_triggered_at")
	return &w, nil
}

// Webhook reads one webhook; nil when there is none.
func (s *Store) Webhook(ctx context.Context, project, id string) (*webhooks.Webhook, error) {
	f, err := s.rdb.HGetAll(ctx, webhookKey(project, id)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Webhook", err)
	}
	w, err := webhookFrom(f)
	if err != nil {
		return nil, core.Internal("redisstore.Webhook", err)
	}
	return w, nil
}

// Webhooks lists the project's webhooks, oldest first.
func (s *Store) Webhooks(ctx context.Context, project string) ([]webhooks.Webhook, error) {
	const op = "redisstore.Webhooks"
	ids, err := s.rdb.ZRange(ctx, webhooksKey(project), 0, -1).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	recs, err := s.hashes(ctx, ids, func(id string) string { return webhookKey(project, id) })
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out := []webhooks.Webhook{}
	for _, f := range recs {
		w, err := webhookFrom(f)
		if err != nil {
			return nil, core.Internal(op, err)
		}
		if w != nil {
			out = append(out, *w)
		}
	}
	return out, nil
}

// DeleteWebhook removes a webhook; false when there was none.
func (s *Store) DeleteWebhook(ctx context.Context, project, id string) (bool, error) {
	var del *redis.IntCmd
	err := s.tx(ctx, webhookKey(project, id), func(p redis.Pipeliner) error {
		del = p.Del(ctx, webhookKey(project, id))
		p.ZRem(ctx, webhooksKey(project), id)
		return nil
	})
	if err != nil {
		return false, core.Internal("redisstore.DeleteWebhook", err)
	}
	return del.Val() == 1, nil
}

// TouchWebhook records a delivery time, only on a webhook that still exists.
func (s *Store) TouchWebhook(ctx context.Context, project, id string, at int64) error {
	if err := s.run(ctx, touchWebhookScript, []string{webhookKey(project, id)}, at).Err(); err != nil {
		return core.Internal("redisstore.TouchWebhook", err)
	}
	return nil
}
