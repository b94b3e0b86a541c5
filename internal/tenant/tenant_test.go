package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// queryShardLogin matches the query logins other than dbchat_query.
var queryShardLogin = regexp.MustCompile(`^dbchat_query_[0-9]+$`)

func TestRolesCannotBypassRLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	rows, err := admin.Query(ctx, `SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin,
		(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)
		FROM pg_roles r WHERE r.rolname LIKE 'dbchat\_%' ORDER BY 1`)
	require.NoError(t, err)
	type role struct {
		name                 string
		super, bypass, login bool
		owns                 int
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (role, error) {
		var x role
		return x, r.Scan(&x.name, &x.super, &x.bypass, &x.login, &x.owns)
	})
	require.NoError(t, err)
	// The query logins dbchat_query_<k> (migration 00031; roles are
	// cluster-wide, so other tests' databases may have made some) are
	// dbchat_query's twins.
	got = slices.DeleteFunc(got, func(r role) bool {
		if !queryShardLogin.MatchString(r.name) {
			return false
		}
		require.Equal(t, role{name: r.name, login: true}, r, "a query login is not like dbchat_query")
		return true
	})
	require.Len(t, got, 7)
	for _, r := range got {
		require.False(t, r.super, r.name)
		if r.name == "dbchat_operator" {
			continue // checked below: it bypasses RLS for one function only
		}
		require.False(t, r.bypass, r.name)
		if r.name != "dbchat_owner" {
			require.Zero(t, r.owns, "%s owns relations", r.name)
		}
	}
	logins := map[string]bool{}
	for _, r := range got {
		logins[r.name] = r.login
	}
	require.Equal(t, map[string]bool{"dbchat_app": true, "dbchat_auditor": true, "dbchat_operator": false,
		"dbchat_owner": false, "dbchat_query": true, "dbchat_sandbox": false, "dbchat_provisioner": false}, logins)

	// dbchat_operator, the one BYPASSRLS role, cannot log in, owns no
	// relation, and owns exactly its two functions (the operator's tenant
	// list, a token's identity provider) and their schema.
	var owned []string
	rows, err = admin.Query(ctx, `
		SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p WHERE p.proowner = 'dbchat_operator'::regrole
		UNION ALL SELECT 'relation ' || c.oid::regclass::text FROM pg_class c WHERE c.relowner = 'dbchat_operator'::regrole
		UNION ALL SELECT 'schema ' || n.nspname FROM pg_namespace n WHERE n.nspowner = 'dbchat_operator'::regrole
		ORDER BY 1`)
	require.NoError(t, err)
	owned, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"function dbchat_ops.identity_provider_by_issuer(text)", "function dbchat_ops.list_tenants()", "schema dbchat_ops"}, owned)

	// The runtime role has no DDL rights: not in the platform schema, not in
	// public, not a schema of its own.
	app := d.AppPool(t, 1)
	for _, stmt := range []string{`CREATE TABLE dbchat.x (id int)`, `CREATE TABLE public.x (id int)`, `CREATE SCHEMA x`} {
		_, err := app.Exec(ctx, stmt)
		requirePgCode(t, err, "42501", stmt)
	}
}

func TestTxRequiresIdentity(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 1))
	err := db.Tx(context.Background(), func(tenant.Conn) error { return nil })
	require.Error(t, err)
	require.Equal(t, apperr.Internal, apperr.CodeOf(err))
}

func TestTxTranslatesAndRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	a := dbtest.NewTenant(t, db, "A")
	q := dbsqlc.New()
	actx := tenant.NewContext(ctx, a.Identity)

	// pgx.ErrNoRows never escapes: it becomes NotFound.
	err := db.Tx(actx, func(tx tenant.Conn) error { _, err := q.GetUser(ctx, tx, uuid.New()); return err })
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))

	// A unique violation is a Conflict.
	err = db.Tx(actx, func(tx tenant.Conn) error {
		_, err := q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: "default"})
		return err
	})
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err))

	// fn's error rolls back what the transaction wrote.
	boom := errors.New("boom")
	err = db.Tx(actx, func(tx tenant.Conn) error {
		if _, err := q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: "rolled-back"}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	err = db.Tx(actx, func(tx tenant.Conn) error { _, err := q.GetModelByName(ctx, tx, "rolled-back"); return err })
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))

	// A failed statement whose error fn swallows still rolls back on COMMIT,
	// and the caller hears about it.
	err = db.Tx(actx, func(tx tenant.Conn) error {
		if _, err := q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: "swallowed"}); err != nil {
			return err
		}
		_, _ = tx.Exec(ctx, `SELECT 1/0`)
		return nil
	})
	require.ErrorIs(t, err, tenant.ErrRolledBack)
	err = db.Tx(actx, func(tx tenant.Conn) error { _, err := q.GetModelByName(ctx, tx, "swallowed"); return err })
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))

	// Once refuses a second statement: it would run outside the tenant context.
	err = db.Once(actx, func(tx tenant.Conn) error {
		if _, err := q.GetModelByName(ctx, tx, "default"); err != nil {
			return err
		}
		_, err := q.GetModelByName(ctx, tx, "default")
		return err
	})
	require.Error(t, err)
}

