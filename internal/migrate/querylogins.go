package migrate

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// MaxQueryShards bounds Options.QueryShards: a tenant's shard is one byte
// of its id modulo the count (migration 00031).
const MaxQueryShards = 256

// TenantsPerQueryLogin is what DBCHAT_QUERY_SHARDS=auto aims each query
// login at. A login's first statement after a role change costs time
// quadratic in its tenants (BENCHMARKS.md part 9): at 10,000 tenants, 625
// per login (16 logins) cost it 10 ms, 1,250 (8 logins) 36 ms, 10,000 (one)
// 2.7 s.
const TenantsPerQueryLogin = 625

// QueryLogin is the login of query shard k: dbchat_query for shard 0,
// dbchat_query_<k> for the others.
func QueryLogin(k int) string {
	if k == 0 {
		return QueryRole
	}
	return QueryRole + "_" + strconv.Itoa(k)
}

// queryLoginAttrs are every query login's attributes: dbchat_query's.
var queryLoginAttrs = func() string {
	for _, r := range roleAttributes {
		if r.name == QueryRole {
			return r.attrs
		}
	}
	panic("no " + QueryRole + " in roleAttributes")
}()

// ensureQueryLogins splits the database's tenants across n query logins
// (migration 00031; 0 keeps the database's count, or with perLogin > 0
// chooses it, autoShards): it creates the logins
// dbchat_query_1 … dbchat_query_<n-1> with dbchat_query's attributes,
// settings and password (pw, when given), lets them connect (and the
// logins past n no more), and rewrites dbchat.query_shards().
// ensureTenantRoles then grants each tenant's roles to its login. conn is
// the privileged connection to the database.
func ensureQueryLogins(ctx context.Context, conn *pgx.Conn, n, perLogin int, pw string) error {
	if n < 0 || n > MaxQueryShards {
		return fmt.Errorf("DBCHAT_QUERY_SHARDS must be between 1 and %d, got %d", MaxQueryShards, n)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT dbchat.query_shards()`).Scan(&have); err != nil {
		return fmt.Errorf("query shards: %w", err)
	}
	if n == 0 {
		n = have
	}
	if perLogin > 0 {
		_, tenants, err := QueryLogins(ctx, conn)
		if err != nil {
			return err
		}
		n = autoShards(tenants, perLogin, have)
	}
	for k := 1; k < n; k++ {
		login := QueryLogin(k)
		if err := ensureRole(ctx, conn, login, queryLoginAttrs, pw); err != nil {
			return err
		}
		if err := configureQueryLogin(ctx, conn, login); err != nil {
			return err
		}
		if err := grantConnect(ctx, conn, login); err != nil {
			return err
		}
	}
	if err := revokeConnectPast(ctx, conn, n); err != nil {
		return err
	}
	if n == have {
		return nil
	}
	// The function is the owner's, like every object of schema dbchat.
	_, err := conn.Exec(ctx, fmt.Sprintf(`SET ROLE %s;
		CREATE OR REPLACE FUNCTION dbchat.query_shards() RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT %d';
		RESET ROLE`, OwnerRole, n))
	if err != nil {
		return fmt.Errorf("set the query shards to %d: %w", n, err)
	}
	return nil
}

// QueryLogins reads how many query logins the database's tenants are split
// across, and how many tenants it has (the ones ensureTenantRoles gives
// roles: every row of dbchat.tenants, which conn must see whole, and every
// tenant schema).
func QueryLogins(ctx context.Context, conn *pgx.Conn) (logins, tenants int, err error) {
	err = conn.QueryRow(ctx, `SELECT dbchat.query_shards(), (SELECT count(*) FROM (
			SELECT 't_' || replace(t.id::text, '-', '') FROM dbchat.tenants t
			UNION SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$') s)`).Scan(&logins, &tenants)
	if err != nil {
		return 0, 0, fmt.Errorf("query logins and tenants: %w", err)
	}
	return logins, tenants, nil
}

// autoShards is the query login count for tenants at perLogin each: the
// smallest power of two that gives no login more, never fewer than have
// (moving a tenant costs a grant and a revoke, so the count does not
// shrink by itself) and at most MaxQueryShards. A power of two moves half
// the tenants when it doubles (a tenant's shard is a byte of its id modulo
// the count), and none of the rest.
func autoShards(tenants, perLogin, have int) int {
	n := 1
	for n < MaxQueryShards && tenants > n*perLogin {
		n *= 2
	}
	return max(n, have)
}

// grantConnect lets login connect to conn's database. A GRANT rewrites the
// database's catalog row even when it changes nothing, so only when missing.
func grantConnect(ctx context.Context, conn *pgx.Conn, login string) error {
	var can bool
	if err := conn.QueryRow(ctx, `SELECT has_database_privilege($1, current_database(), 'CONNECT')`, login).Scan(&can); err != nil || can {
		return err
	}
	grant := fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s",
		pgx.Identifier{conn.Config().Database}.Sanitize(), pgx.Identifier{login}.Sanitize())
	if _, err := conn.Exec(ctx, grant); err != nil {
		return fmt.Errorf("%s: %w", grant, err)
	}
	return nil
}

// revokeConnectPast leaves the query logins past n (after a smaller count
// than before) no way into conn's database; ensureTenantRoles takes their
// tenants' roles back.
func revokeConnectPast(ctx context.Context, conn *pgx.Conn, n int) error {
	_, err := conn.Exec(ctx, `DO $$
		DECLARE r text;
		BEGIN
			FOR r IN SELECT rolname FROM pg_catalog.pg_roles
			         WHERE rolname ~ '^`+QueryRole+`_[0-9]+$' AND substr(rolname, `+strconv.Itoa(len(QueryRole)+2)+`)::int >= `+strconv.Itoa(n)+`
			           AND has_database_privilege(oid, current_database(), 'CONNECT')
			LOOP
				EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM %I', current_database(), r);
			END LOOP;
		END $$`)
	if err != nil {
		return fmt.Errorf("revoke CONNECT from the query logins past %d: %w", n, err)
	}
	return nil
}
