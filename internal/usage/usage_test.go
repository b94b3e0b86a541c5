package usage_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/usage"
)

// The precision the reports promise: the upper bound of a duration's bucket
// is above it (never below) and at most 2^(1/4) times it, exact powers of
// two included; the open last bucket starts at 2^20 ms.
func TestBucketBounds(t *testing.T) {
	t.Parallel()
	require.Equal(t, 1, usage.Bucket(0))
	require.Equal(t, 1, usage.Bucket(0.999))
	require.Equal(t, 2, usage.Bucket(1))
	for k := 0; k < 80; k++ {
		ms := math.Pow(2, float64(k)/4)
		require.Equal(t, k+2, usage.Bucket(ms), "2^(%d/4) starts bucket %d", k, k+2)
	}
	for ms := 1.0; ms < 1<<20; ms *= 1.013 {
		up := usage.UpperBound(usage.Bucket(ms))
		require.Greater(t, up, ms)
		require.LessOrEqual(t, up, ms*math.Pow(2, 0.25)*(1+1e-12))
	}
	require.Equal(t, usage.Buckets, usage.Bucket(1<<20))
	require.Equal(t, usage.Buckets, usage.Bucket(1e12))
	require.True(t, math.IsInf(usage.UpperBound(usage.Buckets), 1))
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	r, err := usage.ParseRange("", "", "", now)
	require.NoError(t, err)
	require.Equal(t, "2026-02-03", r.From.Format(time.DateOnly), "30 days up to today")
	require.Equal(t, "2026-03-04", r.To.Format(time.DateOnly))
	require.Equal(t, "day", r.Granularity)
	_, err = usage.ParseRange("2025-03-03", "2026-03-04", "week", now)
	require.Error(t, err, "367 days, both ends included")
	_, err = usage.ParseRange("2025-03-04", "2026-03-04", "week", now)
	require.NoError(t, err, "366 days")
}

func TestParsePrices(t *testing.T) {
	t.Parallel()
	p, err := usage.ParsePrices(`{"m":{"in_per_1k":0.5,"out_per_1k":1}}`)
	require.NoError(t, err)
	require.InDelta(t, 0.5*2+1*3, *p.Cost("m", 2000, 3000), 1e-12)
	require.Nil(t, p.Cost("other", 1, 1), "an unknown model's cost is unknown")
	for _, bad := range []string{`{"m":{"in":1}}`, `[1]`, `{"m":{"in_per_1k":-1}}`} {
		_, err := usage.ParsePrices(bad)
		require.Error(t, err, bad)
	}
	p, err = usage.ParsePrices("")
	require.NoError(t, err)
	require.Empty(t, p)
}
