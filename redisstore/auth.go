package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// Credential reads as:cred:<hash>.
func (s *Store) Credential(ctx context.Context, hash string) (*core.Credential, error) {
	const op = "redisstore.Credential"
	f, err := s.rdb.HGetAll(ctx, credentialKey(hash)).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	c, err := credentialFromFields(hash, f)
	if err != nil {
		return nil, core.Internal(op, err)
	}
	return c, nil
}

// credentialFromFields decodes an as:cred: hash; nil when it is empty (no such credential).
func credentialFromFields(hash string, f map[string]string) (*core.Credential, error) {
	if len(f) == 0 {
		return nil, nil
	}
	var err error
	c := &core.Credential{
		ID: f["id"], Hash: hash, ProjectID: f["project_id"], Kind: core.CredentialKind(f["kind"]),
		AgentID: f["agent_id"], ExpiresAt: int64Field(f, "expires_at"), RevokedAt: int64Field(f, "revoked_at"),
		MaxDepth: int(int64Field(f, "max_depth")), LastUsedAt: int64Field(f, "last_used_at"),
	}
	if c.Scopes, err = core.UnmarshalScopes(f["scopes"]); err != nil {
		return nil, err
	}
	if c.Resources, err = jsonList(f["resources"]); err != nil {
		return nil, err
	}
	if c.Ancestors, err = jsonList(f["ancestors"]); err != nil {
		return nil, err
	}
	c.MintedBy, c.Audience = f["minted_by"], f["audience"]
	return c, nil
}

// CredentialAndCount is what can change of a credential (HMGET of its id, project, revoked_at
// and last_used_at), RevokedAmong and CountRequest in one pipeline: what a request needs before
// its work, in one round trip. It can be sent together because everything else about a
// credential never changes once issued (the caller knows it from an earlier request);
// revocation is read fresh by this very pipeline.
// The counters are plain INCR (+ PEXPIRE when asked; not MULTI): on a cluster the credential
// and the project's keys live in different slots, and one counter more or less is no harm.
//
// reads adds, for each one not nil, StateEventsAt's current read of a key and MCPSession's
// session check (its GETEX refreshing the idle time), and keeps their answers in reads, unseen
// by anything here: the caller decides whether they may be used.
func (s *Store) CredentialAndCount(ctx context.Context, hash, project string, lineage []string, windowStart int64, count []core.RateCounter, reads core.Prefetched) (*core.CredentialState, []bool, []int64, error) {
	const op = "redisstore.CredentialAndCount"
	pipe := s.rdb.Pipeline()
	cred := pipe.HMGet(ctx, credentialKey(hash), "id", "project_id", "revoked_at", "last_used_at")
	read, sess := reads.State, reads.MCPSession
	var state *redis.XMessageSliceCmd
	if read != nil {
		state = pipe.XRevRangeN(ctx, stateKey(read.Project, read.Key), upperID(0), "-", 1)
	}
	var session *redis.StringCmd
	if sess != nil {
		session = pipe.GetEx(ctx, mcpSessionKey(sess.Project, sess.ID), sess.Idle)
	}
	var revoked *redis.BoolSliceCmd
	if len(lineage) > 0 {
		revoked = pipe.SMIsMember(ctx, revokedTokensKey(project), anySlice(lineage)...)
	}
	incrs := make([]*redis.IntCmd, len(count))
	for i, c := range count {
		key := rateLimitKey(project, c.ID, windowStart)
		incrs[i] = pipe.Incr(ctx, key)
		if c.SetExpiry {
			pipe.PExpire(ctx, key, 2*core.RateWindow)
		}
	}
	cmds := pipe.Cmds()
	if err := s.co.exec(ctx, pipe); err != nil {
		if ctx.Err() != nil { // none of cmds may be read (coalescer.exec)
			return nil, nil, nil, core.Internal(op, err)
		}
		// A failed read in reads (or an unknown session's nil) is the read's answer, not the
		// credential's: the request is refused or admitted as it would be without it.
		for _, c := range cmds {
			if c != state && c != session && c.Err() != nil {
				return nil, nil, nil, core.Internal(op, c.Err())
			}
		}
	}
	for i, c := range count {
		// This INCR created the counter without an expiry (its key was removed since this
		// replica set one, or the count that sets it is still on its way): set it now, or the
		// counter might never go.
		if incrs[i].Val() == 1 && !c.SetExpiry {
			if err := s.rdb.PExpire(ctx, rateLimitKey(project, c.ID, windowStart), 2*core.RateWindow).Err(); err != nil {
				return nil, nil, nil, core.Internal(op, err)
			}
		}
	}
	if state != nil {
		if err := state.Err(); err != nil {
			read.Err = core.Internal(op, err)
		} else {
			read.Event, read.Err = s.currentEvent(read.Project, read.Key, state.Val())
		}
	}
	if session != nil {
		if sess.Credential, sess.Err = mcpSessionCredential(session); sess.Err != nil {
			sess.Err = core.Internal(op, sess.Err)
		}
	}
	var c *core.CredentialState
	if f := cred.Val(); f[0] != nil {
		c = &core.CredentialState{ID: hmgetString(f[0]), ProjectID: hmgetString(f[1]),
			RevokedAt: int64Of(hmgetString(f[2])), LastUsedAt: int64Of(hmgetString(f[3]))}
	}
	var flags []bool
	if revoked != nil {
		flags = revoked.Val()
	}
	counts := make([]int64, len(incrs))
	for i, c := range incrs {
		counts[i] = c.Val()
	}
	return c, flags, counts, nil
}

