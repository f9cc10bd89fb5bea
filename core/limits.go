package core

// MaxStateKeyBytes bounds a state key. v1 has no limit; ours is part of Redis key names.
const MaxStateKeyBytes = 1024

// MaxCursorSequence is the highest sequence a cursor may name (state events, the claims log,
// query pages). Stores read from cursor+1, and v1's JavaScript SDKs hold sequences as doubles,
// exact only up to 2^53-1; no counter comes near it, so a larger cursor is a client's mistake,
// answered 400 rather than overflowing into the store.
const MaxCursorSequence = 1<<53 - 1

// MaxAgentIDLen bounds agent ids (v1: 255), on writes and on credentials bound to an agent.
const MaxAgentIDLen = 255

// Limits are the named bounds every face enforces. Defaults follow v1 where v1 has one.
type Limits struct {
	MaxBodyBytes         int64 // REST request body (413 above it)
	MaxStateValueBytes   int   // compact data + metadata of one state write
	MaxAgentIDLen        int
	MaxTags              int
	MaxPredicates        int
	MaxQueryLimit        int
	DefaultQueryLimit    int
	MaxEventsLimit       int
	DefaultEventsLimit   int
	MaxIdempotencyKeyLen int
	QueryScanPages       int // candidate pages a query may scan before returning a cursor
	QueryPageFactor      int // candidates per page = limit * factor
	// Streams that wait for changes (SSE watches, long-polls, MCP resource subscriptions) held
	// open at once: per process (503 above it: another replica may have room), per project
	// and per root credential (429: the caller holds too many). MaxWatchedProjects bounds the
	// projects this process follows at once, one blocking Redis connection each, and so is
	// also the size of the blocking-read pool.
	MaxWatchers              int
	MaxWatchersPerProject    int
	MaxWatchersPerCredential int
	MaxWatchedProjects       int
}

// DefaultLimits returns the limits a server starts with.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:         1 << 20,
		MaxStateValueBytes:   1 << 20,
		MaxAgentIDLen:        MaxAgentIDLen,
		MaxTags:              50,
		MaxPredicates:        10,
		MaxQueryLimit:        100,
		DefaultQueryLimit:    50,
		MaxEventsLimit:       500,
		DefaultEventsLimit:   50,
		MaxIdempotencyKeyLen: 255,
		QueryScanPages:       10,
		QueryPageFactor:      5,
		// A watcher costs ~10 KiB and a goroutine, not a connection: these are about fairness
		// and file descriptors, sized so the 2,000-watcher benchmark fits one credential.
		MaxWatchers:              10_000,
		MaxWatchersPerProject:    5_000,
		MaxWatchersPerCredential: 2_500,
		MaxWatchedProjects:       DefaultMaxWatchedProjects,
	}
}

// DefaultMaxWatchedProjects is the default MaxWatchedProjects; the store sizes its blocking-read
// pool from it.
const DefaultMaxWatchedProjects = 512
