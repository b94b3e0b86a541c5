package sandbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// claimsAttacks try to change the end user's claims or role from inside a
// statement, or to read past them.
var claimsAttacks = []string{
	`SET app.claims = '{"label": "alpha-2"}'`,
	`SET LOCAL app.claims = '{"label": "alpha-2"}'`,
	`SET app.role = 'admin'`,
	`RESET app.claims`,
	`SET ROLE dbchat_app`,
	`SELECT set_config('app.claims', '{"label": "alpha-2"}', true)`,
	`SELECT set_config('app.role', 'admin', false)`,
	`SELECT label FROM items WHERE set_config('app.claims', '{"label": "alpha-2"}', true) IS NOT NULL`,
	`WITH c AS (SELECT set_config('app.role', 'admin', true) AS r) SELECT label FROM items, c`,
	`SELECT label FROM items, (SELECT set_config('app.claims', '', true)) s`,
	`SELECT current_setting('app.claims')`,
	`SELECT dbchat.claim('label')`,
	`SELECT label FROM items WHERE dbchat.claim_array('label') IS NULL`,
	`SELECT label FROM items UNION ALL SELECT label FROM items`,
	`SELECT label FROM ONLY items`,
}

// A claim policy holds in the sandbox whatever the statement does: it can
// neither SET nor set_config app.claims or app.role (with the parser, and
// without it, at the database), and every statement sees exactly the rows
// its caller's claims allow.
func TestRedTeamCannotSetClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	var member tenant.Identity
	err := f.db.TxAs(ctx, f.a.Identity, func(tx tenant.Conn) error {
		q := dbsqlc.New()
		u, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "claims@example.com", Name: "claims", Role: "member"})
		if err != nil {
			return err
		}
		member = tenant.Identity{TenantID: f.a.ID, UserID: u.ID, Role: tenant.Member, Claims: map[string]any{"label": "alpha"}}
		tables, err := q.ListTables(ctx, tx)
		if err != nil {
			return err
		}
		_, err = catalog.CreatePolicy(ctx, tx, tables[0].ID, catalog.PolicySpec{Name: "own_label", Column: "label", Claim: "label", Op: catalog.OpEq})
		return err
	})
	require.NoError(t, err)
	mctx := tenant.NewContext(ctx, member)
	run := func(sql string) (sandbox.Result, error) {
		return f.svc.Run(mctx, sandbox.Request{SQL: sql, Timeout: 2 * time.Second})
	}
	control := func() {
		t.Helper()
		res, err := run(`SELECT label FROM items ORDER BY label`)
		require.NoError(t, err)
		require.Len(t, res.Rows, 1)
		require.Equal(t, json.RawMessage(`"alpha"`), res.Rows[0][0], "the caller's own claim only")
	}
	control()
	for _, withParser := range []bool{true, false} {
		if !withParser {
			f.svc.SkipParserForTests()
		}
		for _, sql := range claimsAttacks {
			res, err := run(sql)
			if err == nil {
				for _, row := range res.Rows {
					for _, v := range row {
						require.NotContains(t, string(v), "alpha-2", "parser %v: %s", withParser, sql)
						require.NotContains(t, string(v), "admin", "parser %v: %s", withParser, sql)
					}
				}
			}
			control()
		}
	}
	// The admin (API key: no claims) sees nothing: the policy has no
	// admins_bypass.
	res, err := f.run(t, f.a, `SELECT count(*) FROM items`)
	require.NoError(t, err)
	require.Equal(t, json.RawMessage(`"0"`), res.Rows[0][0])
}
