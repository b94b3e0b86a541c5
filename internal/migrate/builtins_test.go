package migrate_test

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

var update = flag.Bool("update", false, "rewrite query_functions.txt from the rules (then review the diff)")

// ruleSQL derives the query role's functions from the catalog: what the
// parser's allowlist names, the operators and casts among the column types a
// tenant can have (and the types generated SQL produces), and what the
// tenant_isolation policy and SQL syntax call implicitly. $1 is the parser's
// function names.
const ruleSQL = `
WITH basic (oid) AS (
    SELECT t.oid FROM pg_catalog.pg_type t
    WHERE t.typnamespace = 'pg_catalog'::regnamespace
      AND t.typname IN ('bool', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'text', 'varchar',
                        'bpchar', 'name', 'date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval',
                        'uuid', 'json', 'jsonb', 'jsonpath', 'bytea')
),
allowed (oid) AS (
    SELECT oid FROM basic
    UNION SELECT t.typarray FROM pg_catalog.pg_type t JOIN basic b ON b.oid = t.oid WHERE t.typarray <> 0
    UNION SELECT t.oid FROM pg_catalog.pg_type t
    WHERE t.typnamespace = 'pg_catalog'::regnamespace
      AND t.typname IN ('record', 'anyelement', 'anyarray', 'anynonarray', 'anycompatible',
                        'anycompatiblearray', 'anycompatiblenonarray')
),
fits (oid) AS (
    SELECT p.oid FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND p.prorettype IN (SELECT oid FROM allowed)
      AND NOT EXISTS (SELECT FROM unnest(p.proargtypes::oid[]) a (t)
                      WHERE a.t NOT IN (SELECT oid FROM allowed) AND a.t <> '"any"'::regtype)
)
SELECT DISTINCT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
WHERE p.oid IN (
    SELECT oid FROM fits WHERE oid IN (SELECT p2.oid FROM pg_catalog.pg_proc p2 WHERE p2.proname = ANY ($1::text[]))
    UNION
    SELECT o.oprcode FROM pg_catalog.pg_operator o
    WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprcode IN (SELECT oid FROM fits)
      AND o.oprleft IN (SELECT oid FROM allowed UNION SELECT 0) AND o.oprright IN (SELECT oid FROM allowed)
    UNION
    SELECT c.castfunc FROM pg_catalog.pg_cast c
    WHERE c.castfunc IN (SELECT oid FROM fits)
      AND c.castsource IN (SELECT oid FROM allowed) AND c.casttarget IN (SELECT oid FROM allowed)
    UNION
    -- the tenant_isolation policy; SIMILAR TO and LIKE … ESCAPE
    SELECT s::regprocedure FROM unnest(ARRAY['pg_catalog.current_setting(text,boolean)',
        'pg_catalog.similar_to_escape(text)', 'pg_catalog.similar_to_escape(text,text)',
        'pg_catalog.like_escape(text,text)']) s
    UNION
    -- the claim policies (00012), which run as the statement's role
    SELECT s::regprocedure FROM unnest(ARRAY['dbchat.claim(text)', 'dbchat.claim_array(text)']) s
)
ORDER BY 1`

// The query role executes exactly the reviewed list: a PostgreSQL upgrade,
// an extension update or a migration that widens it fails here. The list is
// derived by ruleSQL; go test -run TestQueryRoleFunctions -update rewrites
// it, and the diff is what a reviewer reads.
func TestQueryRoleFunctions(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)

	derived := strings1(t, admin, ruleSQL, sqlguard.AllowedFunctions())
	reviewed := migrate.ParseFunctionList(migrate.QueryFunctions)
	if *update {
		header := "# Functions dbchat_query may execute: the reviewed allowlist (docs/SECURITY.md,\n" +
			"# \"The query role's functions\"). Derived by ruleSQL in builtins_test.go;\n" +
			"# regenerate with `go test ./internal/migrate -run TestQueryRoleFunctions -update`\n" +
			"# and review the diff. One regprocedure signature per line.\n"
		require.NoError(t, os.WriteFile("query_functions.txt", []byte(header+strings.Join(derived, "\n")+"\n"), 0o644))
		return
	}
	require.Equal(t, derived, reviewed, "the rules and query_functions.txt disagree: run with -update and review the diff")

	executable := strings1(t, admin, `SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
		WHERE has_function_privilege('dbchat_sandbox', p.oid, 'EXECUTE') ORDER BY 1`)
	require.Equal(t, reviewed, executable, "dbchat_sandbox executes functions outside the reviewed list (or misses some)")
	// A tenant's role (what statements run as) inherits exactly that, and
	// dbchat_query itself executes nothing.
	tn := dbtest.NewTenant(t, tenant.New(d.AppPool(t, 1)), "A")
	require.Equal(t, reviewed, strings1(t, admin, `SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
		WHERE has_function_privilege($1, p.oid, 'EXECUTE') ORDER BY 1`, tenant.Schema(tn.ID)))
	require.Empty(t, strings1(t, admin, `SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
		WHERE has_function_privilege('dbchat_query', p.oid, 'EXECUTE')`))

	for _, denied := range []string{"ts_stat(text)", "pg_sleep(double precision)", "setseed(double precision)",
		"pg_stat_get_backend_activity(integer)", "query_to_xml(text,boolean,boolean,text)", "pg_relation_size(regclass)",
		"to_regclass(text)", "pg_advisory_xact_lock(bigint)", "lo_create(oid)", "record_out(record)",
		"pg_get_functiondef(oid)", "current_setting(text)", "set_config(text,text,boolean)"} {
		require.NotContains(t, executable, denied)
	}
}

// Untrusted SQL reads no catalog and no information_schema view; the
// platform roles still read what PUBLIC could.
func TestQueryRoleReadsNoCatalog(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	readable := strings1(t, admin, `SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
		WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
		  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
		  AND (has_any_column_privilege('dbchat_query', c.oid, 'SELECT') OR has_any_column_privilege('dbchat_sandbox', c.oid, 'SELECT'))
		ORDER BY 1`)
	require.Empty(t, readable)
	for _, role := range []string{"dbchat_app", "dbchat_auditor", "dbchat_owner"} {
		var ok bool
		require.NoError(t, admin.QueryRow(context.Background(), `SELECT has_table_privilege($1, 'pg_catalog.pg_class', 'SELECT')
			AND has_function_privilege($1, 'pg_catalog.now()', 'EXECUTE')`, role).Scan(&ok))
		require.True(t, ok, role)
	}
}

func strings1(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	slices.Sort(out)
	return out
}

// Two migrate runs at once both succeed: the privileged steps that rewrite
// the built-in functions' grants take turns.
func TestConcurrentMigrateRestrictsOnce(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- migrate.Run(context.Background(), migrate.Options{AdminURL: d.AdminURL}) }()
	}
	for range 2 {
		require.NoError(t, <-errs)
	}
	require.Empty(t, strings1(t, d.AdminPool(t), `SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
		WHERE has_function_privilege('dbchat_query', p.oid, 'EXECUTE')`))
}
