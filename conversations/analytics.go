package conversations

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// MaxAnalyticsConversations bounds how many conversations one analytics request reads.
const MaxAnalyticsConversations = 100_000

// AnalyticsQuery is the common query of /api/v1/analytics/*.
type AnalyticsQuery struct {
	Start, End  int64 // ms; 0 = the last 30 days ending now
	Tags        []string
	Metric      string // timeseries: conversations | messages | tokens
	Granularity string // timeseries: day | week | month
	Limit       int    // tags
}

// Period is an analytics window.
type Period struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Summary is GET /api/v1/analytics/summary.
type Summary struct {
	TotalConversations         int64   `json:"total_conversations"`
	TotalMessages              int64   `json:"total_messages"`
	TotalTokens                int64   `json:"total_tokens"`
	AvgMessagesPerConversation float64 `json:"avg_messages_per_conversation"`
	AvgTokensPerConversation   float64 `json:"avg_tokens_per_conversation"`
	Period                     Period  `json:"period"`
}

// Bucket is one timeseries point.
type Bucket struct {
	Bucket string `json:"bucket"`
	Value  int64  `json:"value"`
}

// Timeseries is GET /api/v1/analytics/timeseries.
type Timeseries struct {
	Metric      string   `json:"metric"`
	Granularity string   `json:"granularity"`
	Period      Period   `json:"period"`
	Data        []Bucket `json:"data"`
}

// TagStat is one row of GET /api/v1/analytics/tags.
type TagStat struct {
	Tag               string `json:"tag"`
	ConversationCount int64  `json:"conversation_count"`
	MessageCount      int64  `json:"message_count"`
	TokenCount        int64  `json:"token_count"`
}

// TagStats is GET /api/v1/analytics/tags.
type TagStats struct {
	Period Period    `json:"period"`
	Data   []TagStat `json:"data"`
}

// RoleStat counts one role's messages.
type RoleStat struct {
	Count  int64 `json:"count"`
	Tokens int64 `json:"tokens"`
}

// ConversationAnalytics is GET /api/v1/conversations/{id}/analytics.
type ConversationAnalytics struct {
	ConversationID string              `json:"conversation_id"`
	Title          *string             `json:"title"`
	MessageCount   int64               `json:"message_count"`
	TokenCount     int64               `json:"token_count"`
	Tags           []string            `json:"tags"`
	DurationMs     int64               `json:"duration_ms"`
	MessagesByRole map[string]RoleStat `json:"messages_by_role"`
	CreatedAt      int64               `json:"created_at"`
	UpdatedAt      int64               `json:"updated_at"`
}

