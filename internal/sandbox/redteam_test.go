package sandbox_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// bMarker is in every one of tenant B's rows; no response to A may contain it.
const bMarker = "zzbravosecret"

// redTeam is a tenant A attacking the sandbox while tenant B's data, in
// every platform table and in a data table with the same name as A's,
// carries bMarker.
type redTeam struct {
	*fixture
	admin *pgxpool.Pool
	start time.Time
}

func newRedTeam(t testing.TB, skipParser bool) *redTeam {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	dbtest.SeedEveryTable(t, f.db, f.b, bMarker)
	err := f.db.TxAs(ctx, f.b.Identity, func(tx tenant.Conn) error {
		tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "secrets", Columns: []catalog.ColumnSpec{{Name: "v", Type: "text"}}})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (v) VALUES ($1)`, bMarker); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{tbl.Schema, "items"}.Sanitize()+` (id, label) VALUES (3, $1)`, bMarker)
		return err
	})
	require.NoError(t, err)
	if skipParser {
		f.svc.SkipParserForTests()
	}
	time.Sleep(10 * time.Millisecond) // history rows written by the attack are newer than start
	return &redTeam{fixture: f, admin: f.d.AdminPool(t), start: time.Now()}
}

// hostile returns the attack corpus; %B is tenant B's id, %S its schema.
func hostile(bID, bSchema string) []string {
	list := []string{
		// more than one statement
		`SELECT 1; SELECT * FROM %S.secrets`,
		`SELECT 1; DELETE FROM items`,
		`SELECT label FROM items;; UPDATE items SET label = 'x'`,
		// DML, DDL, COPY, utility, transaction control
		`DELETE FROM items`,
		`UPDATE items SET label = 'owned'`,
		`INSERT INTO items (id, label) VALUES (99, 'x')`,
		`TRUNCATE items`,
		`DROP TABLE items`,
		`CREATE TABLE stolen AS SELECT * FROM items`,
		`ALTER TABLE items DISABLE ROW LEVEL SECURITY`,
		`DROP POLICY tenant_isolation ON items`,
		`GRANT SELECT ON items TO PUBLIC`,
		`COPY items TO STDOUT`,
		`COPY (SELECT * FROM %S.secrets) TO '/tmp/stolen'`,
		`COPY items FROM '/etc/passwd'`,
		`VACUUM items`,
		`DO $$ BEGIN PERFORM set_config('app.tenant_id', '%B', false); END $$`,
		`CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`PREPARE p AS SELECT * FROM %S.secrets`,
		`LISTEN dbchat`,
		`NOTIFY dbchat, 'x'`,
		`LOCK TABLE items IN ACCESS EXCLUSIVE MODE`,
		`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT s`,
		`SET TRANSACTION READ WRITE`,
		`DISCARD ALL`,
		`CHECKPOINT`,
		`CREATE EXTENSION dblink`,
		`LOAD 'plpgsql'`,
		`EXPLAIN ANALYZE DELETE FROM items`,
		// data-modifying CTEs
		`WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d`,
		`WITH u AS (UPDATE items SET label = 'x' RETURNING *) SELECT count(*) FROM u`,
		`WITH i AS (INSERT INTO items (id) VALUES (7) RETURNING *) SELECT * FROM i`,
		// SELECT INTO and locking
		`SELECT * INTO stolen FROM items`,
		`SELECT * FROM items FOR UPDATE`,
		`SELECT * FROM items FOR SHARE SKIP LOCKED`,
		// role and setting changes, as statements and through functions
		`SET ROLE dbchat_app`,
		`RESET ROLE`,
		`SET SESSION AUTHORIZATION postgres`,
		`SET app.tenant_id = '%B'`,
		`RESET app.tenant_id`,
		`SET search_path = %S`,
		`SELECT set_config('app.tenant_id', '%B', false)`,
		`SELECT set_config('role', 'dbchat_app', true)`,
		`SELECT * FROM items WHERE set_config('app.tenant_id', '%B', true) IS NOT NULL`,
		`SELECT (SELECT set_config('app.tenant_id', '%B', true)), * FROM %S.secrets`,
		`SELECT * FROM (SELECT set_config('app.tenant_id', '%B', true)) s, LATERAL (SELECT * FROM %S.secrets) x`,
		`WITH s AS MATERIALIZED (SELECT set_config('app.tenant_id', '%B', true)) SELECT * FROM s, %S.secrets`,
		`SELECT * FROM %S.secrets ORDER BY set_config('app.tenant_id', '%B', true)`,
		`SELECT * FROM %S.secrets WHERE (SELECT set_config('role', 'dbchat_app', true)) IS NOT NULL`,
		`SELECT current_setting('app.tenant_id')`,
		// catalogs, statistics, settings, platform tables, other tenants
		`SELECT * FROM pg_class`,
		`SELECT relname FROM pg_catalog.pg_class`,
		`SELECT * FROM pg_authid`,
		`SELECT * FROM pg_roles`,
		`SELECT * FROM information_schema.tables`,
		`SELECT * FROM information_schema.columns`,
		`SELECT query FROM pg_stat_activity`,
		`SELECT * FROM pg_stat_get_activity(NULL)`,
		`SELECT * FROM pg_settings`,
		`SELECT * FROM pg_stats`,
		`SELECT * FROM pg_policies`,
		`SELECT * FROM dbchat.api_keys`,
		`SELECT * FROM dbchat.users`,
		`SELECT * FROM dbchat.tenants`,
		`SELECT * FROM dbchat.query_history`,
		`SELECT * FROM dbchat.training_data`,
		`SELECT * FROM dbchat_ops.list_tenants()`,
		`SELECT * FROM dbchat_migrations.goose_db_version`,
		`SELECT * FROM %S.secrets`,
		`SELECT * FROM %S.items`,
		`SELECT * FROM items UNION ALL SELECT id, v, NULL, NULL, NULL, NULL FROM %S.secrets`,
		// files, large objects, dblink, sleep, locks, notify, signals
		`SELECT pg_read_file('/etc/passwd')`,
		`SELECT pg_ls_dir('.')`,
		`SELECT lo_import('/etc/passwd')`,
		`SELECT lo_create(0)`,
		`SELECT dblink('dbname=postgres', 'SELECT 1')`,
		`SELECT pg_sleep(30)`,
		`SELECT pg_advisory_lock(42)`,
		`SELECT pg_advisory_xact_lock(42)`,
		`SELECT pg_notify('dbchat', 'x')`,
		`SELECT pg_cancel_backend(pg_backend_pid())`,
		`SELECT pg_terminate_backend(1)`,
		`SELECT pg_reload_conf()`,
		`SELECT query_to_xml('SELECT * FROM %S.secrets', true, true, '')`,
		`SELECT * FROM items WHERE id = (SELECT txid_current())`,
		// resource exhaustion: must end by timeout or cap, server healthy
		`SELECT count(*) FROM generate_series(1, 10000000000)`,
		`SELECT count(*) FROM generate_series(1, 200000) a, generate_series(1, 200000) b`,
		`WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r`,
		`SELECT repeat('x', 900000000)`,
		`SELECT string_agg(repeat('x', 1000000), '') FROM generate_series(1, 3000)`,
		`SELECT * FROM generate_series(1, 50000000)`,
		`SELECT repeat('x', 5000000) FROM generate_series(1, 100)`,
		`SELECT string_agg(repeat('x', 1048576), '') FROM generate_series(1, 900)`,
		`SELECT (SELECT string_agg(repeat('x', 1048576), '') FROM generate_series(1, 5)) FROM generate_series(1, 100)`,
		// comments, quoting, escapes
		`SELECT 1 /* nested /* comment */ ; DELETE FROM items */`,
		`SELECT $$; DELETE FROM items; $$`,
		`SELECT $q$ $$ $q$; DELETE FROM items`,
		`SELECT * FROM items -- ; DELETE FROM items`,
		"SELECT * FROM items\n; DELETE FROM items",
		`SELECT E'\x27; DELETE FROM items; --'`,
		`SELECT * FROM "pg_catalog"."pg_class"`,
		`SELECT * FROM U&"\0070g_class"`,
		`SELECT * FROM U&"d\0062chat".api_keys`,
		`SeLeCt * FrOm PG_CLASS`,
		`SELECT * FROM "%S"."secrets"`,
		`SELECT/**/1;DELETE/**/FROM/**/items`,
		`SELECT U&'\0041' || label FROM items`,
	}
	r := strings.NewReplacer("%B", bID, "%S", bSchema)
	for i := range list {
		list[i] = r.Replace(list[i])
	}
	return list
}

