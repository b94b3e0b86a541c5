package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// send performs method path with a JSON body (nil: none) as key.
func (e *env) send(t *testing.T, method, path, key string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", bearer(key))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

type tableResponse struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	IsActive    bool      `json:"is_active"`
	RowCount    *int64    `json:"row_count"`
	Columns     []struct {
		ID         uuid.UUID `json:"id"`
		Name       string    `json:"name"`
		DataType   string    `json:"data_type"`
		IsNullable bool      `json:"is_nullable"`
	} `json:"columns"`
}

var ordersSpec = map[string]any{
	"name": "orders", "description": "One row per order",
	"columns": []map[string]any{
		{"name": "id", "type": "bigint", "nullable": false, "description": "order number"},
		{"name": "amount", "type": "numeric"},
		{"name": "placed_at", "type": "timestamptz"},
	},
}

func (e *env) createTable(t *testing.T, key string, spec any) tableResponse {
	t.Helper()
	status, body := e.send(t, http.MethodPost, "/v1/tables", key, spec)
	require.Equal(t, http.StatusCreated, status, body)
	var tr tableResponse
	require.NoError(t, json.Unmarshal([]byte(body), &tr))
	return tr
}

func TestCreateTableMakesAnRLSProtectedTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "A")
	tr := e.createTable(t, a.APIKey, ordersSpec)
	require.Equal(t, "orders", tr.Name)
	require.Len(t, tr.Columns, 3)
	require.False(t, tr.Columns[0].IsNullable)

	// The real table exists in A's schema with forced RLS and the policy.
	admin := e.d.AdminPool(t)
	var enabled, forced bool
	var qual, check string
	err := admin.QueryRow(ctx, `SELECT c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_policies p ON p.schemaname = n.nspname AND p.tablename = c.relname AND p.policyname = 'tenant_isolation'
		WHERE n.nspname = $1 AND c.relname = 'orders'`, tenant.Schema(a.ID)).Scan(&enabled, &forced, &qual, &check)
	require.NoError(t, err)
	require.True(t, enabled)
	require.True(t, forced)
	require.Contains(t, qual, "current_setting('app.tenant_id'")
	require.Contains(t, check, "current_setting('app.tenant_id'")

	// The tenant's role (what its untrusted SQL runs as) may read every
	// column of it, by column (not the table: that would read the system
	// columns too), the query login itself may not, the runtime role may
	// write it, and none owns it.
	var owner string
	var roleSelect, roleTable, roleInsert, querySelect, appInsert bool
	require.NoError(t, admin.QueryRow(ctx, `SELECT pg_get_userbyid(c.relowner),
			NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
			            AND NOT has_column_privilege($2, c.oid, a.attnum, 'SELECT')),
			has_table_privilege($2, c.oid, 'SELECT'), has_table_privilege($2, c.oid, 'INSERT'),
			has_table_privilege('dbchat_query', c.oid, 'SELECT'), has_table_privilege('dbchat_app', c.oid, 'INSERT')
		FROM pg_class c WHERE c.oid = to_regclass($1)`, tenant.Schema(a.ID)+".orders", tenant.Schema(a.ID)).Scan(&owner, &roleSelect, &roleTable, &roleInsert, &querySelect, &appInsert))
	require.Equal(t, "dbchat_owner", owner)
	require.True(t, roleSelect)
	require.False(t, roleTable)
	require.False(t, roleInsert)
	require.False(t, querySelect)
	require.True(t, appInsert)

	// GET shows it with a row count; list shows it.
	status, body := e.send(t, http.MethodGet, "/v1/tables/"+tr.ID.String(), a.APIKey, nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"row_count":0`)
	names, _ := e.listTables(t, a.APIKey)
	require.Equal(t, []string{"orders"}, names)
}

func TestRuntimeRoleCannotCreateTablesDirectly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "A")
	e.createTable(t, a.APIKey, ordersSpec) // A's schema now exists
	schema := tenant.Schema(a.ID)
	for _, stmt := range []string{
		`CREATE TABLE ` + schema + `.sneaky (id int)`,
		`CREATE TABLE dbchat.sneaky (id int)`,
		`CREATE TABLE public.sneaky (id int)`,
		`ALTER TABLE ` + schema + `.orders DISABLE ROW LEVEL SECURITY`,
		`ALTER TABLE ` + schema + `.orders NO FORCE ROW LEVEL SECURITY`,
		`DROP POLICY tenant_isolation ON ` + schema + `.orders`,
		`DROP TABLE ` + schema + `.orders`,
	} {
		err := e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { _, err := tx.Exec(ctx, stmt); return err })
		var pg *pgconn.PgError
		require.ErrorAs(t, err, &pg, stmt)
		require.Equal(t, "42501", pg.Code, "%s: %s", stmt, pg.Message) // insufficient_privilege
	}
	// The tables are all still there and protected.
	require.Empty(t, coverageGaps(t, e))
}

// coverageGaps lists tables in any tenant schema without forced RLS.
func coverageGaps(t *testing.T, e *env) []string {
	rows, err := e.d.AdminPool(t).Query(context.Background(), `SELECT format('%I.%I', n.nspname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname LIKE 't\_%' AND NOT (c.relrowsecurity AND c.relforcerowsecurity
		  AND EXISTS (SELECT FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname AND p.policyname = 'tenant_isolation'))`)
	require.NoError(t, err)
	var gaps []string
	for rows.Next() {
		var g string
		require.NoError(t, rows.Scan(&g))
		gaps = append(gaps, g)
	}
	return gaps
}

func TestDDLFunctionsStayInTheCallersSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "A")
	b := dbtest.NewTenant(t, e.db, "B")
	e.createTable(t, a.APIKey, ordersSpec)
	q := dbsqlc.New()

	// B names A's table: it resolves in B's schema, where it does not exist.
	err := e.db.TxAs(ctx, b.Identity, func(tx tenant.Conn) error { return q.DropDataTable(ctx, tx, "orders") })
	requireCode(t, err, "not_found")
	err = e.db.TxAs(ctx, b.Identity, func(tx tenant.Conn) error {
		return q.AddDataColumn(ctx, tx, dbsqlc.AddDataColumnParams{TableName: "orders", ColumnName: "x", DataType: "text", Nullable: true})
	})
	requireCode(t, err, "not_found")
	// Schema-qualified names are not identifiers the functions accept.
	err = e.db.TxAs(ctx, b.Identity, func(tx tenant.Conn) error { return q.DropDataTable(ctx, tx, tenant.Schema(a.ID)+".orders") })
	requireCode(t, err, "invalid")
	// Without a tenant, the functions refuse outright.
	err = e.db.TxAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		_, err := q.CreateDataTable(ctx, tx, dbsqlc.CreateDataTableParams{Name: "x", Columns: `[{"name":"a","type":"text"}]`})
		return err
	})
	require.Error(t, err)
	// Types outside the allowlist are refused by the database too.
	err = e.db.TxAs(ctx, b.Identity, func(tx tenant.Conn) error {
		_, err := q.CreateDataTable(ctx, tx, dbsqlc.CreateDataTableParams{Name: "x", Columns: `[{"name":"a","type":"text); DROP TABLE dbchat.users; --"}]`})
		return err
	})
	requireCode(t, err, "invalid")
	var n int
	require.NoError(t, e.d.AdminPool(t).QueryRow(ctx, `SELECT count(*) FROM dbchat.users`).Scan(&n))
	require.Positive(t, n)
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), code+":"), "want %s, got %v", code, err)
}

func TestTableValidationAndConflicts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "A")
	cases := []struct {
		body  any
		field string
	}{
		{map[string]any{"name": "Orders", "columns": []map[string]any{{"name": "a", "type": "text"}}}, "name"},
		{map[string]any{"name": "1abc", "columns": []map[string]any{{"name": "a", "type": "text"}}}, "name"},
		{map[string]any{"name": "x", "columns": []map[string]any{}}, "columns"},
		{map[string]any{"name": "x", "columns": []map[string]any{{"name": "a", "type": "money"}}}, "columns[0].type"},
		{map[string]any{"name": "x", "columns": []map[string]any{{"name": "tenant_id", "type": "uuid"}}}, "columns[0].name"},
		{map[string]any{"name": "x", "columns": []map[string]any{{"name": "a", "type": "text"}, {"name": "a", "type": "integer"}}}, "columns[1].name"},
	}
	for _, c := range cases {
		status, body := e.send(t, http.MethodPost, "/v1/tables", a.APIKey, c.body)
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, body, `"field":"`+c.field+`"`, body)
	}
	// A reserved word is refused by the database's check, still as a 400.
	status, body := e.send(t, http.MethodPost, "/v1/tables", a.APIKey,
		map[string]any{"name": "select", "columns": []map[string]any{{"name": "a", "type": "text"}}})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "reserved word")

	// PostgreSQL's system column names would fail as "duplicate column"
	// (42701), which reads as a clash with another table; the 400 names the
	// real reason, for a new table and for a new column alike.
	for i, name := range []string{"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"} {
		status, body := e.send(t, http.MethodPost, "/v1/tables", a.APIKey, map[string]any{"name": fmt.Sprintf("sys%d", i),
			"columns": []map[string]any{{"name": "a", "type": "text"}, {"name": name, "type": "text"}}})
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, body, `"field":"columns[1].name"`, body)
		require.Contains(t, body, fmt.Sprintf(`\"%s\" is a PostgreSQL system column name`, name), body)
		require.NotContains(t, body, "already exists")
	}

	orders := e.createTable(t, a.APIKey, ordersSpec)
	status, body = e.send(t, http.MethodPost, "/v1/tables", a.APIKey, ordersSpec)
	require.Equal(t, http.StatusConflict, status, body)
	require.Contains(t, body, `"code":"conflict"`)
	names, _ := e.listTables(t, a.APIKey)
	require.Equal(t, []string{"orders"}, names, "the failed create left nothing behind")

	status, body = e.send(t, http.MethodPost, "/v1/tables/"+orders.ID.String()+"/columns", a.APIKey,
		map[string]any{"name": "xmin", "type": "bigint"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"field":"column.name"`, body)
	require.Contains(t, body, `\"xmin\" is a PostgreSQL system column name`, body)
	// A real clash still says so.
	status, body = e.send(t, http.MethodPost, "/v1/tables/"+orders.ID.String()+"/columns", a.APIKey,
		map[string]any{"name": "amount", "type": "bigint"})
	require.Equal(t, http.StatusConflict, status, body)
	require.Contains(t, body, `a column named \"amount\" already exists`, body)
}

func TestTableLifecycleAndRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "A")
	tr := e.createTable(t, a.APIKey, ordersSpec)
	path := "/v1/tables/" + tr.ID.String()

	// Columns: add one to the real table, then describe it.
	status, body := e.send(t, http.MethodPost, path+"/columns", a.APIKey, map[string]any{"name": "note", "type": "text", "description": "free text"})
	require.Equal(t, http.StatusCreated, status, body)
	var col struct {
		ID       uuid.UUID `json:"id"`
		Position int       `json:"position"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &col))
	require.Equal(t, 4, col.Position)
	status, body = e.send(t, http.MethodPost, path+"/columns", a.APIKey, map[string]any{"name": "note", "type": "text"})
	require.Equal(t, http.StatusConflict, status, body)
	status, body = e.send(t, http.MethodPatch, path+"/columns/"+col.ID.String(), a.APIKey, map[string]any{"description": "changed"})
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"description":"changed"`)
	var exists bool
	require.NoError(t, e.d.AdminPool(t).QueryRow(ctx, `SELECT EXISTS (SELECT FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'note')`, tenant.Schema(a.ID)).Scan(&exists))
	require.True(t, exists)

	// PATCH the table.
	status, body = e.send(t, http.MethodPatch, path, a.APIKey, map[string]any{"description": "new", "is_active": false})
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"is_active":false`)

	// A member reads but may not change anything.
	member := newMemberKey(t, e, a)
	status, body = e.send(t, http.MethodGet, path, member, nil)
	require.Equal(t, http.StatusOK, status, body)
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/v1/tables"}, {http.MethodPatch, path}, {http.MethodDelete, path},
		{http.MethodPost, path + "/columns"}, {http.MethodPatch, path + "/columns/" + col.ID.String()},
	} {
		status, body := e.send(t, r.method, r.path, member, map[string]any{})
		require.Equal(t, http.StatusForbidden, status, "%s %s: %s", r.method, r.path, body)
	}

	// DELETE drops the real table too.
	status, body = e.send(t, http.MethodDelete, path, a.APIKey, nil)
	require.Equal(t, http.StatusNoContent, status, body)
	require.NoError(t, e.d.AdminPool(t).QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, tenant.Schema(a.ID)+".orders").Scan(&exists))
	require.False(t, exists)
	status, _ = e.send(t, http.MethodGet, path, a.APIKey, nil)
	require.Equal(t, http.StatusNotFound, status)
}

// newMemberKey creates a member user with a key in tenant tn.
func newMemberKey(t *testing.T, e *env, tn dbtest.Tenant) string {
	t.Helper()
	ctx := context.Background()
	var key string
	err := e.db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		u, err := dbsqlc.New().CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: uuid.NewString() + "@example.com", Role: "member"})
		if err != nil {
			return err
		}
		key, err = dbtest.CreateKey(ctx, tx, tn.ID, u.ID)
		return err
	})
	require.NoError(t, err)
	return key
}

func TestTablesAcrossTenantsAre404(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "A")
	b := dbtest.NewTenant(t, e.db, "B")
	tr := e.createTable(t, a.APIKey, ordersSpec)
	colID := tr.Columns[0].ID.String()
	random := uuid.NewString()
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/tables/%s", nil},
		{http.MethodPatch, "/v1/tables/%s", map[string]any{"description": "pwned"}},
		{http.MethodDelete, "/v1/tables/%s", nil},
		{http.MethodPost, "/v1/tables/%s/columns", map[string]any{"name": "pwned", "type": "text"}},
		{http.MethodPatch, "/v1/tables/%s/columns/" + colID, map[string]any{"description": "pwned"}},
	} {
		sB, bodyB := e.send(t, r.method, strings.Replace(r.path, "%s", tr.ID.String(), 1), b.APIKey, r.body)
		sR, bodyR := e.send(t, r.method, strings.Replace(r.path, "%s", random, 1), b.APIKey, r.body)
		require.Equal(t, http.StatusNotFound, sB, "%s %s: %s", r.method, r.path, bodyB)
		require.Equal(t, sR, sB)
		require.Equal(t, bodyR, bodyB, "another tenant's id must look exactly like a random one")
	}
	// A's table is untouched.
	status, body := e.send(t, http.MethodGet, "/v1/tables/"+tr.ID.String(), a.APIKey, nil)
	require.Equal(t, http.StatusOK, status, body)
	require.NotContains(t, body, "pwned")
	names, _ := e.listTables(t, b.APIKey)
	require.Empty(t, names)
}