func anySlice(l []string) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}

// int64Field is the field's integer, 0 when absent or malformed. An absent field is the
// common case (a key's expires_at, revoked_at, …): it is not parsed, since a failed parse
// allocates its error.
func int64Field(f map[string]string, name string) int64 { return int64Of(f[name]) }

func int64Of(v string) int64 {
	if v == "" {
		return 0
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// hmgetString is one HMGET value: "" when the field is absent.
func hmgetString(v any) string {
	s, _ := v.(string)
	return s
}

// optInt64 is a nullable wire field: absent or 0 is null.
func optInt64(f map[string]string, name string) *int64 {
	if n := int64Field(f, name); n != 0 {
		return &n
	}
	return nil
}

// jsonList decodes a stored string list; "" is nil (no restriction).
func jsonList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	return out, json.Unmarshal([]byte(s), &out)
}

func encodeList(l []string) string {
	if l == nil {
		return ""
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// credentialRecordKey picks the record of credential id of kind: its API key's or token's.
func credentialRecordKey(project, id string, kind core.CredentialKind) string {
	if kind == core.KindCapabilityToken {
		return tokenRecordKey(project, id)
	}
	return apiKeyRecordKey(project, id)
}

// TouchCredential stamps last_used_at on the credential and on its key or token record.
func (s *Store) TouchCredential(ctx context.Context, c core.Credential, at int64) error {
	record := credentialRecordKey(c.ProjectID, c.ID, c.Kind)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, credentialKey(c.Hash), "last_used_at", at)
		p.HSet(ctx, record, "last_used_at", at)
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.TouchCredential", err)
	}
	return nil
}

// CreateProject registers a project unless its id is taken.
func (s *Store) CreateProject(ctx context.Context, p core.Project) (bool, error) {
	var added int64
	err := s.write(ctx, projectsKey(), func(c redis.Cmdable) (err error) {
		added, err = c.ZAddNX(ctx, projectsKey(), redis.Z{Score: float64(p.CreatedAt), Member: p.ID}).Result()
		return err
	})
	if err != nil {
		return false, core.Internal("redisstore.CreateProject", err)
	}
	if added == 0 {
		return false, nil
	}
	err = s.write(ctx, projectRecordKey(p.ID), func(c redis.Cmdable) error {
		return c.HSet(ctx, projectRecordKey(p.ID), "id", p.ID, "name", p.Name, "created_at", p.CreatedAt).Err()
	})
	if err != nil {
		return false, core.Internal("redisstore.CreateProject", err)
	}
	return true, nil
}

// CountProjects returns how many projects exist.
func (s *Store) CountProjects(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, projectsKey()).Result()
	if err != nil {
		return 0, core.Internal("redisstore.CountProjects", err)
	}
	return n, nil
}

