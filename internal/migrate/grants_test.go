package migrate_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestMigrateRegrantsOnlyWhatDrifted: a migrate with nothing to do rewrites
// no catalog row of a tenant's schema, table or columns (a GRANT rewrites
// its row even when nothing changes, and made migrate grow with tenants ×
// tables), yet every grant a DBA removed or added by hand is put back as
// the catalog says: the tenant roles' memberships, USAGE and SELECT, and
// the admins' and the members' column grants, restricted column excluded
// for members, and no grant of the admins' role on the table itself.
func TestMigrateRegrantsOnlyWhatDrifted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	a := dbtest.NewTenant(t, db, "Grants")
	require.NoError(t, db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		_, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "staff", Columns: []catalog.ColumnSpec{
			{Name: "name", Type: "text"}, {Name: "salary", Type: "numeric", Restricted: true}}})
		return err
	}))
	admin := d.AdminPool(t)
	schema := tenant.Schema(a.ID)
	member := schema + "_m"
	rel := pgx.Identifier{schema, "staff"}.Sanitize()
	// The catalog rows a GRANT would rewrite, by their row versions.
	versions := func() []string {
		return strings1(t, admin, `
			SELECT 'namespace ' || xmin FROM pg_catalog.pg_namespace WHERE nspname = $1
			UNION ALL SELECT 'class ' || xmin FROM pg_catalog.pg_class WHERE oid = $2::regclass
			UNION ALL SELECT 'attribute ' || attname || ' ' || xmin FROM pg_catalog.pg_attribute
			WHERE attrelid = $2::regclass AND attnum > 0`, schema, rel)
	}
	run := func() { require.NoError(t, migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL})) }

	before := versions()
	run()
	require.Equal(t, before, versions(), "a migrate with nothing to do rewrote the tenant's catalog rows")

	grants := func() []string {
		return strings1(t, admin, `
			SELECT 'member of sandbox ' || pg_has_role($1, 'dbchat_sandbox', 'MEMBER')
			UNION ALL SELECT 'query takes ' || pg_has_role('dbchat_query', $1, 'MEMBER') || ' ' || pg_has_role('dbchat_query', $2, 'MEMBER')
			UNION ALL SELECT 'schema usage ' || has_schema_privilege($1, $1, 'USAGE') || ' ' || has_schema_privilege($2, $1, 'USAGE')
			UNION ALL SELECT 'role reads the table ' || has_table_privilege($1, $3::regclass, 'SELECT')
			UNION ALL SELECT 'role reads ' || a.attname || ' ' || has_column_privilege($1, $3::regclass, a.attnum, 'SELECT')
			FROM pg_catalog.pg_attribute a WHERE a.attrelid = $3::regclass AND a.attnum > 0 AND NOT a.attisdropped
			UNION ALL SELECT 'member inserts ' || has_table_privilege($2, $3::regclass, 'INSERT')
			UNION ALL SELECT 'member reads ' || a.attname || ' ' || has_column_privilege($2, $3::regclass, a.attnum, 'SELECT')
			FROM pg_catalog.pg_attribute a WHERE a.attrelid = $3::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
			schema, member, rel)
	}
	want := grants()
	require.Contains(t, want, "member reads name true")
	require.Contains(t, want, "member reads salary false")
	// The admins' role reads every column, by column (migration 00035): a
	// grant on the table would read the system columns too.
	require.Contains(t, want, "role reads salary true")
	require.Contains(t, want, "role reads the table false")
	for _, drift := range []string{
		`REVOKE dbchat_sandbox FROM ` + schema,
		`REVOKE ` + member + ` FROM dbchat_query`,
		`REVOKE USAGE ON SCHEMA ` + schema + ` FROM ` + member,
		`REVOKE SELECT ON ` + rel + ` FROM ` + schema,
		`GRANT SELECT ON ` + rel + ` TO ` + schema, // as versions before 00035 granted it
		`REVOKE SELECT (salary) ON ` + rel + ` FROM ` + schema,
		`REVOKE SELECT (name) ON ` + rel + ` FROM ` + member,
		`GRANT SELECT (salary) ON ` + rel + ` TO ` + member,
		`GRANT INSERT ON ` + rel + ` TO ` + member,
	} {
		_, err := admin.Exec(ctx, drift)
		require.NoError(t, err, drift)
		require.NotEqual(t, want, grants(), "%s changed nothing", drift)
		run()
		require.Equal(t, want, grants(), "migrate did not undo %s", drift)
	}
}
