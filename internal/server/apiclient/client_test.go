package apiclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
)

const operatorToken = "operator-token-for-the-client-test"

// TestGeneratedClient drives the real server, over a fresh database, with
// the client generated from openapi.yaml. Every request and response also
// passes through a validator built from the same document (undeclared
// status, missing required field, wrong type or null, enum value outside
// the list), and each typed body is decoded again refusing fields the
// document does not declare. So this fails when the document and the server
// disagree, even where the generated types alone would not notice.
func TestGeneratedClient(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := startServer(t)
	hc := &http.Client{Transport: newValidator(t, http.DefaultTransport)}

	anon, err := apiclient.NewClientWithResponses(url, apiclient.WithHTTPClient(hc))
	require.NoError(t, err)
	health, err := anon.HealthzWithResponse(ctx)
	require.NoError(t, err)
	require.EqualValues(t, "ok", typed(t, health.Body, health.JSON200).Status)
	doc, err := anon.OpenapiWithResponse(ctx)
	require.NoError(t, err)
	require.NotNil(t, doc.YAML200, "status %d", doc.StatusCode())
	require.Equal(t, "3.0.3", (*doc.YAML200)["openapi"])

	// The operator creates a tenant; its admin key drives the rest.
	op := client(t, url, hc, operatorToken)
	created, err := op.CreateTenantWithResponse(ctx, apiclient.TenantCreate{Name: "Typed Client"})
	require.NoError(t, err)
	tn := typed(t, created.Body, created.JSON201)
	require.Equal(t, "typed-client", tn.Tenant.Slug)
	require.Equal(t, apiclient.Admin, tn.User.Role)
	c := client(t, url, hc, tn.ApiKey)

	me, err := c.MeWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, tn.Tenant.Id, typed(t, me.Body, me.JSON200).Tenant.Id)

	// A table whose optional fields (description, nullable) are left out
	// where the defaults will do.
	notNull := false
	table, err := c.CreateTableWithResponse(ctx, apiclient.TableCreate{
		Name: "customers",
		Columns: []apiclient.ColumnCreate{
			{Name: "id", Type: apiclient.Bigint, Nullable: &notNull},
			{Name: "name", Type: apiclient.Text},
			{Name: "country", Type: apiclient.Text},
			{Name: "signed_up", Type: apiclient.Date},
		},
	})
	require.NoError(t, err)
	tbl := typed(t, table.Body, table.JSON201)
	require.Equal(t, "customers", tbl.Name)
	require.Len(t, tbl.Columns, 4)
	require.False(t, tbl.Columns[0].IsNullable)
	require.True(t, tbl.Columns[1].IsNullable, "nullable defaults to true")
	require.Equal(t, apiclient.Date, tbl.Columns[3].DataType)
	require.NotNil(t, tbl.RowCount)
	require.Zero(t, *tbl.RowCount)

	// Rows as JSON, then as CSV.
	imported, err := c.ImportRowsWithResponse(ctx, tbl.Id, apiclient.ImportRowsJSONRequestBody{
		{"id": 1, "name": "Ada Lovelace", "country": "GB", "signed_up": "2024-01-15"},
		{"id": 2, "name": "Grace Hopper", "country": "US", "signed_up": nil},
	})
	require.NoError(t, err)
	require.EqualValues(t, 2, typed(t, imported.Body, imported.JSON200).Inserted)
	csv := "id,name,country,signed_up\n3,\"Hamilton, Margaret\",US,2024-03-01\n"
	imported, err = c.ImportRowsWithBodyWithResponse(ctx, tbl.Id, "text/csv", strings.NewReader(csv))
	require.NoError(t, err)
	require.EqualValues(t, 1, typed(t, imported.Body, imported.JSON200).Inserted)

	tables, err := c.ListTablesWithResponse(ctx)
	require.NoError(t, err)
	list := typed(t, tables.Body, tables.JSON200).Tables
	require.Len(t, list, 1)
	require.Equal(t, tbl.Id, list[0].Id)
	require.EqualValues(t, 4, list[0].ColumnCount)

	limit := 2
	rows, err := c.ListRowsWithResponse(ctx, tbl.Id, &apiclient.ListRowsParams{Limit: &limit})
	require.NoError(t, err)
	page := typed(t, rows.Body, rows.JSON200)
	require.Equal(t, 2, page.Limit)
	require.Equal(t, apiclient.Bigint, page.Columns[0].Type)
	require.Equal(t, [][]any{{"1", "Ada Lovelace", "GB", "2024-01-15"}, {"2", "Grace Hopper", "US", nil}}, page.Rows)

	// SQL with only the required field: limit and timeout_ms are optional.
	res, err := c.RunSQLWithResponse(ctx, apiclient.SQLRequest{Sql: "SELECT country, count(*) AS n FROM customers GROUP BY country ORDER BY country"})
	require.NoError(t, err)
	result := typed(t, res.Body, res.JSON200)
	require.Equal(t, []apiclient.SQLColumn{{Name: "country", Type: "text"}, {Name: "n", Type: "bigint"}}, result.Columns)
	require.Equal(t, []apiclient.Row{{"GB", "1"}, {"US", "2"}}, result.Rows)
	require.Equal(t, 2, result.RowCount)
	require.False(t, result.Truncated)
	require.NotEqual(t, uuid.Nil, result.HistoryId)

	// A rejected statement: the documented error shape and code.
	res, err = c.RunSQLWithResponse(ctx, apiclient.SQLRequest{Sql: "DELETE FROM customers"})
	require.NoError(t, err)
	require.Equal(t, apiclient.ErrorErrorCodeSqlRejected, typed(t, res.Body, res.JSON400).Error.Code)

	// /v1/ask answers with the same columns and rows as /v1/sql.
	answer, err := c.AskQuestionWithResponse(ctx, apiclient.AskQuestionJSONRequestBody{Question: "How many customers do we have?"})
	require.NoError(t, err)
	a := typed(t, answer.Body, answer.JSON200)
	require.Equal(t, "offline", a.Generator)
	require.Equal(t, []apiclient.Row{{"3"}}, a.Rows, "sql: %s", a.Sql)

	history, err := c.ListHistoryWithResponse(ctx, &apiclient.ListHistoryParams{})
	require.NoError(t, err)
	items := typed(t, history.Body, history.JSON200).Items
	require.Len(t, items, 3, "sql, rejected sql, ask")
	require.Equal(t, a.HistoryId, items[0].Id)
	require.Equal(t, apiclient.HistoryStatusSuccess, items[0].Status)
	require.Equal(t, apiclient.HistoryStatusRejected, items[1].Status)

	missing, err := c.GetTableWithResponse(ctx, uuid.New())
	require.NoError(t, err)
	require.Equal(t, apiclient.ErrorErrorCodeNotFound, typed(t, missing.Body, missing.JSON404).Error.Code)
}

