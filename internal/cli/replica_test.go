package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// serve's sandbox from the environment: DBCHAT_QUERY_DATABASE_URL naming a
// hot standby is recognised, and the primary's login for the fallback (and
// for dbchat audit --probe) and the standby's for the replay position are
// derived from DATABASE_URL; the
// primary there is the plain sandbox; DBCHAT_QUERY_PRIMARY_DATABASE_URL
// declares a standby, so serve starts while it is down and statements run
// on the primary; a bad DBCHAT_REPLICA_MAX_WAIT stops the start.
func TestOpenSandboxOnAStandby(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	a := dbtest.NewTenant(t, db, "A")
	sb := d.Standby(t)
	ctx := context.Background()
	open := func(vars map[string]string) (*tenant.Sandbox, bool, error) {
		vars["DATABASE_URL"] = d.AppURL
		env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return vars[k] }}
		box, replica, err := openSandbox(ctx, env, loadConfig(env), db, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Cleanup(box.Close)
		}
		return box, replica, err
	}
	one := func(box *tenant.Sandbox) {
		t.Helper()
		err := box.Query(tenant.NewContext(ctx, a.Identity), a.ID, `SELECT 1`, tenant.Limits{MaxRows: 1, Timeout: 5e9}, func(rows pgx.Rows) error {
			for rows.Next() {
			}
			return rows.Err()
		})
		require.NoError(t, err)
	}

	box, replica, err := open(map[string]string{"DBCHAT_QUERY_DATABASE_URL": sb.QueryURL})
	require.NoError(t, err)
	require.True(t, replica)
	// The derived primary login (the fallback's, and dbchat audit --probe's).
	vars := map[string]string{"DATABASE_URL": d.AppURL, "DBCHAT_QUERY_DATABASE_URL": sb.QueryURL}
	env := &Env{Getenv: func(k string) string { return vars[k] }}
	primaryURL, standby, err := sandboxPrimary(ctx, env, loadConfig(env))
	require.NoError(t, err)
	require.True(t, standby)
	hot, err := tenant.InHotStandby(ctx, primaryURL)
	require.NoError(t, err)
	require.False(t, hot, "%s is the primary", primaryURL)
	conn, err := pgx.Connect(ctx, primaryURL)
	require.NoError(t, err)
	var user string
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	require.NoError(t, conn.Close(ctx))
	require.Equal(t, tenant.QueryRole, user)
	one(box)
	require.Equal(t, int64(1), box.OnStandby())
	require.Zero(t, box.OnPrimaryInstead())

	box, replica, err = open(map[string]string{"DBCHAT_QUERY_DATABASE_URL": d.QueryURL})
	require.NoError(t, err)
	require.False(t, replica)
	require.False(t, box.HasStandby())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	down, err := url.Parse(sb.QueryURL)
	require.NoError(t, err)
	down.Host = net.JoinHostPort(down.Hostname(), strconv.Itoa(port))
	box, replica, err = open(map[string]string{"DBCHAT_QUERY_DATABASE_URL": down.String(), "DBCHAT_QUERY_PRIMARY_DATABASE_URL": d.QueryURL})
	require.NoError(t, err)
	require.True(t, replica)
	one(box)
	require.Zero(t, box.OnStandby())
	require.Equal(t, int64(1), box.OnPrimaryInstead())

	_, _, err = open(map[string]string{"DBCHAT_QUERY_DATABASE_URL": sb.QueryURL, "DBCHAT_REPLICA_MAX_WAIT": "soon"})
	require.ErrorContains(t, err, "DBCHAT_REPLICA_MAX_WAIT")
}

// TestOpenSandboxFollowsTheQueryLogins: serve's sandbox reads the
// database's query logins, on the primary and on a hot standby (which
// replays the logins and their memberships), so every tenant's statement
// runs on the standby as its own login; DBCHAT_SANDBOX_CONNS sizes the
// pool and must be a sane number.
func TestOpenSandboxFollowsTheQueryLogins(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	ctx := context.Background()
	var tenants []dbtest.Tenant
	logins := map[string]bool{}
	for i := 0; len(logins) < 3; i++ {
		require.Less(t, i, 100)
		tn := dbtest.NewTenant(t, db, fmt.Sprintf("Login %d", i))
		tenants = append(tenants, tn)
		logins[tenant.QueryLogin(tn.ID, 3)] = true
	}
	d.SplitQueryLogins(t, 3)
	sb := d.Standby(t)
	open := func(vars map[string]string) (*tenant.Sandbox, error) {
		vars["DATABASE_URL"] = d.AppURL
		env := &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return vars[k] }}
		box, _, err := openSandbox(ctx, env, loadConfig(env), db, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Cleanup(box.Close)
		}
		return box, err
	}
	for _, url := range []string{sb.QueryURL, d.QueryURL} {
		box, err := open(map[string]string{"DBCHAT_QUERY_DATABASE_URL": url, "DBCHAT_SANDBOX_CONNS": "2"})
		require.NoError(t, err)
		for _, tn := range tenants {
			var session string
			err := box.Query(tenant.NewContext(ctx, tn.Identity), tn.ID, `SELECT session_user::text`, tenant.Limits{MaxRows: 1, Timeout: 5e9},
				func(rows pgx.Rows) error {
					for rows.Next() {
						session = string(rows.RawValues()[0])
					}
					return rows.Err()
				})
			require.NoError(t, err)
			require.Equal(t, tenant.QueryLogin(tn.ID, 3), session)
		}
		require.LessOrEqual(t, box.Connections(), 2)
		if url == sb.QueryURL {
			require.Equal(t, int64(len(tenants)), box.OnStandby(), "every statement ran on the standby")
		}
	}
	for _, bad := range []string{"0", "65", "many"} {
		_, err := open(map[string]string{"DBCHAT_QUERY_DATABASE_URL": d.QueryURL, "DBCHAT_SANDBOX_CONNS": bad})
		require.ErrorContains(t, err, "DBCHAT_SANDBOX_CONNS")
	}
}

// TestSandboxConnsFollowTheQueryLogins: unset, DBCHAT_SANDBOX_CONNS is one
// connection per query login of the database, at least the default, so
// serve after a DBCHAT_QUERY_SHARDS=auto migrate needs no second setting;
// set, it is what it says (1 to 64).
func TestSandboxConnsFollowTheQueryLogins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	conns := func(v string) (int32, error) {
		env := &Env{Getenv: func(k string) string { return map[string]string{"DBCHAT_SANDBOX_CONNS": v}[k] }}
		return sandboxConns(ctx, env, db)
	}
	n, err := conns("")
	require.NoError(t, err)
	require.Equal(t, int32(DefaultSandboxConns), n)
	d.SplitQueryLogins(t, 16)
	n, err = conns("")
	require.NoError(t, err)
	require.Equal(t, int32(16), n)
	n, err = conns("4")
	require.NoError(t, err)
	require.Equal(t, int32(4), n)
	_, err = conns("65")
	require.ErrorContains(t, err, "from 1 to 64")
}