// ListProjects reads every project record, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]core.Project, error) {
	const op = "redisstore.ListProjects"
	ids, err := s.rdb.ZRange(ctx, projectsKey(), 0, -1).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	recs, err := s.hashes(ctx, ids, projectRecordKey)
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out := make([]core.Project, 0, len(ids))
	for i, f := range recs {
		p := core.Project{ID: ids[i], Name: f["name"], CreatedAt: int64Field(f, "created_at")}
		if d, err := strconv.Atoi(f["retention_days"]); err == nil && d > 0 {
			p.RetentionDays = &d
		}
		out = append(out, p)
	}
	return out, nil
}

// hashes reads one hash per id in a pipeline.
func (s *Store) hashes(ctx context.Context, ids []string, key func(string) string) ([]map[string]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, key(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]map[string]string, len(ids))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// SetProjectRetention writes or clears retention_days on the project record.
func (s *Store) SetProjectRetention(ctx context.Context, id string, days *int) (bool, error) {
	const op = "redisstore.SetProjectRetention"
	_, err := s.rdb.ZScore(ctx, projectsKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, core.Internal(op, err)
	}
	if days == nil {
		err = s.write(ctx, projectRecordKey(id), func(c redis.Cmdable) error {
			return c.HDel(ctx, projectRecordKey(id), "retention_days").Err()
		})
	} else {
		err = s.write(ctx, projectRecordKey(id), func(c redis.Cmdable) error {
			return c.HSet(ctx, projectRecordKey(id), "retention_days", *days).Err()
		})
	}
	if err != nil {
		return false, core.Internal(op, err)
	}
	return true, nil
}

// purgeBatch bounds one SCAN/UNLINK round of a project purge.
const purgeBatch = 500

