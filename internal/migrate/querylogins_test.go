package migrate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestQueryLoginsSplitTenants: with DBCHAT_QUERY_SHARDS=n each tenant's two
// roles have exactly one query login as member, the one dbchat.query_login
// and tenant.QueryLogin name, for tenants created before the split (by
// migrate) and after it (by dbchat.create_tenant); a login cannot become
// another shard's tenant role; the audit finds a role granted to the wrong
// login and migrate takes it back; and n = 1 puts every tenant back on
// dbchat_query.
func TestQueryLoginsSplitTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	admin := d.AdminPool(t)
	first := dbtest.NewTenant(t, db, "Before 0")
	ids := []uuid.UUID{first.ID}
	for i := range 5 {
		ids = append(ids, dbtest.NewTenant(t, db, fmt.Sprintf("Before %d", i+1)).ID)
	}
	d.SplitQueryLogins(t, 3)
	// Tenants until every login has some (ids are random).
	for i := 0; i < 6 || len(loginsOf(ids)) < 3; i++ {
		require.Less(t, i, 100)
		ids = append(ids, dbtest.NewTenant(t, db, fmt.Sprintf("After %d", i)).ID)
	}

	// members lists the query logins that may become the tenant's roles.
	members := func(id uuid.UUID) []string {
		return strings1(t, admin, `
			SELECT DISTINCT u.rolname::text FROM pg_catalog.pg_auth_members am
			JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles u ON u.oid = am.member
			WHERE g.rolname IN ($1::text, $1::text || '_m') AND u.rolname LIKE 'dbchat\_query%'`, tenant.Schema(id))
	}
	for _, id := range ids {
		want := tenant.QueryLogin(id, 3)
		require.Equal(t, []string{want}, members(id), "tenant %s", id)
		require.Equal(t, []string{want}, strings1(t, admin, `SELECT dbchat.query_login($1)`, id))
	}

	// A login becomes its own tenants' roles only.
	a := ids[0]
	var b uuid.UUID
	for _, id := range ids {
		if tenant.QueryLogin(id, 3) != tenant.QueryLogin(a, 3) {
			b = id
			break
		}
	}
	conn := loginAs(t, d, tenant.QueryLogin(a, 3))
	_, err := conn.Exec(ctx, "SET ROLE "+tenant.Schema(a))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "RESET ROLE")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SET ROLE "+tenant.Schema(b))
	require.ErrorContains(t, err, "permission denied to set role")

	// A drifted membership is a finding (the lint reads the roles of the
	// tenants that have a schema), and migrate takes it back.
	require.NoError(t, db.TxAs(ctx, first.Identity, func(tx tenant.Conn) error {
		_, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "notes", Columns: []catalog.ColumnSpec{{Name: "body", Type: "text"}}})
		return err
	}))
	wrong := tenant.QueryLogin(b, 3)
	_, err = admin.Exec(ctx, "GRANT "+tenant.Schema(a)+" TO "+wrong)
	require.NoError(t, err)
	findings := strings1(t, admin, `SELECT detail FROM audit.findings WHERE lint = 'tenant_role_membership' AND object = $1`, tenant.Schema(a))
	require.Equal(t, []string{"the tenant role " + tenant.Schema(a) + " has the member " + wrong +
		": only its query login " + tenant.QueryLogin(a, 3) + " may become it"}, findings)
	// A numbered query login that holds anything of its own is a finding
	// too (dbchat_query has its own lints).
	for _, login := range []string{migrate.QueryLogin(1), migrate.QueryLogin(2)} {
		_, err = admin.Exec(ctx, "GRANT SELECT ON dbchat.tenants TO "+login)
		require.NoError(t, err)
		held := strings1(t, admin, `SELECT detail FROM audit.findings WHERE lint = 'query_login_holds_privileges' AND object = $1`, login)
		require.Len(t, held, 1)
		require.Contains(t, held[0], "table dbchat.tenants")
		_, err = admin.Exec(ctx, "REVOKE SELECT ON dbchat.tenants FROM "+login)
		require.NoError(t, err)
	}
	d.SplitQueryLogins(t, 0) // 0 keeps the count
	require.Equal(t, []string{tenant.QueryLogin(a, 3)}, members(a))
	require.Empty(t, strings1(t, admin, `SELECT lint || ': ' || detail FROM audit.findings WHERE level = 'ERROR'`))

	d.SplitQueryLogins(t, 1)
	for _, id := range ids {
		require.Equal(t, []string{migrate.QueryRole}, members(id))
	}
	// The logins past the count may no longer connect to this database.
	require.Equal(t, []string{"false", "false"}, strings1(t, admin,
		`SELECT has_database_privilege(l, current_database(), 'CONNECT')::text FROM unnest($1::text[]) l`,
		[]string{migrate.QueryLogin(1), migrate.QueryLogin(2)}))
}

