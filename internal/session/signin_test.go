package session_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/session"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestKnownSessionIsLookedUpInItsTenantsShare: a session cookie found
// before is looked up again, once its minute in memory is over, in its
// tenant's own share of the pool, not among the sign-ins. With the sign-ins
// naming the tenant held busy (slow lookups, their queue full, as in a
// flood of forged cookies) the known session still resolves, while another
// session of the same tenant, as good but never seen by this server, is
// refused as overloaded with the flood. Signed out, the known session is
// refused like any other.
func TestKnownSessionIsLookedUpInItsTenantsShare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	db.ShareAmongTenants(2, 2, 2)
	tn := dbtest.NewTenant(t, db, "Known Sessions")
	svc := session.New(db, session.Options{})
	session.SetRemember(svc, 0) // every request looks the session up again
	known, err := svc.Start(ctx, tn.Identity, "test", nil)
	require.NoError(t, err)
	unseen, err := svc.Start(ctx, tn.Identity, "test", nil)
	require.NoError(t, err)
	resolve := func(token string) (session.Session, error) { return svc.AuthenticateWith(ctx, token, nil) }
	sess, err := resolve(known.Token) // found: known from now on
	require.NoError(t, err)
	require.Nil(t, sess.Identity.Check, "looked up, not remembered")

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
	require.Eventually(t, func() bool {
		_, err := resolve(unseen.Token)
		return apperr.CodeOf(err) == apperr.Overloaded && strings.Contains(err.Error(), "sign-ins")
	}, 10*time.Second, 20*time.Millisecond, "a session never seen waits among the sign-ins, and they are full")
	for range 5 {
		sess, err := resolve(known.Token)
		require.NoError(t, err, "the known session is looked up in its tenant's share")
		require.Equal(t, tn.ID, sess.Identity.TenantID)
	}
	cancel()
	wg.Wait()

	require.NoError(t, svc.Revoke(ctx, sess))
	for range 2 {
		_, err := resolve(known.Token)
		require.Equal(t, apperr.Unauthorized, apperr.CodeOf(err), "%v", err)
	}
}