// checksums fingerprints every table in the platform and tenant schemas
// (query_history only up to the attack's start: the attack writes history).
func (r *redTeam) checksums(t testing.TB) map[string]string {
	ctx := context.Background()
	rows, err := r.admin.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND (n.nspname = 'dbchat' OR n.nspname LIKE 't\_%') ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	sums := map[string]string{}
	for _, tbl := range tables {
		where := ""
		if tbl == "dbchat.query_history" {
			where = " WHERE x.created_at < $1"
		} else {
			where = " WHERE $1::timestamptz IS NOT NULL"
		}
		var sum string
		require.NoError(t, r.admin.QueryRow(ctx, `SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM `+tbl+` x`+where, r.start).Scan(&sum))
		sums[tbl] = sum
	}
	return sums
}

// attack runs every hostile statement as tenant A and checks the outcome.
func (r *redTeam) attack(t *testing.T) {
	ctx := tenant.NewContext(context.Background(), r.a.Identity)
	before := r.checksums(t)
	for _, sql := range hostile(r.b.ID.String(), tenant.Schema(r.b.ID)) {
		res, err := r.svc.Run(ctx, sandbox.Request{SQL: sql, Timeout: time.Second, MaxRows: 1000})
		out, _ := json.Marshal(res)
		require.NotContains(t, string(out), bMarker, "%s leaked B's data", sql)
		require.NotContains(t, string(out), r.b.ID.String(), "%s leaked B's id", sql)
		if err != nil {
			code := apperr.CodeOf(err)
			require.Contains(t, []apperr.Code{apperr.SQLRejected, apperr.SQLFailed}, code, "%s: %v", sql, err)
			require.NotContains(t, err.Error(), bMarker, sql)
		}
	}
	require.Equal(t, before, r.checksums(t), "the attack changed data")
	// Still healthy: both pools answer, and A still sees its own rows.
	res, err := r.svc.Run(ctx, sandbox.Request{SQL: `SELECT label FROM items ORDER BY id`})
	require.NoError(t, err)
	require.Equal(t, 2, res.RowCount)
	var pingOK int
	require.NoError(t, r.db.OnceAs(context.Background(), tenant.Identity{}, func(tx tenant.Conn) error {
		return tx.QueryRow(context.Background(), `SELECT 1`).Scan(&pingOK)
	}))
}

