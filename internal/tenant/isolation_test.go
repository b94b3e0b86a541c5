package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// rlsGaps lists every table in an application schema that lacks enabled and
// forced RLS or a tenant_isolation policy whose USING and WITH CHECK read
// app.tenant_id once per statement (in a scalar subquery).
func rlsGaps(ctx context.Context, t *testing.T, conn *pgxpool.Pool) []string {
	rows, err := conn.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname), c.relrowsecurity, c.relforcerowsecurity,
		       coalesce(p.qual, ''), coalesce(p.with_check, '')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_policies p ON p.schemaname = n.nspname AND p.tablename = c.relname AND p.policyname = 'tenant_isolation'
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dbchat_migrations', 'pg_toast')
		ORDER BY 1`)
	require.NoError(t, err)
	var gaps []string
	for rows.Next() {
		var name, qual, check string
		var enabled, forced bool
		require.NoError(t, rows.Scan(&name, &enabled, &forced, &qual, &check))
		for _, expr := range []string{qual, check} {
			if !strings.Contains(expr, "SELECT") || !strings.Contains(expr, "current_setting('app.tenant_id'") {
				gaps = append(gaps, name+": tenant_isolation policy missing or not reading app.tenant_id once per statement")
				break
			}
		}
		if !enabled || !forced {
			gaps = append(gaps, fmt.Sprintf("%s: rls enabled=%v forced=%v", name, enabled, forced))
		}
	}
	require.NoError(t, rows.Err())
	return gaps
}

func TestEveryTableHasForcedTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	require.Empty(t, rlsGaps(ctx, t, admin))

	// The check bites: a table added without RLS (or without FORCE) fails it.
	_, err := admin.Exec(ctx, `CREATE TABLE dbchat.unprotected (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id));
		CREATE TABLE dbchat.not_forced (tenant_id uuid NOT NULL);
		ALTER TABLE dbchat.not_forced ENABLE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON dbchat.not_forced USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));`)
	require.NoError(t, err)
	gaps := rlsGaps(ctx, t, admin)
	// unprotected: no policy, no RLS; not_forced: no WITH CHECK, not forced.
	require.Len(t, gaps, 4, "%v", gaps)
	require.Contains(t, strings.Join(gaps, "\n"), "dbchat.unprotected: rls enabled=false forced=false")
	require.Contains(t, strings.Join(gaps, "\n"), "dbchat.not_forced: rls enabled=true forced=false")
}

// platformTables lists the tables of the dbchat schema from the catalog.
func platformTables(ctx context.Context, t *testing.T, admin *pgxpool.Pool) []string {
	rows, err := admin.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'dbchat' AND c.relkind IN ('r', 'p') ORDER BY 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// tenantColumn is the column the policy compares: the tenants table's id,
// every other table's tenant_id.
func tenantColumn(table string) string {
	if table == "tenants" {
		return "id"
	}
	return "tenant_id"
}

func TestTwoTenantsSeeOnlyTheirOwnRowsInEveryTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	db := tenant.New(d.AppPool(t, 4))
	a := dbtest.NewTenant(t, db, "Tenant A")
	b := dbtest.NewTenant(t, db, "Tenant B")
	dbtest.SeedEveryTable(t, db, a, "amarker")
	dbtest.SeedEveryTable(t, db, b, "bmarker")

	tables := platformTables(ctx, t, admin)
	seeded := slices.Clone(dbtest.SeededTables)
	slices.Sort(seeded)
	require.Equal(t, seeded, tables, "every platform table must be seeded by dbtest.SeedEveryTable so this test covers it")

	for _, table := range tables {
		t.Run(table, func(t *testing.T) {
			col := tenantColumn(table)
			// B's row as JSON, to replay as a write inside A's transaction.
			var bRow string
			require.NoError(t, admin.QueryRow(ctx, fmt.Sprintf(
				`SELECT (to_jsonb(x) || jsonb_build_object('id', gen_random_uuid()))::text FROM dbchat.%s x WHERE %s = $1 LIMIT 1`,
				table, col), b.ID).Scan(&bRow))
			insertB := fmt.Sprintf(`INSERT INTO dbchat.%s SELECT (jsonb_populate_record(NULL::dbchat.%[1]s, $1::jsonb)).*`, table)

			checkRuntime := func(t *testing.T, runAs string, run func(id tenant.Identity, fn func(tx tenant.Conn) error) error) {
				// A sees only A.
				var seen []uuid.UUID
				require.NoError(t, run(a.Identity, func(tx tenant.Conn) error {
					rows, _ := tx.Query(ctx, fmt.Sprintf(`SELECT DISTINCT %s FROM dbchat.%s`, col, table))
					var err error
					seen, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
					return err
				}))
				require.Equal(t, []uuid.UUID{a.ID}, seen, "%s in A's transaction", runAs)

				// A cannot write a row carrying B's tenant id.
				err := run(a.Identity, func(tx tenant.Conn) error { _, err := tx.Exec(ctx, insertB, bRow); return err })
				requirePgCode(t, err, "42501", runAs+": insert B's row in A's transaction")

				// No context: nothing visible, nothing writable.
				var n int
				require.NoError(t, run(tenant.Identity{}, func(tx tenant.Conn) error {
					return tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM dbchat.%s`, table)).Scan(&n)
				}))
				require.Zero(t, n, "%s without tenant context", runAs)
				err = run(tenant.Identity{}, func(tx tenant.Conn) error { _, err := tx.Exec(ctx, insertB, bRow); return err })
				requirePgCode(t, err, "42501", runAs+": insert without tenant context")
			}
			t.Run("as dbchat_app", func(t *testing.T) { checkRuntime(t, "dbchat_app", rawTx(d.AppPool(t, 1), "")) })
			// FORCE makes even the owner, with every privilege, subject to the policy.
			t.Run("as dbchat_owner", func(t *testing.T) { checkRuntime(t, "dbchat_owner", rawTx(admin, "dbchat_owner")) })

			// Neither can A's transaction move or delete B's rows.
			err := rawTx(admin, "dbchat_owner")(a.Identity, func(tx tenant.Conn) error {
				tag, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE dbchat.%s SET %s = %s WHERE %[2]s = $1`, table, col, col), b.ID)
				if err == nil && tag.RowsAffected() != 0 {
					return fmt.Errorf("updated %d of B's rows", tag.RowsAffected())
				}
				if err != nil {
					return err
				}
				tag, err = tx.Exec(ctx, fmt.Sprintf(`DELETE FROM dbchat.%s WHERE %s = $1`, table, col), b.ID)
				if err == nil && tag.RowsAffected() != 0 {
					return fmt.Errorf("deleted %d of B's rows", tag.RowsAffected())
				}
				return err
			})
			require.NoError(t, err)
			err = rawTx(admin, "dbchat_owner")(a.Identity, func(tx tenant.Conn) error {
				_, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE dbchat.%s SET %s = $1`, table, col), b.ID)
				return err
			})
			requirePgCode(t, err, "42501", "move A's rows to B")
		})
	}
}

