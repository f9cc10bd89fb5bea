package redisstore

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/conversations/textindex"
	"github.com/agentstate/agentstate-go/core"
)

// Backfill puts conversations written before a search index was kept into it: the vocabulary
// of prefix queries always, and the RediSearch documents when it has an FTIndex (which becomes
// Ready when it finishes; search answers from the portable index until then). It walks
// projects by id and each project's conversations by creation, saving its position in
// searchBackfillKey after every batch, so a restart resumes where it stopped. Conversations
// written meanwhile are indexed by their own writes, and a reindex that races one is retried.
type Backfill struct {
	store    *Store
	ft       *FTIndex
	log      *slog.Logger
	Progress time.Duration // how often progress is logged
	cancel   context.CancelFunc
	done     chan struct{}
}

// backfillBatch is how many conversations one step reads.
const backfillBatch = 100

// NewBackfill prepares the job; ft nil = vocabulary only.
func (s *Store) NewBackfill(ft *FTIndex, log *slog.Logger) *Backfill {
	return &Backfill{store: s, ft: ft, log: log, Progress: 10 * time.Second}
}

// Start runs the backfill in the background; Shutdown stops it.
func (b *Backfill) Start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(ctx)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		if err := b.Run(ctx); err != nil && ctx.Err() == nil {
			b.log.Error("search backfill stopped; it resumes at the next start", "err", err)
		}
	}()
}

// Shutdown stops a started backfill and waits for it (its position is already saved).
func (b *Backfill) Shutdown(ctx context.Context) error {
	if b.cancel == nil {
		return nil
	}
	b.cancel()
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run does the whole backfill in the caller's goroutine.
func (b *Backfill) Run(ctx context.Context) error {
	const op = "redisstore.Backfill"
	rdb, key := b.store.rdb, searchBackfillKey()
	doneField, ft := "done_vocab", flag(b.ft != nil)
	if b.ft != nil {
		doneField = "done_ft"
	}
	st, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return core.Internal(op, err)
	}
	if st[doneField] == "1" {
		b.finish()
		return nil
	}
	if st["ft"] != ft { // the saved position belongs to a run that wrote other indexes
		st = map[string]string{}
	}
	projects, err := rdb.ZRange(ctx, projectsKey(), 0, -1).Result()
	if err != nil {
		return core.Internal(op, err)
	}
	slices.Sort(projects)
	var cur *core.TimeCursor
	if st["project"] != "" {
		at, _ := strconv.ParseInt(st["at"], 10, 64)
		cur = &core.TimeCursor{At: at, ID: st["id"]}
	}
	b.log.Info("search backfill started", "ft", b.ft != nil, "projects", len(projects), "resume_project", st["project"])
	var count int
	last := time.Now()
	for _, p := range projects {
		if p < st["project"] {
			continue
		}
		if p != st["project"] {
			cur = nil
		}
		for {
			convs, err := b.store.ConversationsAfter(ctx, p, "created", cur, false, backfillBatch)
			if err != nil {
				return err
			}
			for _, c := range convs {
				if err := b.store.reindex(ctx, p, c); err != nil {
					return err
				}
			}
			count += len(convs)
			if len(convs) > 0 {
				c := convs[len(convs)-1]
				cur = &core.TimeCursor{At: c.CreatedAt, ID: c.ID}
				if err := rdb.HSet(ctx, key, "project", p, "at", c.CreatedAt, "id", c.ID, "ft", ft).Err(); err != nil {
					return core.Internal(op, err)
				}
			}
			if time.Since(last) >= b.Progress {
				last = time.Now()
				b.log.Info("search backfill progress", "conversations", count, "project", p)
			}
			if len(convs) < backfillBatch {
				break
			}
		}
	}
	fields := []any{doneField, "1", "done_vocab", "1"}
	if err := rdb.HSet(ctx, key, fields...).Err(); err != nil {
		return core.Internal(op, err)
	}
	if err := rdb.HDel(ctx, key, "project", "at", "id").Err(); err != nil {
		return core.Internal(op, err)
	}
	b.log.Info("search backfill finished", "conversations", count, "ft", b.ft != nil)
	b.finish()
	return nil
}

func (b *Backfill) finish() {
	if b.ft != nil {
		b.ft.ready.Store(true)
	}
}

// reindex writes one conversation's tokens into the indexes ("reindex" mode of
// write_conversation.lua), reading its messages again when one arrived in between.
func (s *Store) reindex(ctx context.Context, project string, c conversations.Conversation) error {
	const op = "redisstore.reindex"
	for range maxTagRetries {
		msgs, err := s.Messages(ctx, project, c.ID, 0, int(c.MessageCount))
		if err != nil {
			return err
		}
		texts := make([]string, len(msgs))
		for i, m := range msgs {
			texts[i] = m.Content
		}
		toks := textindex.Tokens(strings.Join(texts, "\n")) // a newline never joins two tokens
		tags, err := s.rdb.SMembers(ctx, convTagsKey(project, c.ID)).Result()
		if err != nil {
			return core.Internal(op, err)
		}
		keys, argv := s.writeArgs(project, c.ID, tags, toks, "reindex", c.UpdatedAt)
		argv[8] = c.MessageCount
		res, err := s.run(ctx, writeConversationScript, keys, argv...).StringSlice()
		if err != nil {
			return core.Internal(op, err)
		}
		if res[0] != "RETRY" {
			return nil // OK, or gone (NOT_FOUND): nothing to index
		}
		cv, err := s.Conversation(ctx, project, c.ID)
		if err != nil || cv == nil {
			return err
		}
		c = *cv
	}
	return core.Internal(op, errRetriesExhausted)
}
