package generate_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/sandbox"
)

func demoTables() []generate.Table {
	var out []generate.Table
	for _, t := range demo.Tables {
		gt := generate.Table{Name: t.Name, Description: t.Description}
		for _, c := range t.Columns {
			gt.Columns = append(gt.Columns, generate.Column{Name: c.Name, Type: c.Type, Description: c.Description})
		}
		out = append(out, gt)
	}
	return out
}

// TestOfflineOnTheDemoShop asks the offline generator questions about the
// demo data and compares the rows its SQL returns with the rows of a
// hand-written query (results, not SQL text).
func TestOfflineOnTheDemoShop(t *testing.T) {
	t.Parallel()
	s := dbtest.NewSandboxed(t, 2)
	svc := s.SQL
	_, tctx := s.DemoTenant(t, "Shop")
	rows := func(sql string) string {
		t.Helper()
		res, err := svc.Run(tctx, sandbox.Request{SQL: sql})
		require.NoError(t, err, sql)
		b, _ := json.Marshal(res.Rows)
		return string(b)
	}
	gen := generate.NewOffline()
	in := func(q string) generate.Input {
		return generate.Input{Question: q, Tables: demoTables(), FindValues: svc.FindValues}
	}
	cases := []struct{ question, want string }{
		{"How many customers do we have?", `SELECT count(*) FROM customers`},
		{"how many orders are there", `SELECT count(*) FROM orders`},
		{"Number of customers in US", `SELECT count(*) FROM customers WHERE country = 'US'`},
		{"List all customers", `SELECT * FROM customers ORDER BY id`},
		{"Show me the orders", `SELECT * FROM orders ORDER BY id`},
		{"Which customers are from NL?", `SELECT * FROM customers WHERE country = 'NL' ORDER BY id`},
		{"What is the total amount of all orders?", `SELECT sum(amount) FROM orders`},
		{"Total order amount per customer", `SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id ORDER BY 2 DESC, 1`},
		{"What is the average order amount?", `SELECT avg(amount) FROM orders`},
		{"Average amount by customer", `SELECT customer_id, avg(amount) FROM orders GROUP BY customer_id ORDER BY 2 DESC, 1`},
		{"How many customers per country?", `SELECT country, count(*) FROM customers GROUP BY country ORDER BY 2 DESC, 1`},
		{"How many orders per customer?", `SELECT customer_id, count(*) FROM orders GROUP BY customer_id ORDER BY 2 DESC, 1`},
		{"What is the highest order amount?", `SELECT max(amount) FROM orders`},
		{"What is the lowest order amount?", `SELECT min(amount) FROM orders`},
		{"Top 3 orders by amount", `SELECT * FROM orders ORDER BY amount DESC LIMIT 3`},
		{"Show the 2 newest orders", `SELECT * FROM orders ORDER BY ordered_at DESC LIMIT 2`},
		{"Which customer signed up most recently?", `SELECT * FROM customers ORDER BY signed_up DESC LIMIT 1`},
		{"Who was the earliest customer to sign up?", `SELECT * FROM customers ORDER BY signed_up ASC LIMIT 1`},
		{"How many orders over 100?", `SELECT count(*) FROM orders WHERE amount > 100`},
		{"List orders with an amount under 50", `SELECT * FROM orders WHERE amount < 50 ORDER BY id`},
		{"How many customers signed up in 2024?", `SELECT count(*) FROM customers WHERE signed_up >= '2024-01-01' AND signed_up < '2025-01-01'`},
		{"Show customers named 'Ada Lovelace'", `SELECT * FROM customers WHERE name = 'Ada Lovelace' ORDER BY id`},
		{"List customer names", `SELECT name FROM customers ORDER BY id`},
		{"Total revenue from orders in 2024", `SELECT sum(amount) FROM orders WHERE ordered_at >= '2024-01-01' AND ordered_at < '2025-01-01'`},
		{"How many orders per customer in 2024?", `SELECT customer_id, count(*) FROM orders WHERE ordered_at >= '2024-01-01' AND ordered_at < '2025-01-01' GROUP BY 1 ORDER BY 2 DESC, 1`},
		{"How many orders were placed each month of 2024?", `SELECT date_trunc('month', ordered_at), count(*) FROM orders WHERE ordered_at >= '2024-01-01' AND ordered_at < '2025-01-01' GROUP BY 1 ORDER BY 1`},
		{"Total revenue per month", `SELECT date_trunc('month', ordered_at), sum(amount) FROM orders GROUP BY 1 ORDER BY 1`},
		{"Which month had the most orders?", `SELECT date_trunc('month', ordered_at), count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many customers signed up per year?", `SELECT date_trunc('year', signed_up), count(*) FROM customers GROUP BY 1 ORDER BY 1`},
	}
	for _, c := range cases {
		out, err := gen.Generate(tctx, in(c.question))
		require.NoError(t, err, c.question)
		require.Equal(t, rows(c.want), rows(out.SQL), "%s\ngenerated: %s", c.question, out.SQL)
	}

	// It says when it does not know instead of guessing.
	for _, q := range []string{"What will the weather be tomorrow?", "Who is our CEO?", "Why did sales drop?"} {
		_, err := gen.Generate(tctx, in(q))
		require.Equal(t, apperr.NoSQL, apperr.CodeOf(err), q)
	}

	// A near-duplicate of a trained question reuses its SQL.
	trained := generate.Input{Question: "how many customers are in GB", Tables: demoTables(),
		Examples: []generate.Example{{Question: "How many customers in GB?", SQL: "SELECT count(*) FROM customers WHERE country = 'GB'", Distance: 0.05}}}
	out, err := gen.Generate(tctx, trained)
	require.NoError(t, err)
	require.Equal(t, "SELECT count(*) FROM customers WHERE country = 'GB'", out.SQL)
}

// TestOfflineFollowUpsOnTheDemoShop plays conversations: each follow-up is
// answered by editing the last turn's statement, and the rows it returns
// are compared with a hand-written query's. A follow-up it cannot place is
// refused, not answered as something else.
func TestOfflineFollowUpsOnTheDemoShop(t *testing.T) {
	t.Parallel()
	s := dbtest.NewSandboxed(t, 2)
	svc := s.SQL
	_, tctx := s.DemoTenant(t, "Shop")
	rows := func(sql string) string {
		t.Helper()
		res, err := svc.Run(tctx, sandbox.Request{SQL: sql})
		require.NoError(t, err, sql)
		b, _ := json.Marshal(res.Rows)
		return string(b)
	}
	gen := generate.NewOffline()
	conversations := [][]struct{ question, want string }{
		{
			{"How many orders per customer?", `SELECT customer_id, count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC, 1`},
			{"And only for June 2024?", `SELECT customer_id, count(*) FROM orders WHERE ordered_at >= '2024-06-01' AND ordered_at < '2024-07-01' GROUP BY 1 ORDER BY 2 DESC, 1`},
			{"only orders over 50", `SELECT customer_id, count(*) FROM orders WHERE ordered_at >= '2024-06-01' AND ordered_at < '2024-07-01' AND amount > 50 GROUP BY 1 ORDER BY 2 DESC, 1`},
			{"top 2", `SELECT customer_id, count(*) FROM orders WHERE ordered_at >= '2024-06-01' AND ordered_at < '2024-07-01' AND amount > 50 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2`},
			{"the total amount instead", `SELECT customer_id, sum(amount) FROM orders WHERE ordered_at >= '2024-06-01' AND ordered_at < '2024-07-01' AND amount > 50 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2`},
			{"sort by customer", `SELECT customer_id, sum(amount) FROM orders WHERE ordered_at >= '2024-06-01' AND ordered_at < '2024-07-01' AND amount > 50 GROUP BY 1 ORDER BY 1 LIMIT 2`},
		},
		{
			{"List customers in US", `SELECT * FROM customers WHERE country = 'US' ORDER BY id`},
			{"what about GB?", `SELECT * FROM customers WHERE country = 'GB' ORDER BY id`},
			{"and NL", `SELECT * FROM customers WHERE country IN ('GB', 'NL') ORDER BY id`},
			{"signed up before March 2024", `SELECT * FROM customers WHERE country IN ('GB', 'NL') AND signed_up < '2024-03-01' ORDER BY id`},
		},
		{
			{"Total revenue per customer", `SELECT customer_id, sum(amount) FROM orders GROUP BY 1 ORDER BY 2 DESC, 1`},
			{"by month instead", `SELECT date_trunc('month', ordered_at), sum(amount) FROM orders GROUP BY 1 ORDER BY 1`},
			{"the average instead", ""}, // average of what? two numbers are possible: refused
			{"the average amount instead", `SELECT date_trunc('month', ordered_at), avg(amount) FROM orders GROUP BY 1 ORDER BY 1`},
		},
		{
			{"List the orders", `SELECT * FROM orders ORDER BY id`},
			{"sort by revenue", `SELECT * FROM orders ORDER BY amount DESC`},
			{"top 3", `SELECT * FROM orders ORDER BY amount DESC LIMIT 3`},
			{"what about under 100?", `SELECT * FROM orders WHERE amount < 100 ORDER BY amount DESC LIMIT 3`},
			{"and what is the weather?", ""},
		},
		{
			{"How many orders?", `SELECT count(*) FROM orders`},
			{"per customer", `SELECT customer_id, count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC, 1`},
			{"How many customers per country?", `SELECT country, count(*) FROM customers GROUP BY 1 ORDER BY 2 DESC, 1`},
			{"what about NL?", `SELECT country, count(*) FROM customers WHERE country = 'NL' GROUP BY 1`},
		},
	}
	for _, conv := range conversations {
		var turns []generate.Turn
		for _, step := range conv {
			out, err := gen.Generate(tctx, generate.Input{Question: step.question, Tables: demoTables(), FindValues: svc.FindValues, Turns: turns})
			if step.want == "" {
				require.Equal(t, apperr.NoSQL, apperr.CodeOf(err), "%q should be refused, got %s", step.question, out.SQL)
				continue
			}
			require.NoError(t, err, step.question)
			require.Equal(t, rows(step.want), rows(out.SQL), "%q\ngenerated: %s", step.question, out.SQL)
			require.NotEmpty(t, out.Resolved)
			turns = append(turns, generate.Turn{Question: out.Resolved, SQL: out.SQL})
		}
	}
}