// inPeriod returns the conversations created in the query's window that carry all its tags.
func (c *Service) inPeriod(ctx context.Context, o core.Operation, p core.Principal, q AnalyticsQuery, tags bool) ([]Conversation, [][]string, Period, error) {
	op := o.Name
	if err := p.Authorize(o); err != nil {
		return nil, nil, Period{}, err
	}
	per := Period{Start: q.Start, End: q.End}
	if per.End <= 0 {
		per.End = core.NowMs(c.clock)
	}
	if per.Start <= 0 {
		per.Start = per.End - 30*24*time.Hour.Milliseconds()
	}
	for _, t := range q.Tags {
		if !core.ConversationTags.Valid(t) {
			return nil, nil, Period{}, core.E(op, core.CodeInvalidTag, "Tag must be 1..50 characters of letters, digits, _ or -")
		}
	}
	convs, err := c.store.ConversationsBetween(ctx, p.ProjectID, per.Start, per.End, MaxAnalyticsConversations)
	if err != nil {
		return nil, nil, Period{}, core.Internal(op, err)
	}
	if len(q.Tags) == 0 && !tags {
		return convs, nil, per, nil
	}
	ids := make([]string, len(convs))
	for i, cv := range convs {
		ids[i] = cv.ID
	}
	tagsOf, err := c.store.TagsOf(ctx, p.ProjectID, ids)
	if err != nil {
		return nil, nil, Period{}, core.Internal(op, err)
	}
	var keptC []Conversation
	var keptT [][]string
	for i, cv := range convs {
		if !containsAll(tagsOf[i], q.Tags) {
			continue
		}
		keptC, keptT = append(keptC, cv), append(keptT, tagsOf[i])
	}
	return keptC, keptT, per, nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// Summary totals the conversations created in the window.
func (c *Service) Summary(ctx context.Context, p core.Principal, q AnalyticsQuery) (Summary, error) {
	convs, _, per, err := c.inPeriod(ctx, core.OpAnalyticsSummary, p, q, false)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{TotalConversations: int64(len(convs)), Period: per}
	for _, cv := range convs {
		s.TotalMessages += cv.MessageCount
		s.TotalTokens += cv.TokenCount
	}
	if n := float64(len(convs)); n > 0 {
		s.AvgMessagesPerConversation = round1(float64(s.TotalMessages) / n)
		s.AvgTokensPerConversation = round1(float64(s.TotalTokens) / n)
	}
	return s, nil
}

// BucketOf names the UTC bucket of a time: day YYYY-MM-DD, week YYYY-Www (SQLite's %W: weeks
// start on Monday, days before the year's first Monday are week 00), month YYYY-MM.
func BucketOf(ms int64, granularity string) string {
	t := time.UnixMilli(ms).UTC()
	switch granularity {
	case "week":
		return fmt.Sprintf("%d-W%02d", t.Year(), (t.YearDay()+6-(int(t.Weekday())+6)%7)/7)
	case "month":
		return t.Format("2006-01")
	}
	return t.Format("2006-01-02")
}

// Timeseries buckets conversations (or their messages or tokens) by creation time.
func (c *Service) Timeseries(ctx context.Context, p core.Principal, q AnalyticsQuery) (Timeseries, error) {
	convs, _, per, err := c.inPeriod(ctx, core.OpAnalyticsTimeseries, p, q, false)
	if err != nil {
		return Timeseries{}, err
	}
	if !slices.Contains([]string{"conversations", "messages", "tokens"}, q.Metric) {
		q.Metric = "conversations" // v1: invalid values fall back
	}
	if !slices.Contains([]string{"day", "week", "month"}, q.Granularity) {
		q.Granularity = "day"
	}
	sums := map[string]int64{}
	for _, cv := range convs {
		v := int64(1)
		switch q.Metric {
		case "messages":
			v = cv.MessageCount
		case "tokens":
			v = cv.TokenCount
		}
		sums[BucketOf(cv.CreatedAt, q.Granularity)] += v
	}
	ts := Timeseries{Metric: q.Metric, Granularity: q.Granularity, Period: per, Data: []Bucket{}}
	for b, v := range sums {
		ts.Data = append(ts.Data, Bucket{Bucket: b, Value: v})
	}
	slices.SortFunc(ts.Data, func(a, b Bucket) int { return strings.Compare(a.Bucket, b.Bucket) })
	return ts, nil
}

// TagStats counts conversations, messages and tokens per tag, most used first.
func (c *Service) TagStats(ctx context.Context, p core.Principal, q AnalyticsQuery) (TagStats, error) {
	q.Tags = nil // v1: the tag filter applies to summary and timeseries only
	convs, tagsOf, per, err := c.inPeriod(ctx, core.OpAnalyticsTags, p, q, true)
	if err != nil {
		return TagStats{}, err
	}
	by := map[string]*TagStat{}
	for i, cv := range convs {
		for _, t := range tagsOf[i] {
			s := by[t]
			if s == nil {
				s = &TagStat{Tag: t}
				by[t] = s
			}
			s.ConversationCount++
			s.MessageCount += cv.MessageCount
			s.TokenCount += cv.TokenCount
		}
	}
	out := TagStats{Period: per, Data: []TagStat{}}
	for _, s := range by {
		out.Data = append(out.Data, *s)
	}
	slices.SortFunc(out.Data, func(a, b TagStat) int {
		if a.ConversationCount != b.ConversationCount {
			return int(b.ConversationCount - a.ConversationCount)
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	out.Data = out.Data[:min(len(out.Data), core.ClampLimit(q.Limit, 50, 200))]
	return out, nil
}

// Analytics describes one conversation.
func (c *Service) Analytics(ctx context.Context, p core.Principal, id string) (ConversationAnalytics, error) {
	const op = "conversations.Analytics"
	if err := p.Authorize(core.OpConversationAnalytics); err != nil {
		return ConversationAnalytics{}, err
	}
	conv, err := c.load(ctx, op, p, id)
	if err != nil {
		return ConversationAnalytics{}, err
	}
	msgs, err := c.store.Messages(ctx, p.ProjectID, id, 0, int(conv.MessageCount))
	if err != nil {
		return ConversationAnalytics{}, core.Internal(op, err)
	}
	tags, err := c.store.ConversationTags(ctx, p.ProjectID, id)
	if err != nil {
		return ConversationAnalytics{}, core.Internal(op, err)
	}
	a := ConversationAnalytics{ConversationID: id, Title: conv.Title, MessageCount: conv.MessageCount,
		TokenCount: conv.TokenCount, Tags: tagList(tags).Data.Tags, DurationMs: conv.UpdatedAt - conv.CreatedAt,
		MessagesByRole: map[string]RoleStat{}, CreatedAt: conv.CreatedAt, UpdatedAt: conv.UpdatedAt}
	for _, m := range msgs {
		r := a.MessagesByRole[m.Role]
		r.Count++
		r.Tokens += m.TokenCount
		a.MessagesByRole[m.Role] = r
	}
	return a, nil
}
