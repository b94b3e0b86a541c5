package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// newAskEnv is newEnv with the sandbox and the offline NL→SQL pipeline.
func newAskEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	asker := ask.New(db, sql, store, generate.NewOffline())
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{SQL: sql, Ask: asker}))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

type askAnswer struct {
	SQL            string              `json:"sql"`
	Interpretation string              `json:"interpretation"`
	Rows           [][]json.RawMessage `json:"rows"`
	HistoryID      string              `json:"history_id"`
	Chart          json.RawMessage     `json:"chart"`
	Summary        *string             `json:"summary"`
	Suggestions    []string            `json:"suggestions"`
	Context        struct {
		Similar []struct {
			Question string  `json:"question"`
			SQL      string  `json:"sql"`
			Distance float64 `json:"distance"`
		} `json:"similar"`
	} `json:"context"`
}

func (e *env) ask(t *testing.T, key, question string) askAnswer {
	t.Helper()
	status, body := e.send(t, http.MethodPost, "/v1/ask", key, map[string]any{"question": question})
	require.Equal(t, http.StatusOK, status, body)
	var a askAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &a))
	return a
}

// Feedback turns an answer into a training pair that the next similar
// question retrieves (and the offline generator then reuses).
func TestFeedbackTrainsTheModel(t *testing.T) {
	t.Parallel()
	e := newAskEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))

	first := e.ask(t, a.APIKey, "How many customers are in US?")
	require.Equal(t, `"2"`, string(first.Rows[0][0]))
	require.NotEmpty(t, first.Interpretation, "every answer says what it computed")
	require.Empty(t, first.Context.Similar, "nothing trained yet")

	// A corrected answer: count distinct countries instead.
	corrected := "SELECT count(DISTINCT country) FROM customers"
	status, body := e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback", a.APIKey,
		map[string]any{"correct": false, "sql": corrected})
	require.Equal(t, http.StatusCreated, status, body)
	require.Contains(t, body, `"trained":true`)

	again := e.ask(t, a.APIKey, "how many customers are in US")
	require.NotEmpty(t, again.Context.Similar)
	require.Equal(t, corrected, again.Context.Similar[0].SQL, "the trained pair is retrieved first")
	require.Equal(t, corrected, again.SQL, "a near-duplicate reuses the trained SQL")
	require.Equal(t, "Count of distinct country for customers", again.Interpretation, "the statement that ran, described")

	// Stats count the questions and the training.
	status, body = e.send(t, http.MethodGet, "/v1/models/default/stats", a.APIKey, nil)
	require.Equal(t, http.StatusOK, status, body)
	var stats struct {
		Training  struct{ SQL int } `json:"training"`
		Questions int               `json:"questions"`
		Succeeded int               `json:"succeeded"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &stats))
	require.Equal(t, 1, stats.Training.SQL)
	require.Equal(t, 2, stats.Questions)
	require.Equal(t, 2, stats.Succeeded)

	// Another tenant cannot give feedback on A's history: 404 like a random id.
	b := dbtest.NewTenant(t, e.db, "Other")
	status, _ = e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback", b.APIKey, map[string]any{"correct": true})
	require.Equal(t, http.StatusNotFound, status)
	status, body = e.send(t, http.MethodPost, "/v1/ask", b.APIKey, map[string]any{"question": "How many customers are in US?"})
	require.Equal(t, http.StatusUnprocessableEntity, status, body, "B has no customers table and no training")
}

// Every answer carries a Vega-Lite v5 chart (or null), a summary of its
// rows and three suggested next questions; chart_type picks another chart
// or answers 400 naming it.
func TestAskAnswersWithChartSummaryAndSuggestions(t *testing.T) {
	t.Parallel()
	e := newAskEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))

	perCountry := e.ask(t, a.APIKey, "How many customers per country?")
	vegaLiteValid(t, perCountry.Chart)
	var bar struct {
		Mark struct{ Type string } `json:"mark"`
		Data struct {
			Values []map[string]any `json:"values"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(perCountry.Chart, &bar))
	require.Equal(t, "bar", bar.Mark.Type)
	require.Equal(t, []map[string]any{{"label": "US", "value": 2.0}, {"label": "GB", "value": 1.0}, {"label": "NL", "value": 1.0}}, bar.Data.Values)
	require.Equal(t, "3 rows. By count: US (2), GB (1), NL (1).", *perCountry.Summary)
	require.Equal(t, []string{"Show the 5 most recent customers", "How many customers do we have?", "What is the average amount of orders?"},
		perCountry.Suggestions, "catalog questions, the table asked about first")

	count := e.ask(t, a.APIKey, "How many customers do we have?")
	vegaLiteValid(t, count.Chart)
	require.Contains(t, string(count.Chart), `"mark":{"fontSize":40,"fontWeight":"bold","type":"text"}`, "one number: a card")
	require.Equal(t, "1 row: count is 4.", *count.Summary)

	status, body := e.send(t, http.MethodPost, "/v1/ask", a.APIKey, map[string]any{"question": "How many customers per country?", "chart_type": "none"})
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"chart":null`)

	for chartType, msg := range map[string]string{
		"line": "chart_type: line needs a date or timestamp column and a number column; the result has country (text), count (bigint)",
		"pie":  "chart_type: must be one of line, bar, card, scatter, none (or absent, to let the rules choose)",
	} {
		status, body = e.send(t, http.MethodPost, "/v1/ask", a.APIKey, map[string]any{"question": "How many customers per country?", "chart_type": chartType})
		require.Equal(t, http.StatusBadRequest, status, body)
		var er struct {
			Error struct {
				Code, Message string
				Details       map[string]any
			}
		}
		require.NoError(t, json.Unmarshal([]byte(body), &er))
		require.Equal(t, "invalid", er.Error.Code)
		require.Equal(t, msg, er.Error.Message)
		require.Equal(t, "chart_type", er.Error.Details["field"])
	}
}

// vegaLiteValid checks a chart against the Vega-Lite v5 schema vendored
// for internal/chart's tests.
func vegaLiteValid(t *testing.T, spec json.RawMessage) {
	t.Helper()
	const file = "../chart/testdata/vega-lite-v5.schema.json"
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource(file, doc))
	sch, err := c.Compile(file)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(inst), "%s", spec)
}
