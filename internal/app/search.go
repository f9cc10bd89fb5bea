package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentstate/agentstate-go/redisstore"
)

// Search modes (AGENTSTATE_SEARCH).
const (
	SearchAuto       = "auto"       // RediSearch when the server has it (>= 2.6), else portable
	SearchPortable   = "portable"   // the inverted index of plain Redis sets, on any server
	SearchRediSearch = "redisearch" // RediSearch, or refuse to start
)

// searchState is what /readyz reports about search.
type searchState struct {
	mode     string
	module   int64
	ft       *redisstore.FTIndex
	backfill *redisstore.Backfill
}

// path is the search path serving queries now: RediSearch once its backfill is done.
func (s *searchState) path() string {
	if s != nil && s.ft != nil && s.ft.Ready() {
		return SearchRediSearch
	}
	return SearchPortable
}

// details are /readyz's search section.
func (s *searchState) details() map[string]any {
	if s == nil {
		return nil
	}
	d := map[string]any{"mode": s.mode}
	if s.module > 0 {
		d["redisearch_version"] = redisstore.FormatModuleVersion(s.module)
	}
	if s.ft != nil {
		d["backfill"] = "running: searches use the portable index until it finishes"
		if s.ft.Ready() {
			d["backfill"] = "done"
		}
	}
	return d
}

// OpenSearch picks the search path for mode, logs the choice and prepares the backfill of what
// the chosen path needs (prefix vocabulary; RediSearch documents), which Start runs.
func (a *App) OpenSearch(ctx context.Context, mode string, log *slog.Logger) error {
	mode = cmp.Or(mode, SearchAuto) // a Config built in code, not from flags
	if mode != SearchAuto && mode != SearchPortable && mode != SearchRediSearch {
		return fmt.Errorf("AGENTSTATE_SEARCH=%q: want auto, portable or redisearch", mode)
	}
	v := a.Store.SearchModuleVersion(ctx)
	st := &searchState{mode: SearchPortable, module: v}
	if mode == SearchRediSearch && v < redisstore.MinSearchModuleVersion {
		found := "no search module"
		if v > 0 {
			found = "RediSearch " + redisstore.FormatModuleVersion(v)
		}
		return fmt.Errorf("AGENTSTATE_SEARCH=redisearch needs RediSearch >= 2.6 on the server, and MODULE LIST shows %s; use auto or portable", found)
	}
	if mode == SearchPortable || v < redisstore.MinSearchModuleVersion {
		if err := a.Store.ForgetFTBackfill(ctx); err != nil {
			return err
		}
		st.backfill = a.Store.NewBackfill(nil, log)
		log.Info("search: portable index", "requested", mode, "redisearch_version", moduleName(v))
	} else {
		ft, timeoutChanged, err := a.Store.OpenFTIndex(ctx, v)
		if err != nil {
			return err
		}
		if timeoutChanged {
			log.Warn("search: set RediSearch ON_TIMEOUT to FAIL (it was RETURN, which answers slow queries with partial results); this is a server-wide setting")
		}
		st.mode, st.ft = SearchRediSearch, ft
		a.Convs.Text = ft
		st.backfill = a.Store.NewBackfill(ft, log)
		log.Info("search: RediSearch", "requested", mode, "redisearch_version", moduleName(v), "backfill_done", ft.Ready())
	}
	a.search = st
	return nil
}

func moduleName(v int64) string {
	if v == 0 {
		return "absent"
	}
	return redisstore.FormatModuleVersion(v)
}

// closeSearch stops the backfill (its position is saved) and the FT client.
func (a *App) closeSearch() {
	if a.search == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.search.backfill.Shutdown(ctx)
	if a.search.ft != nil {
		a.search.ft.Close()
	}
}
