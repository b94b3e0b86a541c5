package cli_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
)

// serve refuses a schema newer than it knows (a newer binary migrated it),
// as it refuses an older one.
func TestServeRefusesANewerSchema(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	want, err := migrate.Latest()
	require.NoError(t, err)
	_, err = d.AdminPool(t).Exec(context.Background(),
		fmt.Sprintf(`INSERT INTO %s (version_id, is_applied) VALUES ($1, true)`, migrate.VersionTable), want+1)
	require.NoError(t, err)
	r := run(t, map[string]string{"DATABASE_URL": d.AppURL}, "serve")
	requireOneLineError(t, r, fmt.Sprintf("at migration %d, newer than this dbchat knows (%d)", want+1, want))
}

// serve refuses a schema older than it knows (a newer binary deployed before
// `dbchat migrate` ran) and tells the operator to migrate.
func TestServeRefusesAnOlderSchema(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	want, err := migrate.Latest()
	require.NoError(t, err)
	// The latest migration's record gone: the database looks one behind.
	_, err = d.AdminPool(t).Exec(context.Background(),
		fmt.Sprintf(`DELETE FROM %s WHERE version_id = $1`, migrate.VersionTable), want)
	require.NoError(t, err)
	// The one before it (versions may skip numbers while migrations are
	// written in parallel).
	var prev int64
	require.NoError(t, d.AdminPool(t).QueryRow(context.Background(),
		fmt.Sprintf(`SELECT max(version_id) FROM %s WHERE is_applied`, migrate.VersionTable)).Scan(&prev))
	r := run(t, map[string]string{"DATABASE_URL": d.AppURL}, "serve")
	requireOneLineError(t, r, fmt.Sprintf("database is not migrated (at %d, need %d): run `dbchat migrate`", prev, want))
}
