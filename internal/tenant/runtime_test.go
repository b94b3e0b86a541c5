package tenant_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/tenant"
)

func TestRoleNamesMatchMigrate(t *testing.T) {
	require.Equal(t, migrate.AppRole, tenant.AppRole)
	require.Equal(t, migrate.QueryRole, tenant.QueryRole)
}

// Open accepts dbchat_app and refuses a superuser and the query role with a
// RoleError (internal/cli tests every other refusal through `dbchat serve`).
func TestOpenChecksTheRuntimeRole(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	db, err := tenant.Open(ctx, d.AppPool(t, 1))
	require.NoError(t, err)
	require.NotNil(t, db)

	var bad *tenant.RoleError
	_, err = tenant.Open(ctx, d.AdminPool(t))
	require.ErrorAs(t, err, &bad)
	require.Contains(t, bad.Reason, "has SUPERUSER")

	query, err := pgxpool.New(ctx, d.QueryURL)
	require.NoError(t, err)
	t.Cleanup(query.Close)
	_, err = tenant.Open(ctx, query)
	require.ErrorAs(t, err, &bad)
	require.Equal(t, "dbchat_query", bad.User)
	require.Equal(t, "dbchat_query is not dbchat_app and may not even read pg_roles", bad.Reason)
	require.ErrorContains(t, err, "(connect as dbchat_app; see docs/SECURITY.md)")
}
