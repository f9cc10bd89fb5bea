package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/core"
)

// The FT search path: conversation search answered by RediSearch where the server has it.
//
// RediSearch never sees our text. Each conversation has one hash document (ftDocKey) holding
// its distinct folded tokens, hex-encoded with the letters a–p (ftEncode): RediSearch's
// tokenizer, case rules (it lowercases but does not case-fold), stemming, stopwords and number
// parsing then have nothing to act on, so an FT match is exactly a portable-index match, on
// every module version. The index is global, and every query carries the project's TAG clause.

// ftIndexName names the index; a new schema gets a new name (and a new backfill).
const ftIndexName = "as-conv-v1"

// MinSearchModuleVersion is the oldest RediSearch the FT path runs on (2.6: DIALECT 2, PREFIX).
const MinSearchModuleVersion = 20600

// ftCreateArgs builds the index: NOOFFSETS/NOFREQS/NOFIELDS/NOHL because we only ever ask
// "holds this token", STOPWORDS 0 and NOSTEM so nothing is dropped or merged, SKIPINITIALSCAN
// because our backfill writes every document itself. k sorts by (updated_at, id), as the
// portable index orders ties.
var ftCreateArgs = []any{"FT.CREATE", ftIndexName, "ON", "HASH", "PREFIX", 1, ftPrefix,
	"NOOFFSETS", "NOHL", "NOFIELDS", "NOFREQS", "STOPWORDS", 0, "SKIPINITIALSCAN",
	"SCHEMA", "p", "TAG", "g", "TAG", "t", "TEXT", "NOSTEM", "u", "NUMERIC", "k", "TEXT", "NOINDEX", "SORTABLE"}

// ftEncode writes each byte as two letters a–p (high nibble first): byte order, and so
// prefixes, are kept, and RediSearch sees only lowercase ASCII letters.
func ftEncode(s string) string {
	b := make([]byte, 2*len(s))
	for i := 0; i < len(s); i++ {
		b[2*i], b[2*i+1] = 'a'+s[i]>>4, 'a'+s[i]&15
	}
	return string(b)
}

// ftSortKey orders documents as the portable index does: updated_at (zero-padded), then id.
func ftSortKey(at int64, id string) string { return ftEncode(fmt.Sprintf("%015d.%s", at, id)) }

// ftTags is a document's g field: its tags encoded, ","-separated (TAG's separator), each once.
func ftTags(tags []string) string {
	seen := map[string]bool{}
	enc := make([]string, 0, len(tags))
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			enc = append(enc, ftEncode(t))
		}
	}
	return strings.Join(enc, ",")
}

// ftQuery is the query string: the project's tag, the conversation tag when one is asked for,
// one clause per group (alternatives for a prefix's words), and, past a cursor, updated_at at
// most the cursor's (ties are cut by the caller).
func ftQuery(project, tag string, groups [][]string, after *core.TimeCursor) string {
	var b strings.Builder
	b.WriteString("@p:{" + ftEncode(project) + "}")
	if tag != "" {
		b.WriteString(" @g:{" + ftEncode(tag) + "}")
	}
	for _, g := range groups {
		b.WriteString(" (")
		for i, w := range g {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(ftEncode(w))
		}
		b.WriteByte(')')
	}
	if after != nil {
		b.WriteString(" @u:[-inf " + strconv.FormatInt(after.At, 10) + "]")
	}
	return b.String()
}

// ftSearchArgs is one FT.SEARCH page, newest first, returning only updated_at.
func ftSearchArgs(query string, offset, n int) []any {
	return []any{"FT.SEARCH", ftIndexName, query, "VERBATIM", "SORTBY", "k", "DESC",
		"LIMIT", offset, n, "RETURN", 1, "u", "DIALECT", 2}
}

// ftDoc is one result: its key and returned fields.
type ftDoc struct {
	Key    string
	Fields map[string]string
}

