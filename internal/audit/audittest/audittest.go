// Package audittest holds what the audit tests of several packages share:
// a login for dbchat_auditor on a test database, and the catalogue of
// deliberate breakages, each paired with the lint that must report it.
// Only tests import it.
package audittest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
)

// roleLock is the advisory lock `dbchat migrate` holds (in the maintenance
// database) while it alters the cluster-wide roles (migrate.lockKey). Tests
// hold it too while they alter a role, so that parallel test processes never
// update the same pg_authid row at once ("tuple concurrently updated").
const roleLock = 0x6462636861740001

// AuditorPassword is the one password every test gives dbchat_auditor; it is
// derived from the admin URL, so parallel test processes agree on it.
func AuditorPassword(adminURL string) string {
	sum := sha256.Sum256([]byte("dbchat-test-auditor:" + adminURL))
	return hex.EncodeToString(sum[:16])
}

// AuditorURL returns a dbchat_auditor login to d, setting the role's
// password first if it does not work yet (dbtest sets none; roles are
// cluster-wide, so the password is the same for every test).
func AuditorURL(t testing.TB, d *dbtest.DB) string {
	t.Helper()
	ctx := context.Background()
	admin := dbtest.AdminURL(t)
	pw := AuditorPassword(admin)
	u, err := url.Parse(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(migrate.AuditorRole, pw)
	auditor := u.String()
	if conn, err := pgx.Connect(ctx, auditor); err == nil {
		_ = conn.Close(ctx)
		return auditor
	}
	WithRoleLock(t, func() {
		conn, err := pgx.Connect(ctx, d.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var stmt string
		if err := conn.QueryRow(ctx, `SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)`, migrate.AuditorRole, pw).Scan(&stmt); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("set the auditor's password: %v", err)
		}
	})
	return auditor
}

// WithRoleLock runs fn while holding the lock migrate takes around role
// changes.
func WithRoleLock(t testing.TB, fn func()) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(dbtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(roleLock)); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(roleLock)) //nolint:errcheck // closing the connection releases it too
	fn()
}

// Breakage is one isolation problem created on purpose and the finding it
// must produce.
type Breakage struct {
	Lint   string // the lint that must report it
	Object string // audit.findings.object of that finding
	SQL    string // run by the admin in the scratch database
}

