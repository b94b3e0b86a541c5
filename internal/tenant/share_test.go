package tenant_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// With the runtime pool shared among tenants, a tenant's flood of slow
// transactions holds at most its cap of connections; the rest queue behind
// its own, so another tenant's transaction runs at once, while the flood is
// still sleeping. A full queue is refused as overloaded.
func TestRuntimePoolIsSharedAmongTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 3))
	db.ShareAmongTenants(2, 3)
	noisy := dbtest.NewTenant(t, db, "Noisy")
	quiet := dbtest.NewTenant(t, db, "Quiet")
	admin := d.AdminPool(t)
	sleeping := func() int {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND usename = 'dbchat_app' AND query LIKE 'SELECT pg_sleep%' AND state = 'active'`, d.Name).Scan(&n))
		return n
	}

	flood, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 { // two run, three wait in the noisy tenant's queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.OnceAs(flood, noisy.Identity, func(tx tenant.Conn) error {
				_, err := tx.Exec(flood, `SELECT pg_sleep(30)`)
				return err
			})
		}()
	}
	require.Eventually(t, func() bool { return sleeping() == 2 }, 10*time.Second, 20*time.Millisecond, "the noisy tenant's first two are running")

	// A sixth is refused at once: its queue is full.
	err := db.OnceAs(ctx, noisy.Identity, func(tx tenant.Conn) error { _, err := tx.Exec(ctx, `SELECT 1`); return err })
	require.Equal(t, apperr.Overloaded, apperr.CodeOf(err), "%v", err)

	// The quiet tenant gets the third connection while the flood sleeps.
	var one int
	require.NoError(t, db.OnceAs(ctx, quiet.Identity, func(tx tenant.Conn) error { return tx.QueryRow(ctx, `SELECT 1`).Scan(&one) }))
	require.Equal(t, 1, one)
	require.Equal(t, 2, sleeping(), "the flood never held more than its cap")
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.Error(t, err) // cancelled, running or queued
	}
}