// startServer serves the real handler over a fresh migrated database, with
// the SQL sandbox, the offline NL→SQL pipeline and an operator token.
func startServer(t *testing.T) string {
	t.Helper()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	asker := ask.New(db, sql, store, generate.NewOffline())
	cfg := server.Config{AdminToken: operatorToken, SQL: sql, Ask: asker, Embedder: store.Embedder}
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg))
	t.Cleanup(srv.Close)
	return srv.URL
}

func client(t *testing.T, url string, doer apiclient.HttpRequestDoer, token string) *apiclient.ClientWithResponses {
	t.Helper()
	c, err := apiclient.NewClientWithResponses(url, apiclient.WithHTTPClient(doer),
		apiclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	require.NoError(t, err)
	return c
}

// typed returns the generated client's decoded body v after checking that
// it was decoded (the status and content type were the documented ones)
// and that body has no field the document does not declare.
func typed[T any](t *testing.T, body []byte, v *T) *T {
	t.Helper()
	require.NotNil(t, v, "not the documented response: %s", body)
	var strict T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&strict), "a field openapi.yaml does not declare: %s", body)
	return v
}

// validator checks every request against openapi.yaml before sending it and
// every response after receiving it; a mismatch fails the call.
type validator struct {
	router routers.Router
	next   http.RoundTripper
}

func newValidator(t *testing.T, next http.RoundTripper) validator {
	t.Helper()
	raw, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err)
	doc.Servers = nil // match paths alone, whatever the test server's address
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	return validator{router: router, next: next}
}

func (v validator) RoundTrip(req *http.Request) (*http.Response, error) {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s is not in openapi.yaml: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			SkipSettingDefaults: true, // send exactly what the client built
			MultiError:          true,
		},
	}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		return nil, fmt.Errorf("request %s %s does not match openapi.yaml: %w", req.Method, route.Path, err)
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	err = openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		return nil, fmt.Errorf("response to %s %s (%d) does not match openapi.yaml: %w\nbody: %s", req.Method, route.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}
