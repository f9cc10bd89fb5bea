package redisstore

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

//go:embed scripts/append_claim_log.lua
var appendClaimLogLua string

var appendClaimLogScript = redis.NewScript(appendClaimLogLua)

// ClaimLogHead returns the claims log's size and head hash.
func (s *Store) ClaimLogHead(ctx context.Context, project string) (int64, string, error) {
	f, err := s.rdb.HGetAll(ctx, claimLogHeadKey(project)).Result()
	if err != nil {
		return 0, "", core.Internal("redisstore.ClaimLogHead", err)
	}
	return int64Field(f, "size"), f["hash"], nil
}

func (s *Store) appendClaimLog(ctx context.Context, op, project, claimID string, subjectKeys []string, e core.ClaimLogEntry, size int64, args ...any) (bool, error) {
	entry, err := json.Marshal(e)
	if err != nil {
		return false, core.Internal(op, err)
	}
	keys := append([]string{claimLogHeadKey(project), claimLogKey(project), claimKey(project, claimID),
		claimsIndexKey(project), claimRunsKey(project, claimID)}, subjectKeys...)
	argv := append([]any{size, args[0], e.Seq, string(entry), e.Hash}, args[1:]...)
	n, err := s.run(ctx, appendClaimLogScript, keys, argv...).Int()
	if err != nil {
		return false, core.Internal(op, err)
	}
	if n < 0 {
		return false, core.E(op, core.CodeNotFound, core.MsgClaimNotFound)
	}
	return n == 1, nil
}

// CreateClaim stores the claim and appends its entry if the log has size entries.
func (s *Store) CreateClaim(ctx context.Context, project string, c core.Claim, e core.ClaimLogEntry, size int64) (bool, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return false, core.Internal("redisstore.CreateClaim", err)
	}
	subject := []string{claimsBySubjectKey(project, c.SubjectType, c.SubjectID),
		claimsBySubjectTypeKey(project, c.SubjectType), claimsBySubjectIDKey(project, c.SubjectID)}
	return s.appendClaimLog(ctx, "redisstore.CreateClaim", project, c.ID, subject, e, size, "create", c.ID, c.CreatedAt, string(doc))
}

// AddRun stores a verification run and the claim's new status, and appends the run's entry.
func (s *Store) AddRun(ctx context.Context, project string, r core.VerificationRun, e core.ClaimLogEntry, size int64) (bool, error) {
	doc, err := json.Marshal(r)
	if err != nil {
		return false, core.Internal("redisstore.AddRun", err)
	}
	return s.appendClaimLog(ctx, "redisstore.AddRun", project, r.ClaimID, nil, e, size, "run", string(doc), r.Status, r.CreatedAt)
}

func claimFrom(f map[string]string) (*core.Claim, error) {
	if f["doc"] == "" {
		return nil, nil
	}
	var c core.Claim
	if err := json.Unmarshal([]byte(f["doc"]), &c); err != nil {
		return nil, err
	}
	c.Status, c.UpdatedAt = f["status"], int64Field(f, "updated_at")
	return &c, nil
}

// Claim reads one claim with its evidence; nil when there is none.
func (s *Store) Claim(ctx context.Context, project, id string) (*core.Claim, error) {
	f, err := s.rdb.HGetAll(ctx, claimKey(project, id)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Claim", err)
	}
	c, err := claimFrom(f)
	if err != nil {
		return nil, core.Internal("redisstore.Claim", err)
	}
	return c, nil
}

// Runs lists a claim's verification runs, oldest first.
func (s *Store) Runs(ctx context.Context, project, claimID string) ([]core.VerificationRun, error) {
	docs, err := s.rdb.LRange(ctx, claimRunsKey(project, claimID), 0, -1).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Runs", err)
	}
	out := make([]core.VerificationRun, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal([]byte(d), &out[i]); err != nil {
			return nil, core.Internal("redisstore.Runs", err)
		}
	}
	return out, nil
}

// ClaimsAfter pages the claims index, or a subject's, in (created_at, id) order.
func (s *Store) ClaimsAfter(ctx context.Context, project string, subject core.ClaimSubject, after *core.TimeCursor, desc bool, n int) ([]core.Claim, error) {
	const op = "redisstore.ClaimsAfter"
	ids, err := s.idsAfter(ctx, claimsIndexFor(project, subject), after, desc, n)
	if err != nil {
		return nil, core.Internal(op, err)
	}
	recs, err := s.hashes(ctx, ids, func(id string) string { return claimKey(project, id) })
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out := make([]core.Claim, 0, len(recs))
	for _, f := range recs {
		c, err := claimFrom(f)
		if err != nil {
			return nil, core.Internal(op, err)
		}
		if c != nil {
			out = append(out, *c)
		}
	}
	return out, nil
}

