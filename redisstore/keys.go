// Package redisstore is AgentState's store on Redis: key builders, Lua scripts, streams and
// indexes. Every key of a project carries the hash tag {<project_id>}, so a project lives on
// one Cluster shard and its scripts may touch all of its keys.
package redisstore

import (
	"strconv"
	"strings"
)

// This file is the only place that formats a key; docs/redis-keys.md describes the same layout
// and keys_test.go checks the two agree.

const prefix = "as:"

func projectKey(project, rest string) string { return prefix + "{" + project + "}:" + rest }

// projectSubKey is projectKey(project, kind+id) in one concatenation (one allocation, not two).
func projectSubKey(project, kind, id string) string { return prefix + "{" + project + "}:" + kind + id }

// Project-wide keys.
func seqKey(project string) string       { return projectKey(project, "seq") }
func logKey(project string) string       { return projectKey(project, "log") }
func liveIndexKey(project string) string { return projectKey(project, "idx:live") }
func agentIndexKey(project, agent string) string {
	return projectSubKey(project, "idx:agent:", agent)
}
func tagIndexKey(project, tag string) string { return projectSubKey(project, "idx:tag:", tag) }
func eventIDIndexKey(project string) string  { return projectKey(project, "evid") }

// Per state key.
func stateKey(project, key string) string { return projectSubKey(project, "state:", key) }

// stateHeadKey repeats the fields of the key's last event that a write's guards and index
// updates read, so the write does not read the whole record (mutate_state.lua).
func stateHeadKey(project, key string) string { return projectSubKey(project, "head:", key) }

// writeKeys is mutate_state.lua's first KEYS, in its order: stateKey, stateHeadKey, seqKey,
// logKey, liveIndexKey, eventIDIndexKey, leaseCurrentKey, fenceKey and activeLeasesKey of
// project and key, built in one allocation (they run on every write) and with room for the
// keys a write may add.
func writeKeys(project, key string, more int) []string {
	parts := [...][2]string{{"state:", key}, {"head:", key}, {"seq", ""}, {"log", ""}, {"idx:live", ""},
		{"evid", ""}, {"leasecur:", key}, {"fence:", key}, {"leases", ""}}
	tag := len(prefix) + len("{") + len(project) + len("}:")
	n := 0
	for _, p := range parts {
		n += tag + len(p[0]) + len(p[1])
	}
	var b strings.Builder
	b.Grow(n)
	ends := [len(parts)]int{}
	for i, p := range parts {
		b.WriteString(prefix)
		b.WriteByte('{')
		b.WriteString(project)
		b.WriteString("}:")
		b.WriteString(p[0])
		b.WriteString(p[1])
		ends[i] = b.Len()
	}
	all, start := b.String(), 0
	out := make([]string, len(parts), len(parts)+more)
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}
func leaseCurrentKey(project, key string) string {
	return projectSubKey(project, "leasecur:", key)
}
func idempotencyKey(project, key string) string { return projectSubKey(project, "idem:", key) }
func fenceKey(project, key string) string       { return projectSubKey(project, "fence:", key) }
func leaseQueueKey(project, key string) string  { return projectSubKey(project, "leaseq:", key) }
func leaseDeadlinesKey(project, key string) string {
	return projectSubKey(project, "leaseqd:", key)
}

// Leases.
func activeLeasesKey(project string) string    { return projectKey(project, "leases") }
func leaseRecordKey(project, id string) string { return projectSubKey(project, "leaserec:", id) }
func leaseEventsKey(project string) string     { return projectKey(project, "lease-events") }
func leaseWaiterSeqKey(project string) string  { return projectKey(project, "leasew-seq") }
func leaseWaiterKey(project, id string) string { return projectSubKey(project, "leasew:", id) }

// mcpSessionKey holds the credential id that opened a streamable HTTP MCP session.
func mcpSessionKey(project, id string) string { return projectSubKey(project, "mcpsess:", id) }
func leaseProjectsKey() string                { return prefix + "lease-projects" }

// leaseWakeChannel is the pub/sub channel (not a key) on which a freed key wakes its head
// waiter; lease_lib.lua names it too.
const leaseWakeChannel = prefix + "lease-wake"

// Background jobs: the redsync mutex naming the replica that runs a job.
func jobLeadKey(job string) string { return prefix + "job:" + job }

// Projects and credentials.
func projectsKey() string                    { return prefix + "projects" }
func projectRecordKey(project string) string { return projectKey(project, "project") }
func credentialKey(hash string) string       { return prefix + "cred:" + hash }
func apiKeyRecordKey(project, id string) string {
	return projectSubKey(project, "key:", id)
}
func apiKeysIndexKey(project string) string { return projectKey(project, "keys") }

