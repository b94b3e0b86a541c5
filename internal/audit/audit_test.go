package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/audit/audittest"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// findingsOf lists "lint object" for every row of audit.findings.
func findingsOf(t *testing.T, q audit.Querier) []string {
	t.Helper()
	rows, err := q.Query(context.Background(), `SELECT lint || ' ' || object FROM audit.findings`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func TestMigratedDatabaseHasNoFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	// Tenant data schemas are covered too: give the database two tenants
	// with a managed table each.
	for _, name := range []string{"Audit A", "Audit B"} {
		tn := dbtest.NewTenant(t, db, name)
		dbtest.SeedEveryTable(t, db, tn, strings.ReplaceAll(strings.ToLower(name), " ", ""))
		err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			_, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "items", Columns: []catalog.ColumnSpec{{Name: "label", Type: "text"}}})
			return err
		})
		require.NoError(t, err)
	}

	conn, err := pgx.Connect(ctx, audittest.AuditorURL(t, d))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var user string
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	require.Equal(t, "dbchat_auditor", user, "the views are read as the auditor")

	rep, err := audit.Collect(ctx, conn)
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "a migrated database is clean")
	require.True(t, rep.Summary.Clean)
	require.Equal(t, "dbchat_auditor", rep.Database.User)
	require.NotZero(t, rep.Migration)

	var platform, data int
	for _, c := range rep.Coverage {
		require.Equal(t, "ok", c.Verdict, "%s: %s", c.Name(), c.Reason)
		require.True(t, c.RLSEnabled && c.RLSForced && c.HasTenantID && c.KeysIncludeTenantID && c.ForeignKeysIncludeTenantID, c.Name())
		wantPolicies := []string{"tenant_isolation"}
		if c.Name() == "dbchat.conversations" || c.Name() == "dbchat.messages" || c.Name() == "dbchat.query_history" {
			wantPolicies = []string{"owner_or_admin", "tenant_isolation"} // members see their own only
		}
		if c.Kind == "tenant data" && c.Table != "items" {
			// dbtest's seeded table t_<marker> has a claim policy (restrictive).
			wantPolicies = []string{"claim_p_" + strings.TrimPrefix(c.Table, "t_"), "tenant_isolation"}
		}
		require.Equal(t, wantPolicies, c.Policies, c.Name())
		switch c.Kind {
		case "platform":
			platform++
		case "tenant data":
			data++
			require.True(t, strings.HasPrefix(c.Schema, "t_"), c.Schema)
		}
		if c.Name() == "dbchat.tenants" {
			require.Equal(t, "id", c.TenantColumn)
			require.Contains(t, c.Reason, "tenants_slug_key", "the slug key is the documented exception")
		} else {
			require.Equal(t, "tenant_id", c.TenantColumn)
		}
	}
	require.Equal(t, len(dbtest.SeededTables), platform, "every platform table is covered")
	require.Equal(t, 4, data, "every tenant data table is covered (items and the seeded t_<marker>)")

	roles := map[string]audit.Role{}
	for _, r := range rep.Roles {
		// The query logins dbchat_query_<k> (migration 00031), which other
		// tests' databases may have made (roles are cluster-wide), are
		// dbchat_query's twins.
		if strings.HasPrefix(r.Role, "dbchat_query_") {
			require.True(t, r.Login, r.Role)
			require.False(t, r.BypassRLS || r.Superuser, r.Role)
			require.Zero(t, r.OwnedRelations, r.Role)
			continue
		}
		roles[r.Role] = r
	}
	require.Len(t, roles, 7)
	require.True(t, roles["dbchat_operator"].BypassRLS)
	require.False(t, roles["dbchat_operator"].Login)
	require.False(t, roles["dbchat_app"].BypassRLS || roles["dbchat_app"].Superuser)
	require.Zero(t, roles["dbchat_app"].OwnedRelations)
	require.Contains(t, roles["dbchat_operator"].Members, "dbchat_owner")
	// Tenant roles are counted, not named: every tenant's two roles are
	// members of dbchat_sandbox (this database's and, roles being
	// cluster-wide, other tests' databases').
	for _, r := range rep.Roles {
		for _, n := range append(slices.Clone(r.MemberOf), r.Members...) {
			require.NotRegexp(t, `^t_[0-9a-f]{32}(_m)?$`, n, r.Role)
		}
	}
	var tenantRoles int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_roles r JOIN pg_namespace n ON n.nspname = left(r.rolname, 34)
		WHERE r.rolname ~ '^t_[0-9a-f]{32}(_m)?$'`).Scan(&tenantRoles))
	require.Positive(t, tenantRoles)
	require.GreaterOrEqual(t, roles["dbchat_sandbox"].TenantMembers, tenantRoles)
	require.Positive(t, roles["dbchat_query"].TenantMemberOf)

	// Policies: tenant_isolation on every platform table, and owner_or_admin
	// on conversations, messages and query_history; in the tenant schemas,
	// counted by kind, tenant_isolation on every data table and the seeded
	// claim policy of each of the two tenants.
	require.Len(t, rep.Policies, platform+3)
	check := func(policy, kind, command, using string) {
		t.Helper()
		switch {
		case policy == "owner_or_admin":
			require.Equal(t, "RESTRICTIVE", kind)
			require.Contains(t, using, "current_setting('app.user_id'")
		case strings.HasPrefix(policy, "claim_"):
			require.Equal(t, "RESTRICTIVE", kind)
			require.Equal(t, "SELECT", command)
			require.Contains(t, using, "dbchat.claim(")
		default:
			require.Equal(t, "PERMISSIVE", kind)
			require.Equal(t, "ALL", command)
			require.Contains(t, using, "current_setting('app.tenant_id'")
		}
	}
	for _, p := range rep.Policies {
		require.Equal(t, "dbchat", p.Schema)
		check(p.Policy, p.Kind, p.Command, p.Using)
	}
	require.Len(t, rep.TenantSchemaPolicies, 1+2)
	for _, p := range rep.TenantSchemaPolicies {
		check(p.Policy, p.Kind, p.Command, p.Using)
		require.True(t, strings.HasPrefix(p.Example, "t_"), p.Example)
		if p.Policy == "tenant_isolation" {
			require.Equal(t, int64(data), p.Tables, "one kind for every data table's policy")
		} else {
			require.Equal(t, int64(1), p.Tables)
		}
	}

	// Grants: outside the tenant schemas row by row, the query login holding
	// nothing of its own but CONNECT and the hardened set_config listed;
	// inside them counted by kind: each tenant's role has SELECT on its data
	// tables' columns, and no tenant role reaches another tenant's schema.
	setConfig := false
	for _, g := range rep.Grants {
		require.False(t, strings.HasPrefix(g.Schema, "t_"), "%+v is counted, not listed", g)
		require.False(t, g.Grantee == "dbchat_query" && g.ObjectType != "database", "%+v", g)
		if strings.HasPrefix(g.Object, "pg_catalog.set_config(") {
			setConfig = true
			require.NotEqual(t, "PUBLIC", g.Grantee, "set_config is revoked from PUBLIC")
		}
	}
	require.True(t, setConfig)
	kinds := map[string]int64{}
	for _, p := range rep.TenantSchemaGrants {
		kinds[p.ObjectType+" "+p.Grantee+" "+p.Privilege] += p.Grants
		require.NotContains(t, []string{"t_<other>", "t_<other>_m", "dbchat_query", "PUBLIC"}, p.Grantee, "%+v", p)
		require.True(t, strings.HasPrefix(p.Example, "t_"), "%+v", p)
	}
	// Each tenant role reads its data tables by column (migration 00035), so
	// none has a grant on a table: that would read the system columns too.
	require.Zero(t, kinds["table t_<tenant> SELECT"])
	require.GreaterOrEqual(t, kinds["column t_<tenant> SELECT"], int64(data))
	require.Equal(t, int64(2), kinds["schema t_<tenant> USAGE"])
	require.Equal(t, int64(2), kinds["schema t_<tenant>_m USAGE"])

	// Every view has a comment a DBA sees in \dv+.
	var uncommented []string
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace
		AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL`)
	require.NoError(t, err)
	uncommented, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, uncommented)

	// The runtime role (GET /v1/admin/audit) reads the same report through
	// a tenant transaction; the query role may not read the views at all.
	err = db.TxAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		rep, err := audit.Collect(ctx, tx)
		if err == nil && len(rep.Findings) > 0 {
			err = fmt.Errorf("findings as dbchat_app: %v", rep.Findings)
		}
		return err
	})
	require.NoError(t, err)
	_, err = d.QueryPool(t, 1).Exec(ctx, `SELECT * FROM audit.findings`)
	var pg *pgconn.PgError
	require.True(t, errors.As(err, &pg), "%v", err)
	require.Equal(t, "42501", pg.Code, "dbchat_query may not read the audit views")
}