// claimsIndexFor is the index that holds exactly the claims matching subject.
func claimsIndexFor(project string, subject core.ClaimSubject) string {
	switch {
	case subject.Type != "" && subject.ID != "":
		return claimsBySubjectKey(project, subject.Type, subject.ID)
	case subject.Type != "":
		return claimsBySubjectTypeKey(project, subject.Type)
	case subject.ID != "":
		return claimsBySubjectIDKey(project, subject.ID)
	}
	return claimsIndexKey(project)
}

// idsAfter pages a zset of ids scored by time in (score, id) order, after a cursor. Members
// with equal scores sort by id in the zset too, so a cursor's ties are skipped as they come.
func (s *Store) idsAfter(ctx context.Context, key string, after *core.TimeCursor, desc bool, n int) ([]string, error) {
	lo, hi := "-inf", "+inf"
	if after != nil {
		if desc {
			hi = strconv.FormatInt(after.At, 10)
		} else {
			lo = strconv.FormatInt(after.At, 10)
		}
	}
	var ids []string
	for offset := int64(0); len(ids) < n; {
		args := redis.ZRangeArgs{Key: key, Start: lo, Stop: hi, ByScore: true, Rev: desc, Offset: offset, Count: int64(n)}
		if desc {
			args.Start, args.Stop = hi, lo
		}
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, args).Result()
		if err != nil {
			return nil, err
		}
		for _, z := range zs {
			id, at := z.Member.(string), int64(z.Score)
			if after != nil && at == after.At && ((!desc && id <= after.ID) || (desc && id >= after.ID)) {
				continue
			}
			if len(ids) < n {
				ids = append(ids, id)
			}
		}
		if len(zs) < n {
			break
		}
		offset += int64(len(zs))
	}
	return ids, nil
}

// ClaimLogEntries reads up to n entries after a sequence, oldest first.
func (s *Store) ClaimLogEntries(ctx context.Context, project string, afterSeq int64, n int) ([]core.ClaimLogEntry, error) {
	msgs, err := s.rdb.XRangeN(ctx, claimLogKey(project), seqID(afterSeq+1), "+", int64(n)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.ClaimLogEntries", err)
	}
	out := make([]core.ClaimLogEntry, len(msgs))
	for i, m := range msgs {
		raw, _ := m.Values["entry"].(string)
		if err := json.Unmarshal([]byte(raw), &out[i]); err != nil {
			return nil, core.Internal("redisstore.ClaimLogEntries", err)
		}
	}
	return out, nil
}

// EventBySequence finds a state event through the project log, which names its key.
func (s *Store) EventBySequence(ctx context.Context, project string, seq int64) (*core.StateEvent, error) {
	const op = "redisstore.EventBySequence"
	log, err := s.rdb.XRange(ctx, logKey(project), seqID(seq), seqID(seq)).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	if len(log) == 0 {
		return nil, nil
	}
	key, _ := log[0].Values["key"].(string)
	msgs, err := s.rdb.XRange(ctx, stateKey(project, key), seqID(seq), seqID(seq)).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	ev, err := streamEvent(key, msgs[0])
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

// EventByID finds a state event by its id through the event-id index.
func (s *Store) EventByID(ctx context.Context, project, id string) (*core.StateEvent, error) {
	seq, err := s.rdb.HGet(ctx, eventIDIndexKey(project), id).Int64()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, core.Internal("redisstore.EventByID", err)
	}
	return s.EventBySequence(ctx, project, seq)
}

// SigningSeed returns the server's checkpoint signing seed, creating it on first use. Replicas
// share it through Redis; AGENTSTATE_SIGNING_KEY overrides it.
func (s *Store) SigningSeed(ctx context.Context) ([]byte, error) {
	const op = "redisstore.SigningSeed"
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return nil, core.Internal(op, err)
	}
	if err := s.write(ctx, signingKeyKey(), func(c redis.Cmdable) error {
		return c.SetNX(ctx, signingKeyKey(), base64.StdEncoding.EncodeToString(seed), 0).Err()
	}); err != nil {
		return nil, core.Internal(op, err)
	}
	v, err := s.rdb.Get(ctx, signingKeyKey()).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, core.Internal(op, err)
	}
	return out, nil
}
