package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// newSQLEnv is newEnv with the SQL sandbox wired in.
func newSQLEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	cfg := server.Config{SQL: sandbox.New(db, box)}
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

func TestRunSQL(t *testing.T) {
	t.Parallel()
	e := newSQLEnv(t)
	a := dbtest.NewTenant(t, e.db, "A")
	b := dbtest.NewTenant(t, e.db, "B")
	e.createTable(t, a.APIKey, ordersSpec)
	e.createTable(t, b.APIKey, ordersSpec)

	status, body := e.send(t, http.MethodPost, "/v1/sql", a.APIKey, map[string]any{"sql": "SELECT count(*) AS n FROM orders", "limit": 5})
	require.Equal(t, http.StatusOK, status, body)
	var res struct {
		Columns   []struct{ Name, Type string } `json:"columns"`
		Rows      [][]json.RawMessage           `json:"rows"`
		RowCount  int                           `json:"row_count"`
		Truncated bool                          `json:"truncated"`
		HistoryID string                        `json:"history_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Equal(t, "n", res.Columns[0].Name)
	require.Equal(t, "bigint", res.Columns[0].Type)
	require.Equal(t, `"0"`, string(res.Rows[0][0]), "bigint as a string of exact digits")
	require.NotEmpty(t, res.HistoryID)

	// A member may run SQL too; the history entry is theirs.
	member := newMemberKey(t, e, a)
	status, body = e.send(t, http.MethodPost, "/v1/sql", member, map[string]any{"sql": "SELECT 1 AS one"})
	require.Equal(t, http.StatusOK, status, body)

	// Rejections are 400 sql_rejected with the reason and the history id.
	status, body = e.send(t, http.MethodPost, "/v1/sql", a.APIKey, map[string]any{"sql": "DELETE FROM orders"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"code":"sql_rejected"`)
	require.Contains(t, body, `"history_id"`)
	// So is a statement nested too deep to parse safely, which used to
	// crash the server (SIGSEGV in libpg_query's C code): the server
	// answers, and answers the next request too.
	deep := "SELECT " + strings.Repeat("1+", 25_000) + "1"
	status, body = e.send(t, http.MethodPost, "/v1/sql", member, map[string]any{"sql": deep})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"code":"sql_rejected"`)
	require.Contains(t, body, "too complex to parse safely")
	status, body = e.send(t, http.MethodPost, "/v1/sql", member, map[string]any{"sql": "SELECT 1 AS one"})
	require.Equal(t, http.StatusOK, status, body)
	// Database errors are 400 sql_error with the database's message.
	status, body = e.send(t, http.MethodPost, "/v1/sql", a.APIKey, map[string]any{"sql": "SELECT 1/0 FROM orders"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"code":"sql_error"`)
	require.Contains(t, body, "division by zero")

	// Every call is in the history: success, success, rejected, error.
	status, body = e.send(t, http.MethodGet, "/v1/history?limit=10", a.APIKey, nil)
	require.Equal(t, http.StatusOK, status, body)
	for _, s := range []string{`"status":"success"`, `"status":"rejected"`, `"status":"error"`} {
		require.Contains(t, body, s)
	}

	// Bad input names the field.
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"sql": ""}, "sql"},
		{map[string]any{"sql": "SELECT 1", "limit": 0}, "limit"},
		{map[string]any{"sql": "SELECT 1", "timeout_ms": 999999}, "timeout_ms"},
	} {
		status, body := e.send(t, http.MethodPost, "/v1/sql", a.APIKey, c.body)
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, body, `"field":"`+c.field+`"`)
	}
}

func TestRunSQLWithoutSandboxIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "A")
	status, body := e.send(t, http.MethodPost, "/v1/sql", a.APIKey, map[string]any{"sql": "SELECT 1"})
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body, `"code":"unavailable"`)
}
