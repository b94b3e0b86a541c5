package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// policyNames lists a receipt's tables and their policies as
// "table: policy (kind)".
func policyNames(sec sandbox.Security) []string {
	var out []string
	for _, t := range sec.Tables {
		for _, p := range t.Policies {
			out = append(out, t.Table+": "+p.Name+" ("+p.Kind+")")
		}
	}
	return out
}

// Every result carries its security receipt, read from the catalog: the
// tenant, user, role and claim names (no values) it ran for, the tenant's
// role it ran as, and the policies of each table it read, the claim policy
// next to tenant_isolation; two tables list both; another tenant's
// identically named table and policies never appear.
func TestSecurityReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	var member tenant.Identity
	require.NoError(t, f.db.TxAs(ctx, f.a.Identity, func(tx tenant.Conn) error {
		q := dbsqlc.New()
		u, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "receipt@example.com", Name: "receipt", Role: "member"})
		if err != nil {
			return err
		}
		member = tenant.Identity{TenantID: f.a.ID, UserID: u.ID, Role: tenant.Member,
			Claims: map[string]any{"label": "alpha", "dept": "secret-dept-value"}}
		if _, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "notes", Columns: []catalog.ColumnSpec{{Name: "body", Type: "text"}}}); err != nil {
			return err
		}
		tables, err := q.ListTables(ctx, tx)
		if err != nil {
			return err
		}
		for _, tb := range tables {
			if tb.Name == "items" {
				_, err = catalog.CreatePolicy(ctx, tx, tb.ID, catalog.PolicySpec{Name: "own_label", Column: "label", Claim: "label", Op: catalog.OpEq})
			}
		}
		return err
	}))
	// Tenant B has a claim policy of another name on its own items.
	require.NoError(t, f.db.TxAs(ctx, f.b.Identity, func(tx tenant.Conn) error {
		tables, err := dbsqlc.New().ListTables(ctx, tx)
		if err != nil {
			return err
		}
		_, err = catalog.CreatePolicy(ctx, tx, tables[0].ID, catalog.PolicySpec{Name: "bravo_only", Column: "label", Claim: "label", Op: catalog.OpEq})
		return err
	}))

	mctx := tenant.NewContext(ctx, member)
	res, err := f.svc.Run(mctx, sandbox.Request{SQL: `SELECT label FROM items`, Timeout: 2 * time.Second})
	require.NoError(t, err)
	sec := res.Security
	require.Equal(t, f.a.ID, sec.TenantID)
	require.NotNil(t, sec.UserID)
	require.Equal(t, member.UserID, *sec.UserID)
	require.Equal(t, "member", sec.Role)
	require.Equal(t, []string{"dept", "label"}, sec.Claims)
	require.Equal(t, tenant.MemberRole(f.a.ID), sec.DatabaseRole, "members run as the members' role")
	require.Equal(t, "dbchat_query", sec.SessionRole)
	require.Equal(t, []string{"items: claim_own_label (restrictive)", "items: tenant_isolation (permissive)"}, policyNames(sec))
	require.True(t, sec.Tables[0].RLSEnabled)
	require.True(t, sec.Tables[0].RLSForced)
	require.Contains(t, sec.Tables[0].Policies[0].Using, "dbchat.claim('label'::text)")
	require.Equal(t, "SELECT", sec.Tables[0].Policies[0].Command)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NotContains(t, string(b), "secret-dept-value", "claim names only, never values")
	require.NotContains(t, string(b), "bravo_only")
	require.NotContains(t, string(b), tenant.Schema(f.b.ID))

	// Two tables (one qualified with the tenant's schema), both listed.
	res, err = f.svc.Run(mctx, sandbox.Request{SQL: `SELECT i.label, n.body FROM items i CROSS JOIN ` + tenant.Schema(f.a.ID) + `.notes n
		WHERE i.id IN (SELECT id FROM items)`, Timeout: 2 * time.Second})
	require.NoError(t, err)
	require.Equal(t, []string{"items: claim_own_label (restrictive)", "items: tenant_isolation (permissive)",
		"notes: tenant_isolation (permissive)"}, policyNames(res.Security))

	// The API key's admin: no claims, no table for a statement without one.
	res, err = f.run(t, f.a, `SELECT 1`)
	require.NoError(t, err)
	require.Equal(t, "admin", res.Security.Role)
	require.Equal(t, []string{}, res.Security.Claims)
	require.Equal(t, []sandbox.TableSecurity{}, res.Security.Tables)

	// Tenant B reading its items sees its own claim policy, never A's.
	res, err = f.run(t, f.b, `SELECT label FROM items`)
	require.NoError(t, err)
	require.Equal(t, []string{"items: claim_bravo_only (restrictive)", "items: tenant_isolation (permissive)"}, policyNames(res.Security))
	require.Equal(t, tenant.Schema(f.b.ID), res.Security.DatabaseRole)

	// Naming another tenant's schema is refused, and no receipt names it.
	_, err = f.run(t, f.b, `SELECT label FROM `+tenant.Schema(f.a.ID)+`.items`)
	require.Error(t, err)
}

// With the tenants split across query logins, the receipt names the login
// the statement ran under: its tenant's own, not dbchat_query.
func TestReceiptNamesTheTenantsQueryLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	var tn dbtest.Tenant
	for i := 0; ; i++ {
		require.Less(t, i, 100)
		if tn = dbtest.NewTenant(t, db, fmt.Sprintf("Split %d", i)); tenant.QueryLogin(tn.ID, 4) != tenant.QueryRole {
			break
		}
	}
	d.SplitQueryLogins(t, 4)
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	require.NoError(t, box.SplitLogins(4))
	res, err := sandbox.New(db, box).Run(tenant.NewContext(ctx, tn.Identity), sandbox.Request{SQL: `SELECT 1`, Timeout: 2 * time.Second})
	require.NoError(t, err)
	require.Equal(t, tenant.QueryLogin(tn.ID, 4), res.Security.SessionRole)
	require.Equal(t, tenant.Schema(tn.ID), res.Security.DatabaseRole)
}