// parseFTSearch reads an FT.SEARCH reply in RESP2 ([total, key, [field, value…], …]) or RESP3
// ({total_results, results: [{id, extra_attributes}], warning}) form.
func parseFTSearch(reply any) (int64, []ftDoc, error) {
	switch r := reply.(type) {
	case []any:
		if len(r) == 0 {
			return 0, nil, errors.New("FT.SEARCH: empty reply")
		}
		total, ok := r[0].(int64)
		if !ok {
			return 0, nil, fmt.Errorf("FT.SEARCH: total is %T", r[0])
		}
		var docs []ftDoc
		for i := 1; i < len(r); i++ {
			key, ok := r[i].(string)
			if !ok {
				return 0, nil, fmt.Errorf("FT.SEARCH: key is %T", r[i])
			}
			d := ftDoc{Key: key, Fields: map[string]string{}}
			if i+1 < len(r) {
				if fields, ok := r[i+1].([]any); ok {
					i++
					for j := 0; j+1 < len(fields); j += 2 {
						d.Fields[fmt.Sprint(fields[j])] = fmt.Sprint(fields[j+1])
					}
				}
			}
			docs = append(docs, d)
		}
		return total, docs, nil
	case map[any]any:
		if w, ok := r["warning"].([]any); ok && len(w) > 0 {
			// Partial results (a timeout under ON_TIMEOUT RETURN, a truncated expansion): never served.
			return 0, nil, fmt.Errorf("FT.SEARCH: %v", w[0])
		}
		total, ok := r["total_results"].(int64)
		if !ok {
			return 0, nil, fmt.Errorf("FT.SEARCH: total_results is %T", r["total_results"])
		}
		results, _ := r["results"].([]any)
		docs := make([]ftDoc, 0, len(results))
		for _, x := range results {
			m, ok := x.(map[any]any)
			if !ok {
				return 0, nil, fmt.Errorf("FT.SEARCH: result is %T", x)
			}
			d := ftDoc{Key: fmt.Sprint(m["id"]), Fields: map[string]string{}}
			attrs, _ := m["extra_attributes"].(map[any]any)
			for k, v := range attrs {
				d.Fields[fmt.Sprint(k)] = fmt.Sprint(v)
			}
			docs = append(docs, d)
		}
		return total, docs, nil
	}
	return 0, nil, fmt.Errorf("FT.SEARCH: unexpected reply %T", reply)
}

// parseModuleList finds the search module's version in a MODULE LIST reply (RESP2 arrays of
// name/value pairs, or RESP3 maps); 0 when it is not loaded.
func parseModuleList(reply any) int64 {
	mods, _ := reply.([]any)
	for _, m := range mods {
		fields := map[string]any{}
		switch e := m.(type) {
		case []any:
			for j := 0; j+1 < len(e); j += 2 {
				fields[fmt.Sprint(e[j])] = e[j+1]
			}
		case map[any]any:
			for k, v := range e {
				fields[fmt.Sprint(k)] = v
			}
		}
		if name := fields["name"]; name == "search" || name == "ft" {
			v, _ := fields["ver"].(int64)
			return v
		}
	}
	return 0
}

// FormatModuleVersion writes 20637 as "2.6.37".
func FormatModuleVersion(v int64) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// SearchModuleVersion is the RediSearch version the server runs (0 without it, or on a server
// without MODULE LIST, such as the embedded store).
func (s *Store) SearchModuleVersion(ctx context.Context) int64 {
	reply, err := s.rdb.Do(ctx, "MODULE", "LIST").Result()
	if err != nil {
		return 0
	}
	return parseModuleList(reply)
}

// FTIndex answers searches from RediSearch: core.TextIndex.
type FTIndex struct {
	rdb     redis.UniversalClient // RESP2 below RediSearch 2.8, whose RESP3 replies mis-parse
	own     bool                  // rdb was opened here and is closed with the index
	Version int64
	ready   atomic.Bool
}

// Ready is true once the backfill has put every conversation in the index.
func (f *FTIndex) Ready() bool { return f.ready.Load() }

// ftPage bounds one FT.SEARCH of a Matches call.
const ftPage = 500

