package titles

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"
)

// UntitledConversation is v1's title when nothing better can be said (compat-v1.md §10.5).
const UntitledConversation = "Untitled conversation"

// Limits from compat-v1.md §10.5.
const (
	titleMaxWords      = 6
	titleMaxRunes      = 60
	titleInputMessages = 10
	followUpMessages   = 20
	followUpCount      = 3
)

// TitleMessage is the part of a conversation message a title or follow-up is made from.
type Message struct{ Role, Content string }

// TitleProvider writes a conversation's title and suggests follow-up questions.
type Provider interface {
	Title(ctx context.Context, msgs []Message) (string, error)
	FollowUps(ctx context.Context, msgs []Message) ([]string, error)
}

// CleanTitle applies v1's post-processing to a generated title: trimmed, surrounding quotes
// stripped, at most 6 words and 60 characters. Models often ignore "title only", so a leading
// "Title:" label is dropped as well.
func Clean(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 6 && strings.EqualFold(s[:6], "title:") {
		s = strings.TrimSpace(s[6:])
	}
	s = titleStripQuotes(s)
	words := strings.Fields(s)
	if len(words) > titleMaxWords {
		words = words[:titleMaxWords]
	}
	s = strings.Join(words, " ")
	if utf8.RuneCountInString(s) > titleMaxRunes {
		s = string([]rune(s)[:titleMaxRunes])
	}
	return strings.TrimSpace(s)
}

const titleQuoteRunes = "\"'`“”‘’«»"

// titleStripQuotes removes matching-looking quote runs at both ends; an apostrophe inside a word
// ("Bob's plan") is left alone because only the outermost characters are looked at.
func titleStripQuotes(s string) string {
	for {
		first, fn := utf8.DecodeRuneInString(s)
		last, ln := utf8.DecodeLastRuneInString(s)
		// fn+ln > len(s) when s is one rune: a lone "»" is both its first and last character.
		if fn+ln > len(s) || !strings.ContainsRune(titleQuoteRunes, first) || !strings.ContainsRune(titleQuoteRunes, last) {
			return s
		}
		s = strings.TrimSpace(s[fn : len(s)-ln])
	}
}

func titleHead[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func titleTail[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func titleHasContent(msgs []Message) bool {
	for _, m := range msgs {
		if strings.TrimSpace(m.Content) != "" {
			return true
		}
	}
	return false
}

// OpenAIProvider asks any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM,
// LiteLLM, Workers AI's compatibility route ...) so deployments are not tied to one vendor.
type OpenAI struct {
	BaseURL string // e.g. https://api.openai.com/v1
	APIKey  string // may be empty for local servers
	Model   string
	Client  *http.Client
}

const (
	titlePrompt = "You write short titles for conversations. Reply with a title of at most 6 words " +
		"that captures the topic of the conversation below. Reply with the title only: no quotes, " +
		"no punctuation at the end, no explanation."
	followUpPrompt = "Suggest exactly 3 short follow-up questions the user might ask next, based on the " +
		"conversation below. Reply with the 3 questions only, one per line, with no numbering and no other text."
	// Bounds the prompt for conversations carrying pasted documents; a title needs the gist only.
	promptMessageRunes = 2000
	aiReplyLimit       = 1 << 20
)

type aiChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type aiChatRequest struct {
	Model       string          `json:"model"`
	Messages    []aiChatMessage `json:"messages"`
	MaxTokens   int             `json:"max_tokens,omitempty"`
	Temperature float64         `json:"temperature"`
}

type aiChatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// titleTranscript renders the conversation as one user message: stored roles ("tool", custom
// roles) are not all accepted by chat APIs, and the model should read the conversation,
// not continue it.
func titleTranscript(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		c := strings.TrimSpace(m.Content)
		if c == "" {
			continue
		}
		if utf8.RuneCountInString(c) > promptMessageRunes {
			c = string([]rune(c)[:promptMessageRunes]) + " …"
		}
		role := strings.TrimSpace(m.Role)
		if role == "" {
			role = "message"
		}
		fmt.Fprintf(&b, "%s: %s\n\n", role, c)
	}
	return strings.TrimSpace(b.String())
}

func (p OpenAI) complete(ctx context.Context, system string, msgs []Message, maxTokens int) (string, error) {
	reqBody, err := json.Marshal(aiChatRequest{
		Model: p.Model,
		Messages: []aiChatMessage{
			{Role: "system", Content: system},
			{Role: "user", Content: titleTranscript(msgs)},
		},
		MaxTokens:   maxTokens,
		Temperature: 0.2,
	})
	if err != nil {
		return "", err
	}
	endpoint := strings.TrimRight(p.BaseURL, "/") + "/chat/completions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(reqBody))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if p.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.APIKey)
	}
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, aiReplyLimit))
	if err != nil {
		return "", err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet := strings.TrimSpace(string(raw))
		if len(snippet) > 200 {
			snippet = snippet[:200]
		}
		return "", fmt.Errorf("chat completions: status %d: %s", resp.StatusCode, snippet)
	}
	var out aiChatResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("chat completions: decode reply: %w", err)
	}
	if len(out.Choices) == 0 {
		return "", fmt.Errorf("chat completions: reply has no choices")
	}
	return out.Choices[0].Message.Content, nil
}

