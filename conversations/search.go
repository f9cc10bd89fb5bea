package conversations

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/agentstate/agentstate-go/core"

	"github.com/agentstate/agentstate-go/conversations/textindex"
)

// SearchQuery is GET /api/v1/conversations/search's parameters and search_conversations' arguments.
type SearchQuery struct {
	Q      string `json:"q" jsonschema:"minLength=1" jsonschema_description:"Words to find; a conversation matches when its messages hold every word (case-insensitive, any language). A word ending in * is a prefix (deplo* finds deploy and deployment; at least 3 letters, at most 200 words per prefix)."`
	Limit  int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100"`
	Cursor string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page."`
	Order  string `json:"order,omitempty" jsonschema:"enum=updated,enum=relevance" jsonschema_description:"updated (default, v1: most recently updated first) or relevance (most occurrences of the words first)."`
	Tag    string `json:"tag,omitempty" jsonschema_description:"Only conversations with this tag."`
}

// SearchHit is one conversation found, with a snippet of its first matching message.
type SearchHit struct {
	ID           string  `json:"id"`
	Title        *string `json:"title"`
	Snippet      string  `json:"snippet"`
	MessageCount int64   `json:"message_count"`
	CreatedAt    int64   `json:"created_at"`
	UpdatedAt    int64   `json:"updated_at"`
}

// SearchPage is v1's search response (no pagination object).
type SearchPage struct {
	Data       []SearchHit `json:"data"`
	NextCursor *string     `json:"next_cursor"`
}

// MaxRelevanceCandidates bounds how many matches relevance ordering reads messages of.
const MaxRelevanceCandidates = 200

type scored struct {
	id    string
	at    int64
	score int
}

// Search finds conversations whose messages hold every query term, through the inverted index:
// the work grows with the number of matches, not with the corpus.
func (c *Service) Search(ctx context.Context, p core.Principal, q SearchQuery) (SearchPage, error) {
	const op = "conversations.Search"
	if err := p.Authorize(core.OpConversationSearch); err != nil {
		return SearchPage{}, err
	}
	if strings.TrimSpace(q.Q) == "" {
		return SearchPage{}, core.BadRequest(op, "q", "Query parameter 'q' is required and must not be empty")
	}
	if q.Order != "" && q.Order != "updated" && q.Order != "relevance" {
		return SearchPage{}, core.BadRequest(op, "order", "Invalid enum value. Expected 'updated' | 'relevance', received '"+q.Order+"'")
	}
	if q.Tag != "" && !core.ConversationTags.Valid(q.Tag) {
		return SearchPage{}, core.E(op, core.CodeInvalidTag, "Tag must be 1..50 characters of letters, digits, _ or -")
	}
	limit := core.ClampLimit(q.Limit, DefaultSearchLimit, MaxSearchLimit)
	page := SearchPage{Data: []SearchHit{}}
	qterms := textindex.ParseQuery(q.Q)
	if len(qterms) == 0 {
		return page, nil // only punctuation: nothing can match a word
	}
	terms, err := TermGroups(ctx, op, c.store, p.ProjectID, qterms)
	if err != nil {
		return SearchPage{}, err
	}
	for _, g := range terms {
		if len(g) == 0 {
			return page, nil // a prefix no word of the project starts with
		}
	}
	if c.Text != nil && c.Text.Ready() {
		return c.searchByText(ctx, op, p, q, terms, limit)
	}
	ids, ok, err := c.store.SearchCandidates(ctx, p.ProjectID, terms, c.SearchCap)
	if err != nil {
		return SearchPage{}, core.Internal(op, err)
	}
	if !ok {
		return c.searchByScan(ctx, op, p, q, terms, limit)
	}
	ats, err := c.store.UpdatedAts(ctx, p.ProjectID, ids)
	if err != nil {
		return SearchPage{}, core.Internal(op, err)
	}
	cands := make([]scored, 0, len(ids))
	for i, id := range ids {
		if ats[i] > 0 { // a conversation deleted under the read
			cands = append(cands, scored{id: id, at: ats[i]})
		}
	}
	byRecency := func(a, b scored) int {
		if a.at != b.at {
			return int(b.at - a.at)
		}
		return strings.Compare(b.id, a.id)
	}
	slices.SortFunc(cands, byRecency)
	cur, want, err := matchWindow(op, q, limit)
	if err != nil {
		return SearchPage{}, err
	}
	if cur != nil {
		cands = slices.DeleteFunc(cands, func(s scored) bool {
			return s.at > cur.At || (s.at == cur.At && s.id >= cur.ID)
		})
	}
	if q.Tag != "" {
		if cands, err = c.withTag(ctx, p.ProjectID, q.Tag, cands, want); err != nil {
			return SearchPage{}, core.Internal(op, err)
		}
	}
	return c.serve(ctx, op, p, q, cands, terms, limit)
}