// loginsOf is the set of the tenants' query logins among three.
func loginsOf(ids []uuid.UUID) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		out[tenant.QueryLogin(id, 3)] = true
	}
	return out
}

// loginAs connects to d as the query login, with dbchat_query's password.
func loginAs(t *testing.T, d *dbtest.DB, login string) *pgx.Conn {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.QueryURL)
	require.NoError(t, err)
	cfg.ConnConfig.User = login
	conn, err := pgx.ConnectConfig(context.Background(), cfg.ConnConfig)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestAutoShardsIsAPowerOfTwoThatNeverShrinks: DBCHAT_QUERY_SHARDS=auto
// gives no login more than its share of tenants, with a power of two (so a
// change moves half the tenants, not nearly all), never fewer logins than
// the database has, and at most MaxQueryShards.
func TestAutoShardsIsAPowerOfTwoThatNeverShrinks(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ tenants, perLogin, have, want int }{
		{0, migrate.TenantsPerQueryLogin, 1, 1},
		{625, migrate.TenantsPerQueryLogin, 1, 1},
		{626, migrate.TenantsPerQueryLogin, 1, 2},
		{5000, migrate.TenantsPerQueryLogin, 1, 8},
		{10000, migrate.TenantsPerQueryLogin, 1, 16},
		{10001, migrate.TenantsPerQueryLogin, 1, 32},
		{100, migrate.TenantsPerQueryLogin, 12, 12},
		{3, 1, 1, 4},
		{1_000_000, 1, 1, migrate.MaxQueryShards},
	} {
		require.Equal(t, c.want, migrate.AutoShards(c.tenants, c.perLogin, c.have), "%+v", c)
	}
}

// TestAutoQueryShardsSplitsByTheTenantCount: with TenantsPerLogin (what
// DBCHAT_QUERY_SHARDS=auto sets) migrate counts the database's tenants and
// splits them across the logins autoShards names; each tenant's roles go
// to its own login; a later run with a larger share keeps the count.
func TestAutoQueryShardsSplitsByTheTenantCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	admin := d.AdminPool(t)
	var ids []uuid.UUID
	for i := range 3 {
		ids = append(ids, dbtest.NewTenant(t, db, fmt.Sprintf("Auto %d", i)).ID)
	}
	split := func(perLogin int) {
		t.Helper()
		opts := migrate.Options{AdminURL: d.AdminURL, TenantsPerLogin: perLogin,
			Passwords: map[string]string{migrate.QueryRole: dbtest.AppPassword(dbtest.AdminURL(t))}}
		require.NoError(t, migrate.Run(ctx, opts))
	}
	split(1) // 3 tenants, one each: 4 logins
	require.Equal(t, []string{"4"}, strings1(t, admin, `SELECT dbchat.query_shards()::text`))
	for _, id := range ids {
		require.Equal(t, []string{tenant.QueryLogin(id, 4)}, strings1(t, admin, `
			SELECT u.rolname::text FROM pg_catalog.pg_auth_members am
			JOIN pg_catalog.pg_roles u ON u.oid = am.member
			WHERE am.roleid = $1::regrole AND u.rolname LIKE 'dbchat\_query%'`, tenant.Schema(id)))
	}
	split(2) // two each would need 2: the count does not shrink by itself
	require.Equal(t, []string{"4"}, strings1(t, admin, `SELECT dbchat.query_shards()::text`))
}