// Title asks the model for a title from the first ≤ 10 messages.
func (p OpenAI) Title(ctx context.Context, msgs []Message) (string, error) {
	const op = "titles.OpenAI.Title"
	msgs = titleHead(msgs, titleInputMessages)
	if !titleHasContent(msgs) {
		return UntitledConversation, nil
	}
	reply, err := p.complete(ctx, titlePrompt, msgs, 32)
	if err != nil {
		return "", core.Internal(op, err)
	}
	// Some models answer on several lines ("Title\n\nExplanation ..."); the first line is the title.
	line, _, _ := strings.Cut(strings.TrimSpace(reply), "\n")
	t := Clean(line)
	if t == "" {
		return "", core.Internal(op, fmt.Errorf("model returned an empty title"))
	}
	return t, nil
}

// FollowUps asks the model for 3 follow-up questions from the last ≤ 20 messages.
func (p OpenAI) FollowUps(ctx context.Context, msgs []Message) ([]string, error) {
	const op = "titles.OpenAI.FollowUps"
	msgs = titleTail(msgs, followUpMessages)
	if !titleHasContent(msgs) {
		return []string{}, nil
	}
	reply, err := p.complete(ctx, followUpPrompt, msgs, 200)
	if err != nil {
		return nil, core.Internal(op, err)
	}
	return parseTitleFollowUps(reply), nil
}

// parseTitleFollowUps keeps up to 3 questions from a model reply, tolerating the numbering,
// bullets and preambles models add despite being told not to.
func parseTitleFollowUps(reply string) []string {
	out := []string{}
	for _, line := range strings.Split(reply, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimLeft(line, "-*•·–—> \t")
		// Numbering such as "1.", "2)", "(3)", "Q1:".
		trimmed := strings.TrimLeft(line, "(Qq")
		digits := strings.TrimLeft(trimmed, "0123456789")
		if len(digits) < len(trimmed) {
			if rest := strings.TrimLeft(digits, ".):-"); len(rest) < len(digits) {
				line = rest
			}
		}
		line = titleStripQuotes(strings.TrimSpace(line))
		if line == "" || strings.HasSuffix(line, ":") {
			continue // empty, or a preamble like "Here are three questions:"
		}
		out = append(out, line)
		if len(out) == followUpCount {
			break
		}
	}
	return out
}

// LocalProvider titles conversations without a model: deterministic, offline, and still
// specific to each conversation, unlike v1's constant "Untitled conversation".
type Local struct{}

var titleStopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		a an the and or but if then else so of to in on at by for with from into onto about as
		is are was were be been being am do does did doing done have has had having
		i me my mine we us our you your yours he him his she her it its they them their this that
		these those there here what which who whom whose when where why how
		can could would should will shall may might must not no yes
		please help hi hello hey thanks thank ok okay just also very really some any all
		want need like know tell give show get got make let lets let's im i'm i've i'd you're it's
		don't doesn't can't cannot isn't aren't won't
		up out over under again more most other such only own same than too`) {
		m[w] = true
	}
	return m
}()

// titleWords splits text into word tokens, keeping inner apostrophes and hyphens ("don't",
// "real-time") so they survive as one word.
func titleWords(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' && r != '’' && r != '-'
	})
	out := f[:0]
	for _, w := range f {
		w = strings.Trim(w, "'’-")
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func titleSalient(w string) bool {
	lw := strings.ToLower(strings.ReplaceAll(w, "’", "'"))
	if titleStopwords[lw] {
		return false
	}
	// Single letters are almost always noise ("a", "x" in "x and y"), single digits are not.
	if utf8.RuneCountInString(w) == 1 {
		r, _ := utf8.DecodeRuneInString(w)
		return unicode.IsDigit(r)
	}
	return true
}

func titleIsNumber(w string) bool {
	return strings.TrimFunc(w, func(r rune) bool { return unicode.IsDigit(r) || r == '-' }) == ""
}

func titleUpperFirst(w string) string {
	r, n := utf8.DecodeRuneInString(w)
	return string(unicode.ToTitle(r)) + w[n:]
}

// Title builds a title from the opening user message, which is where the topic is stated.
func (Local) Title(_ context.Context, msgs []Message) (string, error) {
	msgs = titleHead(msgs, titleInputMessages)
	src := ""
	for _, m := range msgs {
		if strings.EqualFold(strings.TrimSpace(m.Role), "user") && strings.TrimSpace(m.Content) != "" {
			src = m.Content
			break
		}
	}
	if src == "" {
		for _, m := range msgs {
			if strings.TrimSpace(m.Content) != "" {
				src = m.Content
				break
			}
		}
	}
	all := titleWords(src)
	var picked []string
	for _, w := range all {
		if titleSalient(w) {
			picked = append(picked, w)
			if len(picked) == titleMaxWords {
				break
			}
		}
	}
	// A message made only of stopwords ("what is it?") still says more than "Untitled".
	if len(picked) == 0 {
		picked = titleHead(all, titleMaxWords)
	}
	if len(picked) == 0 {
		return UntitledConversation, nil
	}
	picked[0] = titleUpperFirst(picked[0])
	if t := Clean(strings.Join(picked, " ")); t != "" {
		return t, nil
	}
	return UntitledConversation, nil
}

var followUpTemplates = [followUpCount]string{
	"Can you tell me more about %s?",
	"What are the next steps for %s?",
	"Are there any alternatives to %s?",
}

// FollowUps asks about the words the recent conversation keeps returning to.
func (Local) FollowUps(_ context.Context, msgs []Message) ([]string, error) {
	type topic struct {
		display string // the first spelling seen, so "Redis" keeps its capital
		count   int
		first   int
	}
	topics := map[string]*topic{}
	pos := 0
	for _, m := range titleTail(msgs, followUpMessages) {
		for _, w := range titleWords(m.Content) {
			pos++
			// Numbers and very short words make odd questions ("more about 42?").
			if !titleSalient(w) || titleIsNumber(w) || utf8.RuneCountInString(w) < 3 {
				continue
			}
			k := strings.ToLower(w)
			if t, ok := topics[k]; ok {
				t.count++
			} else {
				topics[k] = &topic{display: w, count: 1, first: pos}
			}
		}
	}
	ranked := make([]*topic, 0, len(topics))
	for _, t := range topics {
		ranked = append(ranked, t)
	}
	// Ties go to the earlier word so the answer does not depend on map order.
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].count != ranked[j].count {
			return ranked[i].count > ranked[j].count
		}
		return ranked[i].first < ranked[j].first
	})
	out := []string{}
	for i, t := range titleHead(ranked, followUpCount) {
		out = append(out, fmt.Sprintf(followUpTemplates[i], t.display))
	}
	return out, nil
}

// fallbackProvider keeps titles and follow-ups working when the model endpoint is down,
// rate limited or misconfigured: a local answer beats an error or v1's constant.
type fallbackProvider struct {
	primary, fallback Provider
}

func (f fallbackProvider) Title(ctx context.Context, msgs []Message) (string, error) {
	if t, err := f.primary.Title(ctx, msgs); err == nil {
		return t, nil
	}
	return f.fallback.Title(ctx, msgs)
}

func (f fallbackProvider) FollowUps(ctx context.Context, msgs []Message) ([]string, error) {
	if q, err := f.primary.FollowUps(ctx, msgs); err == nil {
		return q, nil
	}
	return f.fallback.FollowUps(ctx, msgs)
}

// TitleProviderFromEnv picks the model-backed provider when AGENTSTATE_AI_BASE_URL and
// AGENTSTATE_AI_MODEL are set, else the local one. getenv is injectable for tests; nil means os.Getenv.
func FromEnv(getenv func(string) string) Provider {
	if getenv == nil {
		getenv = os.Getenv
	}
	base := strings.TrimSpace(getenv("AGENTSTATE_AI_BASE_URL"))
	model := strings.TrimSpace(getenv("AGENTSTATE_AI_MODEL"))
	if base == "" || model == "" {
		return Local{}
	}
	return fallbackProvider{
		primary: OpenAI{
			BaseURL: base,
			APIKey:  strings.TrimSpace(getenv("AGENTSTATE_AI_API_KEY")),
			Model:   model,
			Client:  &http.Client{Timeout: 20 * time.Second},
		},
		fallback: Local{},
	}
}
