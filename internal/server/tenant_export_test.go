package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/tenantio"
)

// The operator's GET /v1/admin/tenants/{id}/export streams the same zip as
// `dbchat tenant export`: it imports into a new tenant whose tables hold the
// same rows. An unknown tenant is a JSON 404 before any byte of zip, a
// tenant's key is refused, and a server without the privileged connection
// answers 503.
func TestOperatorExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	a := dbtest.NewTenant(t, db, "Export shop")
	require.NoError(t, db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	export := func(ctx context.Context, tenantArg string, w io.Writer) error {
		conn, err := pgx.Connect(ctx, d.AdminURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = tenantio.Export(ctx, conn, tenantArg, w)
		return err
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	srv := httptest.NewServer(server.New(db, log, server.Config{AdminToken: operatorToken, Export: export}))
	t.Cleanup(srv.Close)
	bare := httptest.NewServer(server.New(db, log, server.Config{AdminToken: operatorToken}))
	t.Cleanup(bare.Close)

	get := func(base, path, token string) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}
	path := "/v1/admin/tenants/" + a.ID.String() + "/export"
	resp, body := get(srv.URL, path, operatorToken)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "application/zip", resp.Header.Get("Content-Type"))
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, d.AdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	res, err := tenantio.Import(ctx, conn, zr, "Export copy", "")
	require.NoError(t, err)
	for _, table := range []string{"customers", "orders"} {
		var from, to int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tenant.Schema(a.ID), table}.Sanitize()).Scan(&from))
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{res.Tenant.Schema(), table}.Sanitize()).Scan(&to))
		require.Positive(t, from)
		require.Equal(t, from, to, table)
	}

	resp, body = get(srv.URL, "/v1/admin/tenants/no-such-tenant/export", operatorToken)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, string(body))
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	resp, body = get(srv.URL, path, a.APIKey)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(body))
	resp, body = get(bare.URL, path, operatorToken)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
}