// TestEachLintReportsItsProblem creates each problem on purpose in a scratch
// database and checks that the right lint reports it, as the auditor sees it.
func TestEachLintReportsItsProblem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	auditorURL := audittest.AuditorURL(t, d)
	audittest.Break(t, admin)

	conn, err := pgx.Connect(ctx, auditorURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	got := findingsOf(t, conn)
	for _, b := range audittest.Breakages {
		require.Contains(t, got, b.Lint+" "+b.Object, "%s\nfindings:\n%s", b.SQL, strings.Join(got, "\n"))
	}
	rep, err := audit.Collect(ctx, conn)
	require.NoError(t, err)
	require.False(t, rep.Summary.Clean)
	require.Len(t, rep.Findings, len(got))
	for _, f := range rep.Findings {
		require.Contains(t, []string{audit.LevelError, audit.LevelWarn}, f.Level)
		require.NotEmpty(t, f.Detail, f.Lint)
		require.NotEmpty(t, f.Remedy, f.Lint)
	}

	// The coverage view agrees: the broken tables fail or warn, with the
	// lint named in the reason.
	verdicts := map[string]audit.Coverage{}
	for _, c := range rep.Coverage {
		verdicts[c.Name()] = c
	}
	require.Equal(t, "fail", verdicts["dbchat.no_rls"].Verdict)
	require.Contains(t, verdicts["dbchat.no_rls"].Reason, "rls_disabled_in_tenant_table")
	require.Equal(t, "fail", verdicts["dbchat.users"].Verdict)
	require.False(t, verdicts["dbchat.users"].RLSForced)
	require.Equal(t, "warn", verdicts["dbchat.no_check"].Verdict)
	require.False(t, verdicts["dbchat.no_tenant"].HasTenantID)
	require.Empty(t, verdicts["dbchat.no_tenant"].TenantColumn)
	require.False(t, verdicts["dbchat.database_columns"].KeysIncludeTenantID)
	require.False(t, verdicts["dbchat.query_history"].ForeignKeysIncludeTenantID)
	require.Equal(t, "ok", verdicts["dbchat.tenants"].Verdict, "untouched tables stay ok")

	// Role problems are cluster-wide: made and checked inside a transaction
	// that is rolled back, so no other test ever sees them.
	audittest.InRoleTx(t, d, func(tx pgx.Tx) {
		got := findingsOf(t, tx)
		for _, b := range audittest.RoleBreakages {
			require.Contains(t, got, b.Lint+" "+b.Object, b.SQL)
		}
		// A tenant role with a grant on the database itself reaches too far.
		var dbName string
		_, err := tx.Exec(ctx, `DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO `+audittest.BrokenTenantRole+`', current_database()); END $$`)
		require.NoError(t, err)
		require.NoError(t, tx.QueryRow(ctx, `SELECT quote_ident(current_database())`).Scan(&dbName))
		require.Contains(t, findingsOf(t, tx), "tenant_role_reaches_other_schema "+dbName)
		rep, err := audit.Collect(ctx, tx)
		require.NoError(t, err)
		require.NotEmpty(t, rep.FindingsFor("runtime_role_bypassrls"))
		// A superuser holds every privilege: the superuser lint says so once
		// instead of a privilege finding per object (the auditor's and the
		// runtime role's deliberate grants above are subsumed).
		require.Empty(t, rep.FindingsFor("auditor_reads_tenant_rows"))
		require.Empty(t, rep.FindingsFor("runtime_role_can_create"))
	})
}

