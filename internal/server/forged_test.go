package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/session"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestForgedCredentialsDoNotCrowdOutTheirTenant is the red team's flood:
// unauthenticated clients send API keys (or session cookies) naming tenant
// B, whose id is no secret, with random secrets. Every such lookup that
// gets a connection is made to hold it: a superuser holds an ACCESS
// EXCLUSIVE lock on api_keys and sessions, so the lookups block, the rest
// of the flood queues, and the queue is full (forged requests are refused
// as overloaded) before B sends anything. B's key, looked up before the
// lock and remembered since, is confirmed in its requests' first statement
// (credential_epochs, which nothing locks), so its requests need only B's
// own share of the pool. They must all be answered 200, never 503: when
// the lookups were admitted in B's share and queue, the flood held the
// share and filled the queue, and B was refused as overloaded. No timing
// is asserted; the lock, not a race, keeps the flood's lookups busy.
func TestForgedCredentialsDoNotCrowdOutTheirTenant(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"api key", "session cookie"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			d := dbtest.New(t)
			db := tenant.New(d.AppPool(t, 4))
			db.ShareAmongTenants(2, 2, 2) // B's share: 2 connections and 2 waiting
			srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{}))
			t.Cleanup(srv.Close)
			b := dbtest.NewTenant(t, db, "Named")

			get := func(ctx context.Context, header, value string) (int, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/tables", nil)
				if err != nil {
					return 0, err
				}
				req.Header.Set(header, value)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				_, err = io.Copy(io.Discard, resp.Body)
				return resp.StatusCode, err
			}
			valid := func() int {
				status, err := get(ctx, "Authorization", "Bearer "+b.APIKey)
				require.NoError(t, err)
				return status
			}
			// The first request looks B's key up (and records its use), the
			// second finds it remembered.
			require.Equal(t, http.StatusOK, valid())
			require.Equal(t, http.StatusOK, valid())

			admin := d.AdminPool(t)
			lock, err := admin.Begin(ctx)
			require.NoError(t, err)
			t.Cleanup(func() { _ = lock.Rollback(context.Background()) })
			_, err = lock.Exec(ctx, `LOCK TABLE dbchat.api_keys, dbchat.sessions IN ACCESS EXCLUSIVE MODE`)
			require.NoError(t, err)

			flood, stop := context.WithCancel(ctx)
			defer stop()
			var refused, other atomic.Int64
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					for flood.Err() == nil {
						header, value := forged(kind, b.ID)
						status, err := get(flood, header, value)
						switch {
						case err != nil:
						case status == http.StatusServiceUnavailable:
							refused.Add(1)
						default:
							other.Add(1)
						}
					}
				})
			}
			blocked := func() int {
				var n int
				require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = $1 AND usename = 'dbchat_app' AND wait_event_type = 'Lock'`, d.Name).Scan(&n))
				return n
			}
			require.Eventually(t, func() bool { return blocked() > 0 && refused.Load() > 0 }, 20*time.Second, 20*time.Millisecond,
				"forged lookups hold connections and the rest are refused")

			for i := range 20 {
				require.Equal(t, http.StatusOK, valid(), "B's request %d during the flood", i)
			}
			require.Positive(t, blocked(), "the flood's lookups still hold their connections")
			require.Zero(t, other.Load(), "no forged %s was answered while its lookup was blocked", kind)

			stop()
			wg.Wait()
			require.NoError(t, lock.Rollback(ctx))
			require.Equal(t, http.StatusOK, valid())
		})
	}
}

// forged is a credential of kind naming tenantID with a random secret, as
// a request header: an API key or a session cookie.
func forged(kind string, tenantID uuid.UUID) (header, value string) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	body := hex.EncodeToString(tenantID[:]) + "_" + base64.RawURLEncoding.EncodeToString(secret)
	if kind == "api key" {
		return "Authorization", "Bearer dbc_" + body
	}
	return "Cookie", session.CookieName + "=dbs_" + body
}
