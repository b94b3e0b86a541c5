package tenant_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The end user's claims travel with every tenant transaction as the
// transaction-local app.claims (with app.role), and dbchat.claim and
// dbchat.claim_array read them.
func TestTransactionsCarryClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 1))
	tn := dbtest.NewTenant(t, db, "Claims")

	id := tn.Identity
	id.Role = tenant.Member
	id.Claims = map[string]any{"region": "eu", "regions": []any{"eu", "us"}, "level": 3, "obj": map[string]any{"a": 1}}
	var raw, role string
	var region, level, obj *string
	var regions, single []string
	err := db.OnceAs(ctx, id, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, `SELECT current_setting('app.claims', true), current_setting('app.role', true),
			dbchat.claim('region'), dbchat.claim('level'), dbchat.claim('obj'), dbchat.claim_array('regions'), dbchat.claim_array('region')`).
			Scan(&raw, &role, &region, &level, &obj, &regions, &single)
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"region":"eu","regions":["eu","us"],"level":3,"obj":{"a":1}}`, raw)
	require.Equal(t, "member", role)
	require.Equal(t, "eu", *region)
	require.Equal(t, "3", *level)
	require.Nil(t, obj, "an object claim is not a scalar")
	require.Equal(t, []string{"eu", "us"}, regions)
	require.Equal(t, []string{"eu"}, single)

	// Without claims (API keys): empty, and every claim is NULL.
	var none *string
	err = db.OnceAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, `SELECT current_setting('app.claims', true) || '|' || current_setting('app.role', true) || '|' || coalesce(dbchat.claim('region'), 'NULL')`).Scan(&none)
	})
	require.NoError(t, err)
	require.Equal(t, "|admin|NULL", *none)

	// The next transaction on the same connection has none of it.
	var after string
	require.NoError(t, db.OnceAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, `SELECT coalesce(current_setting('app.claims', true), '') || coalesce(current_setting('app.role', true), '')`).Scan(&after)
	}))
	require.Empty(t, after)
}

// claimFixture is a tenant with a table "sales" (region, amount) of three
// rows, one per region, and the sandbox.
type claimFixture struct {
	db    *tenant.DB
	box   *tenant.Sandbox
	tn    dbtest.Tenant
	table catalog.Table
}

func newClaimFixture(t *testing.T) claimFixture {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t)
	f := claimFixture{db: tenant.New(d.AppPool(t, 2))}
	var err error
	f.box, err = tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(f.box.Close)
	f.tn = dbtest.NewTenant(t, f.db, "Claim policies")
	err = f.db.TxAs(ctx, f.tn.Identity, func(tx tenant.Conn) error {
		f.table, err = catalog.Create(ctx, tx, catalog.TableSpec{Name: "sales", Columns: []catalog.ColumnSpec{
			{Name: "region", Type: "text"}, {Name: "amount", Type: "integer"}}})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+f.table.Ident().Sanitize()+` (region, amount) VALUES ('eu', 1), ('us', 2), ('apac', 4)`)
		return err
	})
	require.NoError(t, err)
	return f
}

func (f claimFixture) user(role tenant.Role, claims map[string]any) tenant.Identity {
	id := f.tn.Identity
	id.UserID, id.Role, id.Claims = uuid.New(), role, claims
	return id
}

// sums returns the sum of amount id sees through the runtime pool (the
// preview's path) and through the sandbox (/v1/sql, /v1/ask).
func (f claimFixture) sums(t *testing.T, id tenant.Identity) (runtime, sandbox int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, f.db.OnceAs(ctx, id, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::int FROM `+f.table.Ident().Sanitize()).Scan(&runtime)
	}))
	err := f.box.Query(tenant.NewContext(ctx, id), id.TenantID, `SELECT coalesce(sum(amount), 0)::int FROM sales`,
		tenant.Limits{MaxRows: 1, Timeout: 5 * time.Second}, func(rows pgx.Rows) error {
			require.True(t, rows.Next())
			v, err := rows.Values()
			if err == nil {
				sandbox = int(v[0].(int32))
			}
			return err
		})
	require.NoError(t, err)
	return runtime, sandbox
}

