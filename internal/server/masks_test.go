package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/tenant"
)

// A tenant admin restricts a column and PostgreSQL keeps it from the
// tenant's members: their statements run as the members' role, which holds
// no SELECT on it, so naming it (or SELECT *) is "permission denied" in
// the database, and their preview leaves it out; admins still read it, and
// lifting the restriction gives it back. The same holds for a statement run
// by hand as dbchat_query, and the audit stays clean.
func TestColumnMasks(t *testing.T) {
	t.Parallel()
	e := newAskEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Masked shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	var member string
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		u, err := dbsqlc.New().CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "m@example.com", Name: "m", Role: "member"})
		if err == nil {
			member, err = dbtest.CreateKey(ctx, tx, a.ID, u.ID)
		}
		return err
	}))
	customers, name := maskedColumn(t, e, a.APIKey, "customers", "name")
	column := "/v1/tables/" + customers + "/columns/" + name

	require.Equal(t, http.StatusOK, e.sqlStatus(t, member, "SELECT name FROM customers"), "not restricted yet")
	status, body := e.callJSON(t, http.MethodPatch, column, member, `{"restricted":true}`)
	require.Equal(t, http.StatusForbidden, status, body)
	var col struct {
		Restricted  bool   `json:"restricted"`
		Description string `json:"description"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodPatch, column, a.APIKey, `{"restricted":true}`, &col)
	require.True(t, col.Restricted)
	require.Equal(t, "Full name", col.Description, "a patch without description keeps it")

	for _, sql := range []string{"SELECT name FROM customers", "SELECT * FROM customers", "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id",
		"SELECT (SELECT max(name) FROM customers)", "SELECT row_to_json(c) FROM customers c"} {
		status, body := e.send(t, http.MethodPost, "/v1/sql", member, map[string]any{"sql": sql})
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", sql, body)
		require.Contains(t, body, "permission denied", sql)
	}
	var ok struct {
		Rows     [][]json.RawMessage `json:"rows"`
		Security struct {
			DatabaseRole string `json:"database_role"`
		} `json:"security"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodPost, "/v1/sql", member, `{"sql":"SELECT id, country FROM customers ORDER BY id"}`, &ok)
	require.Len(t, ok.Rows, 4)
	require.Equal(t, tenant.MemberRole(a.ID), ok.Security.DatabaseRole)
	e.expectJSON(t, http.StatusOK, http.MethodPost, "/v1/sql", a.APIKey, `{"sql":"SELECT name FROM customers ORDER BY id"}`, &ok)
	require.Len(t, ok.Rows, 4)
	require.Equal(t, tenant.Schema(a.ID), ok.Security.DatabaseRole, "admins run as the tenant's role")

	// A question whose SQL reads the column fails the same way for a
	// member: a clear 400, no rows; an admin gets the answer.
	status, body = e.send(t, http.MethodPost, "/v1/ask", member, map[string]any{"question": "Show the names of the customers"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "permission denied")
	require.NotContains(t, body, "Ada")
	require.Len(t, e.ask(t, a.APIKey, "Show the names of the customers").Rows, 4)

	require.Equal(t, []string{"id", "country", "signed_up"}, previewColumns(t, e, member, customers))
	require.Equal(t, []string{"id", "name", "country", "signed_up"}, previewColumns(t, e, a.APIKey, customers))
	requireMemberDenied(t, e, a.ID, true)
	requireAuditClean(t, e)

	e.expectJSON(t, http.StatusOK, http.MethodPatch, column, a.APIKey, `{"restricted":false}`, &col)
	require.False(t, col.Restricted)
	require.Equal(t, http.StatusOK, e.sqlStatus(t, member, "SELECT name FROM customers"), "restriction lifted")
	requireMemberDenied(t, e, a.ID, false)

	// A column added restricted is never readable by members.
	var added struct {
		ID         string `json:"id"`
		Restricted bool   `json:"restricted"`
	}
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/tables/"+customers+"/columns", a.APIKey,
		`{"name":"salary","type":"numeric","restricted":true}`, &added)
	require.True(t, added.Restricted)
	require.Equal(t, http.StatusBadRequest, e.sqlStatus(t, member, "SELECT salary FROM customers"))
	require.Equal(t, http.StatusOK, e.sqlStatus(t, a.APIKey, "SELECT salary FROM customers"))
	requireAuditClean(t, e)
}

