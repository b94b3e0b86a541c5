package audit_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/db"
	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/audit/audittest"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// viewQuery is the query of a view as a migration created it: the text
// between start and the statement's end, from the embedded migration file.
func viewQuery(t *testing.T, file, start string) string {
	t.Helper()
	b, err := fs.ReadFile(db.Migrations, "migrations/"+file)
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, start)
	require.GreaterOrEqual(t, i, 0, "%s: %q", file, start)
	s = s[i+len(start):]
	j := strings.Index(s, ";\nCOMMENT ON VIEW")
	require.Greater(t, j, 0, file)
	return s[:j]
}

// rowsOf runs sql and renders every row as one string, in order.
func rowsOf(t *testing.T, q audit.Querier, sql string) []string {
	t.Helper()
	rows, err := q.Query(context.Background(), sql, pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		v, err := r.Values()
		return fmt.Sprintf("%q", v), err
	})
	require.NoError(t, err)
	return out
}

// TestAuditViewsKeepTheirFindings proves that migration 00022, which moved
// audit.findings and audit.rls_coverage into functions without JIT and
// rewrote rls_coverage's per-row lookups as a join, changed no row: on a
// database with every deliberate breakage (and the role breakages), both
// views return what the queries they replaced (00015's findings, 00003's
// coverage) return, in the same order, as the auditor.
func TestAuditViewsKeepTheirFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	tdb := tenant.New(d.AppPool(t, 2))
	for i, name := range []string{"Scale A", "Scale B"} {
		tn := dbtest.NewTenant(t, tdb, name)
		// Column names differ between tenants: a breakage adds a global
		// unique index on database_columns.name.
		require.NoError(t, tdb.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			_, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "items", Columns: []catalog.ColumnSpec{
				{Name: fmt.Sprintf("label_%d", i), Type: "text"}, {Name: fmt.Sprintf("secret_%d", i), Type: "text", Restricted: true}}})
			return err
		}))
	}
	oldFindings := viewQuery(t, "00015_column_masks.sql", "CREATE OR REPLACE VIEW audit.findings WITH (security_invoker = true) AS\n")
	oldCoverage := viewQuery(t, "00003_audit.sql", "CREATE VIEW audit.rls_coverage WITH (security_invoker = true) AS\n")

	same := func(q audit.Querier, wantFindings bool) {
		t.Helper()
		got, want := rowsOf(t, q, `SELECT * FROM audit.findings`), rowsOf(t, q, oldFindings)
		require.Equal(t, wantFindings, len(want) > 0)
		// Rows tied on the sort keys may come in either order: compare the
		// sets, and the order of the sort keys.
		require.Equal(t, slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got)))
		keys := `SELECT level, lint, object, detail FROM (%s) f`
		require.Equal(t, rowsOf(t, q, fmt.Sprintf(keys, oldFindings)), rowsOf(t, q, `SELECT level, lint, object, detail FROM audit.findings`))
		require.Equal(t, rowsOf(t, q, oldCoverage), rowsOf(t, q, `SELECT * FROM audit.rls_coverage`))
	}

	conn, err := pgx.Connect(ctx, audittest.AuditorURL(t, d))
	require.NoError(t, err)
	defer conn.Close(ctx)
	same(conn, false) // clean
	audittest.Break(t, d.AdminPool(t))
	same(conn, true)
	audittest.InRoleTx(t, d, func(tx pgx.Tx) { same(tx, true) })

	// The views no longer run JIT, whatever the session allows.
	var settings []string
	require.NoError(t, conn.QueryRow(ctx, `SELECT array_agg(s ORDER BY s) FROM pg_proc p, unnest(p.proconfig) s
		WHERE p.oid IN ('audit.findings_rows()'::regprocedure, 'audit.rls_coverage_rows()'::regprocedure) AND s LIKE 'jit=%'`).Scan(&settings))
	require.Equal(t, []string{"jit=off", "jit=off"}, settings)
}