// rawTx runs fn in a transaction on pool with the tenant setting applied the
// same way the tenant package does, optionally as another role. It lets the
// tests probe roles the service never uses (the owner).
func rawTx(pool *pgxpool.Pool, role string) func(tenant.Identity, func(tenant.Conn) error) error {
	return func(id tenant.Identity, fn func(tenant.Conn) error) error {
		ctx := context.Background()
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if role != "" {
				if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
					return err
				}
			}
			tid := ""
			if id.TenantID != uuid.Nil {
				tid = id.TenantID.String()
			}
			uid := ""
			if id.UserID != uuid.Nil {
				uid = id.UserID.String()
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)`, tid, uid); err != nil {
				return err
			}
			return fn(rawConn{tx})
		})
	}
}

// rawConn is a pgx transaction as a tenant.Conn.
type rawConn struct{ pgx.Tx }

func (c rawConn) RunBatch(ctx context.Context, b *pgx.Batch) error {
	return c.SendBatch(ctx, b).Close()
}

// Defer runs b at once (these tests read what they defer right away, if at
// all); an error reaches the callbacks.
func (c rawConn) Defer(b *pgx.Batch) { _ = c.SendBatch(context.Background(), b).Close() }

func requirePgCode(t *testing.T, err error, code, what string) {
	t.Helper()
	var pg *pgconn.PgError
	require.Truef(t, errors.As(err, &pg), "%s: want SQLSTATE %s, got %v", what, code, err)
	require.Equalf(t, code, pg.Code, "%s: %s", what, pg.Message)
}
