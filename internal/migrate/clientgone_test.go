package migrate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// A statement whose client vanished without a cancel request (the dbchat
// process killed, a socket closed under a running statement) does not run
// on to its statement_timeout: dbchat migrate gives both runtime roles
// client_connection_check_interval, so PostgreSQL notices the closed socket
// while the statement runs and ends it.
func TestStatementsEndWhenTheirClientVanishes(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	ctx := context.Background()
	for _, connURL := range []string{d.AppURL, d.QueryURL} {
		cfg, err := pgx.ParseConfig(connURL)
		require.NoError(t, err)
		cfg.RuntimeParams["application_name"] = "zz_client_vanishes"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		// Taken from pgx, the socket is closed as by a dying process: no
		// cancel request, no Terminate.
		hc, err := conn.PgConn().Hijack()
		require.NoError(t, err)
		// Minutes of CPU, sending nothing until it ends, spilling nothing.
		hc.Frontend.Send(&pgproto3.Query{String: `SET statement_timeout = '60s';
			SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b`})
		require.NoError(t, hc.Frontend.Flush())
		active := func() bool {
			var state string
			err := admin.QueryRow(ctx, `SELECT state FROM pg_stat_activity
				WHERE datname = $1 AND application_name = 'zz_client_vanishes'`, d.Name).Scan(&state)
			if errors.Is(err, pgx.ErrNoRows) {
				return false
			}
			require.NoError(t, err)
			return state == "active"
		}
		require.Eventually(t, active, 10*time.Second, 20*time.Millisecond, "the statement never started (%s)", cfg.User)
		require.NoError(t, hc.Conn.Close())
		require.Eventually(t, func() bool { return !active() }, time.Second, 20*time.Millisecond,
			"%s's statement ran on after its client was gone", cfg.User)
	}
}
