package auth_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestKnownKeyIsLookedUpInItsTenantsShare: a key the cache found before is
// looked up again, once its minute is over, in its tenant's own share of
// the pool, not among the sign-ins. With the sign-ins naming the tenant
// held busy (slow lookups, their queue full, as in a flood of forged keys)
// the known key still signs in, while another key of the same tenant, as
// valid but never seen, is refused as overloaded with the flood. Revoked,
// the known key is refused like any other.
func TestKnownKeyIsLookedUpInItsTenantsShare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	db.ShareAmongTenants(2, 2, 2)
	tn := dbtest.NewTenant(t, db, "Known")
	var unseen string
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		var err error
		unseen, err = dbtest.CreateKey(ctx, tx, tn.ID, tn.AdminID)
		return err
	}))
	cache := auth.NewCache(10)
	auth.SetTTL(cache, 0) // every request looks the key up again
	signIn := func(key string) error {
		_, remembered, err := cache.Authenticate(ctx, db, key, auth.AuthenticateKeyOnly, nil)
		require.False(t, remembered)
		return err
	}
	require.NoError(t, signIn(tn.APIKey)) // found: known from now on

	flood, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 { // one runs, two wait: the sign-ins naming tn are full
		wg.Go(func() {
			_ = db.LookupAs(flood, tn.ID, func(tx tenant.Conn) error {
				_, err := tx.Exec(flood, `SELECT pg_sleep(30)`)
				return err
			})
		})
	}
	admin := d.AdminPool(t)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND usename = 'dbchat_app' AND query LIKE 'SELECT pg_sleep%' AND state = 'active'`, d.Name).Scan(&n))
		return n == 1
	}, 10*time.Second, 20*time.Millisecond, "a slow sign-in naming tn runs")
	// From now on the unseen key cannot be found (and so become known):
	// it waits behind the slow sign-in or is refused.
	require.Eventually(t, func() bool {
		err := signIn(unseen)
		return apperr.CodeOf(err) == apperr.Overloaded && strings.Contains(err.Error(), "sign-ins")
	}, 10*time.Second, 20*time.Millisecond, "a key never seen waits among the sign-ins, and they are full")
	for range 5 {
		require.NoError(t, signIn(tn.APIKey), "the known key is looked up in its tenant's share")
	}
	cancel()
	wg.Wait()

	_, err := admin.Exec(ctx, `UPDATE dbchat.api_keys SET revoked_at = now() WHERE tenant_id = $1`, tn.ID)
	require.NoError(t, err)
	require.Equal(t, apperr.Unauthorized, apperr.CodeOf(signIn(tn.APIKey)))
	require.Equal(t, apperr.Unauthorized, apperr.CodeOf(signIn(tn.APIKey)))
}