// The settings are transaction-local: after any tenant transaction, the same
// physical connection carries no tenant.
func TestSettingsDoNotOutliveTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	pool := d.AppPool(t, 1)
	db := tenant.New(pool)
	a := dbtest.NewTenant(t, db, "A")
	for _, run := range []func(tenant.Identity, func(tenant.Conn) error) error{
		func(id tenant.Identity, fn func(tenant.Conn) error) error { return db.TxAs(ctx, id, fn) },
		func(id tenant.Identity, fn func(tenant.Conn) error) error { return db.OnceAs(ctx, id, fn) },
	} {
		var inside string
		require.NoError(t, run(a.Identity, func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT current_setting('app.tenant_id')`).Scan(&inside)
		}))
		require.Equal(t, a.ID.String(), inside)
		var after *string
		require.NoError(t, pool.QueryRow(ctx, `SELECT nullif(current_setting('app.tenant_id', true), '')`).Scan(&after))
		require.Nil(t, after, "tenant setting survived its transaction")
	}
}

// Pool hygiene: many goroutines alternating tenants over two connections,
// with commits, rollbacks, single-statement transactions and context-free
// transactions interleaved. No transaction may ever see another tenant's row.
func TestPoolNeverLeaksTenantContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tenants := make([]dbtest.Tenant, 4)
	for i := range tenants {
		tenants[i] = dbtest.NewTenant(t, db, fmt.Sprintf("Pool %d", i))
		dbtest.SeedEveryTable(t, db, tenants[i], fmt.Sprintf("pool%d", i))
	}
	const workers, perWorker = 8, 400
	visible := `SELECT tenant_id FROM dbchat.users UNION ALL SELECT tenant_id FROM dbchat.database_tables
		UNION ALL SELECT id FROM dbchat.tenants UNION ALL SELECT tenant_id FROM dbchat.query_history`
	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				want := tenants[(w+i)%len(tenants)]
				id := want.Identity
				mode := (w + i) % 4
				if mode == 3 {
					id = tenant.Identity{} // no context: must see nothing
				}
				var seen []uuid.UUID
				read := func(tx tenant.Conn) error {
					rows, _ := tx.Query(ctx, visible)
					var err error
					seen, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
					return err
				}
				var err error
				switch mode {
				case 0:
					err = db.OnceAs(ctx, id, read)
				case 1: // rolled back after reading
					err = db.TxAs(ctx, id, func(tx tenant.Conn) error {
						if err := read(tx); err != nil {
							return err
						}
						return errBoom
					})
					if errors.Is(err, errBoom) {
						err = nil
					}
				default:
					err = db.TxAs(ctx, id, read)
				}
				if err != nil {
					errs <- err
					return
				}
				if mode == 3 && len(seen) != 0 {
					errs <- fmt.Errorf("context-free transaction saw %d rows", len(seen))
					return
				}
				if mode != 3 && len(seen) == 0 {
					errs <- fmt.Errorf("tenant %s saw none of its rows", want.Slug)
					return
				}
				for _, s := range seen {
					if mode != 3 && s != want.ID {
						errs <- fmt.Errorf("tenant %s saw a row of %s", want.ID, s)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestWithCustomPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 1))
	a := dbtest.NewTenant(t, db, "A")
	mode := func(ctx context.Context) string {
		var m string
		require.NoError(t, db.OnceAs(ctx, a.Identity, func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&m)
		}))
		return m
	}
	require.Equal(t, "force_custom_plan", mode(tenant.WithCustomPlans(ctx)))
	require.Equal(t, "auto", mode(ctx), "the setting ends with its transaction")
}

// WithAsyncCommit turns synchronous_commit off for its transactions only,
// alone or with WithCustomPlans, in Once and in Tx.
func TestWithAsyncCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	pool := d.AppPool(t, 1)
	// Test clusters run with it off; the one connection says on.
	_, err := pool.Exec(ctx, `SET synchronous_commit = on`)
	require.NoError(t, err)
	db := tenant.New(pool)
	a := dbtest.NewTenant(t, db, "A")
	settings := func(ctx context.Context, once bool) string {
		var commit, plans string
		run := db.TxAs
		if once {
			run = db.OnceAs
		}
		require.NoError(t, run(ctx, a.Identity, func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('plan_cache_mode')`).Scan(&commit, &plans)
		}))
		return commit + " " + plans
	}
	for _, once := range []bool{true, false} {
		require.Equal(t, "off auto", settings(tenant.WithAsyncCommit(ctx), once))
		require.Equal(t, "off force_custom_plan", settings(tenant.WithCustomPlans(tenant.WithAsyncCommit(ctx)), once))
		require.Equal(t, "on force_custom_plan", settings(tenant.WithCustomPlans(ctx), once))
		require.Equal(t, "on auto", settings(ctx, once), "the settings end with their transaction")
	}
}

