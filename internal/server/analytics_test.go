package server_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
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
	"github.com/dbchat/dbchat/internal/usage"
)

// pricedGen is the offline generator dressed as a priced LLM: every
// Generate call reports 100 tokens in and 20 out.
type pricedGen struct{ generate.Generator }

func (pricedGen) Name() string { return "gemini:gemini-1.5-flash" }

func (g pricedGen) Generate(ctx context.Context, in generate.Input) (generate.Output, error) {
	out, err := g.Generator.Generate(ctx, in)
	out.Usage = generate.Usage{Calls: 1, TokensIn: 100, TokensOut: 20}
	return out, err
}

// newAnalyticsEnv is newAskEnv with the operator token, a priced
// generator and its price table.
func newAnalyticsEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	asker := ask.New(db, sql, store, pricedGen{generate.NewOffline()})
	prices, err := usage.ParsePrices(`{"gemini-1.5-flash":{"in_per_1k":0.001,"out_per_1k":0.002}}`)
	require.NoError(t, err)
	cfg := server.Config{AdminToken: operatorToken, SQL: sql, Ask: asker, Prices: prices}
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

// analyticsJSON reads GET /v1/analytics?query as key.
func (e *env) analyticsJSON(t *testing.T, key, query string) usage.Report {
	t.Helper()
	var rep usage.Report
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/analytics?"+query, key, "", &rep)
	return rep
}

// knownTraffic is what tenant a does in TestAnalyticsCountKnownTraffic,
// and the figures it must produce.
func knownTraffic(t *testing.T, e *env, key string) usage.Figures {
	t.Helper()
	var rows int64
	for _, q := range []string{"How many customers do we have?", "How many customers per country?"} {
		rows += int64(len(e.ask(t, key, q).Rows))
	}
	conv := e.newConversation(t, key, "orders")
	turn := e.turn(t, key, conv.Id, "How many orders per customer?")
	rows += int64(len(turn.Rows))
	status, body := e.send(t, http.MethodPost, "/v1/ask", key, map[string]any{"question": "Tell me a joke about penguins"})
	require.Equal(t, http.StatusUnprocessableEntity, status, body)

	status, body = e.send(t, http.MethodPost, "/v1/sql", key, map[string]any{"sql": "SELECT name FROM customers WHERE false"})
	require.Equal(t, http.StatusOK, status, body)
	status, body = e.send(t, http.MethodPost, "/v1/sql", key, map[string]any{"sql": "SELECT no_such_column FROM customers"})
	require.Equal(t, http.StatusBadRequest, status, body)

	tbl := e.createTable(t, key, map[string]any{"name": "visits", "columns": []map[string]any{{"name": "n", "type": "bigint"}}})
	status, body = e.rawCall(t, http.MethodPost, "/v1/tables/"+tbl.ID.String()+"/rows", bearer(key), "text/csv", "n\n1\n2\n3\n")
	require.Equal(t, http.StatusOK, status, body)
	status, body = e.rawCall(t, http.MethodPost, "/v1/tables/"+tbl.ID.String()+"/rows", bearer(key), "text/csv", "n\n4\nnot a number\n")
	require.Equal(t, http.StatusBadRequest, status, body)

	first := e.ask(t, key, "How many customers do we have?")
	rows++
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback", key, `{"correct":true}`, nil)
	wrong := e.ask(t, key, "How many customers per country?")
	rows += int64(len(wrong.Rows))
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/history/"+wrong.HistoryID+"/feedback", key,
		`{"correct":false,"sql":"SELECT country, count(*) FROM customers GROUP BY country ORDER BY 2 DESC"}`, nil)
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/models/default/training-data", key,
		`{"kind":"documentation","content":"A visit is one page view."}`, nil)

	cost := 6 * (0.1*0.001 + 0.02*0.002)
	return usage.Figures{
		QuestionsAsked: 6, QuestionsAnswered: 5, QuestionsRefused: 1, SQLFirstTry: 5, EmptyResults: 1,
		SQLStatements: 2, SQLFailed: 1, Imports: 2, ImportsFailed: 1, TrainingWrites: 1,
		RowsReturned: rows, RowsImported: 3, Corrections: 1, FeedbackUp: 1, FeedbackDown: 1,
		LLMCalls: 6, TokensIn: 600, TokensOut: 120, EstimatedCost: &cost,
		Models: []usage.ModelUsage{{Model: "gemini-1.5-flash", Calls: 6, TokensIn: 600, TokensOut: 120, EstimatedCost: &cost}},
	}
}

