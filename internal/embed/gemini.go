package embed

// This is the only file that knows the Gemini SDK
// (github.com/google/generative-ai-go, the design card's choice, no longer
// maintained upstream). Moving to google.golang.org/genai means rewriting
// this file; GeminiConfig and the Embedder interface stay as they are.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/generative-ai-go/genai"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// DefaultGeminiModel is the embedding model used when none is configured.
const DefaultGeminiModel = "gemini-embedding-001"

// GeminiConfig configures the Gemini embedder.
type GeminiConfig struct {
	APIKey string // required; sent to the API only, never logged or put in errors
	Model  string // default DefaultGeminiModel
	// Endpoint overrides the API's base URL (a proxy, or a fake server in
	// tests); empty means Google's.
	Endpoint string
	// BatchSize is how many texts go in one batchEmbedContents request
	// (default and maximum 100, the API's limit).
	BatchSize int
	// Timeout bounds each request (default 30 s); Retries is how many times
	// a 429 or 5xx answer is retried with exponential backoff (default 3).
	Timeout time.Duration
	Retries int
	// Backoff is the first retry's delay (default 500 ms), doubled each time.
	Backoff time.Duration
}

// Gemini embeds with gemini-embedding-001 through the Gemini API. The model
// answers 3072 dimensions and this SDK has no output-dimension option, so
// Embed keeps the first Dim and re-normalises them (the model is trained so
// that its leading dimensions work on their own).
type Gemini struct {
	client *genai.Client
	model  *genai.EmbeddingModel
	cfg    GeminiConfig
}

// NewGemini creates the client. It makes no request.
func NewGemini(ctx context.Context, cfg GeminiConfig) (*Gemini, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("gemini embedder: no API key")
	}
	if cfg.Model == "" {
		cfg.Model = DefaultGeminiModel
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > 100 {
		cfg.BatchSize = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	} else if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	opts := []option.ClientOption{option.WithAPIKey(cfg.APIKey)}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	c, err := genai.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gemini embedder: %s", redact(err, cfg.APIKey))
	}
	return &Gemini{client: c, model: c.EmbeddingModel(cfg.Model), cfg: cfg}, nil
}

// Close releases the client.
func (g *Gemini) Close() error { return g.client.Close() }

// Name implements Embedder.
func (g *Gemini) Name() string { return "gemini/" + g.cfg.Model }

// Dim implements Embedder.
func (g *Gemini) Dim() int { return Dim }

// Embed implements Embedder, sending BatchSize texts per request.
func (g *Gemini) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += g.cfg.BatchSize {
		batch := texts[start:min(start+g.cfg.BatchSize, len(texts))]
		vecs, err := g.embedBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (g *Gemini) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	b := g.model.NewBatch()
	for _, t := range texts {
		if strings.TrimSpace(t) == "" {
			t = "(empty)" // the API refuses empty content
		}
		b.AddContent(genai.Text(t))
	}
	delay := g.cfg.Backoff
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
		res, err := g.model.BatchEmbedContents(cctx, b)
		cancel()
		if err == nil {
			return g.vectors(res, len(texts))
		}
		if attempt >= g.cfg.Retries || !retryable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("gemini embedder: %s", redact(err, g.cfg.APIKey))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (g *Gemini) vectors(res *genai.BatchEmbedContentsResponse, want int) ([][]float32, error) {
	if res == nil || len(res.Embeddings) != want {
		got := 0
		if res != nil {
			got = len(res.Embeddings)
		}
		return nil, fmt.Errorf("gemini embedder: asked for %d embeddings, got %d", want, got)
	}
	out := make([][]float32, want)
	for i, e := range res.Embeddings {
		if e == nil || len(e.Values) < Dim {
			return nil, fmt.Errorf("gemini embedder: embedding %d has fewer than %d dimensions", i, Dim)
		}
		v := append([]float32(nil), e.Values[:Dim]...)
		if !Normalize(v) {
			return nil, fmt.Errorf("gemini embedder: embedding %d is zero", i)
		}
		out[i] = v
	}
	return out, nil
}

// retryable reports a rate limit or a server-side failure.
func retryable(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == 429 || ge.Code >= 500
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// redact renders err without the API key, should a transport error quote a
// URL that carries it.
func redact(err error, key string) string {
	msg := err.Error()
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "[redacted]")
	}
	return msg
}
