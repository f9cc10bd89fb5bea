package rest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/webhooks"

	"github.com/go-chi/chi/v5"

	"github.com/agentstate/agentstate-go/core"
)

func convID(r *http.Request) string { return chi.URLParam(r, "id") }

// decodeInto decodes the body into a fresh T.
func decodeInto[T any](s *Server, w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	err := decodeBody(w, r, s.limits.MaxBodyBytes, &v)
	return v, err
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[conversations.CreateConversation](s, w, r)
	if err == nil {
		var c conversations.Conversation
		c, err = s.Conversations.Create(r.Context(), principal(r), body)
		if err == nil {
			// v1 fires conversation.created from this route only: the MCP tool does not.
			s.Webhooks.ConversationCreated(r.Context(), principal(r).ProjectID, c)
		}
		if c.Messages == nil {
			c.Messages = []conversations.Message{}
		}
		respond(w, r, http.StatusCreated, c, err)
		return
	}
	writeError(w, r, err)
}

func convQuery(r *http.Request) conversations.ListQuery {
	q := r.URL.Query()
	return conversations.ListQuery{Limit: queryInt(r, "limit", 0), Cursor: q.Get("cursor"), Order: q.Get("order"), Tag: q.Get("tag")}
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) {
	page, err := s.Conversations.List(r.Context(), principal(r), convQuery(r))
	respond(w, r, http.StatusOK, page, err)
}

