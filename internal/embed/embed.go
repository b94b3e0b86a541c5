// Package embed turns text into the 768-dimensional, L2-normalised vectors
// that NL->SQL retrieval compares (dbchat.training_data.embedding). Two
// embedders exist: Local (the default: no network, deterministic, lexical)
// and Gemini (gemini-embedding-001). Every stored row carries its embedder's
// Name, and retrieval compares only rows of the same name, so switching
// embedders needs `dbchat reembed`, never a mixed comparison.
package embed

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// Dim is the dimension every embedder produces: the width of
// dbchat.training_data.embedding.
const Dim = 768

// Embedder embeds texts. Implementations are safe for concurrent use.
type Embedder interface {
	// Name identifies the embedder and its version; it is stored with every
	// vector, so a change of algorithm or model must change the name.
	Name() string
	// Dim is the length of every vector (always Dim here).
	Dim() int
	// Embed returns one unit-length vector per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// FromEnv picks the embedder named by DBCHAT_EMBEDDER: "local" (the default)
// or "gemini", which needs GEMINI_API_KEY and takes DBCHAT_EMBED_MODEL
// (default gemini-embedding-001).
func FromEnv(ctx context.Context, getenv func(string) string) (Embedder, error) {
	switch kind := strings.ToLower(strings.TrimSpace(getenv("DBCHAT_EMBEDDER"))); kind {
	case "", "local":
		return NewLocal(), nil
	case "gemini":
		key := strings.TrimSpace(getenv("GEMINI_API_KEY"))
		if key == "" {
			return nil, fmt.Errorf("DBCHAT_EMBEDDER=gemini needs GEMINI_API_KEY")
		}
		return NewGemini(ctx, GeminiConfig{APIKey: key, Model: strings.TrimSpace(getenv("DBCHAT_EMBED_MODEL"))})
	default:
		return nil, fmt.Errorf("DBCHAT_EMBEDDER=%q: want local or gemini", kind)
	}
}

// Normalize scales v to unit length in place and reports whether it could
// (a zero vector cannot).
func Normalize(v []float32) bool {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return false
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return true
}
