package interpret_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/interpret"
	"github.com/dbchat/dbchat/internal/sqlguard"
)

// summaries are the specification: a statement and the exact summary it
// gets, over every construct the sandbox admits.
var summaries = []struct{ sql, want string }{
	{"SELECT count(*) FROM employees WHERE department IS NULL",
		"Count of employees where department is empty"},
	{"SELECT department, sum(salary) FROM employees WHERE hired_on >= '2020-01-01' GROUP BY department ORDER BY 2 DESC LIMIT 3",
		"Sum of salary per department for employees where hired_on is on or after 2020-01-01, highest first, top 3"},
	{"SELECT name FROM employees WHERE NOT remote AND (salary > 60000 OR title ILIKE '%lead%')",
		"Name of employees where remote is false and (salary is greater than 60000 or title contains 'lead' (ignoring case))"},
	{"SELECT name FROM employees WHERE remote IS NOT TRUE AND department IS NOT NULL",
		"Name of employees where remote is not true and department is not empty"},
	{"SELECT * FROM projects WHERE status IN ('active', 'paused') AND budget NOT BETWEEN 10 AND 20",
		"All projects where status is one of ('active', 'paused') and budget is not between 10 and 20"},
	{"SELECT * FROM projects WHERE status NOT IN ('done') AND name NOT LIKE 'X%' AND code LIKE 'a_b'",
		"All projects where status is not 'done' and name does not start with 'X' and code matches the pattern 'a_b'"},
	{"SELECT name FROM projects WHERE started_on > '2024-03-01' AND started_on <= CURRENT_DATE - 30",
		"Name of projects where started_on is after 2024-03-01 and started_on is on or before today minus 30"},
	{"SELECT count(*) FROM projects WHERE started_on >= DATE '2026-03-01' AND started_on < DATE '2026-04-01'",
		"Count of projects where started_on is in March 2026"},
	{"SELECT count(*) FILTER (WHERE remote), avg(DISTINCT salary) FROM employees",
		"Count of rows (only rows where remote is true) and average of distinct salary for employees"},
	{"SELECT department, count(*) FROM employees GROUP BY department HAVING count(*) > 5 ORDER BY count(*) DESC LIMIT 1",
		"Count of employees per department, keeping groups where count of rows is greater than 5, highest first, top 1"},
	{"SELECT e.name, d.name FROM employees e LEFT JOIN departments d ON d.id = e.department_id",
		"employees.name and departments.name of employees left-joined with departments on departments.id is employees.department_id"},
	{"SELECT * FROM employees JOIN departments USING (department_id)",
		"All employees joined with departments on the same department_id"},
	{"SELECT * FROM employees CROSS JOIN departments",
		"All combinations of employees and departments"},
	{"SELECT * FROM employees NATURAL FULL JOIN departments",
		"All employees fully joined with departments on all same-named columns"},
	{"SELECT name FROM employees WHERE salary > (SELECT avg(salary) FROM employees)",
		"Name of employees where salary is greater than (average of salary for employees)"},
	{"SELECT name FROM departments d WHERE EXISTS (SELECT 1 FROM employees e WHERE e.department_id = d.id)",
		"Name of departments where there is a row in (employees where department_id is departments.id)"},
	{"SELECT name, CASE WHEN salary >= 100000 THEN 'high' WHEN salary >= 50000 THEN 'mid' END FROM employees",
		"Name and ('high' if salary is at least 100000, else 'mid' if salary is at least 50000, else empty) of employees"},
	{"SELECT CASE department WHEN 'IT' THEN 1 ELSE 0 END FROM employees",
		"(1 if department is 'IT', else 0) of employees"},
	{"SELECT salary::int, hired_on::text, CAST(salary AS numeric(10,2)) FROM employees",
		"Salary as integer, hired_on as text and salary as numeric(10, 2) of employees"},
	{"SELECT date_trunc('month', hired_on) AS month, count(*) FROM employees GROUP BY 1 ORDER BY 1",
		"Count of employees per hired_on truncated to the month, ordered by hired_on truncated to the month"},
	{"SELECT extract(year FROM hired_on), date_part('dow', hired_on) FROM employees",
		"Year of hired_on and dow of hired_on of employees"},
	{"SELECT name, rank() OVER (ORDER BY salary DESC) FROM employees",
		"Name and rank (in order of salary descending) of employees"},
	{"SELECT name, sum(salary) OVER (PARTITION BY department ORDER BY hired_on) FROM employees",
		"Name and running sum of salary (within each department, in order of hired_on) of employees"},
	{"SELECT name, lag(salary) OVER (ORDER BY hired_on), avg(salary) OVER () FROM employees",
		"Name, previous row's salary (in order of hired_on) and average of salary over all rows of employees"},
	{"SELECT name FROM employees UNION ALL SELECT name FROM contractors",
		"Name of employees, together with name of contractors"},
	{"SELECT name FROM employees INTERSECT SELECT name FROM contractors ORDER BY name",
		"Rows both in name of employees and in name of contractors, ordered by name"},
	{"SELECT name FROM employees ORDER BY name LIMIT 10 OFFSET 20",
		"Name of employees, ordered by name, top 10, skipping the first 20"},
	{"SELECT DISTINCT department, title FROM employees",
		"Distinct combinations of department and title of employees"},
	{"SELECT DISTINCT ON (department) department, name FROM employees ORDER BY department, salary DESC",
		"Department and name of employees, one row per department, ordered by department, then by salary descending"},
	{"SELECT coalesce(department, 'none'), nullif(title, ''), greatest(a, b, c), least(a, b) FROM employees",
		"Department (or 'none' when empty), title (empty when it is ''), (the greatest of a, b and c) and the lesser of a and b of employees"},
	{"SELECT round(avg(salary), 2), lower(name), length(name), abs(x), now() FROM employees",
		"Average of salary rounded to 2 decimal places, lower-case name, length of name, absolute value of x and now for employees"},
	{"SELECT department, count(*) FROM employees GROUP BY ROLLUP (department)",
		"Department and count of rows per department with subtotals and a grand total (rollup) for employees"},
	{"SELECT name FROM employees WHERE id = ANY (ARRAY[1, 2, 3]) AND salary > ALL (SELECT salary FROM contractors)",
		"Name of employees where id is one of (1, 2, 3) and salary is greater than every one of (salary of contractors)"},
	{"SELECT name FROM employees WHERE department_id IN (SELECT id FROM departments WHERE name = 'IT')",
		"Name of employees where department_id is in (id of departments where name is 'IT')"},
	{"SELECT (ARRAY[1,2,3])[2], meta->>'k', tags @> ARRAY['x'] FROM employees",
		"Element 2 of the list (1, 2, 3), meta's element 'k' and tags contains the list ('x') of employees"},
	{"SELECT name FROM employees WHERE name ~ '^A' AND x IS DISTINCT FROM y",
		"Name of employees where name matches the regular expression '^A' and x is distinct from y"},
	{"SELECT salary * 1.1 + 100, -salary, (salary - 5) / 2 FROM employees",
		"(salary times 1.1) plus 100, minus salary and (salary minus 5) divided by 2 of employees"},
	{"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY salary), mode() WITHIN GROUP (ORDER BY department) FROM employees",
		"Percentile 0.5 of salary (interpolated) and most frequent department for employees"},
	{"SELECT string_agg(name, ', ' ORDER BY name) FROM employees",
		"List of name separated by ', ' (in order of name) for employees"},
	{"SELECT country FROM customers GROUP BY country",
		"Distinct country of customers"},
	{"SELECT count(*) FROM customers GROUP BY country",
		"Count of customers per country"},
	{"SELECT * FROM orders LIMIT 1",
		"All orders, at most 1 row"},
	{"SELECT name FROM employees WHERE NOT (NOT remote) AND NOT (a OR b)",
		"Name of employees where not (not remote) and not (a or b)"},
	{"SELECT name FROM employees WHERE id <> ANY (ARRAY[1, 2]) AND id = ALL (SELECT 1) AND id <> ALL (SELECT 2) AND id < ANY (SELECT 3)",
		"Name of employees where id differs from at least one of (1, 2) and id equals every one of (the value 1) and id is not in (the value 2) and id is less than at least one of (the value 3)"},
	{"SELECT count(*) FROM t WHERE a = 1 OR NOT b",
		"Count of t where a is 1 or b is false"},
	{"SELECT rank() OVER w, sum(x) OVER (w ROWS 2 PRECEDING) FROM t WINDOW w AS (PARTITION BY g ORDER BY y)",
		"Rank (within each g, in order of y) and sum of x (within each g, in order of y, over a window frame …) of t (partly a query this summary cannot fully describe)"},
	{"SELECT c.name, o.amount FROM t_aaaa.customers AS c, orders o WHERE o.customer_id = c.id",
		"customers.name and orders.amount of combinations of customers and orders where orders.customer_id is customers.id"},
	{"SELECT * FROM orders WHERE placed_at > now() - INTERVAL '1' DAY",
		"All orders where placed_at is after now minus `'1'::interval day` (partly a query this summary cannot fully describe)"},
	{"SELECT g, count(*) FROM t GROUP BY CUBE (g, h)",
		"G and count of rows per g and h with subtotals for every combination (cube) for t"},
	{"SELECT x FROM t UNION SELECT y FROM u ORDER BY 1 LIMIT 5",
		"X of t, together with y of u, without duplicates, ordered by column 1, top 5"},
	{"WITH a AS (SELECT 1 AS v), b AS (SELECT v FROM a) SELECT v FROM b",
		"V of b (a is the value 1; b is v of a)"},
	{"SELECT 'it''s', B'101', 1.5e3, NULL, CURRENT_USER, E'x\\y'",
		"'it''s', the bits 101, 1.5e3, null, the current user and 'xy'"},
	{"SELECT name FROM customers WHERE name COLLATE \"C\" > 'B' ORDER BY name USING >",
		"Name of customers where name (collation C) is greater than 'B', ordered by name descending"},
	{"SELECT FROM t WHERE x > 1",
		"No columns of t where x is greater than 1"},
	{"SELECT DATE_TRUNC('month', ordered_at) AS month, SUM(amount) FROM orders GROUP BY month ORDER BY month",
		"Ordered_at truncated to the month and sum of amount per month for orders, ordered by ordered_at truncated to the month"},
	{"SELECT count(*) FROM orders WHERE ordered_at >= NOW() - INTERVAL '30 days';",
		"Count of orders where ordered_at is on or after now minus 30 days"},
	{"SELECT o.id FROM orders o WHERE o.amount > (SELECT avg(o2.amount) FROM orders o2 WHERE o2.customer_id = o.customer_id)",
		"Id of orders (as o) where amount is greater than (average of amount for orders (as o2) where customer_id is o.customer_id)"},
	{"WITH top AS (SELECT name, sum(1) AS n FROM customers GROUP BY name) SELECT top.name, top.n FROM top",
		"Name and n of top (top is sum of 1 per name for customers)"},
	{"SELECT count(1), count(NULL), count(DISTINCT 1) FROM t",
		"Count of rows, count of non-empty null and count of distinct 1 for t"},
	{"SELECT COUNT(1) FROM orders WHERE amount IS NOT NULL",
		"Count of orders where amount is not empty"},
	{"SELECT jsonb_build_object('l', label) FROM items",
		"jsonb_build_object('l', label) of items"},
	{"SELECT \"customerID\", i.label FROM items i, items j",
		"customerID and i.label of combinations of items (as i) and items (as j)"},
	{"VALUES (1, 'a'), (2, 'b')",
		"The rows (1, 'a') and (2, 'b')"},
	{"SELECT 1",
		"The value 1"},
	{"SELECT country FROM customers GROUP BY country",
		"Distinct country of customers"},
	{"SELECT country, city FROM customers GROUP BY city, country ORDER BY 1",
		"Distinct combinations of country and city of customers, ordered by country"},
	{"SELECT country FROM customers GROUP BY country, city",
		"Country per country and city of customers"},
	{"SELECT x FROM t WHERE b @@ c",
		"X of t where `b @@ c` (partly a query this summary cannot fully describe)"},
	{"DELETE FROM employees",
		"A query this summary cannot fully describe"},
	{"SELECT 1; SELECT 2",
		"A query this summary cannot fully describe"},
	{"not sql at all",
		"A query this summary cannot fully describe"},
	{"",
		"A query this summary cannot fully describe"},
	{"SELECT name FROM t FETCH FIRST 3 ROWS WITH TIES",
		"A query this summary cannot fully describe"},
	{"SELECT name FROM employees ORDER BY salary DESC FETCH FIRST 3 ROWS WITH TIES",
		"Name of employees, ordered by salary descending, top 3 (with ties)"},
}

