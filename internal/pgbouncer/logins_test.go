package pgbouncer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestSandboxThroughPgBouncerUsesEachQueryLogin: with the tenants split
// across three query logins (DBCHAT_QUERY_SHARDS=3) and PgBouncer in
// transaction mode in front of the database, a sandbox given PgBouncer's
// address for dbchat_query follows the split through it: each statement's
// session user is its tenant's login and its role the tenant's. A PgBouncer
// that lacks one login's auth entry (docs/OPERATIONS.md, "Many tenants")
// refuses that login's tenants with 503, the service's fault, while the
// others' statements run.
func TestSandboxThroughPgBouncerUsesEachQueryLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	var ids []uuid.UUID
	count := map[string]int{}
	for i := 0; len(count) < 3; i++ {
		require.Less(t, i, 100)
		id := dbtest.NewTenant(t, db, fmt.Sprintf("Bounced %d", i)).ID
		ids = append(ids, id)
		count[tenant.QueryLogin(id, 3)]++
	}
	d.SplitQueryLogins(t, 3)
	password := dbtest.AppPassword(dbtest.AdminURL(t))
	logins := []string{migrate.QueryRole, migrate.QueryLogin(1), migrate.QueryLogin(2)}

	who := func(box *tenant.Sandbox, id uuid.UUID) (session, current string, err error) {
		return dbtest.WhoRuns(ctx, box, id)
	}
	open := func(users ...string) *tenant.Sandbox {
		b := bounce(t, d, 1, users...)
		box, err := tenant.NewSandbox(ctx, b.URL(migrate.QueryRole, password, d.Name), 2)
		require.NoError(t, err)
		t.Cleanup(box.Close)
		require.NoError(t, box.FollowQueryShards(ctx, db))
		return box
	}

	box := open(logins...)
	seen := map[string]bool{}
	for _, id := range ids {
		session, current, err := who(box, id)
		require.NoError(t, err)
		require.Equal(t, tenant.QueryLogin(id, 3), session)
		require.Equal(t, tenant.MemberRole(id), current)
		seen[session] = true
	}
	require.Len(t, seen, 3)

	partial := open(logins[:2]...)
	for _, id := range ids {
		session, _, err := who(partial, id)
		if tenant.QueryLogin(id, 3) == logins[2] {
			require.Error(t, err)
			require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "%v", err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tenant.QueryLogin(id, 3), session)
	}
}
