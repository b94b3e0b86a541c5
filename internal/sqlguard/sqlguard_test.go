package sqlguard_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

var policy = sqlguard.Policy{
	Schema: "t_aaaa",
	Tables: map[string]bool{"orders": true, "customers": true},
	Columns: map[string]map[string]bool{
		"orders":    {"tenant_id": true, "_row_id": true, "id": true, "amount": true, "customer_id": true, "placed_at": true},
		"customers": {"tenant_id": true, "_row_id": true, "id": true, "name": true, "country": true},
	},
}

func TestAllowsPlainQueries(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		`SELECT * FROM orders`,
		`select id, amount from orders where amount > 10 order by amount desc limit 5`,
		`SELECT c.name, sum(o.amount) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name HAVING sum(o.amount) > 100`,
		`SELECT * FROM t_aaaa.orders`,
		`WITH big AS (SELECT * FROM orders WHERE amount > 100) SELECT count(*) FROM big`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT * FROM n`,
		`SELECT id FROM orders UNION SELECT id FROM customers EXCEPT SELECT 3`,
		`SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY amount) FROM orders`,
		`SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, name)`,
		`SELECT * FROM orders o, LATERAL (SELECT count(*) FROM customers c WHERE c.id = o.customer_id) x`,
		`SELECT date_trunc('month', placed_at), coalesce(amount, 0)::numeric(10,2) FROM orders`,
		`SELECT CASE WHEN amount > 10 THEN 'big' ELSE 'small' END, EXTRACT(year FROM placed_at) FROM orders`,
		`SELECT jsonb_build_object('id', id), to_char(now(), 'YYYY') FROM orders WHERE id IN (SELECT id FROM customers)`,
		`SELECT * FROM generate_series(1, 3)`,
		`SELECT greatest(1, 2), nullif(1, 1), current_date`,
		`SELECT lpad(id::text, 6, '0'), rpad(name, 20), repeat('-', 40), repeat(name, 3) FROM customers`,
		`SELECT format('%s: %5s', name, country), format('%-10s|', name) FROM customers`,
		`SELECT name::char(20), CAST(country AS character(2)) FROM customers`,
	} {
		require.NoError(t, sqlguard.Check(sql, policy), sql)
	}
}

func TestRejects(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		``, `;`,
		`SELECT 1; SELECT 2`,
		`DELETE FROM orders`,
		`UPDATE orders SET amount = 0`,
		`INSERT INTO orders VALUES (1)`,
		`DROP TABLE orders`,
		`COPY orders TO STDOUT`,
		`SET app.tenant_id = 'x'`,
		`RESET ROLE`,
		`SET ROLE dbchat_app`,
		`BEGIN`, `COMMIT`,
		`EXPLAIN SELECT 1`,
		`WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d`,
		`SELECT * INTO newtab FROM orders`,
		`SELECT * FROM orders FOR UPDATE`,
		`SELECT * FROM pg_class`,
		`SELECT * FROM pg_catalog.pg_class`,
		`SELECT * FROM information_schema.tables`,
		`SELECT * FROM pg_stat_activity`,
		`SELECT * FROM pg_settings`,
		`SELECT * FROM dbchat.api_keys`,
		`SELECT * FROM api_keys`,
		`SELECT * FROM t_bbbb.orders`,
		`SELECT * FROM otherdb.t_aaaa.orders`,
		`SELECT set_config('app.tenant_id', 'x', true)`,
		`SELECT * FROM orders WHERE set_config('role', 'dbchat_app', true) IS NOT NULL`,
		`SELECT current_setting('app.tenant_id')`,
		`SELECT pg_sleep(10)`,
		`SELECT pg_read_file('/etc/passwd')`,
		`SELECT lo_import('/etc/passwd')`,
		`SELECT pg_advisory_lock(1)`,
		`SELECT pg_notify('x', 'y')`,
		`SELECT pg_terminate_backend(1)`,
		`SELECT dblink('x', 'y')`,
		`SELECT query_to_xml('select 1', true, true, '')`,
		`SELECT public.count(*) FROM orders`,
		`SELECT 'pg_authid'::regclass`,
		`SELECT 1 OPERATOR(public.+) 1`,
		`SELECT * FROM orders TABLESAMPLE SYSTEM (10)`,
		`SELECT $1`,
		`WITH a AS (SELECT * FROM pg_class), pg_class AS (SELECT 1) SELECT * FROM a`,
		`SELECT * FROM (WITH pg_class AS (SELECT 1) SELECT * FROM pg_class) x, pg_class`,
		`SELECT xmlelement(name foo)`,
		`SELECT * FROM orders ORDER BY (SELECT set_config('app.tenant_id', 'x', true))`,
		`SELECT * FROM orders, LATERAL (SELECT pg_sleep(1)) s`,
		// System columns count other tenants' transactions and tables.
		`SELECT xmin FROM orders`, `SELECT o.xmax FROM orders o`, `SELECT tableoid FROM orders`,
		`SELECT ctid, cmin, cmax FROM orders`, `SELECT * FROM orders WHERE xmin::text <> ''`,
		`SELECT count(*) FROM orders GROUP BY t_aaaa.orders.tableoid`,
		// Values built whole in memory, beyond what the text bounds.
		`SELECT length(repeat('a', 1000000000))`, `SELECT repeat('a', 1e9)`, `SELECT repeat('ab', amount::int) FROM orders`,
		`SELECT repeat(name, 100000) FROM customers`, `SELECT lpad('x', 500000000)`, `SELECT rpad(name, id::int, 'x') FROM customers`,
		`SELECT format('%500000000s', 'x')`, `SELECT format('%*s', 500000000, 'x')`, `SELECT format(name, 1) FROM customers`,
		`SELECT 'x'::char(10485760)`, `SELECT CAST(name AS character(1000000)) FROM customers`, `SELECT repeat(str => 'a', number => 1000000000)`,
	} {
		err := sqlguard.Check(sql, policy)
		var r *sqlguard.Rejection
		require.ErrorAs(t, err, &r, "%q must be rejected", sql)
		require.NotEmpty(t, r.Reason)
	}
}

// Field selection is a function call when the qualifier has no such column:
// (expr).fname and alias.fname run fname(expr). Names in field position must
// be real columns of what the qualifier names, or allowlisted functions.
func TestFieldSelection(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		`SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id`,
		`SELECT customers.name FROM customers`,
		`SELECT t_aaaa.customers.name FROM t_aaaa.customers`,
		`WITH top AS (SELECT name, sum(1) AS n FROM customers GROUP BY name) SELECT top.name, top.n FROM top`,
		`WITH x AS (SELECT * FROM orders) SELECT x.amount FROM x`,
		`SELECT s.count, s.total FROM (SELECT count(*), sum(amount) AS total FROM orders) s`,
		`SELECT s.a FROM (SELECT id FROM orders) s(a)`,
		`SELECT g.g FROM generate_series(1, 3) g`,
		`SELECT e.key, e.value FROM orders o, jsonb_each_text('{}'::jsonb) e`,
		`SELECT o.* FROM orders o`,
		`SELECT (ARRAY[1,2])[1]`,
		`SELECT c.name FROM customers c WHERE c.id IN (SELECT o.customer_id FROM orders o)`,
		`SELECT ('2024-01-01'::text).date`, // allowlisted function: same as date(text)
	} {
		require.NoError(t, sqlguard.Check(sql, policy), sql)
	}
	for _, sql := range []string{
		`SELECT ('app.tenant_id'::text).current_setting`,
		`SELECT (1).pg_sleep`,
		`SELECT c.record_out FROM customers c`,
		`SELECT o.pg_get_functiondef FROM orders o`,
		`SELECT (b).pg_stat_get_backend_activity FROM generate_series(1, 64) b`,
		`SELECT b.pg_stat_get_backend_activity FROM generate_series(1, 64) b(x)`,
		`SELECT (42::bigint).pg_advisory_xact_lock`,
		`SELECT (0).lo_create`,
		`SELECT (0.42::float8).setseed`,
		`SELECT random()`,
		`SELECT ('select 1'::text).ts_stat`,
		`SELECT v.ts_stat FROM (SELECT 'select 1'::text AS v) s`,
		`SELECT s.v.ts_stat FROM (SELECT 'select 1'::text AS v) s`,
		`SELECT s.ts_stat FROM (SELECT 'select 1'::text AS v) s`,
		`SELECT c.name FROM customers c, (SELECT 1 AS x) c2 WHERE c2.name IS NULL`,
		`SELECT j.record_out FROM (customers JOIN orders ON true) j`,
		`SELECT t_bbbb.orders.id FROM orders`,
		`SELECT x.pg_sleep FROM (SELECT 1 AS a) x, (SELECT 2 AS pg_sleep) y`,
		// orders is the tenant's table here, the CTE only inside s
		`SELECT o.record_out FROM orders o, (WITH orders AS (SELECT 1 AS record_out) SELECT * FROM orders) s`,
	} {
		err := sqlguard.Check(sql, policy)
		var r *sqlguard.Rejection
		require.ErrorAs(t, err, &r, "%q must be rejected", sql)
	}
}

// Every schema-qualified name is checked, not only relations and functions:
// another tenant's schema in a collation or operator would be used, or its
// error would tell whether the schema exists.
func TestQualifiedNamesEverywhere(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		`SELECT name COLLATE t_bbbb."C" FROM customers`,
		`SELECT name FROM customers ORDER BY name COLLATE t_bbbb."C"`,
		`SELECT id FROM orders ORDER BY id USING OPERATOR(t_bbbb.<)`,
		`SELECT 1 WHERE 1 OPERATOR(t_bbbb.=) ANY (ARRAY[1])`,
		`SELECT 1 WHERE 1 OPERATOR(t_bbbb.=) ANY (SELECT 1)`,
		`SELECT 1 WHERE 1 OPERATOR(t_bbbb.=) ALL (SELECT 1)`,
		`SELECT 1::t_bbbb.mytype`,
		`SELECT CAST(1 AS t_bbbb.mytype)`,
		`SELECT t_bbbb.f(1)`,
		`SELECT 1 OPERATOR(t_bbbb.+) 1`,
	} {
		err := sqlguard.Check(sql, policy)
		var r *sqlguard.Rejection
		require.ErrorAs(t, err, &r, "%q must be rejected", sql)
	}
	for _, sql := range []string{
		`SELECT name COLLATE "C" FROM customers ORDER BY 1`,
		`SELECT name COLLATE pg_catalog."C" FROM customers`,
		`SELECT id FROM orders ORDER BY id USING <`,
		`SELECT 1 WHERE 1 = ANY (ARRAY[1])`,
	} {
		require.NoError(t, sqlguard.Check(sql, policy), sql)
	}
}

// The parser reads up to a NUL, PostgreSQL reads something else: refuse
// NUL and other control bytes before parsing.
func TestControlBytes(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		"SELECT 1\x00; SELECT pg_sleep(10)",
		"SELECT * FROM orders\x00",
		"SELECT 1 \x1b",
		"SELECT 1 \x7f",
		"SELECT '\xff'",
	} {
		err := sqlguard.Check(sql, policy)
		var r *sqlguard.Rejection
		require.ErrorAs(t, err, &r, "%q must be rejected", sql)
	}
	require.NoError(t, sqlguard.Check("SELECT id\n\tFROM orders\r\n", policy))
}