func TestRedTeam(t *testing.T) {
	t.Parallel()
	// docs/SECURITY.md states the suite's size; this keeps the two equal.
	doc, err := os.ReadFile("../../docs/SECURITY.md")
	require.NoError(t, err)
	m := regexp.MustCompile("`internal/sandbox/redteam_test.go`, (\\d+) statements").FindSubmatch(doc)
	require.NotNil(t, m, "docs/SECURITY.md states how many statements the red-team suite has")
	require.Equal(t, string(m[1]), strconv.Itoa(len(hostile("b", "s"))), "docs/SECURITY.md's count of red-team statements")
	require.GreaterOrEqual(t, len(hostile("b", "s")), 108)
	newRedTeam(t, false).attack(t)
}

// The database layer alone (parser off) still stops every attack on data:
// reads across tenants, writes, and role or setting changes.
func TestRedTeamWithoutParser(t *testing.T) {
	t.Parallel()
	newRedTeam(t, true).attack(t)
}

func TestRejectionsNameTheirReason(t *testing.T) {
	t.Parallel()
	r := newRedTeam(t, false)
	ctx := tenant.NewContext(context.Background(), r.a.Identity)
	for sql, reason := range map[string]string{
		`SELECT 1; SELECT 2`:             "exactly one statement",
		`DELETE FROM items`:              "only a query",
		`SELECT * FROM pg_class`:         "not one of your tables",
		`SELECT pg_sleep(1)`:             "not on the allowlist",
		`SELECT * FROM items FOR UPDATE`: "locking clauses",
	} {
		_, err := r.svc.Run(ctx, sandbox.Request{SQL: sql})
		require.Equal(t, apperr.SQLRejected, apperr.CodeOf(err), sql)
		require.Contains(t, apperr.As(err).Message, reason, sql)
	}
}
