package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// TestRateTokensAreLeasedForLargeLimits: with a large limit a server takes
// a lease of tokens (a hundredth of the burst, at most 1000) in one write
// to the tenant's bucket row and serves the next requests from it, writing
// and locking nothing, while every request still gets its RateLimit
// headers; a small limit is still taken one token per request (see
// TestRateLimitAcrossInstances for the exact count across instances).
func TestRateTokensAreLeasedForLargeLimits(t *testing.T) {
	t.Parallel()
	e := newLimitsEnv(t, 1, nil)
	a := dbtest.NewTenant(t, e.db, "Leaser")
	e.setLimits(t, a, `{"requests_per_second":1000000,"burst":1000000}`)
	admin := e.d.AdminPool(t)
	bucket := func() (taken int, at time.Time) {
		t.Helper()
		require.NoError(t, admin.QueryRow(context.Background(),
			`SELECT taken, at FROM dbchat.rate_buckets WHERE tenant_id = $1`, a.ID).Scan(&taken, &at))
		return taken, at
	}
	get := func() {
		t.Helper()
		r := e.call(t, 0, http.MethodGet, "/v1/tables", a.APIKey, "", "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.Equal(t, int64(1000000), header(t, r, "RateLimit-Limit"))
		require.Positive(t, header(t, r, "RateLimit-Remaining"))
	}
	// The key's lookup takes one token, its first confirmation one more
	// (the server learns the limit), the next a lease of 1000.
	for range 3 {
		get()
	}
	taken, at := bucket()
	require.Equal(t, 1000, taken)
	for range 50 {
		get()
	}
	taken2, at2 := bucket()
	require.Equal(t, 1000, taken2)
	require.Equal(t, at, at2, "requests served from the lease did not write the bucket")

}
