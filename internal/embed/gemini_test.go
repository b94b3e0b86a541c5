package embed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/embed"
)

// fakeGemini is an httptest stand-in for the Gemini API's
// batchEmbedContents: it records each request and answers 3072-dimensional
// embeddings whose first value encodes the text's position in the batch.
type fakeGemini struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests []fakeRequest
	// failFirst answers the first n requests with this status.
	failFirst  atomic.Int32
	failStatus int
}

type fakeRequest struct {
	Path   string
	Key    string
	Texts  []string
	Models []string
}

func newFakeGemini(t *testing.T) *fakeGemini {
	f := &fakeGemini{failStatus: http.StatusTooManyRequests}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGemini) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Requests []struct {
			Model   string `json:"model"`
			Content struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
		} `json:"requests"`
	}
	_ = json.Unmarshal(body, &req)
	rec := fakeRequest{Path: r.URL.Path, Key: r.Header.Get("X-Goog-Api-Key")}
	if rec.Key == "" {
		rec.Key = r.URL.Query().Get("key")
	}
	for _, q := range req.Requests {
		rec.Models = append(rec.Models, q.Model)
		var parts []string
		for _, p := range q.Content.Parts {
			parts = append(parts, p.Text)
		}
		rec.Texts = append(rec.Texts, strings.Join(parts, ""))
	}
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	f.mu.Unlock()

	if f.failFirst.Add(-1) >= 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.failStatus)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`, f.failStatus)
		return
	}
	type embedding struct {
		Values []float32 `json:"values"`
	}
	var resp struct {
		Embeddings []embedding `json:"embeddings"`
	}
	for i, text := range rec.Texts {
		v := make([]float32, 3072)
		// Dimension 0 carries the text's length, dimension 1 its position;
		// everything past 768 is large, so keeping it would show.
		v[0] = float32(len(text))
		v[1] = float32(i + 1)
		for j := 768; j < len(v); j++ {
			v[j] = 1000
		}
		resp.Embeddings = append(resp.Embeddings, embedding{Values: v})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeGemini) recorded() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

const testKey = "AIza-test-key-never-logged"

func newTestGemini(t *testing.T, f *fakeGemini, batch int) *embed.Gemini {
	t.Helper()
	g, err := embed.NewGemini(context.Background(), embed.GeminiConfig{
		APIKey: testKey, Endpoint: f.srv.URL, BatchSize: batch, Backoff: time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func TestGeminiBatchesTruncatesAndNormalises(t *testing.T) {
	t.Parallel()
	f := newFakeGemini(t)
	g := newTestGemini(t, f, 2)
	require.Equal(t, "gemini/gemini-embedding-001", g.Name())
	require.Equal(t, embed.Dim, g.Dim())

	texts := []string{"how many customers", "abc", "", "orders by month", "x"}
	vecs, err := g.Embed(context.Background(), texts)
	require.NoError(t, err)
	require.Len(t, vecs, len(texts))

	reqs := f.recorded()
	require.Len(t, reqs, 3, "5 texts in batches of 2")
	var sent []string
	for _, r := range reqs {
		require.Equal(t, "/v1beta/models/gemini-embedding-001:batchEmbedContents", r.Path)
		require.Equal(t, testKey, r.Key, "the key reaches the API")
		for _, m := range r.Models {
			require.Equal(t, "models/gemini-embedding-001", m)
		}
		sent = append(sent, r.Texts...)
	}
	require.Equal(t, []string{"how many customers", "abc", "(empty)", "orders by month", "x"}, sent)

	for i, v := range vecs {
		require.Len(t, v, embed.Dim)
		var norm float64
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		require.InDelta(t, 1, norm, 1e-5, "unit length")
		// The first two dimensions survive, in proportion: the large tail
		// past 768 was cut before normalising.
		pos := float64(i%2 + 1)
		length := float64(len(sent[i]))
		require.InDelta(t, length/math.Hypot(length, pos), float64(v[0]), 1e-5)
	}
}

func TestGeminiRetriesRateLimits(t *testing.T) {
	t.Parallel()
	f := newFakeGemini(t)
	f.failFirst.Store(2)
	g := newTestGemini(t, f, 100)
	vecs, err := g.Embed(context.Background(), []string{"a question"})
	require.NoError(t, err)
	require.Len(t, vecs, 1)
	require.Len(t, f.recorded(), 3, "two 429s, then success")
}

func TestGeminiErrorsNeverCarryTheKey(t *testing.T) {
	t.Parallel()
	f := newFakeGemini(t)
	f.failStatus = http.StatusBadRequest
	f.failFirst.Store(100)
	g := newTestGemini(t, f, 100)
	_, err := g.Embed(context.Background(), []string{"q"})
	require.Error(t, err)
	require.Len(t, f.recorded(), 1, "a 400 is not retried")
	require.NotContains(t, err.Error(), testKey)

	// A transport failure quotes the URL; the key must not be in it either.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g2, err := embed.NewGemini(context.Background(), embed.GeminiConfig{APIKey: testKey, Endpoint: dead.URL, Retries: -1})
	require.NoError(t, err)
	_, err = g2.Embed(context.Background(), []string{"q"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), testKey)
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	e, err := embed.FromEnv(context.Background(), env(nil))
	require.NoError(t, err)
	require.Equal(t, "local/hash-v1", e.Name())

	_, err = embed.FromEnv(context.Background(), env(map[string]string{"DBCHAT_EMBEDDER": "gemini"}))
	require.ErrorContains(t, err, "GEMINI_API_KEY")

	e, err = embed.FromEnv(context.Background(), env(map[string]string{"DBCHAT_EMBEDDER": "gemini", "GEMINI_API_KEY": "k", "DBCHAT_EMBED_MODEL": "text-embedding-004"}))
	require.NoError(t, err)
	require.Equal(t, "gemini/text-embedding-004", e.Name())

	_, err = embed.FromEnv(context.Background(), env(map[string]string{"DBCHAT_EMBEDDER": "openai"}))
	require.ErrorContains(t, err, "want local or gemini")
}
