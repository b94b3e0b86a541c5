package server_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The 401 body is the same for every way a key can be wrong, so a caller
// cannot tell a revoked key from a guessed one.
const unauthorizedBody = `{"error":{"code":"unauthorized","message":"missing or invalid API key"}}`

// env is one test's database, the runtime pool over it and a real HTTP
// server in front of server.New.
type env struct {
	d    *dbtest.DB
	pool *pgxpool.Pool
	db   *tenant.DB
	url  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	// Server logs go to the test's output, so a failure shows what was logged.
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close) // registered last, so it closes before the pool
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

// get performs GET path with key as bearer token ("" sends no
// Authorization header) and returns status and body.
func (e *env) get(t *testing.T, path, key string) (int, string) {
	t.Helper()
	return getAuth(t, e.url+path, bearer(key))
}

func bearer(key string) string {
	if key == "" {
		return ""
	}
	return "Bearer " + key
}

func getAuth(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"), "body: %s", body)
	return resp.StatusCode, string(body)
}

// meResponse is the part of GET /v1/me the tests look at.
type meResponse struct {
	Tenant struct {
		ID       uuid.UUID `json:"id"`
		Name     string    `json:"name"`
		Slug     string    `json:"slug"`
		IsActive bool      `json:"is_active"`
	} `json:"tenant"`
	User struct {
		ID   uuid.UUID `json:"id"`
		Role string    `json:"role"`
	} `json:"user"`
	Role  string    `json:"role"`
	KeyID uuid.UUID `json:"key_id"`
}

func (e *env) me(t *testing.T, key string) meResponse {
	t.Helper()
	status, body := e.get(t, "/v1/me", key)
	require.Equal(t, http.StatusOK, status, body)
	var me meResponse
	require.NoError(t, json.Unmarshal([]byte(body), &me), body)
	return me
}

// requireUnauthorized checks that GET path with key is refused with the
// one 401 body.
func (e *env) requireUnauthorized(t *testing.T, path, key string) {
	t.Helper()
	status, body := e.get(t, path, key)
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Equal(t, unauthorizedBody, body, "byte-identical for every failure")
}

func TestProbesAndUnknownRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	status, body := e.get(t, "/healthz", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"status":"ok"}`, body)

	// readyz goes to the database and compares the migration version.
	status, body = e.get(t, "/readyz", "")
	require.Equal(t, http.StatusOK, status, body)
	var ready struct {
		Status    string `json:"status"`
		Migration int64  `json:"migration"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ready))
	require.Equal(t, "ready", ready.Status)
	require.Positive(t, ready.Migration)

	for _, path := range []string{"/nope", "/v1/nope", "/v1"} {
		status, body = e.get(t, path, "")
		require.Equal(t, http.StatusNotFound, status, "%s: %s", path, body)
		require.JSONEq(t, `{"error":{"code":"not_found","message":"no such route"}}`, body, path)
	}
}

func TestMeAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Tenant A")
	b := dbtest.NewTenant(t, e.db, "Tenant B")

	me := e.me(t, a.APIKey)
	require.Equal(t, a.ID, me.Tenant.ID)
	require.Equal(t, a.Slug, me.Tenant.Slug)
	require.True(t, me.Tenant.IsActive)
	require.Equal(t, a.AdminID, me.User.ID)
	require.Equal(t, "admin", me.Role)
	require.Equal(t, "admin", me.User.Role)
	require.NotEqual(t, uuid.Nil, me.KeyID)

	require.Equal(t, b.ID, e.me(t, b.APIKey).Tenant.ID)

	// The scheme's name is case-insensitive (RFC 9110 section 11.1).
	for _, scheme := range []string{"bearer", "BEARER", "bEaReR"} {
		status, body := getAuth(t, e.url+"/v1/me", scheme+" "+a.APIKey)
		require.Equal(t, http.StatusOK, status, "%s: %s", scheme, body)
		var me meResponse
		require.NoError(t, json.Unmarshal([]byte(body), &me), body)
		require.Equal(t, a.ID, me.Tenant.ID, scheme)
	}

	// A well-formed key for A's tenant whose secret was never issued.
	guessed, err := auth.Generate(a.ID)
	require.NoError(t, err)
	// B's tenant part with A's secret: the tenant in a key is only a routing
	// hint, the hash must match a key stored under that tenant.
	spliced := "dbc_" + hex.EncodeToString(b.ID[:]) + a.APIKey[len("dbc_")+32:]
	require.Len(t, spliced, len(a.APIKey))

	cases := map[string]string{
		"no header":       "",
		"garbage":         "Bearer garbage",
		"empty bearer":    "Bearer ",
		"not bearer":      "Basic " + a.APIKey,
		"no space":        "Bearer" + a.APIKey,
		"bearer prefix":   "Bearerx " + a.APIKey,
		"random secret":   bearer(guessed.Plain),
		"spliced tenant":  bearer(spliced),
		"truncated key":   bearer(a.APIKey[:len(a.APIKey)-1]),
		"nil tenant":      bearer("dbc_" + strings.Repeat("0", 32) + a.APIKey[len("dbc_")+32:]),
		"junk before key": bearer("x" + a.APIKey),
	}
	for name, authz := range cases {
		status, body := getAuth(t, e.url+"/v1/me", authz)
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", name, body)
		require.Equal(t, unauthorizedBody, body, "%s: byte-identical for every failure", name)
	}
}

func TestRevokedKeyAndDeactivatedTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	q := dbsqlc.New()

	t.Run("revoked key", func(t *testing.T) {
		t.Parallel()
		a := dbtest.NewTenant(t, e.db, "Revoker")
		keyID := e.me(t, a.APIKey).KeyID

		var revoked int64
		err := e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
			var err error
			revoked, err = q.RevokeAPIKey(ctx, tx, keyID)
			return err
		})
		require.NoError(t, err)
		require.EqualValues(t, 1, revoked)

		// No caching between the database and the next request.
		e.requireUnauthorized(t, "/v1/me", a.APIKey)
		e.requireUnauthorized(t, "/v1/tables", a.APIKey)
	})

	t.Run("deactivated tenant", func(t *testing.T) {
		t.Parallel()
		a := dbtest.NewTenant(t, e.db, "Leaver")
		b := dbtest.NewTenant(t, e.db, "Stayer")
		e.me(t, a.APIKey)

		var updated int64
		err := e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
			var err error
			updated, err = q.SetTenantActive(ctx, tx, dbsqlc.SetTenantActiveParams{ID: a.ID, IsActive: false})
			return err
		})
		require.NoError(t, err)
		require.EqualValues(t, 1, updated)

		e.requireUnauthorized(t, "/v1/me", a.APIKey)
		require.Equal(t, b.ID, e.me(t, b.APIKey).Tenant.ID)
	})
}

// catalogTable is a table to create in a tenant's catalog.
type catalogTable struct {
	name    string
	columns int
}

func createCatalog(t *testing.T, db *tenant.DB, tn dbtest.Tenant, tables []catalogTable) {
	t.Helper()
	ctx := context.Background()
	q := dbsqlc.New()
	err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		for _, tbl := range tables {
			row, err := q.CreateTable(ctx, tx, dbsqlc.CreateTableParams{Name: tbl.name, Description: "table " + tbl.name})
			if err != nil {
				return err
			}
			for i := range tbl.columns {
				_, err := q.CreateColumn(ctx, tx, dbsqlc.CreateColumnParams{
					TableID: row.ID, Name: "col" + string(rune('a'+i)), DataType: "text", IsNullable: true, Position: int32(i + 1)})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
}

// listTables returns GET /v1/tables as name -> column_count, in the order
// the API returned them.
func (e *env) listTables(t *testing.T, key string) ([]string, map[string]int) {
	t.Helper()
	status, body := e.get(t, "/v1/tables", key)
	require.Equal(t, http.StatusOK, status, body)
	var resp struct {
		Tables []struct {
			ID          uuid.UUID `json:"id"`
			Name        string    `json:"name"`
			ColumnCount int       `json:"column_count"`
		} `json:"tables"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
	var names []string
	counts := map[string]int{}
	for _, tbl := range resp.Tables {
		names = append(names, tbl.Name)
		counts[tbl.Name] = tbl.ColumnCount
	}
	return names, counts
}

func TestListTablesIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Tables A")
	b := dbtest.NewTenant(t, e.db, "Tables B")
	createCatalog(t, e.db, a, []catalogTable{{"a_orders", 3}, {"a_customers", 1}, {"a_empty", 0}})
	createCatalog(t, e.db, b, []catalogTable{{"b_invoices", 2}})

	names, counts := e.listTables(t, a.APIKey)
	require.Equal(t, []string{"a_customers", "a_empty", "a_orders"}, names, "sorted by name, A's only")
	require.Equal(t, map[string]int{"a_orders": 3, "a_customers": 1, "a_empty": 0}, counts)

	names, counts = e.listTables(t, b.APIKey)
	require.Equal(t, []string{"b_invoices"}, names)
	require.Equal(t, map[string]int{"b_invoices": 2}, counts)

	// A tenant without tables gets an empty array, not null.
	c := dbtest.NewTenant(t, e.db, "Tables C")
	status, body := e.get(t, "/v1/tables", c.APIKey)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"tables":[]}`, body)
}

// Failures below the HTTP layer come out as a code and a fixed message; the
// Go or PostgreSQL error text only goes to the log.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Leaky")

	// A PostgreSQL error: the runtime role loses SELECT on the catalog.
	_, err := e.d.AdminPool(t).Exec(ctx, `REVOKE SELECT ON dbchat.database_tables FROM dbchat_app`)
	require.NoError(t, err)
	status, body := e.get(t, "/v1/tables", a.APIKey)
	require.Equal(t, http.StatusInternalServerError, status, body)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, body)
	require.NotContains(t, body, "permission denied")

	// A driver error: the pool is gone.
	e.pool.Close()
	status, body = e.get(t, "/v1/me", a.APIKey)
	require.Equal(t, http.StatusInternalServerError, status, body)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, body)
	require.NotContains(t, body, "pool")

	status, body = e.get(t, "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.JSONEq(t, `{"error":{"code":"unavailable","message":"database not ready"}}`, body)
}
