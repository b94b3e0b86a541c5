package migrate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// tenantKeyOffenders lists, from pg_constraint and pg_index, every key of a
// tenant-scoped table of schema dbchat that would keep it from being
// distributed by tenant_id (docs/SCALING.md): a primary key, unique or
// exclusion constraint or unique index without the tenant column, a foreign
// key without tenant_id, or a foreign key to another tenant-scoped table
// that does not pair tenant_id with that table's tenant column.
// Tenant-scoped: a table with a tenant_id column, and dbchat.tenants (tenant
// column id), whose global slug key is the one documented exception (it is
// a reference table, global by design). It reads the catalogs itself rather
// than audit.distribution_key_findings, so the view is checked against it.
func tenantKeyOffenders(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]string, error) {
	rows, err := q.Query(ctx, `
		WITH scoped AS (
		    SELECT c.oid, c.relname, a.attnum AS tattnum
		    FROM pg_class c
		    JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped AND a.attnum > 0
		     AND a.attname = CASE WHEN c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END
		    WHERE c.relnamespace = 'dbchat'::regnamespace AND c.relkind IN ('r', 'p')
		)
		SELECT format('dbchat.%I: %s %I (%s) does not include the tenant column', t.relname,
		              CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint'
		                               WHEN 'x' THEN 'exclusion constraint' ELSE 'unique index' END,
		              ic.relname, pg_get_indexdef(i.indexrelid))
		FROM scoped t
		JOIN pg_index i ON i.indrelid = t.oid
		JOIN pg_class ic ON ic.oid = i.indexrelid
		LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid
		WHERE (i.indisunique OR con.contype = 'x') AND NOT (t.tattnum = ANY (i.indkey::int2[]))
		  AND NOT (t.relname = 'tenants' AND ic.relname = 'tenants_slug_key')
		UNION ALL
		SELECT format('dbchat.%I: foreign key %I (%s) %s', t.relname, con.conname, pg_get_constraintdef(con.oid),
		              CASE WHEN NOT (t.tattnum = ANY (con.conkey)) THEN 'does not include tenant_id'
		                   ELSE 'does not pair tenant_id with the tenant column of ' || con.confrelid::regclass END)
		FROM scoped t
		JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
		LEFT JOIN scoped rt ON rt.oid = con.confrelid
		WHERE NOT (t.tattnum = ANY (con.conkey))
		   OR (rt.oid IS NOT NULL AND NOT EXISTS (
		          SELECT FROM generate_subscripts(con.conkey, 1) k
		          WHERE con.conkey[k] = t.tattnum AND con.confkey[k] = rt.tattnum))
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// TestTenantKeysIncludeTenantID: on a freshly migrated database every
// primary key, unique key and foreign key of every tenant-scoped table
// includes tenant_id, so each can be distributed by tenant_id. A migration
// that adds a key without it fails here, naming the key; the subtest shows
// the check (and audit.distribution_key_findings) catching each kind.
func TestTenantKeysIncludeTenantID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	pool := d.AdminPool(t)

	// The check sees the keys at all: the tables are there and have keys.
	var tables, keys int
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT count(DISTINCT c.oid), count(con.oid)
		FROM pg_class c JOIN pg_constraint con ON con.conrelid = c.oid AND con.contype IN ('p', 'u', 'f')
		WHERE c.relnamespace = 'dbchat'::regnamespace
		  AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')`).Scan(&tables, &keys))
	require.GreaterOrEqual(t, tables, 18, "tenant-scoped tables in dbchat")
	require.Greater(t, keys, 2*tables, "their keys")

	offenders, err := tenantKeyOffenders(ctx, pool)
	require.NoError(t, err)
	if len(offenders) > 0 {
		t.Fatalf("keys that keep a tenant-scoped table from being distributed by tenant_id (docs/SCALING.md):\n  %s",
			strings.Join(offenders, "\n  "))
	}
	var view int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit.distribution_key_findings`).Scan(&view))
	require.Zero(t, view, "audit.distribution_key_findings agrees")

	t.Run("breakages are named", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		for _, stmt := range []string{
			`CREATE UNIQUE INDEX models_global_name ON dbchat.models (name)`,
			`ALTER TABLE dbchat.users ADD CONSTRAINT users_global_email UNIQUE (email)`,
			`ALTER TABLE dbchat.sessions DROP CONSTRAINT sessions_pkey, ADD CONSTRAINT sessions_pkey PRIMARY KEY (id)`,
			`ALTER TABLE dbchat.query_history ADD CONSTRAINT history_model_any FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (id, tenant_id)`,
			`ALTER TABLE dbchat.models ADD CONSTRAINT models_id_unique UNIQUE (id)`,
			`ALTER TABLE dbchat.training_data ADD CONSTRAINT training_model_by_id FOREIGN KEY (model_id) REFERENCES dbchat.models (id)`,
		} {
			_, err := tx.Exec(ctx, stmt)
			require.NoError(t, err, stmt)
		}
		got, err := tenantKeyOffenders(ctx, tx)
		require.NoError(t, err)
		joined := strings.Join(got, "\n")
		for _, want := range []string{
			"dbchat.models: unique index models_global_name",
			"dbchat.users: unique constraint users_global_email",
			"dbchat.sessions: primary key sessions_pkey",
			"dbchat.models: unique constraint models_id_unique",
			"dbchat.query_history: foreign key history_model_any (FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models(id, tenant_id)) does not pair tenant_id",
			"dbchat.training_data: foreign key training_model_by_id (FOREIGN KEY (model_id) REFERENCES dbchat.models(id)) does not include tenant_id",
		} {
			require.Contains(t, joined, want)
		}
		require.Len(t, got, 6, joined)

		rows, err := tx.Query(ctx, `SELECT lint || ' ' || table_name || ' ' || key_name FROM audit.distribution_key_findings`)
		require.NoError(t, err)
		lints, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.ElementsMatch(t, []string{
			"key_without_tenant_id dbchat.models models_global_name",
			"key_without_tenant_id dbchat.users users_global_email",
			"key_without_tenant_id dbchat.sessions sessions_pkey",
			"key_without_tenant_id dbchat.models models_id_unique",
			"foreign_key_not_colocated dbchat.query_history history_model_any",
			"foreign_key_without_tenant_id dbchat.training_data training_model_by_id",
		}, lints, fmt.Sprint(lints))
	})
}
