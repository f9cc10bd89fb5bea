package titles

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"
)

func TestCleanTitle(t *testing.T) {
	long := strings.Repeat("x", 80)
	cases := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"Deploying Redis", "Deploying Redis"},
		{"  Deploying   Redis \n", "Deploying Redis"},
		{`"Deploying Redis"`, "Deploying Redis"},
		{`'Deploying Redis'`, "Deploying Redis"},
		{"“Deploying Redis”", "Deploying Redis"},
		{`" 'Nested quotes' "`, "Nested quotes"},
		{"Title: Deploying Redis", "Deploying Redis"},
		{`Title: "Deploying Redis"`, "Deploying Redis"},
		{"Bob's Redis plan", "Bob's Redis plan"},
		{"one two three four five six seven eight", "one two three four five six"},
		{long, strings.Repeat("x", 60)},
		{"Supercalifragilistic expialidocious antidisestablishmentarianism pneumonoultramicroscopic", "Supercalifragilistic expialidocious antidisestablishmentaria"},
		{`"`, `"`},
		{"»", "»"}, // one multi-byte quote rune is both ends: it stays (it panicked once)
		{"«»", ""},
		{"»x«", "x"},
	}
	for _, c := range cases {
		got := Clean(c.in)
		if got != c.want {
			t.Errorf("CleanTitle(%q) = %q, want %q", c.in, got, c.want)
		}
		if n := utf8.RuneCountInString(got); n > 60 {
			t.Errorf("CleanTitle(%q) has %d runes", c.in, n)
		}
	}
	// The cap counts characters, not bytes.
	if got := Clean(strings.Repeat("é", 70)); utf8.RuneCountInString(got) != 60 || !utf8.ValidString(got) {
		t.Errorf("CleanTitle(é×70) = %q", got)
	}
}