func (f claimFixture) createPolicy(t *testing.T, p dbsqlc.CreateClaimPolicyParams) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	p.TableID = f.table.ID
	var id uuid.UUID
	require.NoError(t, f.db.TxAs(ctx, f.tn.Identity, func(tx tenant.Conn) error {
		var err error
		id, err = dbsqlc.New().CreateClaimPolicy(ctx, tx, p)
		return err
	}))
	return id
}

// A claim policy filters every read of the table, through the runtime pool
// and the sandbox alike: eq on a scalar claim, in on an array claim, and
// tenant admins see everything only with admins_bypass.
func TestClaimPoliciesFilterRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newClaimFixture(t)
	eu := f.user(tenant.Member, map[string]any{"region": "eu"})
	us := f.user(tenant.Member, map[string]any{"region": "us", "regions": []any{"us", "apac"}})
	quoted := f.user(tenant.Member, map[string]any{"region": `it's \ "quoted"`})
	anon := f.user(tenant.Member, nil)
	admin := f.user(tenant.Admin, map[string]any{"region": "eu"})

	for _, id := range []tenant.Identity{eu, us, anon, admin} {
		rt, sb := f.sums(t, id)
		require.Equal(t, []int{7, 7}, []int{rt, sb}, "no policy yet: every row")
	}

	pid := f.createPolicy(t, dbsqlc.CreateClaimPolicyParams{Name: "own_region", ColumnName: "region", Claim: "region", Op: "eq"})
	for _, c := range []struct {
		id   tenant.Identity
		want int
	}{{eu, 1}, {us, 2}, {quoted, 0}, {anon, 0}, {admin, 1}} {
		rt, sb := f.sums(t, c.id)
		require.Equal(t, []int{c.want, c.want}, []int{rt, sb}, "claims %v role %s", c.id.Claims, c.id.Role)
	}

	// The sandbox's SET LOCAL carries quotes and backslashes exactly.
	var got string
	err := f.box.Query(tenant.NewContext(ctx, quoted), quoted.TenantID, `SELECT current_setting('app.claims', true)`,
		tenant.Limits{MaxRows: 1, Timeout: 5 * time.Second}, func(rows pgx.Rows) error {
			require.True(t, rows.Next())
			got = string(rows.RawValues()[0])
			return nil
		})
	require.NoError(t, err)
	want, _ := json.Marshal(quoted.Claims)
	require.JSONEq(t, string(want), got)

	// A second, restrictive too: rows must pass both.
	f.createPolicy(t, dbsqlc.CreateClaimPolicyParams{Name: "regions", ColumnName: "region", Claim: "regions", Op: "in", AdminsBypass: true})
	for _, c := range []struct {
		id   tenant.Identity
		want int
	}{{eu, 0}, {us, 2}, {admin, 1}} {
		rt, sb := f.sums(t, c.id)
		require.Equal(t, []int{c.want, c.want}, []int{rt, sb}, "claims %v role %s", c.id.Claims, c.id.Role)
	}

	// Dropping the first leaves the in policy, which admins bypass.
	require.NoError(t, f.db.TxAs(ctx, f.tn.Identity, func(tx tenant.Conn) error {
		ok, err := dbsqlc.New().DropClaimPolicy(ctx, tx, dbsqlc.DropClaimPolicyParams{TableID: f.table.ID, ID: pid})
		require.True(t, ok)
		return err
	}))
	for _, c := range []struct {
		id   tenant.Identity
		want int
	}{{eu, 0}, {us, 6}, {anon, 0}, {admin, 7}} {
		rt, sb := f.sums(t, c.id)
		require.Equal(t, []int{c.want, c.want}, []int{rt, sb}, "claims %v role %s", c.id.Claims, c.id.Role)
	}

	// An identity of another tenant in the context carries nothing into
	// this tenant's statement.
	other := f.user(tenant.Admin, map[string]any{"regions": []any{"eu", "us", "apac"}})
	other.TenantID = uuid.New()
	var n int32
	err = f.box.Query(tenant.NewContext(ctx, other), f.tn.ID, `SELECT count(*)::int FROM sales`,
		tenant.Limits{MaxRows: 1, Timeout: 5 * time.Second}, func(rows pgx.Rows) error {
			require.True(t, rows.Next())
			return rows.Scan(&n)
		})
	require.NoError(t, err)
	require.Zero(t, n)
}