// TestPerRowLintSeesThroughParentheses checks the scalar-subquery test on
// mixed and nested expressions.
func TestPerRowLintSeesThroughParentheses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	const sub = `(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)`
	for name, expr := range map[string]string{
		"ok_nested":    `(tenant_id = ` + sub + `) AND (tenant_id IS NOT NULL)`,
		"ok_in":        `tenant_id IN (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)`,
		"bad_mixed":    `(tenant_id = ` + sub + `) AND (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)`,
		"bad_coalesce": `tenant_id = coalesce(nullif(current_setting('app.tenant_id', true), ''), '')::uuid`,
	} {
		_, err := admin.Exec(ctx, fmt.Sprintf(`CREATE TABLE dbchat.%[1]s (tenant_id uuid NOT NULL PRIMARY KEY);
			ALTER TABLE dbchat.%[1]s ENABLE ROW LEVEL SECURITY; ALTER TABLE dbchat.%[1]s FORCE ROW LEVEL SECURITY;
			CREATE POLICY tenant_isolation ON dbchat.%[1]s USING (%[2]s) WITH CHECK (tenant_id = %[3]s)`, name, expr, sub))
		require.NoError(t, err, name)
	}
	got := strings.Join(findingsOf(t, admin), "\n")
	require.Contains(t, got, "policy_reads_setting_per_row dbchat.bad_mixed")
	require.Contains(t, got, "policy_reads_setting_per_row dbchat.bad_coalesce")
	require.NotContains(t, got, "dbchat.ok_nested")
	require.NotContains(t, got, "dbchat.ok_in")
}