// Capability tokens and rate limits.
func tokenRecordKey(project, id string) string { return projectSubKey(project, "tok:", id) }
func tokensIndexKey(project string) string     { return projectKey(project, "toks") }
func revokedTokensKey(project string) string   { return projectKey(project, "revoked") }
func rateLimitKey(project, credential string, windowStart int64) string {
	return prefix + "{" + project + "}:rl:" + credential + ":" + strconv.FormatInt(windowStart, 10)
}

// Claims.
func claimKey(project, id string) string   { return projectSubKey(project, "claim:", id) }
func claimsIndexKey(project string) string { return projectKey(project, "claims") }

// The claims of one subject, of one subject type and of one subject id, like claimsIndexKey.
// In the first, the type's length keeps type "a:b" with id "c" apart from "a" with "b:c".
func claimsBySubjectKey(project, typ, id string) string {
	return projectKey(project, "claims:subject:"+strconv.Itoa(len(typ))+":"+typ+":"+id)
}
func claimsBySubjectTypeKey(project, typ string) string {
	return projectSubKey(project, "claims:subject-type:", typ)
}
func claimsBySubjectIDKey(project, id string) string {
	return projectSubKey(project, "claims:subject-id:", id)
}
func claimRunsKey(project, id string) string { return projectSubKey(project, "claimruns:", id) }
func claimLogKey(project string) string      { return projectKey(project, "claimlog") }
func claimLogHeadKey(project string) string  { return projectKey(project, "claimlog-head") }
func signingKeyKey() string                  { return prefix + "signing-key" }
func generationKey() string                  { return prefix + "generation" }
func checkpointKey() string                  { return prefix + "checkpoint" }

// Conversations.
func convKey(project, id string) string       { return projectSubKey(project, "conv:", id) }
func convMsgsKey(project, id string) string   { return projectSubKey(project, "convmsgs:", id) }
func convMsgIDsKey(project, id string) string { return projectSubKey(project, "convmsgids:", id) }
func convsKey(project string) string          { return projectKey(project, "convs") }
func convsCreatedKey(project string) string   { return projectKey(project, "convs-created") }
func convExtKey(project string) string        { return projectKey(project, "convext") }
func postingKey(project, token string) string { return projectSubKey(project, "sx:", token) }
func tracesKey(project string) string         { return projectKey(project, "traces") }
func convTagsKey(project, id string) string   { return projectSubKey(project, "convtags:", id) }
func tagConvsKey(project, tag string) string  { return projectSubKey(project, "tagconvs:", tag) }
func tagCountsKey(project string) string      { return projectKey(project, "tags") }
func webhookKey(project, id string) string    { return projectSubKey(project, "webhook:", id) }
func webhooksKey(project string) string       { return projectKey(project, "webhooks") }

// Webhook outbox: deliveries waiting (a stream with the consumer group the delivery workers of
// every replica share) and deliveries that ran out of attempts.
func webhookOutboxKey(project string) string { return projectKey(project, "webhook-outbox") }
func webhookDeadKey(project string) string   { return projectKey(project, "webhook-dead") }
func webhookProjectsKey() string             { return prefix + "webhook-projects" }

// Prefix queries: the project's indexed tokens, all at score 0, read with ZRANGE BYLEX.
func vocabKey(project string) string { return projectKey(project, "vocab") }

// RediSearch. One index covers every project, and an index covers a literal key prefix, so its
// documents share "as:ft:" and carry the project's hash tag right after it: a document still
// hashes to its project's slot, and the scripts write it with the messages.
const ftPrefix = prefix + "ft:"

func ftDocKey(project, id string) string { return ftPrefix + "{" + project + "}:c:" + id }

// searchBackfillKey is the backfill's resumable cursor and what it has finished.
func searchBackfillKey() string { return prefix + "search-backfill" }

// OAuth. Clients and the per-IP counters are global (a client registers before it has a
// project); codes and refresh tokens live in the approving project's slot, with its revoked set.
func oauthClientKey(id string) string { return prefix + "oauth:client:" + id }
func oauthCodeKey(project, hash string) string {
	return projectSubKey(project, "oauth:code:", hash)
}
func oauthRefreshKey(project, hash string) string {
	return projectSubKey(project, "oauth:rt:", hash)
}
func oauthIPLimitKey(bucket, ip string, windowStart int64) string {
	return prefix + "oauth:rl:" + bucket + ":" + ip + ":" + strconv.FormatInt(windowStart, 10)
}