// Only admins manage claim policies, and a bad definition creates nothing.
func TestClaimPolicyDefinitionsAreChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newClaimFixture(t)
	q := dbsqlc.New()
	member := f.user(tenant.Member, nil)
	member.UserID = f.tn.AdminID // a real user, only the role differs
	err := f.db.TxAs(ctx, member, func(tx tenant.Conn) error {
		_, err := q.CreateClaimPolicy(ctx, tx, dbsqlc.CreateClaimPolicyParams{TableID: f.table.ID, Name: "p", ColumnName: "region", Claim: "region", Op: "eq"})
		return err
	})
	require.ErrorContains(t, err, "only tenant admins")

	for _, c := range []struct {
		p    dbsqlc.CreateClaimPolicyParams
		want string
	}{
		{dbsqlc.CreateClaimPolicyParams{Name: "p", ColumnName: "nope", Claim: "region", Op: "eq"}, "column: table 'sales' has no column 'nope'"},
		{dbsqlc.CreateClaimPolicyParams{Name: "p", ColumnName: "tenant_id", Claim: "region", Op: "eq"}, "reserved"},
		{dbsqlc.CreateClaimPolicyParams{Name: "p", ColumnName: "region", Claim: "region", Op: "like"}, "op: unknown operator 'like'"},
		{dbsqlc.CreateClaimPolicyParams{Name: "p", ColumnName: "region", Claim: "a'b", Op: "eq"}, "claim: invalid claim name"},
		{dbsqlc.CreateClaimPolicyParams{Name: "P x", ColumnName: "region", Claim: "region", Op: "eq"}, "name: invalid policy name"},
	} {
		err := f.db.TxAs(ctx, f.tn.Identity, func(tx tenant.Conn) error {
			c.p.TableID = f.table.ID
			_, err := q.CreateClaimPolicy(ctx, tx, c.p)
			return err
		})
		require.ErrorContains(t, err, c.want)
	}
	var policies, records int
	require.NoError(t, f.db.OnceAs(ctx, f.tn.Identity, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM dbchat.claim_policies)::int, 0`).Scan(&records, &policies)
	}))
	require.Zero(t, records)
	rt, sb := f.sums(t, f.user(tenant.Member, nil))
	require.Equal(t, []int{7, 7}, []int{rt, sb}, "no policy was created")
}

// History visibility is PostgreSQL's: the restrictive owner_or_admin policy
// on query_history shows a member its own entries, an admin all, a
// transaction without a user none, and a member cannot write an entry as
// someone else.
func TestMembersSeeOnlyTheirOwnHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "History")
	q := dbsqlc.New()
	var member tenant.Identity
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		u, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "m@example.com", Name: "m", Role: "member"})
		member = tenant.Identity{TenantID: tn.ID, UserID: u.ID, Role: tenant.Member}
		return err
	}))
	for _, id := range []tenant.Identity{tn.Identity, member, member} {
		require.NoError(t, db.OnceAs(ctx, id, func(tx tenant.Conn) error {
			_, err := q.CreateQueryHistory(ctx, tx, dbsqlc.CreateQueryHistoryParams{Status: "success"})
			return err
		}))
	}
	count := func(id tenant.Identity) int {
		var n int
		require.NoError(t, db.OnceAs(ctx, id, func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM dbchat.query_history`).Scan(&n)
		}))
		return n
	}
	require.Equal(t, 3, count(tn.Identity), "the admin: all")
	require.Equal(t, 2, count(member), "the member: its own")
	require.Zero(t, count(tenant.Identity{TenantID: tn.ID}), "no user: none")
	err := db.OnceAs(ctx, member, func(tx tenant.Conn) error {
		_, err := tx.Exec(ctx, `INSERT INTO dbchat.query_history (user_id, status) VALUES ($1, 'success')`, tn.AdminID)
		return err
	})
	require.ErrorContains(t, err, "row-level security")

	// owner_or_admin trusts app.role (00026), which any session can set, so
	// no role the sandbox runs as may touch the tables it guards: not
	// dbchat_query itself, not the tenant's read roles it switches to.
	// (Asked as the superuser: dbchat_query may not even call unnest.)
	admin := d.AdminPool(t)
	for _, role := range []string{"dbchat_query", tenant.Schema(tn.ID), tenant.MemberRole(tn.ID)} {
		var reach bool
		require.NoError(t, admin.QueryRow(ctx, `SELECT bool_or(has_table_privilege($1, tbl, p))
			FROM unnest(ARRAY['dbchat.query_history', 'dbchat.conversations', 'dbchat.messages', 'dbchat.users']) tbl,
			unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p`, role).Scan(&reach))
		require.False(t, reach, "%s reaches a table owner_or_admin guards", role)
	}
}