// DeleteProject unlists the project, deletes every credential it issued (so nothing can use it
// from here on), then unlinks its data in bounded SCAN batches. This admin-only path is the one
// place that scans: a project's keys are not all indexed, and it runs once per project.
func (s *Store) DeleteProject(ctx context.Context, id string) (bool, error) {
	const op = "redisstore.DeleteProject"
	var removed int64
	err := s.write(ctx, projectsKey(), func(c redis.Cmdable) (err error) {
		removed, err = c.ZRem(ctx, projectsKey(), id).Result()
		return err
	})
	if err != nil {
		return false, core.Internal(op, err)
	}
	if removed == 0 {
		return false, nil
	}
	for _, idx := range []struct {
		index  string
		record func(string, string) string
	}{{apiKeysIndexKey(id), apiKeyRecordKey}, {tokensIndexKey(id), tokenRecordKey}} {
		ids, err := s.rdb.ZRange(ctx, idx.index, 0, -1).Result()
		if err != nil {
			return true, core.Internal(op, err)
		}
		recs, err := s.hashes(ctx, ids, func(i string) string { return idx.record(id, i) })
		if err != nil {
			return true, core.Internal(op, err)
		}
		for _, f := range recs {
			if f["hash"] != "" {
				if err := s.write(ctx, credentialKey(f["hash"]), func(c redis.Cmdable) error {
					return c.Del(ctx, credentialKey(f["hash"])).Err()
				}); err != nil {
					return true, core.Internal(op, err)
				}
			}
		}
	}
	if err := s.rdb.SRem(ctx, leaseProjectsKey(), id).Err(); err != nil {
		return true, core.Internal(op, err)
	}
	if err := s.rdb.SRem(ctx, webhookProjectsKey(), id).Err(); err != nil {
		return true, core.Internal(op, err)
	}
	// The pattern carries the project's hash tag, so on a cluster go-redis sends every SCAN
	// to the one master owning that slot, where all the project's keys are.
	// RediSearch documents live outside the project's as:{id}: prefix (ftDocKey), one per
	// conversation: they go first, found through the conversations index the scan then removes.
	for start := int64(0); ; start += purgeBatch {
		convs, err := s.rdb.ZRange(ctx, convsKey(id), start, start+purgeBatch-1).Result()
		if err != nil {
			return true, core.Internal(op, err)
		}
		docs := make([]string, len(convs))
		for i, c := range convs {
			docs[i] = ftDocKey(id, c)
		}
		if len(docs) > 0 {
			if err := s.rdb.Unlink(ctx, docs...).Err(); err != nil {
				return true, core.Internal(op, err)
			}
		}
		if len(convs) < purgeBatch {
			break
		}
	}
	// The sequence and fencing counters stay (one short string each): a project created again
	// under this id continues them, so none of the deleted project's sequences and tokens is
	// issued again, and no server that saw them takes the new project for lost data.
	iter := s.rdb.Scan(ctx, 0, projectKey(id, "*"), purgeBatch).Iterator()
	batch := make([]string, 0, purgeBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.rdb.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if k := iter.Val(); k == seqKey(id) || strings.HasPrefix(k, fenceKey(id, "")) {
			continue
		}
		if batch = append(batch, iter.Val()); len(batch) == purgeBatch {
			if err := flush(); err != nil {
				return true, core.Internal(op, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return true, core.Internal(op, err)
	}
	if err := flush(); err != nil {
		return true, core.Internal(op, err)
	}
	return true, nil
}

// CreateAPIKey stores the key record, then its credential. The credential is written last: a
// crash in between leaves an unusable record, never a usable key without a record. The two
// live in different slots (credentials are global), so they cannot share one transaction.
func (s *Store) CreateAPIKey(ctx context.Context, project string, key core.APIKey, hash string) error {
	const op = "redisstore.CreateAPIKey"
	exists, err := s.rdb.Exists(ctx, credentialKey(hash)).Result()
	if err != nil {
		return core.Internal(op, err)
	}
	if exists == 1 {
		return nil
	}
	scopes, resources := core.MarshalScopes(key.Scopes), encodeList(key.Resources)
	err = s.tx(ctx, apiKeyRecordKey(project, key.ID), func(p redis.Pipeliner) error {
		p.HSet(ctx, apiKeyRecordKey(project, key.ID), "id", key.ID, "name", key.Name,
			"key_prefix", key.KeyPrefix, "scopes", scopes, "created_at", key.CreatedAt, "hash", hash,
			"resources", resources, "agent_id", key.AgentID)
		p.ZAdd(ctx, apiKeysIndexKey(project), redis.Z{Score: float64(key.CreatedAt), Member: key.ID})
		return nil
	})
	if err != nil {
		return core.Internal(op, err)
	}
	err = s.write(ctx, credentialKey(hash), func(c redis.Cmdable) error {
		return c.HSet(ctx, credentialKey(hash), "id", key.ID, "project_id", project,
			"kind", string(core.KindAPIKey), "scopes", scopes, "resources", resources, "agent_id", key.AgentID).Err()
	})
	if err != nil {
		return core.Internal(op, err)
	}
	return nil
}

// ListAPIKeys returns every key record of the project, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, project string) ([]core.APIKey, error) {
	const op = "redisstore.ListAPIKeys"
	ids, err := s.rdb.ZRange(ctx, apiKeysIndexKey(project), 0, -1).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	recs, err := s.hashes(ctx, ids, func(id string) string { return apiKeyRecordKey(project, id) })
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out := make([]core.APIKey, 0, len(recs))
	for _, f := range recs {
		if len(f) == 0 {
			continue
		}
		k := core.APIKey{ID: f["id"], Name: f["name"], KeyPrefix: f["key_prefix"], CreatedAt: int64Field(f, "created_at"),
			RevokedAt: optInt64(f, "revoked_at"), LastUsedAt: optInt64(f, "last_used_at"), AgentID: f["agent_id"]}
		if k.Scopes, err = core.UnmarshalScopes(f["scopes"]); err != nil {
			return nil, core.Internal(op, err)
		}
		if k.Resources, err = jsonList(f["resources"]); err != nil {
			return nil, core.Internal(op, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// RevokeAPIKey marks the credential revoked first (that is what authentication reads), then
// the record. A second revoke keeps the first revoked_at.
func (s *Store) RevokeAPIKey(ctx context.Context, project, id string, now int64) (bool, error) {
	const op = "redisstore.RevokeAPIKey"
	hash, err := s.rdb.HGet(ctx, apiKeyRecordKey(project, id), "hash").Result()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, core.Internal(op, err)
	}
	if err := s.write(ctx, credentialKey(hash), func(c redis.Cmdable) error {
		return c.HSetNX(ctx, credentialKey(hash), "revoked_at", now).Err()
	}); err != nil {
		return true, core.Internal(op, err)
	}
	// The revoked set is what a token's authentication checks for its whole lineage, so every
	// token the key minted (and their descendants) stops working with this one SADD.
	if err := s.tx(ctx, apiKeyRecordKey(project, id), func(p redis.Pipeliner) error {
		p.SAdd(ctx, revokedTokensKey(project), id)
		p.HSetNX(ctx, apiKeyRecordKey(project, id), "revoked_at", now)
		return nil
	}); err != nil {
		return true, core.Internal(op, err)
	}
	return true, nil
}

// CreateToken stores the token record and index atomically, then its credential (last, as
// for keys).
func (s *Store) CreateToken(ctx context.Context, project string, t core.CapabilityToken, hash string) error {
	const op = "redisstore.CreateToken"
	var expires int64
	if t.ExpiresAt != nil {
		expires = *t.ExpiresAt
	}
	var parent, agent string
	if t.ParentID != nil {
		parent = *t.ParentID
	}
	if t.AgentID != nil {
		agent = *t.AgentID
	}
	scopes, resources, ancestors := encodeList(t.Scopes), encodeList(t.Resources), encodeList(t.Ancestors)
	err := s.tx(ctx, tokenRecordKey(project, t.ID), func(p redis.Pipeliner) error {
		p.HSet(ctx, tokenRecordKey(project, t.ID), "id", t.ID, "name", t.Name, "key_prefix", t.KeyPrefix,
			"scopes", scopes, "expires_at", expires, "created_at", t.CreatedAt, "parent_id", parent,
			"ancestors", ancestors, "max_depth", t.MaxDepth, "resources", resources, "agent_id", agent, "hash", hash,
			"minted_by", t.MintedBy, "audience", t.Audience)
		p.ZAdd(ctx, tokensIndexKey(project), redis.Z{Score: float64(t.CreatedAt), Member: t.ID})
		return nil
	})
	if err != nil {
		return core.Internal(op, err)
	}
	err = s.write(ctx, credentialKey(hash), func(c redis.Cmdable) error {
		return c.HSet(ctx, credentialKey(hash), "id", t.ID, "project_id", project,
			"kind", string(core.KindCapabilityToken), "scopes", scopes, "expires_at", expires,
			"resources", resources, "agent_id", agent, "ancestors", ancestors, "max_depth", t.MaxDepth,
			"minted_by", t.MintedBy, "audience", t.Audience).Err()
	})
	if err != nil {
		return core.Internal(op, err)
	}
	return nil
}

func tokenFrom(f map[string]string) (core.CapabilityToken, error) {
	t := core.CapabilityToken{ID: f["id"], Name: f["name"], KeyPrefix: f["key_prefix"],
		ExpiresAt: optInt64(f, "expires_at"), CreatedAt: int64Field(f, "created_at"),
		RevokedAt: optInt64(f, "revoked_at"), LastUsedAt: optInt64(f, "last_used_at"), MaxDepth: int(int64Field(f, "max_depth"))}
	var err error
	if t.Scopes, err = jsonList(f["scopes"]); err != nil {
		return t, err
	}
	if t.Resources, err = jsonList(f["resources"]); err != nil {
		return t, err
	}
	if t.Ancestors, err = jsonList(f["ancestors"]); err != nil {
		return t, err
	}
	t.MintedBy, t.Audience = f["minted_by"], f["audience"]
	t.Depth = len(t.Ancestors)
	if p := f["parent_id"]; p != "" {
		t.ParentID = &p
	}
	if a := f["agent_id"]; a != "" {
		t.AgentID = &a
	}
	return t, nil
}

// Token reads one token record; nil when the project has no such token.
func (s *Store) Token(ctx context.Context, project, id string) (*core.CapabilityToken, error) {
	f, err := s.rdb.HGetAll(ctx, tokenRecordKey(project, id)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Token", err)
	}
	if len(f) == 0 {
		return nil, nil
	}
	t, err := tokenFrom(f)
	if err != nil {
		return nil, core.Internal("redisstore.Token", err)
	}
	return &t, nil
}

// Tokens reads every token record of the project, oldest first.
func (s *Store) Tokens(ctx context.Context, project string) ([]core.CapabilityToken, error) {
	const op = "redisstore.Tokens"
	ids, err := s.rdb.ZRange(ctx, tokensIndexKey(project), 0, -1).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	recs, err := s.hashes(ctx, ids, func(id string) string { return tokenRecordKey(project, id) })
	if err != nil {
		return nil, core.Internal(op, err)
	}
	out := make([]core.CapabilityToken, 0, len(recs))
	for _, f := range recs {
		if len(f) == 0 {
			continue
		}
		t, err := tokenFrom(f)
		if err != nil {
			return nil, core.Internal(op, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// RevokeToken adds the id to the project's revoked set (what authentication checks for the
// token and all its ancestors) and stamps the record, in one transaction.
func (s *Store) RevokeToken(ctx context.Context, project, id string, now int64) error {
	err := s.tx(ctx, revokedTokensKey(project), func(p redis.Pipeliner) error {
		p.SAdd(ctx, revokedTokensKey(project), id)
		p.HSetNX(ctx, tokenRecordKey(project, id), "revoked_at", now)
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.RevokeToken", err)
	}
	return nil
}

// RevokedAmong checks ids against the revoked set in one command.
func (s *Store) RevokedAmong(ctx context.Context, project string, ids []string) ([]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := s.rdb.SMIsMember(ctx, revokedTokensKey(project), anySlice(ids)...).Result()
	if err != nil {
		return nil, core.Internal("redisstore.RevokedAmong", err)
	}
	return out, nil
}

// CountRequest counts one request in each credential's fixed window, in one transaction. A
// counter outlives its window by one more, then expires.
func (s *Store) CountRequest(ctx context.Context, project string, windowStart int64, credentials ...string) ([]int64, error) {
	incrs := make([]*redis.IntCmd, len(credentials))
	// Not s.tx: a rate-limit counter is not worth a WAIT per request.
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range credentials {
			key := rateLimitKey(project, c, windowStart)
			incrs[i] = p.Incr(ctx, key)
			p.PExpire(ctx, key, 2*core.RateWindow)
		}
		return nil
	})
	if err != nil {
		return nil, core.Internal("redisstore.CountRequest", err)
	}
	out := make([]int64, len(incrs))
	for i, c := range incrs {
		out[i] = c.Val()
	}
	return out, nil
}

// RequestCounts reads the credentials' counts in the window without counting
// (core.RequestCounter): one MGET, since the counters share the project's hash slot.
func (s *Store) RequestCounts(ctx context.Context, project string, windowStart int64, credentials ...string) ([]int64, error) {
	keys := make([]string, len(credentials))
	for i, c := range credentials {
		keys[i] = rateLimitKey(project, c, windowStart)
	}
	vs, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, core.Internal("redisstore.RequestCounts", err)
	}
	out := make([]int64, len(vs))
	for i, v := range vs {
		if str, ok := v.(string); ok {
			out[i], _ = strconv.ParseInt(str, 10, 64)
		}
	}
	return out, nil
}