// requireFigures compares the counts and costs (costs within float
// rounding) and checks each stage's count and percentiles against the
// usage events themselves.
func requireFigures(t *testing.T, want, got usage.Figures, times map[string][]float64) {
	t.Helper()
	require.InDelta(t, *want.EstimatedCost, *got.EstimatedCost, 1e-12)
	require.Len(t, got.Models, len(want.Models))
	for i := range want.Models {
		require.InDelta(t, *want.Models[i].EstimatedCost, *got.Models[i].EstimatedCost, 1e-12)
		want.Models[i].EstimatedCost = got.Models[i].EstimatedCost
	}
	stages := map[string]usage.Stage{"retrieve": got.Stages.Retrieve, "generate": got.Stages.Generate,
		"validate": got.Stages.Validate, "execute": got.Stages.Execute}
	for name, st := range stages {
		ms := times[name]
		require.EqualValues(t, len(ms), st.Count, name)
		slices.Sort(ms)
		// Nearest rank, reported as the upper bound of its bucket.
		require.Equal(t, usage.UpperBound(usage.Bucket(ms[(len(ms)+1)/2-1])), *st.P50MS, name)
		require.Equal(t, usage.UpperBound(usage.Bucket(ms[(len(ms)*95+99)/100-1])), *st.P95MS, name)
	}
	want.EstimatedCost, want.Stages = got.EstimatedCost, got.Stages
	require.Equal(t, want, got)
}

// stageTimes reads every stage time of the tenant's usage events as
// dbchat_app in the tenant's transaction.
func stageTimes(t *testing.T, e *env, id tenant.Identity) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	require.NoError(t, e.db.TxAs(context.Background(), id, func(tx tenant.Conn) error {
		rows, err := tx.Query(context.Background(), `SELECT s, v FROM dbchat.usage_events,
			LATERAL (VALUES ('retrieve', retrieve_ms), ('generate', generate_ms), ('validate', validate_ms), ('execute', execute_ms)) AS x (s, v)
			WHERE v IS NOT NULL`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			var v float64
			if err := rows.Scan(&s, &v); err != nil {
				return err
			}
			out[s] = append(out[s], v)
		}
		return rows.Err()
	}))
	return out
}

// Known traffic (questions answered and refused through /v1/ask and a
// conversation, SQL that ran and failed, an import and a failed one,
// feedback up and down, a training write) gives exactly those figures by
// day and by week, in JSON and CSV; a member gets 403; tenant B sees none
// of it (through the API and as dbchat_app in B's transaction); the
// operator sees both tenants with their own numbers, sorted.
func TestAnalyticsCountKnownTraffic(t *testing.T) {
	t.Parallel()
	e := newAnalyticsEnv(t)
	ctx := context.Background()
	a, b := dbtest.NewTenant(t, e.db, "Shop A"), dbtest.NewTenant(t, e.db, "Shop B")
	for _, tn := range []dbtest.Tenant{a, b} {
		require.NoError(t, e.db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	}
	want := knownTraffic(t, e, a.APIKey)
	for range 3 {
		status, body := e.send(t, http.MethodPost, "/v1/sql", b.APIKey, map[string]any{"sql": "SELECT count(*) FROM orders"})
		require.Equal(t, http.StatusOK, status, body)
	}
	times := stageTimes(t, e, a.Identity)
	today := time.Now().UTC()
	day := func(d int) string { return today.AddDate(0, 0, d).Format(time.DateOnly) }

	t.Run("by day", func(t *testing.T) {
		rep := e.analyticsJSON(t, a.APIKey, "from="+day(-6)+"&to="+day(0)+"&granularity=day")
		require.Len(t, rep.Periods, 7)
		for _, p := range rep.Periods[:6] {
			require.Zero(t, p.QuestionsAsked+p.SQLStatements+p.Imports+p.TrainingWrites+p.FeedbackUp, p.From)
		}
		require.Equal(t, day(0), rep.Periods[6].From)
		requireFigures(t, want, rep.Periods[6].Figures, times)
		requireFigures(t, want, rep.Total, times)
		require.Equal(t, []usage.ModelRows{{Model: "default", Rows: 3}}, rep.TrainingRows) // 2 feedback pairs, 1 documentation
		names := []string{}
		for _, s := range rep.Storage {
			names = append(names, s.Table)
			require.Positive(t, s.Bytes, s.Table)
		}
		require.Equal(t, []string{"customers", "orders", "visits"}, names)
	})
	t.Run("by week", func(t *testing.T) {
		rep := e.analyticsJSON(t, a.APIKey, "from="+day(-13)+"&to="+day(0)+"&granularity=week")
		require.GreaterOrEqual(t, len(rep.Periods), 2)
		last := rep.Periods[len(rep.Periods)-1]
		require.Equal(t, day(0), last.To)
		require.Equal(t, time.Monday, mustDate(t, last.From).Weekday())
		requireFigures(t, want, last.Figures, times)
		requireFigures(t, want, rep.Total, times)
	})
	t.Run("csv", func(t *testing.T) {
		records := e.analyticsCSV(t, a.APIKey, "from="+day(-2)+"&to="+day(0))
		require.Len(t, records, 4) // header and three days
		col := map[string]int{}
		for i, h := range records[0] {
			col[h] = i
		}
		for _, r := range records {
			require.Len(t, r, len(records[0]))
		}
		last := records[3]
		require.Equal(t, day(0), last[col["from"]])
		require.Equal(t, "6", last[col["questions_asked"]])
		require.Equal(t, "5", last[col["questions_answered"]])
		require.Equal(t, "3", last[col["rows_imported"]])
		require.Equal(t, "600", last[col["gemini-1.5-flash_tokens_in"]])
		require.Equal(t, "0", records[1][col["questions_asked"]])
		require.NotEmpty(t, last[col["execute_p95_ms"]])
		require.Empty(t, records[1][col["execute_p95_ms"]], "no samples: no percentile")
	})
	t.Run("members get 403", func(t *testing.T) {
		m := e.addUser(t, a.APIKey, "member@a.example", "member")
		status, body := e.callJSON(t, http.MethodGet, "/v1/analytics", m.Key, "")
		require.Equal(t, http.StatusForbidden, status, body)
	})
	t.Run("tenant B sees none of A", func(t *testing.T) {
		rep := e.analyticsJSON(t, b.APIKey, "from="+day(-6)+"&to="+day(0))
		require.Equal(t, usage.Figures{SQLStatements: 3, RowsReturned: 3, EstimatedCost: rep.Total.EstimatedCost,
			Stages: rep.Total.Stages, Models: []usage.ModelUsage{}}, rep.Total)
		require.EqualValues(t, 3, rep.Total.Stages.Execute.Count)
		for _, s := range rep.Storage {
			require.NotEqual(t, "visits", s.Table)
		}
		var seen []uuid.UUID
		require.NoError(t, e.db.TxAs(ctx, b.Identity, func(tx tenant.Conn) error {
			rows, err := tx.Query(ctx, `SELECT tenant_id FROM dbchat.usage_events UNION ALL SELECT tenant_id FROM dbchat.usage_daily`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id uuid.UUID
				if err := rows.Scan(&id); err != nil {
					return err
				}
				seen = append(seen, id)
			}
			return rows.Err()
		}))
		require.NotEmpty(t, seen)
		require.NotContains(t, seen, a.ID)
	})
	t.Run("operator", func(t *testing.T) {
		for sort, first := range map[string]uuid.UUID{"questions": a.ID, "sql": b.ID, "tokens": a.ID, "rows_imported": a.ID} {
			list := e.adminAnalytics(t, "sort="+sort)
			require.Len(t, list, 2)
			require.Equal(t, first, list[0].TenantID, sort)
			byID := map[uuid.UUID]usage.TenantFigures{list[0].TenantID: list[0], list[1].TenantID: list[1]}
			requireFigures(t, want, byID[a.ID].Figures, times)
			require.EqualValues(t, 3, byID[b.ID].SQLStatements)
			require.Zero(t, byID[b.ID].QuestionsAsked)
			require.EqualValues(t, 3, byID[a.ID].TrainingRows)
			require.Positive(t, byID[a.ID].StorageBytes)
		}
	})
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	require.NoError(t, err)
	return d
}

// analyticsCSV reads GET /v1/analytics?query with Accept: text/csv.
func (e *env) analyticsCSV(t *testing.T, key, query string) [][]string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+"/v1/analytics?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", bearer(key))
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	return records
}