// maskedColumn returns the ids of a table and one of its columns.
func maskedColumn(t *testing.T, e *env, key, table, column string) (string, string) {
	t.Helper()
	var list struct {
		Tables []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"tables"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables", key, "", &list)
	for _, tb := range list.Tables {
		if tb.Name != table {
			continue
		}
		var detail struct {
			Columns []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"columns"`
		}
		e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables/"+tb.ID, key, "", &detail)
		for _, c := range detail.Columns {
			if c.Name == column {
				return tb.ID, c.ID
			}
		}
	}
	t.Fatalf("no column %s.%s", table, column)
	return "", ""
}

func (e *env) sqlStatus(t *testing.T, key, sql string) int {
	t.Helper()
	status, _ := e.send(t, http.MethodPost, "/v1/sql", key, map[string]any{"sql": sql})
	return status
}

func previewColumns(t *testing.T, e *env, key, table string) []string {
	t.Helper()
	var page catalog.Rows
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables/"+table+"/rows", key, "", &page)
	var names []string
	for _, c := range page.Columns {
		names = append(names, c.Name)
	}
	require.Len(t, page.Rows, 4)
	require.Len(t, page.Rows[0], len(names))
	return names
}

// maskAttacks are the ways a statement can reach customers.name besides
// naming it: field selection in every syntax, whole-row references (casts,
// JSON, subqueries, CTEs, TABLE), a filter or an order on it, COLLATE.
var maskAttacks = []string{
	`SELECT name FROM customers`,
	`SELECT c.name FROM customers c`,
	`SELECT (c).name FROM customers c`,
	`SELECT name(c) FROM customers c`,
	`SELECT name COLLATE "C" FROM customers`,
	`SELECT c::text FROM customers c`,
	`SELECT row_to_json(c) FROM customers c`,
	`SELECT * FROM customers`,
	`TABLE customers`,
	`SELECT (SELECT c FROM customers c LIMIT 1)`,
	`WITH x AS (SELECT * FROM customers) SELECT 1 FROM x`,
	`SELECT count(*) FROM customers WHERE name = 'Ada Lovelace'`,
	`SELECT count(*) FROM customers WHERE name || '' > ''`,
	`SELECT id FROM customers ORDER BY name`,
	`SELECT count(DISTINCT name) FROM customers`,
}

// requireMemberDenied runs what docs/SECURITY.md shows a DBA, with the SQL
// parser out of the way: as dbchat_query, the members' role cannot reach
// customers.name while it is restricted, by any of maskAttacks, and can read
// the other columns; the tenant's role reads everything.
func requireMemberDenied(t *testing.T, e *env, tenantID uuid.UUID, denied bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.d.QueryURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	read := func(role, sql string) error {
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		_, err = tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{role}.Sanitize()+`; SET LOCAL search_path = `+pgx.Identifier{tenant.Schema(tenantID)}.Sanitize())
		require.NoError(t, err)
		_, err = tx.Exec(ctx, sql)
		return err
	}
	member := tenant.MemberRole(tenantID)
	require.NoError(t, read(member, `SELECT id, country, signed_up, count(*) OVER () FROM customers`))
	for _, sql := range maskAttacks {
		err := read(member, sql)
		if !denied {
			require.NoError(t, err, sql)
			continue
		}
		var pg *pgconn.PgError
		require.ErrorAs(t, err, &pg, sql)
		require.Equal(t, "42501", pg.Code, "%s: %s", sql, pg.Message)
		require.NoError(t, read(tenant.Schema(tenantID), sql), "the admins' role: %s", sql)
	}
}

func requireAuditClean(t *testing.T, e *env) {
	t.Helper()
	rows, err := e.d.AdminPool(t).Query(context.Background(), `SELECT lint || ': ' || object || ': ' || detail FROM audit.findings WHERE level = 'ERROR'`)
	require.NoError(t, err)
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, found)
}