// Breakages are per-database problems (tables, policies, functions, grants,
// ownership), so they can be committed in a scratch database without
// touching the cluster-wide roles other tests use.
var Breakages = []Breakage{
	{"rls_disabled_in_tenant_table", "dbchat.no_rls",
		`CREATE TABLE dbchat.no_rls (tenant_id uuid NOT NULL, id int, PRIMARY KEY (tenant_id, id))`},
	{"policy_exists_rls_disabled", "dbchat.rls_off",
		`CREATE TABLE dbchat.rls_off (tenant_id uuid NOT NULL PRIMARY KEY);
		 CREATE POLICY tenant_isolation ON dbchat.rls_off
		     USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
		     WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))`},
	{"rls_not_forced", "dbchat.users", `ALTER TABLE dbchat.users NO FORCE ROW LEVEL SECURITY`},
	{"rls_enabled_no_policy", "dbchat.no_policy",
		`CREATE TABLE dbchat.no_policy (tenant_id uuid NOT NULL PRIMARY KEY);
		 ALTER TABLE dbchat.no_policy ENABLE ROW LEVEL SECURITY; ALTER TABLE dbchat.no_policy FORCE ROW LEVEL SECURITY`},
	{"permissive_policy_always_true", "dbchat.api_keys", `CREATE POLICY open ON dbchat.api_keys USING (true)`},
	{"policy_not_tenant_scoped", "dbchat.models", `CREATE POLICY by_flag ON dbchat.models FOR SELECT USING (tenant_id IS NOT NULL)`},
	{"policy_without_with_check", "dbchat.no_check",
		`CREATE TABLE dbchat.no_check (tenant_id uuid NOT NULL PRIMARY KEY);
		 ALTER TABLE dbchat.no_check ENABLE ROW LEVEL SECURITY; ALTER TABLE dbchat.no_check FORCE ROW LEVEL SECURITY;
		 CREATE POLICY tenant_isolation ON dbchat.no_check USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))`},
	{"policy_reads_setting_per_row", "dbchat.per_row",
		`CREATE TABLE dbchat.per_row (tenant_id uuid NOT NULL PRIMARY KEY);
		 ALTER TABLE dbchat.per_row ENABLE ROW LEVEL SECURITY; ALTER TABLE dbchat.per_row FORCE ROW LEVEL SECURITY;
		 CREATE POLICY tenant_isolation ON dbchat.per_row
		     USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
		     WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))`},
	{"multiple_permissive_policies", "dbchat.training_data",
		`CREATE POLICY second ON dbchat.training_data FOR SELECT
		     USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))`},
	{"view_without_security_invoker", "dbchat.user_emails", `CREATE VIEW dbchat.user_emails AS SELECT tenant_id, email FROM dbchat.users`},
	{"materialized_view_tenant_data", "public.key_counts",
		`CREATE MATERIALIZED VIEW public.key_counts AS SELECT tenant_id, count(*) FROM dbchat.api_keys GROUP BY 1`},
	{"foreign_table_tenant_data", "dbchat.remote_rows",
		`CREATE FOREIGN DATA WRAPPER audit_test_fdw;
		 CREATE SERVER audit_test_server FOREIGN DATA WRAPPER audit_test_fdw;
		 CREATE FOREIGN TABLE dbchat.remote_rows (tenant_id uuid NOT NULL) SERVER audit_test_server`},
	{"security_definer_search_path_mutable", "dbchat.unpinned()",
		`CREATE FUNCTION dbchat.unpinned() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
		 REVOKE ALL ON FUNCTION dbchat.unpinned() FROM PUBLIC`},
	{"security_definer_executable_by_public", "dbchat.public_definer()",
		`CREATE FUNCTION dbchat.public_definer() RETURNS int LANGUAGE sql SECURITY DEFINER
		     SET search_path = pg_catalog, pg_temp AS 'SELECT 1'`},
	{"runtime_role_owns_objects", "public.app_owned",
		`CREATE TABLE public.app_owned (x int); ALTER TABLE public.app_owned OWNER TO dbchat_app`},
	{"runtime_role_can_create", "public", `GRANT CREATE ON SCHEMA public TO dbchat_app`},
	{"query_role_can_write", "dbchat.database_tables", `GRANT INSERT ON dbchat.database_tables TO dbchat_query`},
	{"query_role_reads_platform_tables", "dbchat.query_history", `GRANT SELECT ON dbchat.query_history TO dbchat_query`},
	{"query_role_can_set_config", "pg_catalog.set_config(text, text, boolean)",
		`GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO dbchat_query`},
	{"query_role_can_call_hardened_function", "pg_catalog.pg_notify(text, text)",
		`GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO PUBLIC`},
	{"auditor_reads_tenant_rows", "dbchat.no_policy", `GRANT SELECT ON dbchat.no_policy TO dbchat_auditor`},
	{"operator_role_owns_objects", "public.op_owned",
		`CREATE TABLE public.op_owned (x int); ALTER TABLE public.op_owned OWNER TO dbchat_operator`},
	{"tenant_table_without_tenant_id", "dbchat.no_tenant", `CREATE TABLE dbchat.no_tenant (id int PRIMARY KEY)`},
	{"unique_key_without_tenant_id", "dbchat.database_columns",
		`CREATE UNIQUE INDEX database_columns_global_name ON dbchat.database_columns (name)`},
	{"foreign_key_without_tenant_id", "dbchat.query_history",
		`ALTER TABLE dbchat.query_history ADD COLUMN other_tenant uuid REFERENCES dbchat.tenants (id)`},
	{"untrusted_sql_dangerous_function", "pg_catalog.ts_stat(text)",
		`GRANT EXECUTE ON FUNCTION pg_catalog.ts_stat(text) TO dbchat_sandbox`},
	{"untrusted_sql_function_not_reviewed", "pg_catalog.version()",
		`GRANT EXECUTE ON FUNCTION pg_catalog.version() TO PUBLIC`},
	{"untrusted_sql_reads_catalog", "pg_catalog.pg_namespace", `GRANT SELECT ON pg_catalog.pg_namespace TO PUBLIC`},
	{"extension_in_public", "pgcrypto", `CREATE EXTENSION pgcrypto SCHEMA public`},
	// End-user (claim) policies (00014).
	{"claim_policy_column_missing", "dbchat.models",
		`CREATE POLICY claim_nowhere ON dbchat.models AS RESTRICTIVE FOR SELECT USING ((SELECT dbchat.claim('region')) IS NOT NULL)`},
	{"permissive_policy_not_tenant_isolation", "dbchat.conversations",
		`CREATE POLICY claim_region_loose ON dbchat.conversations FOR SELECT
		     USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid) AND title = (SELECT dbchat.claim('region')))`},
	{"end_user_policy_without_tenant_isolation", "dbchat.claims_only",
		`CREATE TABLE dbchat.claims_only (tenant_id uuid NOT NULL PRIMARY KEY, region text);
		 ALTER TABLE dbchat.claims_only ENABLE ROW LEVEL SECURITY; ALTER TABLE dbchat.claims_only FORCE ROW LEVEL SECURITY;
		 CREATE POLICY claim_region ON dbchat.claims_only AS RESTRICTIVE FOR SELECT USING (region = (SELECT dbchat.claim('region')))`},
	{"unindexed_foreign_key", "dbchat.api_keys",
		`ALTER TABLE dbchat.api_keys ADD COLUMN model_id uuid, ADD FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (tenant_id, id)`},
}