func TestSummaries(t *testing.T) {
	t.Parallel()
	for _, c := range summaries {
		require.Equal(t, c.want, interpret.Describe(c.sql), c.sql)
	}
}

func TestDemoQuestions(t *testing.T) {
	t.Parallel()
	for _, c := range demoSQL {
		require.Equal(t, c.want, interpret.Describe(c.sql), c.sql)
	}
}

// Every red-team statement the sandbox admits gets a summary; the others
// are not one query and are said to be undescribable.
func TestRedTeamAdmitted(t *testing.T) {
	t.Parallel()
	admitted := 0
	for _, sql := range redTeam {
		got := interpret.Describe(sql)
		require.NotEmpty(t, got, sql)
		if sqlguard.Check(sql, redTeamPolicy) != nil {
			continue
		}
		admitted++
		require.NotContains(t, got, interpret.Undescribed, sql)
	}
	require.GreaterOrEqual(t, admitted, 15, "the red-team corpus's admitted statements")
}

// The statements sqlguard's own tests admit are all described in full.
func TestGuardAdmitted(t *testing.T) {
	t.Parallel()
	for _, sql := range guardAdmitted {
		require.NoError(t, sqlguard.Check(sql, guardPolicy), sql)
		require.NotContains(t, interpret.Describe(sql), interpret.Undescribed, sql)
	}
}

