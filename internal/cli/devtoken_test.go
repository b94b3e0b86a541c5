package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestDevTokenSignsInToTheDemoTenant runs the README walkthrough against a
// dev-like server: the dev provider registered for a demo tenant (twice, as
// two `make run`s would), a claim policy on customers, and two end users
// whose minted tokens see different rows through /v1/sql.
func TestDevTokenSignsInToTheDemoTenant(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 8))
	a := dbtest.NewTenant(t, db, "Demo")
	require.NoError(t, db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	dir := t.TempDir()

	first, stop, err := startDevIdP(ctx, db, a.Identity, dir)
	require.NoError(t, err)
	stop()
	st, stop, err := startDevIdP(ctx, db, a.Identity, dir) // a second run: its port again, the same registration
	require.NoError(t, err)
	t.Cleanup(stop)
	if st.JWKSURL != first.JWKSURL {
		// Between the two runs another test may have bound the freed port
		// (they run in parallel); then the fallback is right, and the port
		// must indeed be taken.
		l, err := net.Listen("tcp", strings.TrimSuffix(strings.TrimPrefix(first.JWKSURL, "http://"), "/jwks.json"))
		if err == nil {
			l.Close()
		}
		require.Error(t, err, "the second run left its free port %s for %s", first.JWKSURL, st.JWKSURL)
		first.JWKSURL = st.JWKSURL
	}
	require.Equal(t, first, st)
	require.True(t, strings.HasPrefix(st.JWKSURL, "http://127.0.0.1:"), st.JWKSURL)
	require.Equal(t, devIssuerPrefix+a.ID.String(), st.Issuer)
	fi, err := os.Stat(filepath.Join(dir, devKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the private key is the owner's only")

	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	ts := httptest.NewServer(server.New(db, slog.New(slog.DiscardHandler), server.Config{SQL: sandbox.New(db, box)}))
	t.Cleanup(ts.Close)
	call := func(token, method, path, body string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	mint := func(args ...string) string {
		var out, errb bytes.Buffer
		code := Run(ctx, &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, append([]string{"dev-token", "--dir", dir}, args...))
		require.Zero(t, code, errb.String())
		return strings.TrimSpace(out.String())
	}

	// The customers table, and a claim policy on it (as the tenant admin).
	code, body := call(a.APIKey, http.MethodGet, "/v1/tables", "")
	require.Equal(t, http.StatusOK, code, body)
	var tables struct {
		Tables []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"tables"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tables), body)
	var customers string
	for _, tb := range tables.Tables {
		if tb.Name == "customers" {
			customers = tb.ID
		}
	}
	require.NotEmpty(t, customers, body)
	code, body = call(a.APIKey, http.MethodPost, "/v1/tables/"+customers+"/policies", `{"name":"own_country","column":"country","claim":"country","op":"eq"}`)
	require.Equal(t, http.StatusCreated, code, body)

	names := func(token string) string {
		code, body := call(token, http.MethodPost, "/v1/sql", `{"sql":"SELECT name FROM customers ORDER BY id"}`)
		require.Equal(t, http.StatusOK, code, body)
		var res struct {
			Rows [][]string `json:"rows"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &res), body)
		var out []string
		for _, r := range res.Rows {
			out = append(out, r[0])
		}
		return strings.Join(out, ", ")
	}
	alice, bob := mint("--sub", "alice", "--claim", "country=US"), mint("--sub", "bob", "--claim", "country=GB")
	require.Equal(t, "Grace Hopper, Barbara Liskov", names(alice))
	me := func(token string) string {
		code, body := call(token, http.MethodGet, "/v1/me", "")
		require.Equal(t, http.StatusOK, code, body)
		var m struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &m))
		return m.User.ID
	}
	aliceID := me(alice)
	// Restarted on its port: the same registration, alice the same user.
	stop()
	again, stop, err := startDevIdP(ctx, db, a.Identity, dir)
	require.NoError(t, err)
	require.Equal(t, st, again)
	require.Equal(t, aliceID, me(alice))
	// Restarted while its port is taken: another port, the registration
	// replaced, and its tokens still sign in.
	stop()
	busy, err := net.Listen("tcp", strings.TrimSuffix(strings.TrimPrefix(st.JWKSURL, "http://"), "/jwks.json"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	moved, stop, err := startDevIdP(ctx, db, a.Identity, dir)
	require.NoError(t, err)
	t.Cleanup(stop)
	require.NotEqual(t, st.JWKSURL, moved.JWKSURL)
	require.Equal(t, st.Issuer, moved.Issuer)
	require.NotEmpty(t, me(mint("--sub", "alice", "--claim", "country=US")))
	st = moved
	require.Equal(t, "Ada Lovelace", names(bob))
	require.Empty(t, names(mint("--sub", "carol")), "no claim, no rows")

	// What it is not: a token of another key, an expired one, a wrong usage.
	other := t.TempDir()
	_, err = devKey(other, true)
	require.NoError(t, err)
	key, err := devKey(other, false)
	require.NoError(t, err)
	forged, err := mintDevToken(key, st, "alice", "admin", "", map[string]any{"country": "US"}, time.Hour, time.Now())
	require.NoError(t, err)
	code, _ = call(forged, http.MethodGet, "/v1/tables", "")
	require.Equal(t, http.StatusUnauthorized, code)
	key, err = devKey(dir, false)
	require.NoError(t, err)
	expired, err := mintDevToken(key, st, "alice", "member", "", nil, time.Minute, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	code, _ = call(expired, http.MethodGet, "/v1/tables", "")
	require.Equal(t, http.StatusUnauthorized, code)
	var errb bytes.Buffer
	env := &Env{Stdout: io.Discard, Stderr: &errb, Getenv: func(string) string { return "" }}
	require.Equal(t, 2, Run(context.Background(), env, []string{"dev-token", "--dir", dir}), "a subject is required")
	require.Equal(t, 2, Run(context.Background(), env, []string{"dev-token", "--dir", dir, "--sub", "x", "--role", "owner"}))
	require.Equal(t, 1, Run(context.Background(), env, []string{"dev-token", "--dir", t.TempDir(), "--sub", "x"}))
	require.Contains(t, errb.String(), "no dev identity provider")
}
