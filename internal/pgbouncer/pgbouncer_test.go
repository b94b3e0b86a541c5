package pgbouncer_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/pgbouncer"
)

// start runs a bouncer with poolSize server connections in front of a fresh
// test database. A missing pgbouncer fails the test (skips under -short).
func start(t *testing.T, poolSize int) (*dbtest.DB, *pgbouncer.Bouncer) {
	t.Helper()
	d := dbtest.New(t)
	return d, bounce(t, d, poolSize, migrate.AppRole, migrate.QueryRole)
}

// bounce runs a bouncer with poolSize server connections in front of d for
// the given users, stopped at cleanup.
func bounce(t *testing.T, d *dbtest.DB, poolSize int, users ...string) *pgbouncer.Bouncer {
	t.Helper()
	if _, err := pgbouncer.Find(); err != nil {
		if testing.Short() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := pgbouncer.Start(ctx, pgbouncer.Options{ServerURL: d.AdminURL, Users: users, PoolSize: poolSize})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgbouncer log:\n%s", b.Log())
		}
		require.NoError(t, b.Stop())
	})
	return b
}

// connect opens a client connection through b as dbchat_app.
func connect(t *testing.T, d *dbtest.DB, b *pgbouncer.Bouncer, mode string) *pgx.Conn {
	t.Helper()
	u := b.URL(migrate.AppRole, dbtest.AppPassword(dbtest.AdminURL(t)), d.Name)
	if mode != "" {
		u += "&default_query_exec_mode=" + mode
	}
	conn, err := pgx.Connect(context.Background(), u)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestPgBouncerTransactionPooling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, b := start(t, 1)
	a := connect(t, d, b, "exec")
	c := connect(t, d, b, "exec")

	// Logged in (SCRAM, both hops) as the right role on the right database.
	var user, db string
	require.NoError(t, a.QueryRow(ctx, `SELECT current_user, current_database()`).Scan(&user, &db))
	require.Equal(t, migrate.AppRole, user)
	require.Equal(t, d.Name, db)

	// One server connection, two clients: both run on the same backend, so
	// whatever a session leaves behind, the other client inherits. That is
	// what our tenant context must never rely on.
	var pidA, pidC int
	require.NoError(t, a.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pidA))
	require.NoError(t, c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pidC))
	require.Equal(t, pidA, pidC, "transaction pooling with one server connection")

	_, err := a.Exec(ctx, `SELECT set_config('app.tenant_id', 'session-wide', false)`)
	require.NoError(t, err)
	var got string
	require.NoError(t, c.QueryRow(ctx, `SELECT current_setting('app.tenant_id', true)`).Scan(&got))
	require.Equal(t, "session-wide", got, "a session setting leaks to the next client: the pooler really shares")
	_, err = a.Exec(ctx, `RESET app.tenant_id`)
	require.NoError(t, err)

	// set_config(..., true), as internal/tenant uses it, ends with the
	// transaction: the next client sees nothing.
	tx, err := a.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT set_config('app.tenant_id', 'tx-local', true)`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, c.QueryRow(ctx, `SELECT coalesce(current_setting('app.tenant_id', true), '')`).Scan(&got))
	require.Empty(t, got)
}

// The finding behind README's "PgBouncer" note: pgx's default exec mode
// prepares named statements per client connection, which PgBouncer 1.18 in
// transaction mode cannot follow: the second client's prepare collides with
// the first one's on the shared server connection. cache_describe, exec and
// simple_protocol send the statement's text with every execution.
func TestPgBouncerNeedsAnExecModeWithoutNamedStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, b := start(t, 1)

	const q = `SELECT count(*) FROM pg_class WHERE relname = $1`
	var n int64
	require.NoError(t, connect(t, d, b, "").QueryRow(ctx, q, "pg_class").Scan(&n))
	err := connect(t, d, b, "").QueryRow(ctx, q, "pg_class").Scan(&n)
	var pg *pgconn.PgError
	require.True(t, errors.As(err, &pg), "cache_statement through PgBouncer: want a prepared statement error, got %v", err)
	require.Equal(t, "42P05", pg.Code, pg.Message) // duplicate_prepared_statement

	for _, mode := range []string{"cache_describe", "exec", "simple_protocol"} {
		x, y := connect(t, d, b, mode), connect(t, d, b, mode)
		for range 3 {
			require.NoError(t, x.QueryRow(ctx, q, "pg_class").Scan(&n), mode)
			require.NoError(t, y.QueryRow(ctx, q, "pg_class").Scan(&n), mode)
		}
	}
}

// describe_exec is no way out: outside a transaction pgx describes the
// statement in one round trip and binds the unnamed statement in the next,
// and between the two PgBouncer may give the server connection to another
// client, whose own unnamed statement the bind then runs. This is what
// pgx's describe_exec does, step by step.
func TestPgBouncerDescribeExecCanBindAnotherClientsStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, b := start(t, 1)
	x, y := connect(t, d, b, "exec"), connect(t, d, b, "exec")

	sd, err := x.PgConn().Prepare(ctx, "", `SELECT 'x ran: ' || $1::text`, nil) // round trip 1
	require.NoError(t, err)
	var got string
	require.NoError(t, y.QueryRow(ctx, `SELECT 'y ran: ' || $1::text`, "y's value").Scan(&got))
	require.Equal(t, "y ran: y's value", got)
	res := x.PgConn().ExecStatement(ctx, sd, [][]byte{[]byte("x's value")}, nil, nil).Read() // round trip 2
	require.NoError(t, res.Err)
	require.Equal(t, "y ran: x's value", string(res.Rows[0][0]), "x's bind ran y's statement")
}

func TestPgBouncerStopAndErrors(t *testing.T) {
	t.Parallel()
	d, b := start(t, 2)
	require.NoError(t, b.Stop())
	require.NoError(t, b.Stop(), "Stop twice")
	_, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port)), time.Second)
	require.Error(t, err, "still listening after Stop")

	_, err = pgbouncer.Start(context.Background(), pgbouncer.Options{ServerURL: d.AdminURL, Users: []string{"no_such_role"}})
	require.ErrorContains(t, err, `role "no_such_role" does not exist`)
	_, err = pgbouncer.Start(context.Background(), pgbouncer.Options{ServerURL: d.AppURL, Users: []string{migrate.AppRole}})
	require.ErrorContains(t, err, "pg_authid")
}

// Restart drops every client connection and listens again on the same port:
// an open connection fails, a new one works.
func TestPgBouncerRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, b := start(t, 1)
	old := connect(t, d, b, "exec")
	var n int
	require.NoError(t, old.QueryRow(ctx, `SELECT 1`).Scan(&n))
	port := b.Port

	require.NoError(t, b.Restart(ctx))
	require.Equal(t, port, b.Port)
	require.Error(t, old.QueryRow(ctx, `SELECT 1`).Scan(&n), "a connection from before the restart")
	require.NoError(t, connect(t, d, b, "exec").QueryRow(ctx, `SELECT 2`).Scan(&n))
	require.Equal(t, 2, n)
}