// TestClaimPolicyLints shows the end-user policy lints on a tenant's data
// table: a claim policy made the documented way (restrictive, on a column,
// next to tenant_isolation) is clean; a permissive one, one that reads no
// column, and the table losing tenant_isolation are each reported.
func TestClaimPolicyLints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Claim lints")
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "sales", Columns: []catalog.ColumnSpec{
			{Name: "region", Type: "text"}, {Name: "amount", Type: "numeric"}}})
		if err != nil {
			return err
		}
		_, err = catalog.CreatePolicy(ctx, tx, tbl.ID, catalog.PolicySpec{Name: "own_region", Column: "region", Claim: "region", Op: catalog.OpEq})
		return err
	}))
	conn, err := pgx.Connect(ctx, audittest.AuditorURL(t, d))
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Empty(t, findingsOf(t, conn), "a claim policy made by create_claim_policy is clean")

	sales := tenant.Schema(tn.ID) + ".sales"
	admin := d.AdminPool(t)
	for _, c := range []struct{ sql, finding string }{
		{`CREATE POLICY claim_loose ON ` + sales + ` FOR SELECT USING (region = (SELECT dbchat.claim('region')))`,
			"permissive_policy_not_tenant_isolation " + sales},
		{`CREATE POLICY claim_nowhere ON ` + sales + ` AS RESTRICTIVE FOR SELECT USING ((SELECT dbchat.claim('region')) IS NOT NULL)`,
			"claim_policy_column_missing " + sales},
		{`DROP POLICY tenant_isolation ON ` + sales, "end_user_policy_without_tenant_isolation " + sales},
	} {
		_, err := admin.Exec(ctx, c.sql)
		require.NoError(t, err, c.sql)
		require.Contains(t, findingsOf(t, conn), c.finding, c.sql)
	}
	var detail string
	require.NoError(t, conn.QueryRow(ctx, `SELECT string_agg(detail, ' | ') FROM audit.findings WHERE lint = 'claim_policy_column_missing'`).Scan(&detail))
	require.Contains(t, detail, "claim_nowhere")
	require.NotContains(t, detail, "claim_own_region", "it reads its column")
}