// adminAnalytics reads the operator's view.
func (e *env) adminAnalytics(t *testing.T, query string) []usage.TenantFigures {
	t.Helper()
	var resp struct {
		Tenants []usage.TenantFigures `json:"tenants"`
	}
	e.opsCall(t, http.StatusOK, http.MethodGet, "/v1/admin/analytics?"+query, "", &resp)
	return resp.Tenants
}

// Bad parameters are 400 naming the field; the operator's view needs the
// operator's token.
func TestAnalyticsBadParams(t *testing.T) {
	t.Parallel()
	e := newAnalyticsEnv(t)
	a := dbtest.NewTenant(t, e.db, "Shop")
	for query, field := range map[string]string{
		"from=2026-13-01":                 "from",
		"to=yesterday":                    "to",
		"from=2026-03-02&to=2026-03-01":   "from",
		"from=2025-01-01&to=2026-03-01":   "to",
		"granularity=month":               "granularity",
		"from=2026-03-01&granularity=DAY": "granularity",
	} {
		status, body := e.callJSON(t, http.MethodGet, "/v1/analytics?"+query, a.APIKey, "")
		require.Equal(t, http.StatusBadRequest, status, query)
		var resp struct {
			Error struct {
				Code    string         `json:"code"`
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		require.Equal(t, field, resp.Error.Details["field"], "%s: %s", query, body)
	}
	status, body := e.callJSON(t, http.MethodGet, "/v1/admin/analytics?sort=bogus", operatorToken, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, `"field":"sort"`)
	status, _ = e.callJSON(t, http.MethodGet, "/v1/admin/analytics", a.APIKey, "")
	require.Equal(t, http.StatusUnauthorized, status)
	// A full year is fine.
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/analytics?from=2025-03-02&to=2026-03-01&granularity=week", a.APIKey, "", nil)
}
