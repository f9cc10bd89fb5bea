package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/conversations/textindex"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// Writers race appends, tag changes, title updates and deletes on a few conversations;
// afterwards every tag ordering, the tag counts, the updated_at orderings and the search
// posting sets hold exactly what the surviving conversations and their messages say. The scripts' RETRY paths are
// what keep them so when a tag changes between reading the keys and running the script.
func TestConversationIndexesMatchUnderConcurrentWrites(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx, cv := context.Background(), a.Convs
		var ids []string
		for range 2 { // few conversations: writers collide
			c, err := cv.Create(ctx, p.P, conversations.CreateConversation{Messages: []conversations.MessageInput{{Role: "user", Content: "seed"}}})
			require.NoError(t, err)
			ids = append(ids, c.ID)
		}
		tags := []string{"x", "y", "z"}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				for i := range 150 {
					id := ids[rng.IntN(len(ids))]
					e.Clock.Advance(time.Millisecond) // every write moves updated_at, so a stale score shows
					var err error
					switch rng.IntN(6) {
					case 0:
						_, err = cv.AddTags(ctx, p.P, id, conversations.AddTagsRequest{Tags: []string{tags[rng.IntN(3)]}})
					case 1:
						err = cv.RemoveTag(ctx, p.P, id, tags[rng.IntN(3)])
					case 2:
						title := fmt.Sprint("t", i)
						_, err = cv.Update(ctx, p.P, id, conversations.UpdateConversation{Title: &title})
					case 3:
						if rng.IntN(40) == 0 {
							err = cv.Delete(ctx, p.P, id)
						}
					default:
						_, err = cv.Append(ctx, p.P, id, conversations.AppendMessages{Messages: []conversations.MessageInput{{Role: "user", Content: fmt.Sprintf("word%d shared", rng.IntN(5))}}})
					}
					if err != nil && !core.IsCode(err, core.CodeNotFound) {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()

		pre := "as:{" + p.ID + "}:"
		live := map[string]conversations.Conversation{}
		for _, id := range ids {
			c, err := a.Store.Conversation(ctx, p.ID, id)
			require.NoError(t, err)
			if c != nil {
				live[id] = *c
			}
		}
		counts := map[string]int{}
		for _, tag := range tags {
			zs, err := e.Rdb.ZRangeWithScores(ctx, pre+"tagconvs:"+tag, 0, -1).Result()
			require.NoError(t, err)
			got := map[string]int64{}
			for _, z := range zs {
				got[z.Member.(string)] = int64(z.Score)
			}
			want := map[string]int64{}
			for id, c := range live {
				has, err := e.Rdb.SIsMember(ctx, pre+"convtags:"+id, tag).Result()
				require.NoError(t, err)
				if has {
					want[id] = c.UpdatedAt
					counts[tag]++
				}
			}
			assert.Equal(t, want, got, "tag %s ordering", tag)
		}
		tagCounts, err := e.Rdb.HGetAll(ctx, pre+"tags").Result()
		require.NoError(t, err)
		for _, tag := range tags {
			if counts[tag] == 0 {
				assert.NotContains(t, tagCounts, tag)
			} else {
				assert.Equal(t, fmt.Sprint(counts[tag]), tagCounts[tag], "count of %s", tag)
			}
		}
		zs, err := e.Rdb.ZRangeWithScores(ctx, pre+"convs", 0, -1).Result()
		require.NoError(t, err)
		assert.Len(t, zs, len(live))
		for _, z := range zs {
			assert.Equal(t, live[z.Member.(string)].UpdatedAt, int64(z.Score))
		}
		for w := range 5 {
			tok := fmt.Sprint("word", w)
			members, err := e.Rdb.SMembers(ctx, pre+"sx:"+tok).Result()
			require.NoError(t, err)
			want := []string{}
			for id, c := range live {
				msgs, err := a.Store.Messages(ctx, p.ID, id, 0, int(c.MessageCount))
				require.NoError(t, err)
				if slices.ContainsFunc(msgs, func(m conversations.Message) bool { return slices.Contains(textindex.Tokens(m.Content), tok) }) {
					want = append(want, id)
				}
			}
			slices.Sort(members)
			slices.Sort(want)
			assert.Equal(t, want, members, "posting set of %s holds exactly the live conversations with it", tok)
		}
	})
}