// convFields are the names GET /conversations/{id}?fields= may pick.
var convFields = []string{"id", "project_id", "external_id", "title", "metadata", "message_count", "token_count",
	"total_cost_microdollars", "total_tokens", "created_at", "updated_at", "messages"}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	c, err := s.Conversations.Get(r.Context(), principal(r), convID(r), conversations.ConvGetMessages)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if c.Messages == nil {
		c.Messages = []conversations.Message{}
	}
	fields := r.URL.Query().Get("fields")
	if fields == "" {
		writeJSON(w, http.StatusOK, c)
		return
	}
	var all map[string]json.RawMessage
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, &all)
	out := map[string]json.RawMessage{}
	if fields == "!messages" {
		delete(all, "messages")
		writeJSON(w, http.StatusOK, all)
		return
	}
	for _, f := range strings.Split(fields, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(convFields, f) {
			writeError(w, r, core.E("rest.getConversation", core.CodeInvalidField, "Unknown field: "+f))
			return
		}
		out[f] = all[f]
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getConversationByExternalID(w http.ResponseWriter, r *http.Request) {
	ext, err := pathParam(r, "externalId")
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Conversations.GetByExternalID(r.Context(), principal(r), ext)
	if c.Messages == nil {
		c.Messages = []conversations.Message{}
	}
	respond(w, r, http.StatusOK, c, err)
}

func (s *Server) updateConversation(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[conversations.UpdateConversation](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.Conversations.Update(r.Context(), principal(r), convID(r), body)
	respond(w, r, http.StatusOK, c, err)
}

func (s *Server) deleteConversation(w http.ResponseWriter, r *http.Request) {
	if err := s.Conversations.Delete(r.Context(), principal(r), convID(r)); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) appendMessages(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[conversations.AppendMessages](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.Conversations.Append(r.Context(), principal(r), convID(r), body)
	respond(w, r, http.StatusCreated, res, err)
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	page, err := s.Conversations.ListMessages(r.Context(), principal(r), convID(r), r.URL.Query().Get("after"), queryInt(r, "limit", 0))
	respond(w, r, http.StatusOK, page, err)
}

func (s *Server) searchConversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := s.Conversations.Search(r.Context(), principal(r), conversations.SearchQuery{
		Q: q.Get("q"), Limit: queryInt(r, "limit", 0), Cursor: q.Get("cursor"), Order: q.Get("order"), Tag: q.Get("tag")})
	respond(w, r, http.StatusOK, page, err)
}

func (s *Server) exportConversations(w http.ResponseWriter, r *http.Request) {
	var body conversations.IDList
	if r.ContentLength != 0 {
		var err error
		if body, err = decodeInto[conversations.IDList](s, w, r); err != nil {
			writeError(w, r, err)
			return
		}
	}
	res, err := s.Conversations.Export(r.Context(), principal(r), body)
	respond(w, r, http.StatusOK, res, err)
}

func (s *Server) bulkDeleteConversations(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[conversations.IDList](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.Conversations.BulkDelete(r.Context(), principal(r), body)
	respond(w, r, http.StatusOK, res, err)
}

func (s *Server) conversationAnalytics(w http.ResponseWriter, r *http.Request) {
	a, err := s.Conversations.Analytics(r.Context(), principal(r), convID(r))
	respond(w, r, http.StatusOK, a, err)
}

func (s *Server) generateTitle(w http.ResponseWriter, r *http.Request) {
	t, err := s.Conversations.GenerateTitle(r.Context(), principal(r), convID(r))
	respond(w, r, http.StatusOK, t, err)
}

func (s *Server) followUps(w http.ResponseWriter, r *http.Request) {
	q, err := s.Conversations.FollowUps(r.Context(), principal(r), convID(r))
	respond(w, r, http.StatusOK, q, err)
}

func (s *Server) generateAll(w http.ResponseWriter, r *http.Request) {
	a, err := s.Conversations.GenerateAll(r.Context(), principal(r), convID(r))
	respond(w, r, http.StatusOK, a, err)
}

func (s *Server) ingestTrace(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[conversations.TraceIngest](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	t, err := s.Conversations.IngestTrace(r.Context(), principal(r), body)
	respond(w, r, http.StatusCreated, t, err)
}

func (s *Server) listTraces(w http.ResponseWriter, r *http.Request) {
	page, err := s.Conversations.ListTraces(r.Context(), principal(r), convQuery(r))
	respond(w, r, http.StatusOK, page, err)
}

func (s *Server) getTrace(w http.ResponseWriter, r *http.Request) {
	t, err := s.Conversations.GetTrace(r.Context(), principal(r), convID(r))
	respond(w, r, http.StatusOK, t, err)
}

func (s *Server) projectTags(w http.ResponseWriter, r *http.Request) {
	t, err := s.Conversations.ProjectTags(r.Context(), principal(r))
	respond(w, r, http.StatusOK, t, err)
}

func (s *Server) conversationTags(w http.ResponseWriter, r *http.Request) {
	t, err := s.Conversations.Tags(r.Context(), principal(r), convID(r))
	respond(w, r, http.StatusOK, t, err)
}

func (s *Server) addConversationTags(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[conversations.AddTagsRequest](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	t, err := s.Conversations.AddTags(r.Context(), principal(r), convID(r), body)
	respond(w, r, http.StatusCreated, t, err)
}

func (s *Server) removeConversationTag(w http.ResponseWriter, r *http.Request) {
	tag, err := pathParam(r, "tag")
	if err == nil {
		err = s.Conversations.RemoveTag(r.Context(), principal(r), convID(r), tag)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func analyticsQuery(r *http.Request) conversations.AnalyticsQuery {
	q := r.URL.Query()
	start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
	end, _ := strconv.ParseInt(q.Get("end"), 10, 64)
	return conversations.AnalyticsQuery{Start: start, End: end, Tags: q["tag"], Metric: q.Get("metric"),
		Granularity: q.Get("granularity"), Limit: queryInt(r, "limit", 0)}
}

func (s *Server) analyticsSummary(w http.ResponseWriter, r *http.Request) {
	a, err := s.Conversations.Summary(r.Context(), principal(r), analyticsQuery(r))
	respond(w, r, http.StatusOK, a, err)
}

func (s *Server) analyticsTimeseries(w http.ResponseWriter, r *http.Request) {
	a, err := s.Conversations.Timeseries(r.Context(), principal(r), analyticsQuery(r))
	respond(w, r, http.StatusOK, a, err)
}

func (s *Server) analyticsTags(w http.ResponseWriter, r *http.Request) {
	a, err := s.Conversations.TagStats(r.Context(), principal(r), analyticsQuery(r))
	respond(w, r, http.StatusOK, a, err)
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[webhooks.CreateWebhook](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	wh, err := s.Webhooks.Create(r.Context(), principal(r), body)
	respond(w, r, http.StatusCreated, wh, err)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	l, err := s.Webhooks.List(r.Context(), principal(r))
	respond(w, r, http.StatusOK, l, err)
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	l, err := s.Webhooks.DeadLetters(r.Context(), principal(r), r.URL.Query().Get("cursor"), queryInt(r, "limit", 0))
	respond(w, r, http.StatusOK, l, err)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	wh, err := s.Webhooks.Get(r.Context(), principal(r), chi.URLParam(r, "id"))
	respond(w, r, http.StatusOK, wh, err)
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := decodeInto[webhooks.UpdateWebhook](s, w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	wh, err := s.Webhooks.Update(r.Context(), principal(r), chi.URLParam(r, "id"), body)
	respond(w, r, http.StatusOK, wh, err)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.Webhooks.Delete(r.Context(), principal(r), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
