package tenant_test

import (
	"context"
	"strings"
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
	db.ShareAmongTenants(2, 3, 1)
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

// Lookups of credentials not verified yet (LookupAs) are admitted apart
// from the tenant they name: a flood of slow lookups naming the quiet
// tenant holds at most the sign-ins' share of the pool and fills a queue of
// its own, while the quiet tenant's own transactions still run (its whole
// share is free) and a sign-in naming another tenant finds the second
// sign-in connection. A lookup still runs as the tenant it names: RLS shows
// it that tenant's rows only.
func TestSignInsAreAdmittedApartFromTheirTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	db.ShareAmongTenants(2, 2, 2) // two sign-in connections, one per named tenant
	quiet := dbtest.NewTenant(t, db, "Named")
	other := dbtest.NewTenant(t, db, "Other")
	admin := d.AdminPool(t)
	sleeping := func() int {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND usename = 'dbchat_app' AND query LIKE 'SELECT pg_sleep%' AND state = 'active'`, d.Name).Scan(&n))
		return n
	}

	// The lookup runs with the named tenant's setting, under its policy.
	var setting string
	var keys, allKeys int
	require.NoError(t, db.LookupAs(ctx, quiet.ID, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, `SELECT current_setting('app.tenant_id'), (SELECT count(*) FROM dbchat.api_keys)`).Scan(&setting, &keys)
	}))
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.api_keys`).Scan(&allKeys))
	require.Equal(t, quiet.ID.String(), setting)
	require.Equal(t, 1, keys, "the named tenant's one key, not the %d of all tenants", allKeys)
	require.Greater(t, allKeys, keys)

	flood, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // one runs, two wait in the queue of sign-ins naming quiet
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.LookupAs(flood, quiet.ID, func(tx tenant.Conn) error {
				_, err := tx.Exec(flood, `SELECT pg_sleep(30)`)
				return err
			})
		}()
	}
	require.Eventually(t, func() bool { return sleeping() == 1 }, 10*time.Second, 20*time.Millisecond, "one sign-in naming quiet runs")
	// A fourth sign-in naming quiet is refused at once: its queue is full
	// (wait until the other two are queued: until then it would queue).
	require.Eventually(t, func() bool {
		err := db.LookupAs(ctx, quiet.ID, func(tx tenant.Conn) error { _, err := tx.Exec(ctx, `SELECT 1`); return err })
		return apperr.CodeOf(err) == apperr.Overloaded && strings.Contains(err.Error(), "waiting")
	}, 10*time.Second, 20*time.Millisecond, "the queue of sign-ins naming quiet fills")

	// The named tenant's own transactions do not wait behind them: both of
	// its share's connections are free, at once.
	hold, release := context.WithCancel(ctx)
	ran := make(chan error, 2)
	for range 2 {
		go func() {
			ran <- db.OnceAs(hold, quiet.Identity, func(tx tenant.Conn) error {
				_, err := tx.Exec(hold, `SELECT pg_sleep(30)`)
				return err
			})
		}()
	}
	require.Eventually(t, func() bool { return sleeping() == 3 }, 10*time.Second, 20*time.Millisecond,
		"quiet's two transactions run beside the sign-ins naming it")
	release()
	for range 2 {
		require.Error(t, <-ran) // cancelled while sleeping
	}

	// A sign-in naming another tenant takes the second sign-in connection.
	var one int
	require.NoError(t, db.LookupAs(ctx, other.ID, func(tx tenant.Conn) error { return tx.QueryRow(ctx, `SELECT 1`).Scan(&one) }))
	require.Eventually(t, func() bool { return sleeping() == 1 }, 10*time.Second, 20*time.Millisecond,
		"the flood never holds more than one connection")
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.Error(t, err) // cancelled, running or queued
	}
}