// functionBody is the body of the first function a migration's Up section
// creates with the given header: the text between "AS $body$" and "$body$;".
func functionBody(t *testing.T, file, header string) string {
	t.Helper()
	b, err := fs.ReadFile(db.Migrations, "migrations/"+file)
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, header)
	require.GreaterOrEqual(t, i, 0, "%s: %q", file, header)
	s = s[i:]
	start := strings.Index(s, "AS $body$\n")
	end := strings.Index(s, "\n$body$;")
	require.True(t, start > 0 && end > start, file)
	return s[start+len("AS $body$\n") : end]
}

// TestAuditAt10kKeepsItsFindings proves that migration 00033, which looks
// up the tables of views by oid, compares the tenant roles' grants by oid
// before naming them, and lets rls_coverage take findings already read,
// changed no row: on a database with every deliberate breakage and more
// tenant-role grants of each kind (schema, table, column, sequence,
// database; in and out of the role's own schema), audit.findings returns
// what 00032's query returns and audit.rls_coverage what 00022's coverage
// over it returns. `dbchat audit`'s coverage (audit.Collect, which hands
// the findings it read to rls_coverage_rows(jsonb)) is the view's.
func TestAuditAt10kKeepsItsFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	tdb := tenant.New(d.AppPool(t, 2))
	var schemas []string
	for i, name := range []string{"Reach A", "Reach B"} {
		tn := dbtest.NewTenant(t, tdb, name)
		schemas = append(schemas, tenant.Schema(tn.ID))
		// Column names differ between tenants: a breakage adds a global
		// unique index on database_columns.name.
		require.NoError(t, tdb.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			_, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "items", Columns: []catalog.ColumnSpec{
				{Name: fmt.Sprintf("label_%d", i), Type: "text"}, {Name: fmt.Sprintf("secret_%d", i), Type: "text", Restricted: true}}})
			return err
		}))
	}
	a, b := pgx.Identifier{schemas[0]}.Sanitize(), pgx.Identifier{schemas[1]}.Sanitize()
	am := pgx.Identifier{schemas[0] + "_m"}.Sanitize()
	admin := d.AdminPool(t)
	audittest.Break(t, admin)
	for _, stmt := range []string{
		// Views over a tenant's data table, in and out of its schema.
		`CREATE VIEW public.items_everywhere AS SELECT * FROM ` + a + `.items`,
		`CREATE VIEW ` + b + `.items_v AS SELECT label_1 FROM ` + b + `.items`,
		`CREATE MATERIALIZED VIEW public.items_m AS SELECT label_0 FROM ` + a + `.items`,
		// Tenant roles reaching further than their own schema's tables.
		`GRANT INSERT ON ` + a + `.items TO ` + am,
		`GRANT UPDATE (label_0) ON ` + a + `.items TO ` + am,
		`GRANT SELECT (label_1) ON ` + b + `.items TO ` + am,
		`GRANT SELECT ON ` + b + `.items TO ` + a,
		`GRANT CREATE ON SCHEMA ` + a + ` TO ` + a,
		`GRANT USAGE ON SCHEMA ` + b + ` TO ` + am,
		`CREATE SEQUENCE ` + b + `.counter`,
		`GRANT USAGE ON SEQUENCE ` + b + `.counter TO ` + am,
		`GRANT TEMPORARY ON DATABASE ` + pgx.Identifier{d.Name}.Sanitize() + ` TO ` + a,
	} {
		_, err := admin.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}

	old := functionBody(t, "00032_audit_query_logins.sql", "CREATE OR REPLACE FUNCTION audit.findings_rows()")
	oldCoverage := strings.Replace(functionBody(t, "00022_audit_at_scale.sql", "CREATE FUNCTION audit.rls_coverage_rows()"),
		"audit.findings_rows()", "("+old+")", 1)
	conn, err := pgx.Connect(ctx, audittest.AuditorURL(t, d))
	require.NoError(t, err)
	defer conn.Close(ctx)

	got, want := rowsOf(t, conn, `SELECT * FROM audit.findings`), rowsOf(t, conn, old)
	require.Equal(t, slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got)))
	reached := 0
	for _, r := range got {
		if strings.Contains(r, `"tenant_role_reaches_other_schema"`) {
			reached++
		}
	}
	require.Equal(t, 8, reached, "the eight grants above:\n%s", strings.Join(got, "\n"))
	all := strings.Join(got, "\n")
	for _, v := range []string{"public.items_everywhere", schemas[1] + ".items_v", "public.items_m"} {
		require.Contains(t, all, fmt.Sprintf(`"%s"`, v), "a view over a tenant table is reported")
	}

	byTable := `SELECT * FROM (%s) r ORDER BY CASE WHEN schema = 'dbchat' THEN 0 ELSE 1 END, schema COLLATE "C", table_name COLLATE "C"`
	require.Equal(t, rowsOf(t, conn, fmt.Sprintf(byTable, oldCoverage)), rowsOf(t, conn, `SELECT * FROM audit.rls_coverage`))

	rep, err := audit.Collect(ctx, conn)
	require.NoError(t, err)
	view, err := pgx.CollectRows(must(conn.Query(ctx, `SELECT schema, table_name, kind, rls_enabled, rls_forced, policies,
			coalesce(tenant_column, ''), has_tenant_id, keys_include_tenant_id, foreign_keys_include_tenant_id, verdict, coalesce(reason, '')
			FROM audit.rls_coverage`)), func(row pgx.CollectableRow) (c audit.Coverage, err error) {
		err = row.Scan(&c.Schema, &c.Table, &c.Kind, &c.RLSEnabled, &c.RLSForced, &c.Policies, &c.TenantColumn,
			&c.HasTenantID, &c.KeysIncludeTenantID, &c.ForeignKeysIncludeTenantID, &c.Verdict, &c.Reason)
		return c, err
	})
	require.NoError(t, err)
	require.Equal(t, view, rep.Coverage)
	failed := 0
	for _, c := range rep.Coverage {
		if c.Verdict == "fail" {
			failed++
		}
	}
	require.Positive(t, failed, "the breakages fail some tables")

	// The report counts the grants in the tenant schemas by kind; the
	// grants above that reach further show up as their own kinds.
	kinds := map[string]audit.GrantPattern{}
	for _, p := range rep.TenantSchemaGrants {
		kinds[p.ObjectType+" "+p.Grantee+" "+p.Privilege] = p
	}
	for kind, example := range map[string]string{
		"table t_<other> SELECT":     schemas[1] + ".items",
		"column t_<other>_m SELECT":  schemas[1] + ".items (label_1)",
		"table t_<tenant>_m INSERT":  schemas[0] + ".items",
		"column t_<tenant>_m UPDATE": schemas[0] + ".items (label_0)",
		"schema t_<tenant> CREATE":   schemas[0],
		"schema t_<other>_m USAGE":   schemas[1],
		"sequence t_<other>_m USAGE": schemas[1] + ".counter",
		"column t_<tenant> SELECT":   "",
		"column t_<tenant>_m SELECT": "",
		"schema t_<tenant>_m USAGE":  "",
	} {
		p, ok := kinds[kind]
		require.True(t, ok, "%s in %+v", kind, rep.TenantSchemaGrants)
		if example != "" {
			require.Equal(t, audit.GrantPattern{ObjectType: p.ObjectType, Grantee: p.Grantee, Privilege: p.Privilege, Grants: 1, Example: example}, p)
		}
	}
	// Each tenant role reads its table by column (migration 00035): every
	// column of both tables (tenant_id, _row_id and two labels), and no grant
	// on a table of its own.
	require.Equal(t, int64(8), kinds["column t_<tenant> SELECT"].Grants)
	_, onTable := kinds["table t_<tenant> SELECT"]
	require.False(t, onTable)

	// Likewise the policies: a tenant table whose policy differs is a kind
	// of its own, with that table as its example.
	_, err = admin.Exec(ctx, `ALTER POLICY tenant_isolation ON `+b+`.items USING (true)`)
	require.NoError(t, err)
	rep, err = audit.Collect(ctx, conn)
	require.NoError(t, err)
	tables := map[string]int64{}
	for _, p := range rep.TenantSchemaPolicies {
		if p.Policy == "tenant_isolation" {
			tables[p.Using] += p.Tables
			if p.Using == "true" {
				require.Equal(t, schemas[1]+".items", p.Example)
			}
		}
	}
	require.Equal(t, map[string]int64{"true": 1, "(tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid AS \"nullif\"))": 1}, tables)
	for _, g := range rep.Grants {
		require.NotRegexp(t, `^t_[0-9a-f]{32}$`, g.Schema)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
