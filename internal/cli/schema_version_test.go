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