// BrokenTenantRole is a tenant role (named like a tenant schema of the
// scratch database) that reaches too far; it exists only in InRoleTx.
const BrokenTenantRole = "t_00000000000000000000000000000b0b"

// RoleBreakages alter the cluster-wide roles, so they are only ever made
// inside a transaction that is rolled back (see InRoleTx): other tests, in
// other databases of the same cluster, never see them.
var RoleBreakages = []Breakage{
	{"runtime_role_superuser", "dbchat_app", `ALTER ROLE dbchat_app SUPERUSER`},
	{"runtime_role_bypassrls", "dbchat_app", `ALTER ROLE dbchat_app BYPASSRLS`},
	{"role_superuser", "dbchat_auditor", `ALTER ROLE dbchat_auditor SUPERUSER`},
	{"role_bypassrls", "dbchat_owner", `ALTER ROLE dbchat_owner BYPASSRLS`},
	{"operator_role_can_login", "dbchat_operator", `ALTER ROLE dbchat_operator LOGIN`},
	{"login_role_membership", "dbchat_query", `GRANT dbchat_owner TO dbchat_query`},
	{"tenant_role_reaches_other_schema", "dbchat",
		`CREATE SCHEMA ` + BrokenTenantRole + `; CREATE ROLE ` + BrokenTenantRole + ` NOLOGIN; GRANT USAGE ON SCHEMA dbchat TO ` + BrokenTenantRole},
	{"tenant_role_membership", BrokenTenantRole, `GRANT dbchat_app TO ` + BrokenTenantRole},
}

// Break applies every Breakage to d (committed: d is a scratch database).
func Break(t testing.TB, admin *pgxpool.Pool) {
	t.Helper()
	for _, b := range Breakages {
		if _, err := admin.Exec(context.Background(), b.SQL); err != nil {
			t.Fatalf("break %s: %v\n%s", b.Lint, err, b.SQL)
		}
	}
}

// InRoleTx runs the RoleBreakages in a transaction on d's admin connection,
// hands the transaction to fn, and rolls it back, holding the role lock.
func InRoleTx(t testing.TB, d *dbtest.DB, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	WithRoleLock(t, func() {
		conn, err := pgx.Connect(ctx, d.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // the point is to roll back
		for _, b := range RoleBreakages {
			if _, err := tx.Exec(ctx, b.SQL); err != nil {
				t.Fatalf("break %s: %v", b.Lint, err)
			}
		}
		fn(tx)
	})
}