// owner_or_admin must not cost an admin the history page's index walk: the
// page of 50 reads (tenant_id, created_at DESC, id DESC) in order and stops,
// in custom and generic plans alike. 00026 wrote the admin test as a text
// comparison, estimated at 0.5 % of the rows, and with many users the
// planner then fetched the tenant's whole history to sort it (GET
// /v1/history fell to 0.22x of its floor); 00027 makes it a boolean.
func TestAdminHistoryPageWalksTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 1))
	tn := dbtest.NewTenant(t, db, "Busy")
	// 100 members with 20 entries each: many distinct user_ids, as a
	// real tenant has.
	admin := d.AdminPool(t)
	_, err := admin.Exec(ctx, `WITH u AS (
			INSERT INTO dbchat.users (tenant_id, email, role)
			SELECT $1, 'm' || i || '@example.com', 'member' FROM generate_series(1, 100) i RETURNING id)
		INSERT INTO dbchat.query_history (tenant_id, user_id, status, created_at)
		SELECT $1, u.id, 'success', now() - j * interval '1 minute' FROM u, generate_series(1, 20) j`, tn.ID)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `ANALYZE dbchat.query_history`)
	require.NoError(t, err)

	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		var plan []string
		require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			// queries/query_history.sql, ListRecentHistory.
			if _, err := tx.Exec(ctx, `SELECT set_config('plan_cache_mode', $1, true)`, mode); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `PREPARE history_page(timestamptz, uuid, timestamptz, int) AS
				SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql, h.status, h.error,
				       h.row_count, h.generation_ms, h.execution_ms, h.created_at
				FROM dbchat.query_history h
				LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
				WHERE (h.created_at, h.id) < ($1, $2) AND h.created_at >= $3
				ORDER BY h.created_at DESC, h.id DESC
				LIMIT $4`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `EXPLAIN EXECUTE history_page('infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '-infinity', 51)`)
			if err != nil {
				return err
			}
			if plan, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DEALLOCATE history_page`)
			return err
		}))
		text := strings.Join(plan, "\n")
		require.Contains(t, text, "query_history_tenant_created_idx", "%s:\n%s", mode, text)
		require.NotContains(t, text, "Sort", "%s:\n%s", mode, text)
	}
}
