package generate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/generate"
)

// fakeLLM records every request body and answers with the next reply; a
// reply of "429" or "500" is sent as that HTTP status instead.
type fakeLLM struct {
	mu      sync.Mutex
	bodies  []string
	replies []string
	paths   []string
	auth    []string
}

func (f *fakeLLM) next(r *http.Request) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	f.bodies = append(f.bodies, string(b))
	f.paths = append(f.paths, r.URL.Path)
	f.auth = append(f.auth, r.Header.Get("Authorization")+r.Header.Get("X-Goog-Api-Key")+r.URL.Query().Get("key"))
	reply := f.replies[0]
	if len(f.replies) > 1 {
		f.replies = f.replies[1:]
	}
	return string(b), reply
}

func (f *fakeLLM) openAIServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, reply := f.next(r)
		if reply == "429" || reply == "500" {
			http.Error(w, `{"error":{"message":"busy"}}`, map[string]int{"429": 429, "500": 500}[reply])
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "x", "object": "chat.completion", "created": 1, "model": "m",
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": reply}}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fakeLLM) geminiServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, reply := f.next(r)
		if reply == "429" || reply == "500" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(map[string]int{"429": 429, "500": 500}[reply])
			_, _ = io.WriteString(w, `{"error":{"code":`+reply+`,"message":"busy","status":"UNAVAILABLE"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"candidates": []map[string]any{{"content": map[string]any{"role": "model", "parts": []map[string]any{{"text": reply}}}}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var sampleInput = generate.Input{
	Question: "How many customers are in GB?",
	DDL:      []string{"CREATE TABLE customers (id bigint, country text);"},
	Docs:     []string{"country is an ISO code"},
	Examples: []generate.Example{{Question: "How many customers?", SQL: "SELECT count(*) FROM customers", Distance: 0.3}},
}

func TestOpenAICompatibleGenerator(t *testing.T) {
	t.Parallel()
	f := &fakeLLM{replies: []string{"429", "Here you go:\n```sql\nSELECT count(*) FROM customers WHERE country = 'GB';\n```"}}
	g := generate.NewOpenAI(f.openAIServer(t)+"/v1", "sk-test-secret", "llama3")
	out, err := g.Generate(context.Background(), sampleInput)
	require.NoError(t, err)
	require.Equal(t, "SELECT count(*) FROM customers WHERE country = 'GB'", out.SQL)
	require.Len(t, f.bodies, 2, "retried once after 429")
	require.Equal(t, "/v1/chat/completions", f.paths[1])
	require.Equal(t, "Bearer sk-test-secret", f.auth[1])
	for _, want := range []string{"How many customers are in GB?", "CREATE TABLE customers", "ISO code", "SELECT count(*) FROM customers", `"model":"llama3"`} {
		require.Contains(t, f.bodies[1], want)
	}
	require.Equal(t, "openai:llama3", g.Name())

	f.replies = []string{"NO_SQL"}
	_, err = g.Generate(context.Background(), sampleInput)
	require.Equal(t, apperr.NoSQL, apperr.CodeOf(err))
}

func TestGeminiGenerator(t *testing.T) {
	t.Parallel()
	f := &fakeLLM{replies: []string{"500", "```sql\nSELECT count(*) FROM customers WHERE country = 'GB'\n```"}}
	ctx := context.Background()
	g, err := generate.NewGemini(ctx, "gemini-test-key", "", f.geminiServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close() })
	out, err := g.Generate(ctx, sampleInput)
	require.NoError(t, err)
	require.Equal(t, "SELECT count(*) FROM customers WHERE country = 'GB'", out.SQL)
	require.Len(t, f.bodies, 2, "retried once after 500")
	require.True(t, strings.HasSuffix(f.paths[1], "/models/"+generate.DefaultGeminiModel+":generateContent"), f.paths[1])
	require.Contains(t, f.auth[1], "gemini-test-key")
	require.Contains(t, f.bodies[1], "How many customers are in GB?")

	q, err := func() (string, error) {
		f.replies = []string{"How many customers are there?"}
		return g.Question(ctx, "SELECT count(*) FROM customers", generate.Input{})
	}()
	require.NoError(t, err)
	require.Equal(t, "How many customers are there?", q)
}

func TestPromptStaysWithinBudget(t *testing.T) {
	t.Parallel()
	in := generate.Input{Question: "q?"}
	for range 10000 {
		in.DDL = append(in.DDL, "CREATE TABLE t (a int);")
	}
	p := generate.Prompt(in)
	require.LessOrEqual(t, len(p), generate.MaxPromptBytes)
	require.True(t, strings.HasSuffix(p, "Question: q?\n"))
}
