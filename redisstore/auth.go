package redisstore

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// Credential reads as:cred:<hash>.
func (s *Store) Credential(ctx context.Context, hash string) (*core.Credential, error) {
	f, err := s.rdb.HGetAll(ctx, credentialKey(hash)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Credential", err)
	}
	if len(f) == 0 {
		return nil, nil
	}
	scopes, err := core.UnmarshalScopes(f["scopes"])
	if err != nil {
		return nil, core.Internal("redisstore.Credential", err)
	}
	c := &core.Credential{
		ID: f["id"], Hash: hash, ProjectID: f["project_id"], Kind: core.CredentialKind(f["kind"]),
		Scopes: scopes, AgentID: f["agent_id"],
	}
	c.ExpiresAt, _ = strconv.ParseInt(f["expires_at"], 10, 64)
	c.RevokedAt, _ = strconv.ParseInt(f["revoked_at"], 10, 64)
	return c, nil
}

// CreateProject registers a project unless its id is taken.
func (s *Store) CreateProject(ctx context.Context, p core.Project) (bool, error) {
	added, err := s.rdb.ZAddNX(ctx, projectsKey(), redis.Z{Score: float64(p.CreatedAt), Member: p.ID}).Result()
	if err != nil {
		return false, core.Internal("redisstore.CreateProject", err)
	}
	if added == 0 {
		return false, nil
	}
	err = s.rdb.HSet(ctx, projectRecordKey(p.ID), "id", p.ID, "name", p.Name, "created_at", p.CreatedAt).Err()
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
	scopes := core.MarshalScopes(key.Scopes)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, apiKeyRecordKey(project, key.ID), "id", key.ID, "name", key.Name,
			"key_prefix", key.KeyPrefix, "scopes", scopes, "created_at", key.CreatedAt, "hash", hash)
		p.ZAdd(ctx, apiKeysIndexKey(project), redis.Z{Score: float64(key.CreatedAt), Member: key.ID})
		return nil
	})
	if err != nil {
		return core.Internal(op, err)
	}
	err = s.rdb.HSet(ctx, credentialKey(hash), "id", key.ID, "project_id", project,
		"kind", string(core.KindAPIKey), "scopes", scopes).Err()
	if err != nil {
		return core.Internal(op, err)
	}
	return nil
}
