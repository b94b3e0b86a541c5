package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestRoundTripsPerRequest pins the design's database round trips per
// authenticated read: one. A key the server verified lately is not looked
// up again; its confirmation (and, with limits, the rate token) replaces
// the tenant setting in the pipeline of the handler's one statement.
func TestRoundTripsPerRequest(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	var writes atomic.Int64
	pool := d.CountingAppPool(t, &writes)
	db := tenant.New(pool)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	a := dbtest.NewTenant(t, db, "Round Trips")
	createCatalog(t, db, a, []catalogTable{{"orders", 3}, {"customers", 2}})

	// Calibrate the instrument on the tenant layer itself, so the HTTP
	// numbers below can be read as a sum of these.
	q := dbsqlc.New()
	ctx := context.Background()
	writesOf := func(run func() error) int64 {
		require.NoError(t, run()) // warm up: prepares the statements
		before := writes.Load()
		require.NoError(t, run())
		return writes.Load() - before
	}
	listOnce := func() error {
		return db.OnceAs(ctx, a.Identity, func(tx tenant.Conn) error { _, err := q.ListTables(ctx, tx); return err })
	}
	listTx := func() error {
		return db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { _, err := q.ListTables(ctx, tx); return err })
	}
	twoInTx := func() error {
		return db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
			if _, err := q.CurrentTenant(ctx, tx); err != nil {
				return err
			}
			_, err := q.GetUser(ctx, tx, a.AdminID)
			return err
		})
	}
	require.EqualValues(t, 1, writesOf(listOnce), "Once: tenant setting and statement in one pipeline")
	require.EqualValues(t, 2, writesOf(listTx), "Tx with one statement: BEGIN+setting+statement, COMMIT")
	require.EqualValues(t, 3, writesOf(twoInTx), "Tx with two statements: BEGIN+setting+first, second, COMMIT")

	const requests = 50
	perRequest := func(srv *httptest.Server, writes *atomic.Int64, path string) float64 {
		// Warm up: the first requests on a connection prepare their
		// statements, which costs extra round trips once.
		for range 3 {
			status, body := getAuth(t, srv.URL+path, bearer(a.APIKey))
			require.Equal(t, http.StatusOK, status, body)
		}
		before := writes.Load()
		for range requests {
			status, body := getAuth(t, srv.URL+path, bearer(a.APIKey))
			require.Equal(t, http.StatusOK, status, body)
		}
		avg := float64(writes.Load()-before) / requests
		t.Logf("GET %s: %.2f round trips per request (%d requests)", path, avg, requests)
		return avg
	}

	// Confirmation + list, one pipeline.
	require.Equal(t, 1.0, perRequest(srv, &writes, "/v1/tables"))

	// Once leaves no tenant behind on the pooled connection: the implicit
	// transaction that carried set_config(..., true) ended with its Sync.
	var leftover string
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(current_setting('app.tenant_id', true), '')`).Scan(&leftover))
	require.Empty(t, leftover)

	// Confirmation + tenant and user in one joined statement.
	require.Equal(t, 1.0, perRequest(srv, &writes, "/v1/me"))

	// With tenant limits the confirmation takes the rate token in the same
	// call: still one round trip, and the RateLimit headers are there.
	var limitedWrites atomic.Int64
	limitedDB := tenant.New(d.CountingAppPool(t, &limitedWrites))
	limited := httptest.NewServer(server.New(limitedDB, slog.New(slog.NewTextHandler(t.Output(), nil)),
		server.Config{Limits: limits.New(limitedDB, limits.Limits{limits.RequestsPerSecond: ptr(1e9), limits.Burst: ptr(1e9)})}))
	t.Cleanup(limited.Close)
	// Warm up the lease's renewal too: a request that spends a leased
	// token confirms with the epoch condition, one that takes a new lease
	// (after a second) with dbchat.confirm_epoch, a statement of its own
	// that the connection prepares once.
	for _, wait := range []time.Duration{0, 1100 * time.Millisecond} {
		time.Sleep(wait)
		status, body := getAuth(t, limited.URL+"/v1/tables", bearer(a.APIKey))
		require.Equal(t, http.StatusOK, status, body)
	}
	require.Equal(t, 1.0, perRequest(limited, &limitedWrites, "/v1/tables"))
	require.Equal(t, 1.0, perRequest(limited, &limitedWrites, "/v1/history"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, limited.URL+"/v1/tables", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", bearer(a.APIKey))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "1000000000", resp.Header.Get("RateLimit-Limit"))
}