// Deferred statements run inside the tenant context and add no round trip:
// they travel with the transaction's next statement, with COMMIT, or in
// Once with the one statement (or the settings alone); a batch opens a
// transaction in its own round trip. A deferred statement that fails fails
// the transaction, and what it ran with is rolled back.
func TestDeferRidesAlong(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db, writes := d.CountingTenants(t)
	a := dbtest.NewTenant(t, db, "A")
	const seen = `SELECT current_setting('app.tenant_id')`
	deferSeen := func(tx tenant.Conn, into *string) {
		b := &pgx.Batch{}
		b.Queue(seen).QueryRow(func(row pgx.Row) error { return row.Scan(into) })
		tx.Defer(b)
	}
	withBatch := func(tx tenant.Conn, got *string) error {
		deferSeen(tx, got)
		b := &pgx.Batch{}
		b.Queue(`SELECT 1`)
		b.Queue(`SELECT 2`)
		return tx.RunBatch(ctx, b)
	}
	cases := []struct {
		name   string
		once   bool
		trips  int64
		run    func(tx tenant.Conn, got *string) error
		before bool // the deferred read is done when fn returns
	}{
		{"Tx, with the next statement", false, 2, func(tx tenant.Conn, got *string) error {
			deferSeen(tx, got)
			_, err := tx.Exec(ctx, `SELECT 1`)
			return err
		}, true},
		{"Tx, with COMMIT", false, 2, func(tx tenant.Conn, got *string) error {
			if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
				return err
			}
			deferSeen(tx, got)
			return nil
		}, false},
		{"Tx, alone", false, 1, func(tx tenant.Conn, got *string) error {
			deferSeen(tx, got)
			return nil
		}, false},
		{"Tx, ahead of a batch", false, 2, withBatch, true},
		{"Once, with its statement", true, 1, func(tx tenant.Conn, got *string) error {
			deferSeen(tx, got)
			var n int
			return tx.QueryRow(ctx, `SELECT 1`).Scan(&n)
		}, true},
		{"Once, with a batch", true, 1, withBatch, true},
		{"Once, alone", true, 1, func(tx tenant.Conn, got *string) error {
			deferSeen(tx, got)
			return nil
		}, false},
	}
	for _, c := range cases {
		run := db.TxAs
		if c.once {
			run = db.OnceAs
		}
		for i := range 2 { // the first pass prepares the statements
			var got, inFn string
			writes.Store(0)
			require.NoError(t, run(ctx, a.Identity, func(tx tenant.Conn) error {
				err := c.run(tx, &got)
				inFn = got
				return err
			}), c.name)
			require.Equal(t, a.ID.String(), got, c.name)
			if c.before {
				require.Equal(t, a.ID.String(), inFn, "%s: read when fn returned", c.name)
			}
			if i == 1 {
				require.Equal(t, c.trips, writes.Load(), "%s: round trips", c.name)
			}
		}
	}

	// A failing deferred statement fails the transaction and rolls back
	// the write it travelled with, in Tx and in Once.
	q := dbsqlc.New()
	for _, run := range []func(tenant.Identity, func(tenant.Conn) error) error{
		func(id tenant.Identity, fn func(tenant.Conn) error) error { return db.TxAs(ctx, id, fn) },
		func(id tenant.Identity, fn func(tenant.Conn) error) error { return db.OnceAs(ctx, id, fn) },
	} {
		b := &pgx.Batch{}
		b.Queue(`SELECT 1/0`)
		err := run(a.Identity, func(tx tenant.Conn) error {
			tx.Defer(b)
			_, err := q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: "deferred-failure"})
			return err
		})
		require.Error(t, err)
		err = db.OnceAs(ctx, a.Identity, func(tx tenant.Conn) error { _, err := q.GetModelByName(ctx, tx, "deferred-failure"); return err })
		require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	}

	// Once still takes one statement only, deferred ones aside.
	err := db.OnceAs(ctx, a.Identity, func(tx tenant.Conn) error {
		if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`SELECT 2`)
		tx.Defer(b)
		return nil
	})
	require.Error(t, err)
}