// withTag keeps the first n candidates carrying tag, reading their tags a page at a time.
func (c *Service) withTag(ctx context.Context, project, tag string, cands []scored, n int) ([]scored, error) {
	var out []scored
	for from := 0; from < len(cands) && len(out) < n; from += scanPage {
		chunk := cands[from:min(len(cands), from+scanPage)]
		ids := make([]string, len(chunk))
		for i, s := range chunk {
			ids[i] = s.id
		}
		tags, err := c.store.TagsOf(ctx, project, ids)
		if err != nil {
			return nil, err
		}
		for i, s := range chunk {
			if slices.Contains(tags[i], tag) && len(out) < n {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// scanPage is how many conversations one step of a scan reads; scanPages bounds a scan.
const (
	scanPage  = 500
	scanPages = 200
)

// searchByScan serves words so common that sorting all their matches would cost more than
// walking conversations newest first and keeping those that hold every word: dense matches
// fill a page quickly.
func (c *Service) searchByScan(ctx context.Context, op string, p core.Principal, q SearchQuery, terms [][]string, limit int) (SearchPage, error) {
	cur, want, err := matchWindow(op, q, limit)
	if err != nil {
		return SearchPage{}, err
	}
	index := "updated"
	if q.Tag != "" {
		index = "tag:" + q.Tag // the tag's own recency order: every conversation walked carries it
	}
	var found []scored
	for range scanPages {
		convs, err := c.store.ConversationsAfter(ctx, p.ProjectID, index, cur, true, scanPage)
		if err != nil {
			return SearchPage{}, core.Internal(op, err)
		}
		ids := make([]string, len(convs))
		for i, cv := range convs {
			ids[i] = cv.ID
		}
		holds, err := c.store.HoldAllTerms(ctx, p.ProjectID, ids, terms)
		if err != nil {
			return SearchPage{}, core.Internal(op, err)
		}
		for i, cv := range convs {
			if holds[i] && len(found) < want {
				found = append(found, scored{id: cv.ID, at: cv.UpdatedAt})
			}
		}
		if len(found) >= want || len(convs) < scanPage {
			break
		}
		last := convs[len(convs)-1]
		cur = &core.TimeCursor{At: last.UpdatedAt, ID: last.ID}
	}
	return c.serve(ctx, op, p, q, found, terms, limit)
}

// matchWindow is where a recency walk starts (the cursor) and how many matches it needs: one
// more than a page, or the whole relevance window.
func matchWindow(op string, q SearchQuery, limit int) (*core.TimeCursor, int, error) {
	if q.Order == "relevance" {
		return nil, MaxRelevanceCandidates, nil
	}
	if q.Cursor == "" {
		return nil, limit + 1, nil
	}
	cur, err := core.ParseTimeCursor(op, q.Cursor)
	return cur, limit + 1, err
}

// serve turns matches in recency order into a page: ranked by relevance, or as they are with
// the "<updated_at>.<id>" cursor.
func (c *Service) serve(ctx context.Context, op string, p core.Principal, q SearchQuery, cands []scored, terms [][]string, limit int) (SearchPage, error) {
	if q.Order == "relevance" {
		return c.searchByRelevance(ctx, op, p, q, cands, terms, limit)
	}
	return c.hits(ctx, op, p, cands, terms, limit, func(s scored) string {
		return strconv.FormatInt(s.at, 10) + "." + s.id
	})
}

// searchByRelevance ranks the most recent MaxRelevanceCandidates matches by how often the terms
// occur; its cursor is an offset into that ranking.
func (c *Service) searchByRelevance(ctx context.Context, op string, p core.Principal, q SearchQuery, cands []scored, terms [][]string, limit int) (SearchPage, error) {
	cands = cands[:min(len(cands), MaxRelevanceCandidates)]
	words := flatWords(terms)
	for i := range cands {
		msgs, err := c.store.Messages(ctx, p.ProjectID, cands[i].id, 0, SnippetScanMessages)
		if err != nil {
			return SearchPage{}, core.Internal(op, err)
		}
		for _, m := range msgs {
			for _, t := range textindex.AllTokens(m.Content) {
				if slices.Contains(words, t) {
					cands[i].score++
				}
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b scored) int { return b.score - a.score })
	offset := 0
	if q.Cursor != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Cursor, "r"))
		if err != nil || n < 0 || !strings.HasPrefix(q.Cursor, "r") {
			return SearchPage{}, core.E(op, core.CodeInvalidCursor, "Cursor must be next_cursor of a relevance search")
		}
		offset = min(n, len(cands))
	}
	rank := map[string]int{}
	for i, s := range cands {
		rank[s.id] = i + 1
	}
	return c.hits(ctx, op, p, cands[offset:], terms, limit, func(s scored) string { return "r" + strconv.Itoa(rank[s.id]) })
}

// hits loads up to limit results with snippets; cursor names the position after a result.
func (c *Service) hits(ctx context.Context, op string, p core.Principal, cands []scored, terms [][]string, limit int, cursor func(scored) string) (SearchPage, error) {
	page := SearchPage{Data: []SearchHit{}}
	for i, s := range cands {
		if len(page.Data) == limit {
			next := cursor(cands[i-1])
			page.NextCursor = &next
			break
		}
		conv, err := c.store.Conversation(ctx, p.ProjectID, s.id)
		if err != nil {
			return SearchPage{}, core.Internal(op, err)
		}
		if conv == nil {
			continue
		}
		snippet, err := c.snippet(ctx, p.ProjectID, s.id, terms)
		if err != nil {
			return SearchPage{}, core.Internal(op, err)
		}
		page.Data = append(page.Data, SearchHit{ID: conv.ID, Title: conv.Title, Snippet: snippet,
			MessageCount: conv.MessageCount, CreatedAt: conv.CreatedAt, UpdatedAt: conv.UpdatedAt})
	}
	return page, nil
}

// snippet comes from the first message holding every term, else the first holding any.
func (c *Service) snippet(ctx context.Context, project, id string, terms [][]string) (string, error) {
	words := flatWords(terms)
	msgs, err := c.store.Messages(ctx, project, id, 0, SnippetScanMessages)
	if err != nil {
		return "", err
	}
	best := -1
	for i, m := range msgs {
		toks := map[string]bool{}
		for _, t := range textindex.Tokens(m.Content) {
			toks[t] = true
		}
		if textindex.MatchesAllGroups(toks, terms) {
			best = i
			break
		}
		if best < 0 && slices.ContainsFunc(words, func(t string) bool { return toks[t] }) {
			best = i
		}
	}
	if best < 0 {
		if len(msgs) == 0 {
			return "", nil
		}
		best = 0
	}
	return textindex.Snippet(msgs[best].Content, words), nil
}

// searchByText asks the server-side index for the matches, newest first, and serves them
// exactly as the portable path does (same cursor, relevance ranking and snippets).
func (c *Service) searchByText(ctx context.Context, op string, p core.Principal, q SearchQuery, terms [][]string, limit int) (SearchPage, error) {
	cur, want, err := matchWindow(op, q, limit)
	if err != nil {
		return SearchPage{}, err
	}
	found, err := c.Text.Matches(ctx, p.ProjectID, q.Tag, terms, cur, want)
	if err != nil {
		return SearchPage{}, core.Internal(op, err)
	}
	cands := make([]scored, len(found))
	for i, m := range found {
		cands[i] = scored{id: m.ID, at: m.At}
	}
	return c.serve(ctx, op, p, q, cands, terms, limit)
}