// What cannot be read is said so, never described as something else.
func TestUndescribable(t *testing.T) {
	t.Parallel()
	whole := "A query this summary cannot fully describe"
	for _, sql := range []string{"", ";", "DELETE FROM t", "SELECT 1; SELECT 2", "not sql", "EXPLAIN SELECT 1", "SELECT (", "\x00"} {
		require.Equal(t, whole, interpret.Describe(sql), sql)
	}
	for _, sql := range []string{
		"SELECT x FROM t WHERE b @@ c",
		"SELECT sum(x) OVER (ORDER BY y ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
		"SELECT rank() OVER undefined FROM t",
		"SELECT (t.*).x FROM t",
	} {
		got := interpret.Describe(sql)
		require.True(t, strings.HasSuffix(got, " (partly "+interpret.Undescribed+")"), "%s: %s", sql, got)
	}
}

// A very long statement still gets a bounded summary.
func TestLongStatement(t *testing.T) {
	t.Parallel()
	sql := "SELECT count(*) FROM t WHERE x = 0" + strings.Repeat(" OR x = 1", 2000)
	got := interpret.Describe(sql)
	require.LessOrEqual(t, len(got), 1100)
	require.True(t, strings.HasPrefix(got, "Count of t where x is 0 or x is 1"), got)
	require.True(t, strings.HasSuffix(got, interpret.Undescribed+")"), got)
}
