package migrate_test

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/db"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
)

// A migration that fails half-way leaves the schema at the previous
// version: goose runs each migration in a transaction, so what the failing
// one created before its error is rolled back with it, the version table
// does not record it, and the error names the file and the database's
// reason. A normal run afterwards succeeds.
func TestFailingMigrationLeavesThePreviousVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t) // at the latest embedded migration
	latest, err := migrate.Latest()
	require.NoError(t, err)

	fsys := fstest.MapFS{}
	embedded, err := fs.Sub(db.Migrations, "migrations")
	require.NoError(t, err)
	names, err := fs.Glob(embedded, "*.sql")
	require.NoError(t, err)
	for _, n := range names {
		b, err := fs.ReadFile(embedded, n)
		require.NoError(t, err)
		fsys[n] = &fstest.MapFile{Data: b}
	}
	failing := fmt.Sprintf("%05d_fails_half_way.sql", latest+1)
	fsys[failing] = &fstest.MapFile{Data: []byte(`-- +goose Up
CREATE SCHEMA zz_half_way;
CREATE TABLE zz_half_way.created_first (id bigint);
ALTER TABLE dbchat.tenants ADD COLUMN zz_half_way_column text;
SELECT 1 / 0;
CREATE TABLE zz_half_way.never (id bigint);

-- +goose Down
DROP SCHEMA zz_half_way CASCADE;
ALTER TABLE dbchat.tenants DROP COLUMN zz_half_way_column;
`)}

	err = migrate.RunMigrations(ctx, migrate.Options{AdminURL: d.AdminURL}, fsys)
	require.Error(t, err)
	require.ErrorContains(t, err, fmt.Sprintf("apply migrations: %s failed and was rolled back; the database stays at migration %d", failing, latest),
		"the error names the migration and the version kept")
	require.ErrorContains(t, err, "division by zero", "and the database's reason")

	conn, err := pgx.Connect(ctx, d.AdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	have, err := migrate.Applied(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, latest, have, "the version is the previous one")
	var leftovers []string
	require.NoError(t, conn.QueryRow(ctx, `SELECT array_remove(ARRAY[
			CASE WHEN to_regnamespace('zz_half_way') IS NOT NULL THEN 'schema zz_half_way' END,
			CASE WHEN EXISTS (SELECT FROM pg_attribute WHERE attname = 'zz_half_way_column' AND NOT attisdropped)
				THEN 'column zz_half_way_column' END,
			CASE WHEN EXISTS (SELECT FROM pg_class WHERE relname IN ('created_first', 'never'))
				THEN 'a zz_half_way table' END], NULL)`).Scan(&leftovers))
	require.Empty(t, leftovers, "nothing of the failed migration is left")
	var recorded int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM `+migrate.VersionTable+` WHERE version_id = $1`, latest+1).Scan(&recorded))
	require.Zero(t, recorded)

	// The embedded migrations still apply cleanly (a no-op at the latest).
	require.NoError(t, migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL}))
	have, err = migrate.Applied(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, latest, have)
}
