package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// PutMCPSession records session id, opened by credential, forgotten after idle without use.
func (s *Store) PutMCPSession(ctx context.Context, project, id, credential string, idle time.Duration) error {
	if err := s.rdb.Set(ctx, mcpSessionKey(project, id), credential, idle).Err(); err != nil {
		return core.Internal("redisstore.PutMCPSession", err)
	}
	return nil
}

// MCPSession returns the credential that opened session id, "" when the store does not know it
// (never issued, or idle past its time), and starts its idle time again: one GETEX.
func (s *Store) MCPSession(ctx context.Context, project, id string, idle time.Duration) (string, error) {
	cred, err := mcpSessionCredential(s.rdb.GetEx(ctx, mcpSessionKey(project, id), idle))
	if err != nil {
		return "", core.Internal("redisstore.MCPSession", err)
	}
	return cred, nil
}

// mcpSessionCredential is MCPSession's answer from its GETEX, whichever round trip it went in.
func mcpSessionCredential(getex *redis.StringCmd) (string, error) {
	cred, err := getex.Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return cred, err
}