func TestLocalProviderTitle(t *testing.T) {
	ctx := context.Background()
	p := Local{}
	a, err := p.Title(ctx, []Message{
		{"system", "You are a helpful assistant."},
		{"user", "How do I deploy Redis on Kubernetes with persistent volumes?"},
		{"assistant", "Use a StatefulSet."},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a != "Deploy Redis Kubernetes persistent volumes" {
		t.Errorf("title = %q", a)
	}
	b, _ := p.Title(ctx, []Message{{"user", "please help me write a cover letter for a data engineering job"}})
	if b != "Write cover letter data engineering job" {
		t.Errorf("title = %q", b)
	}
	if a == b {
		t.Errorf("different conversations got the same title %q", a)
	}
	again, _ := p.Title(ctx, []Message{{"user", "please help me write a cover letter for a data engineering job"}})
	if again != b {
		t.Errorf("not deterministic: %q vs %q", again, b)
	}

	for name, msgs := range map[string][]Message{
		"nil":         nil,
		"empty":       {},
		"blank":       {{"user", "   "}},
		"punctuation": {{"user", "?!..."}},
	} {
		if got, err := p.Title(ctx, msgs); err != nil || got != "Untitled conversation" {
			t.Errorf("%s: Title = %q, %v", name, got, err)
		}
	}

	// No user message: the first message with content is used.
	if got, _ := p.Title(ctx, []Message{{"assistant", "Quarterly revenue report summary"}}); got != "Quarterly revenue report summary" {
		t.Errorf("assistant-only title = %q", got)
	}
	// Only stopwords: still better than "Untitled".
	if got, _ := p.Title(ctx, []Message{{"user", "what is this?"}}); got != "What is this" {
		t.Errorf("stopword-only title = %q", got)
	}
	// At most 6 words and 60 characters.
	got, _ := p.Title(ctx, []Message{{"user", "alpha bravo charlie delta echo foxtrot golf hotel"}})
	if got != "Alpha bravo charlie delta echo foxtrot" {
		t.Errorf("long title = %q", got)
	}
}

func TestLocalProviderFollowUps(t *testing.T) {
	ctx := context.Background()
	p := Local{}
	msgs := []Message{
		{"user", "How do I deploy Redis on Kubernetes?"},
		{"assistant", "Deploy Redis with a StatefulSet; Kubernetes gives each Redis pod a volume."},
		{"user", "Does Redis need persistence on Kubernetes?"},
	}
	got, err := p.FollowUps(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Can you tell me more about Redis?",
		"What are the next steps for Kubernetes?",
		"Are there any alternatives to deploy?",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FollowUps = %q, want %q", got, want)
	}

	none, err := p.FollowUps(ctx, []Message{{"user", "is it ok?"}})
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("FollowUps(stopwords) = %#v, %v; want empty non-nil", none, err)
	}
	if none, _ := p.FollowUps(ctx, nil); none == nil || len(none) != 0 {
		t.Errorf("FollowUps(nil) = %#v", none)
	}

	// Only the last 20 messages count.
	var many []Message
	many = append(many, Message{"user", "zebra zebra zebra zebra zebra"})
	for range 20 {
		many = append(many, Message{"user", "giraffe"})
	}
	got, _ = p.FollowUps(ctx, many)
	if len(got) != 1 || !strings.Contains(got[0], "giraffe") {
		t.Errorf("FollowUps(window) = %q", got)
	}
}

func TestParseTitleFollowUps(t *testing.T) {
	reply := "Here are three follow-up questions:\n\n1. How do I scale Redis?\n2) What about backups?\n- Is Sentinel needed?\n4. Too many?"
	want := []string{"How do I scale Redis?", "What about backups?", "Is Sentinel needed?"}
	if got := parseTitleFollowUps(reply); !reflect.DeepEqual(got, want) {
		t.Errorf("parse = %q, want %q", got, want)
	}
	if got := parseTitleFollowUps("Quick question one?\n\"Quoted two?\""); !reflect.DeepEqual(got, []string{"Quick question one?", "Quoted two?"}) {
		t.Errorf("parse = %q", got)
	}
}

type fakeChat struct {
	t       *testing.T
	replies []string // content of successive replies
	status  int
	calls   atomic.Int32
	last    atomic.Pointer[aiChatRequest]
}

func (f *fakeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.calls.Add(1))
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.t.Errorf("request %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
		f.t.Errorf("Authorization = %q", got)
	}
	var req aiChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("decode request: %v", err)
	}
	f.last.Store(&req)
	if f.status != 0 {
		http.Error(w, `{"error":{"message":"boom"}}`, f.status)
		return
	}
	content := f.replies[(n-1)%len(f.replies)]
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"test-model","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":%q}}]}`, content)
}

func numbered(n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		msgs[i] = Message{role, fmt.Sprintf("message-%02d", i+1)}
	}
	return msgs
}

func TestOpenAIProviderTitle(t *testing.T) {
	fake := &fakeChat{t: t, replies: []string{"\"Scaling Redis Clusters on Kubernetes Today Quickly\"\n\nThis title captures..."}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	p := OpenAI{BaseURL: srv.URL + "/v1/", APIKey: "sk-test", Model: "test-model", Client: srv.Client()}
	got, err := p.Title(context.Background(), numbered(25))
	if err != nil {
		t.Fatal(err)
	}
	if got != "Scaling Redis Clusters on Kubernetes Today" {
		t.Errorf("title = %q", got)
	}
	req := fake.last.Load()
	if req.Model != "test-model" {
		t.Errorf("model = %q", req.Model)
	}
	if len(req.Messages) != 2 || req.Messages[0].Role != "system" || !strings.Contains(req.Messages[0].Content, "6 words") {
		t.Fatalf("messages = %+v", req.Messages)
	}
	conv := req.Messages[1].Content
	if !strings.Contains(conv, "user: message-01") || !strings.Contains(conv, "message-10") || strings.Contains(conv, "message-11") {
		t.Errorf("title prompt should carry exactly the first 10 messages, got %q", conv)
	}

	// An empty conversation is not worth a model call.
	before := fake.calls.Load()
	if got, err := p.Title(context.Background(), nil); err != nil || got != "Untitled conversation" || fake.calls.Load() != before {
		t.Errorf("empty: %q, %v, calls %d→%d", got, err, before, fake.calls.Load())
	}
}

func TestOpenAIProviderFollowUps(t *testing.T) {
	fake := &fakeChat{t: t, replies: []string{"1. How do I scale it?\n2. What about backups?\n\n3. Is Sentinel needed?\n4. Extra?"}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	p := OpenAI{BaseURL: srv.URL + "/v1", APIKey: "sk-test", Model: "test-model"}
	got, err := p.FollowUps(context.Background(), numbered(25))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"How do I scale it?", "What about backups?", "Is Sentinel needed?"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("follow-ups = %q, want %q", got, want)
	}
	conv := fake.last.Load().Messages[1].Content
	if strings.Contains(conv, "message-05") || !strings.Contains(conv, "message-06") || !strings.Contains(conv, "message-25") {
		t.Errorf("follow-up prompt should carry exactly the last 20 messages, got %q", conv)
	}
	if !strings.Contains(fake.last.Load().Messages[0].Content, "3") {
		t.Errorf("system prompt = %q", fake.last.Load().Messages[0].Content)
	}
}

func TestOpenAIProviderErrorIsInternal(t *testing.T) {
	fake := &fakeChat{t: t, status: http.StatusInternalServerError}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	p := OpenAI{BaseURL: srv.URL + "/v1", APIKey: "sk-test", Model: "m"}
	if _, err := p.Title(context.Background(), numbered(2)); !core.IsCode(err, core.CodeInternal) || !strings.Contains(err.Error(), "500") {
		t.Errorf("Title err = %v, want INTERNAL_ERROR naming 500", err)
	}
	if _, err := p.FollowUps(context.Background(), numbered(2)); !core.IsCode(err, core.CodeInternal) {
		t.Errorf("FollowUps err = %v, want INTERNAL_ERROR", err)
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestTitleProviderFromEnvFallsBackToLocal(t *testing.T) {
	fake := &fakeChat{t: t, status: http.StatusInternalServerError}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	p := FromEnv(envMap(map[string]string{
		"AGENTSTATE_AI_BASE_URL": srv.URL + "/v1",
		"AGENTSTATE_AI_MODEL":    "test-model",
		"AGENTSTATE_AI_API_KEY":  "sk-test",
	}))
	msgs := []Message{{"user", "How do I deploy Redis on Kubernetes?"}, {"assistant", "Use Redis with a StatefulSet on Kubernetes."}}
	ctx := context.Background()

	title, err := p.Title(ctx, msgs)
	wantTitle, _ := Local{}.Title(ctx, msgs)
	if err != nil || title != wantTitle {
		t.Errorf("Title = %q, %v; want local %q", title, err, wantTitle)
	}
	qs, err := p.FollowUps(ctx, msgs)
	wantQs, _ := Local{}.FollowUps(ctx, msgs)
	if err != nil || !reflect.DeepEqual(qs, wantQs) || len(qs) == 0 {
		t.Errorf("FollowUps = %q, %v; want local %q", qs, err, wantQs)
	}
	if fake.calls.Load() != 2 {
		t.Errorf("model endpoint called %d times, want 2", fake.calls.Load())
	}
}

func TestTitleProviderFromEnvUsesModel(t *testing.T) {
	fake := &fakeChat{t: t, replies: []string{"Redis on Kubernetes"}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	p := FromEnv(envMap(map[string]string{
		"AGENTSTATE_AI_BASE_URL": srv.URL + "/v1",
		"AGENTSTATE_AI_MODEL":    "test-model",
		"AGENTSTATE_AI_API_KEY":  "sk-test",
	}))
	if got, err := p.Title(context.Background(), numbered(3)); err != nil || got != "Redis on Kubernetes" {
		t.Errorf("Title = %q, %v", got, err)
	}
}

func TestTitleProviderFromEnvLocalWhenUnset(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"AGENTSTATE_AI_BASE_URL": "http://x/v1"},
		{"AGENTSTATE_AI_MODEL": "m"},
	} {
		if p := FromEnv(envMap(env)); !reflect.DeepEqual(p, Provider(Local{})) {
			t.Errorf("env %v: provider = %T, want LocalProvider", env, p)
		}
	}
}