// Matches runs the query newest first, paging past the documents that tie with the cursor's
// updated_at but are not after it.
func (f *FTIndex) Matches(ctx context.Context, project, tag string, groups [][]string, after *core.TimeCursor, n int) ([]conversations.TextMatch, error) {
	query := ftQuery(project, tag, groups, after)
	docPrefix := ftDocKey(project, "")
	out := make([]conversations.TextMatch, 0, n)
	for offset := 0; ; {
		batch := min(n-len(out)+8, ftPage)
		reply, err := f.rdb.Do(ctx, ftSearchArgs(query, offset, batch)...).Result()
		if err != nil {
			return nil, fmt.Errorf("FT.SEARCH: %w", err)
		}
		total, docs, err := parseFTSearch(reply)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			id := strings.TrimPrefix(d.Key, docPrefix)
			at, err := strconv.ParseInt(d.Fields["u"], 10, 64)
			if err != nil || id == d.Key {
				return nil, fmt.Errorf("FT.SEARCH: bad document %q", d.Key)
			}
			if after != nil && at == after.At && id >= after.ID {
				continue
			}
			if out = append(out, conversations.TextMatch{ID: id, At: at}); len(out) == n {
				return out, nil
			}
		}
		offset += len(docs)
		if len(docs) < batch || int64(offset) >= total {
			return out, nil
		}
	}
}

// Close releases the RESP2 client when the index opened one.
func (f *FTIndex) Close() {
	if f.own {
		_ = f.rdb.Close()
	}
}

// OpenFTIndex makes sure the index exists and the server fails slow queries rather than
// returning part of the answer, and switches the store's writes to keep documents. It returns
// the index not yet Ready, unless a previous backfill finished; resets is true when the index
// had to be created (every document must then be written again).
func (s *Store) OpenFTIndex(ctx context.Context, version int64) (f *FTIndex, timeoutChanged bool, err error) {
	const op = "redisstore.OpenFTIndex"
	f = &FTIndex{rdb: s.rdb, Version: version}
	if c, ok := s.rdb.(*redis.Client); ok && version < 20800 {
		opts := *c.Options()
		opts.Protocol, opts.PoolSize = 2, 32
		f.rdb, f.own = redis.NewClient(&opts), true
	}
	fail := func(err error) (*FTIndex, bool, error) {
		f.Close()
		return nil, false, core.Internal(op, err)
	}
	policy, err := f.rdb.Do(ctx, "FT.CONFIG", "GET", "ON_TIMEOUT").Result()
	if err != nil {
		return fail(err)
	}
	if !strings.Contains(strings.ToLower(fmt.Sprint(policy)), "fail") {
		if err := f.rdb.Do(ctx, "FT.CONFIG", "SET", "ON_TIMEOUT", "FAIL").Err(); err != nil {
			return fail(err)
		}
		timeoutChanged = true
	}
	names, err := f.rdb.Do(ctx, "FT._LIST").StringSlice()
	if err != nil {
		return fail(err)
	}
	if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+ftIndexName+" ") {
		// A new index holds nothing: whatever an earlier backfill finished must be done again.
		if err := s.rdb.Del(ctx, searchBackfillKey()).Err(); err != nil {
			return fail(err)
		}
		if err := f.rdb.Do(ctx, ftCreateArgs...).Err(); err != nil && !strings.Contains(err.Error(), "already exists") {
			return fail(err)
		}
	}
	s.ft.Store(true)
	done, err := s.rdb.HGet(ctx, searchBackfillKey(), "done_ft").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fail(err)
	}
	f.ready.Store(done == "1")
	return f, timeoutChanged, nil
}

// ForgetFTBackfill is called when a server runs without the FT path: conversations it creates
// get no document, so a later FT start must backfill again.
func (s *Store) ForgetFTBackfill(ctx context.Context) error {
	if err := s.rdb.HDel(ctx, searchBackfillKey(), "done_ft").Err(); err != nil {
		return core.Internal("redisstore.ForgetFTBackfill", err)
	}
	return nil
}
