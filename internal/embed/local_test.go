package embed_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/embed"
)

func cosine(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot
}

func TestLocalDeterministicUnitVectors(t *testing.T) {
	t.Parallel()
	l := embed.NewLocal()
	require.Equal(t, "local/hash-v1", l.Name())
	require.Equal(t, embed.Dim, l.Dim())
	texts := []string{"How many customers do we have?", "", "   ", "SELECT count(*) FROM customers", "ünïcødé straße", "customer_id"}
	a, err := l.Embed(context.Background(), texts)
	require.NoError(t, err)
	b, err := l.Embed(context.Background(), texts)
	require.NoError(t, err)
	require.Equal(t, a, b, "deterministic")
	for i, v := range a {
		require.Len(t, v, embed.Dim)
		require.InDelta(t, 1, cosine(v, v), 1e-5, "text %q has unit length", texts[i])
		for _, x := range v {
			require.False(t, math.IsNaN(float64(x)))
		}
	}
	// Golden values pin the algorithm: vectors are stored, so changing the
	// features must also change Name (and then `dbchat reembed`).
	require.InDelta(t, 0.4558, a[0][69], 1e-4, "features changed: bump Local.Name")
	require.InDelta(t, -0.2279, a[0][72], 1e-4, "features changed: bump Local.Name")
	require.Equal(t, l.Vector("How many customers do we have?"), a[0])
}

func TestLocalIsLexicallySensible(t *testing.T) {
	t.Parallel()
	l := embed.NewLocal()
	q := l.Vector("How many customers do we have?")
	near := l.Vector("how many customers are there")
	plural := l.Vector("count of customer")
	other := l.Vector("total revenue by month for 2024")
	stop := l.Vector("how many orders do we have?")

	require.Greater(t, cosine(q, near), 0.6, "near-duplicate question")
	require.Greater(t, cosine(q, near), cosine(q, other))
	require.Greater(t, cosine(q, plural), cosine(q, other), "character n-grams relate customer and customers")
	require.Greater(t, cosine(q, near), cosine(q, stop), "the subject outweighs the stop words")
	require.Less(t, cosine(q, other), 0.2)

	// Identifiers match their parts.
	require.Greater(t, cosine(l.Vector("customer_id"), l.Vector("customer id")), 0.5)
}

func TestLocalEmbedHonoursCancellation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := embed.NewLocal().Embed(ctx, []string{"a"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	v := []float32{3, 4}
	require.True(t, embed.Normalize(v))
	require.InDeltaSlice(t, []float32{0.6, 0.8}, v, 1e-6)
	require.False(t, embed.Normalize([]float32{0, 0}))
}
