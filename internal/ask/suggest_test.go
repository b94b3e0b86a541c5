package ask_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/evalset"
	"github.com/dbchat/dbchat/internal/generate"
)

// demoTables is the demo shop's catalog as the pipeline reads it.
func demoTables() []generate.Table {
	return evalset.Tables(evalset.Schema{Tables: demo.Tables})
}

func TestSuggestFromTheCatalog(t *testing.T) {
	got := ask.Suggest(context.Background(), `SELECT count(*) AS count FROM "customers"`,
		generate.Input{Question: "How many customers do we have?", Tables: demoTables()})
	require.Equal(t, []string{
		"How many customers per country?",
		"Show the 5 most recent customers",
		"What is the average amount of orders?", // the question itself is left out
	}, got)
}

// Every catalog suggestion is a question the offline generator answers as
// it stands, on the demo shop and on the two schemas its code never saw.
func TestCatalogSuggestionsAreAnsweredOffline(t *testing.T) {
	ctx := context.Background()
	schemas := append([]evalset.Schema{{Name: "demo", Tables: demo.Tables}}, evalset.Schemas...)
	for _, s := range schemas {
		tables := evalset.Tables(s)
		for _, tb := range tables {
			got := ask.Suggest(ctx, "SELECT * FROM "+tb.Name, generate.Input{Question: "?", Tables: tables})
			require.Len(t, got, ask.MaxSuggestions, "%s.%s", s.Name, tb.Name)
			require.Contains(t, strings.ToLower(got[0]), strings.ReplaceAll(tb.Name, "_", " "), "the table the answer read comes first")
			for _, q := range got {
				out, err := generate.NewOffline().Generate(ctx, generate.Input{Question: q, Tables: tables})
				require.NoError(t, err, "%s: %q", s.Name, q)
				require.NotEmpty(t, out.SQL)
			}
		}
	}
}

func TestSuggestTrainedPairsFirst(t *testing.T) {
	ctx := context.Background()
	in := generate.Input{Question: "How many customers per country?", Tables: demoTables(), Examples: []generate.Example{
		{Question: "how many customers per country", Distance: 0},
		{Question: "Which country has the most customers?", Distance: 0.2},
		{Question: "Which country has the most customers", Distance: 0.25},
		{Question: "What is the total revenue?", Distance: 0.4},
		{Question: "What is the average order?", Distance: 0.5},
	}}
	require.Equal(t, []string{
		"Which country has the most customers?",
		"What is the total revenue?",
		"Show the 5 most recent customers", // at least one from the catalog
	}, ask.Suggest(ctx, "SELECT country, count(*) FROM customers GROUP BY country", in))

	in.Tables = nil
	require.Equal(t, []string{
		"Which country has the most customers?",
		"What is the total revenue?",
		"What is the average order?",
	}, ask.Suggest(ctx, "", in), "pairs fill in when the catalog has nothing")

	require.Equal(t, []string{}, ask.Suggest(ctx, "", generate.Input{Question: "x"}), "never null")
}

// An answer carries its chart, summary and suggestions; a tenant's
// suggestions come from its own pairs only.
func TestAskChartsSummarisesAndSuggests(t *testing.T) {
	t.Parallel()
	w := newWorld(t, generate.NewOffline())
	q := ask.Request{Question: "How many customers per country?", Execute: true}

	a, err := w.ask(w.a, q)
	require.NoError(t, err)
	require.Equal(t, "bar", a.Chart["mark"].(map[string]any)["type"], a.SQL)
	require.Equal(t, "3 rows. By count: US (2), GB (1), NL (1).", a.Summary)
	require.Len(t, a.Suggestions, ask.MaxSuggestions)
	require.Equal(t, "How many customers do we have?", a.Suggestions[0], "A's own trained pair, retrieved near the question")

	b, err := w.ask(w.b, q)
	require.NoError(t, err)
	require.Equal(t, "How many customers do we have bmarker?", b.Suggestions[0], "B's own pair")
	for _, s := range a.Suggestions {
		require.NotContains(t, s, "bmarker", "never another tenant's pair")
	}

	// A requested type: drawn, or a 400 naming chart_type.
	q.ChartType = "card"
	_, err = w.ask(w.a, q)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Equal(t, "chart_type", apperr.As(err).Details["field"])
	q.ChartType = "none"
	a, err = w.ask(w.a, q)
	require.NoError(t, err)
	require.Nil(t, a.Chart)

	// Not run: no rows, so no chart, and a chart type is refused up front.
	a, err = w.ask(w.a, ask.Request{Question: "How many customers per country?"})
	require.NoError(t, err)
	require.Nil(t, a.Chart)
	require.Equal(t, "Validated, not run (execute: false): no rows to summarise.", a.Summary)
	require.Len(t, a.Suggestions, ask.MaxSuggestions)
	_, err = w.ask(w.a, ask.Request{Question: "How many customers per country?", ChartType: "bar"})
	require.Equal(t, "chart_type: bar needs rows: ask with execute true", apperr.As(err).Message)
	_, err = w.ask(w.a, ask.Request{Question: "How many customers per country?", Execute: true, ChartType: "pie"})
	require.Equal(t, "chart_type", apperr.As(err).Details["field"])
}
