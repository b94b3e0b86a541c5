package sqlguard_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

var policy = sqlguard.Policy{Schema: "t_aaaa", Tables: map[string]bool{"orders": true, "customers": true}}

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
	} {
		err := sqlguard.Check(sql, policy)
		var r *sqlguard.Rejection
		require.ErrorAs(t, err, &r, "%q must be rejected", sql)
		require.NotEmpty(t, r.Reason)
	}
}
