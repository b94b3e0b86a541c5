package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/tenantio"
)

// tenantFingerprint is, per table of a tenant (every platform table from
// the catalog but api_keys and sessions, credentials that are never
// exported, every table of its data schema, its tenants row), the row
// count and an md5 of the rows without their tenant id, so
// two tenants holding the same content compare equal.
func tenantFingerprint(t *testing.T, admin *pgxpool.Pool, id uuid.UUID) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := admin.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname), n.nspname = 'dbchat'
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relname NOT IN ('api_keys', 'sessions')
		  AND (n.nspname = 'dbchat' AND c.relname <> 'tenants' OR n.nspname = $1)
		ORDER BY 1`, tenantio.SchemaOf(id))
	require.NoError(t, err)
	type rel struct {
		name     string
		platform bool
	}
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.name, &x.platform)
	})
	require.NoError(t, err)
	fp := map[string]string{}
	for _, r := range rels {
		key := r.name
		if !r.platform {
			key = "data." + strings.SplitN(r.name, ".", 2)[1]
		}
		var v string
		require.NoError(t, admin.QueryRow(ctx, fmt.Sprintf(`
			SELECT count(*) || ' ' || md5(coalesce(string_agg(j, E'\n' ORDER BY j), ''))
			FROM (SELECT (to_jsonb(x) - 'tenant_id')::text AS j FROM %s x WHERE tenant_id = $1) s`, r.name), id).Scan(&v))
		fp[key] = v
	}
	// The data tables' policies (tenant_isolation and claim policies), as
	// PostgreSQL enforces them, with their comments.
	var pols string
	require.NoError(t, admin.QueryRow(ctx, `SELECT coalesce(string_agg(format('%s %s %s %s %s %s', c.relname, p.polname, p.polpermissive,
			p.polcmd, pg_get_expr(p.polqual, p.polrelid), obj_description(p.oid, 'pg_policy')), E'\n' ORDER BY c.relname, p.polname), '')
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = to_regnamespace($1)`, tenantio.SchemaOf(id)).Scan(&pols))
	fp["policies"] = pols
	var tr string
	require.NoError(t, admin.QueryRow(ctx, `SELECT (to_jsonb(t) - 'id' - 'name' - 'slug' - 'created_at')::text FROM dbchat.tenants t WHERE id = $1`, id).Scan(&tr))
	fp["tenants"] = tr
	return fp
}

func runSQL(t *testing.T, s *dbtest.Sandboxed, id tenant.Identity, sql string) string {
	t.Helper()
	res, err := s.SQL.Run(tenant.NewContext(context.Background(), id), sandbox.Request{SQL: sql})
	require.NoError(t, err)
	b, err := json.Marshal(res.Rows)
	require.NoError(t, err)
	return string(b)
}

const roundTripSQL = `SELECT c.name, c.country, count(o.id) AS orders, sum(o.amount) AS total, max(o.ordered_at) AS last
	FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY 1, 2 ORDER BY 1, 2`

func TestTenantExportEraseImportRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := dbtest.NewSandboxed(t, 4)
	admin := s.AdminPool(t)
	vars := map[string]string{"DBCHAT_ADMIN_DATABASE_URL": s.AdminURL}

	tn, _ := s.DemoTenant(t, "Round Trip")
	dbtest.SeedEveryTable(t, s.Tenants, tn, "rtmarker")
	other, _ := s.DemoTenant(t, "Bystander")
	dbtest.SeedEveryTable(t, s.Tenants, other, "bymarker")

	answer := runSQL(t, s, tn.Identity, roundTripSQL)
	require.Contains(t, answer, "Ada")
	before := tenantFingerprint(t, admin, tn.ID)
	require.Contains(t, before, "data.customers")
	require.Contains(t, before["policies"], "claim_p_rtmarker")
	for table, v := range before {
		if table != "data.t_rtmarker" { // the seed's data table is empty
			require.False(t, strings.HasPrefix(v, "0 "), "the seed leaves %s empty", table)
		}
	}
	bystander := tenantFingerprint(t, admin, other.ID)

	file := filepath.Join(t.TempDir(), "rt.zip")
	r := run(t, vars, "tenant", "export", "--tenant", tn.Slug, "--out", file)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "exported tenant "+tn.Slug)
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Positive(t, st.Size())

	r = run(t, vars, "tenant", "erase", "--tenant", tn.Slug, "--confirm", tn.Slug, "--operator", "test-operator")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "0 rows; schema exists: false; role exists: false")
	requireErased(t, admin, tn.ID)
	var op string
	require.NoError(t, admin.QueryRow(ctx, `SELECT operator FROM dbchat_migrations.erasure_log WHERE tenant_id = $1`, tn.ID).Scan(&op))
	require.Equal(t, "test-operator", op)
	require.Equal(t, bystander, tenantFingerprint(t, admin, other.ID), "the other tenant is untouched")

	r = run(t, vars, "tenant", "import", "--in", file, "--name", "Round Trip Restored", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		Tenant struct {
			ID   uuid.UUID `json:"id"`
			Slug string    `json:"slug"`
		} `json:"tenant"`
		User struct {
			ID uuid.UUID `json:"id"`
		} `json:"user"`
		APIKey string `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Equal(t, "round-trip-restored", out.Tenant.Slug)
	require.NotEqual(t, tn.ID, out.Tenant.ID)
	require.True(t, strings.HasPrefix(out.APIKey, "dbc_"))
	require.Equal(t, tn.AdminID, out.User.ID, "the exported admin keeps its id and gets the fresh key")

	require.Equal(t, before, tenantFingerprint(t, admin, out.Tenant.ID), "row counts and checksums of every table")
	restored := tenant.Identity{TenantID: out.Tenant.ID, UserID: out.User.ID, Role: tenant.Admin}
	require.Equal(t, answer, runSQL(t, s, restored, roundTripSQL), "the same SQL answers the same rows")

	// The fresh key works and the restored tables keep growing after the copied rows.
	require.NoError(t, s.Tenants.TxAs(ctx, restored, func(tx tenant.Conn) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM dbchat.api_keys`).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("keys: %d %v", n, err)
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.customers (id, name) VALUES (99, 'New')`, tenantio.SchemaOf(out.Tenant.ID)))
		return err
	}))
}

