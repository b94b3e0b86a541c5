package migrate_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
)

// Two instances starting together on a database that does not exist yet
// both succeed: the whole run holds one lock, so neither trips over the
// other's CREATE DATABASE, CREATE EXTENSION or grants.
func TestTwoMigratesOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	admin := dbtest.AdminURL(t)
	u, err := url.Parse(admin)
	require.NoError(t, err)
	name := fmt.Sprintf("dbchat_fresh_%d", uniqueSuffix(t))
	u.Path = "/" + name
	t.Cleanup(func() {
		m := *u
		m.Path = "/postgres"
		conn, err := pgx.Connect(context.Background(), m.String())
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(context.Background())
		}
	})
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- migrate.Run(context.Background(), migrate.Options{AdminURL: u.String()}) }()
	}
	for range 2 {
		require.NoError(t, <-errs)
	}
	conn, err := pgx.Connect(context.Background(), u.String())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	have, err := migrate.Applied(context.Background(), conn)
	require.NoError(t, err)
	want, err := migrate.Latest()
	require.NoError(t, err)
	require.Equal(t, want, have)
}

func uniqueSuffix(t *testing.T) int64 {
	conn, err := pgx.Connect(context.Background(), dbtest.AdminURL(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT (random() * 1e12)::bigint`).Scan(&n))
	return n
}
