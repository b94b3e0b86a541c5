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