// requireErased checks, as a superuser, what erase promises: no row of any
// table of the database mentions the id (the catalog scan, so every table
// is covered), and the schema and role are gone.
func requireErased(t *testing.T, admin *pgxpool.Pool, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	tx, err := admin.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	scan, err := tenantio.ScanFor(ctx, tx, id)
	require.NoError(t, err)
	require.True(t, scan.Clean(), "%+v", scan)
	require.Greater(t, scan.Tables, 10)
	var n int
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, tenantio.SchemaOf(id)).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, tenantio.SchemaOf(id)).Scan(&n))
	require.Zero(t, n)
}

func TestTenantEraseScanFindsLeftovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Leftover")
	// A table the platform knows nothing about, holding the id as text.
	_, err := admin.Exec(ctx, `CREATE TABLE public.stray (note text)`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `INSERT INTO public.stray VALUES ('copied ' || $1::text)`, tn.ID.String())
	require.NoError(t, err)
	r := run(t, map[string]string{"DBCHAT_ADMIN_DATABASE_URL": d.AdminURL}, "tenant", "erase", "--tenant", tn.Slug, "--confirm", tn.Slug, "--operator", "x")
	requireOneLineError(t, r, "erase incomplete, rolled back", "public.stray")
	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.tenants WHERE id = $1`, tn.ID).Scan(&n))
	require.Equal(t, 1, n, "nothing erased")
}

func TestTenantEraseAndExportRefuseBadInput(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Keep Me")
	dbtest.SeedEveryTable(t, db, tn, "kmarker")
	before := tenantFingerprint(t, admin, tn.ID)
	vars := map[string]string{"DBCHAT_ADMIN_DATABASE_URL": d.AdminURL}

	requireOneLineError(t, run(t, vars, "tenant", "erase", "--tenant", "no-such", "--confirm", "no-such"), `no tenant "no-such"`)
	requireOneLineError(t, run(t, vars, "tenant", "erase", "--tenant", tn.Slug, "--confirm", "keep-you"),
		`--confirm "keep-you" does not match the tenant's slug "keep-me": nothing erased`)
	require.Equal(t, 2, run(t, vars, "tenant", "erase", "--tenant", tn.Slug).code, "--confirm is required")
	require.Equal(t, before, tenantFingerprint(t, admin, tn.ID), "nothing erased")

	file := filepath.Join(t.TempDir(), "x.zip")
	requireOneLineError(t, run(t, vars, "tenant", "export", "--tenant", "no-such", "--out", file), `no tenant "no-such"`)
	_, err := os.Stat(file)
	require.True(t, os.IsNotExist(err), "no file for an unknown tenant")
	requireOneLineError(t, run(t, map[string]string{"DBCHAT_ADMIN_DATABASE_URL": d.AppURL}, "tenant", "export", "--tenant", tn.Slug, "--out", file),
		"neither superuser nor BYPASSRLS")

	bad := filepath.Join(t.TempDir(), "bad.zip")
	require.NoError(t, os.WriteFile(bad, []byte("not a zip"), 0o600))
	requireOneLineError(t, run(t, vars, "tenant", "import", "--in", bad, "--name", "Nope"), "bad.zip")
}

// TestTenantImportNextToTheOriginal: a copy of a tenant imported while the
// original exists gets everything but what must stay unique across tenants
// (an identity provider's issuer), which fails the import as a whole.
func TestTenantImportNextToTheOriginal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Original")
	dbtest.SeedEveryTable(t, db, tn, "omarker")
	vars := map[string]string{"DBCHAT_ADMIN_DATABASE_URL": d.AdminURL}

	file := filepath.Join(t.TempDir(), "o.zip")
	require.Equal(t, 0, run(t, vars, "tenant", "export", "--tenant", tn.Slug, "--out", file).code)
	requireOneLineError(t, run(t, vars, "tenant", "import", "--in", file, "--name", "Copy"),
		"Key (issuer)=(https://omarker.idp.invalid) already exists", "identity_providers_issuer_key", "nothing imported")
	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.tenants`).Scan(&n))
	require.Equal(t, 1, n, "no tenant half-imported")
	requireOneLineError(t, run(t, vars, "tenant", "import", "--in", file, "--name", "Original"), `a tenant with slug "original" already exists`)
}
