package sandbox_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestSystemColumnsAreRefusedByBothLayers: xmin and xmax are transaction
// ids, which count every tenant's writes between two of a tenant's own, and
// tableoid an object id, which counts every tenant's new tables. The guard
// refuses them; with the guard off the database does, for an admin's
// statement (t_<hex>, SELECT by column since migration 00035) as for a
// member's (t_<hex>_m): a role that holds SELECT only by column cannot read
// a system column. The table's own columns stay readable.
func TestSystemColumnsAreRefusedByBothLayers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	var member tenant.Identity
	require.NoError(t, f.db.TxAs(ctx, f.a.Identity, func(tx tenant.Conn) error {
		u, err := dbsqlc.New().CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "sys@example.com", Name: "sys", Role: "member"})
		member = tenant.Identity{TenantID: f.a.ID, UserID: u.ID, Role: tenant.Member}
		return err
	}))
	statements := []string{`SELECT xmin FROM items`, `SELECT xmax, id FROM items`, `SELECT tableoid FROM items`,
		`SELECT ctid FROM items`, `SELECT cmin, cmax FROM items`, `SELECT count(*) FROM items GROUP BY items.tableoid`}
	who := map[string]tenant.Identity{"admin": f.a.Identity, "member": member}
	for name, id := range who {
		ctx := tenant.NewContext(ctx, id)
		for _, sql := range statements {
			_, err := f.svc.Run(ctx, sandbox.Request{SQL: sql})
			require.Equal(t, apperr.SQLRejected, apperr.CodeOf(err), "%s: %s: %v", name, sql, err)
		}
		res, err := f.svc.Run(ctx, sandbox.Request{SQL: `SELECT id, label FROM items ORDER BY id`})
		require.NoError(t, err, name)
		require.NotEmpty(t, res.Rows, name)
	}

	f.svc.SkipParserForTests()
	for name, id := range who {
		ctx := tenant.NewContext(ctx, id)
		for _, sql := range statements {
			res, err := f.svc.Run(ctx, sandbox.Request{SQL: sql})
			require.Error(t, err, "%s: %s: %+v", name, sql, res)
			require.Contains(t, err.Error(), "permission denied", "%s: %s", name, sql)
		}
		res, err := f.svc.Run(ctx, sandbox.Request{SQL: `SELECT id, label FROM items ORDER BY id`})
		require.NoError(t, err, name)
		require.NotEmpty(t, res.Rows, name)
	}
}
