package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The platform roles, as internal/migrate creates them.
const (
	// AppRole is the runtime role: a DB's pool logs in as it.
	AppRole = "dbchat_app"
	// QueryRole is the sandbox's role (NewSandbox).
	QueryRole = "dbchat_query"
)

// platformRoles are the other dbchat roles a runtime login must not reach:
// dbchat_owner owns the tables, dbchat_operator bypasses RLS,
// dbchat_provisioner creates roles, dbchat_query, dbchat_sandbox and
// dbchat_auditor lack the runtime's rights.
var platformRoles = []string{"dbchat_owner", "dbchat_operator", QueryRole, "dbchat_auditor", "dbchat_sandbox", "dbchat_provisioner"}

// RoleError refuses a pool that does not log in as a safe runtime role.
type RoleError struct {
	User   string // the login
	Reason string // what is wrong with it, "; "-separated
}

func (e *RoleError) Error() string {
	return fmt.Sprintf("the pool logs in as %s, which is not a safe runtime role: %s (connect as %s; see docs/SECURITY.md)",
		e.User, e.Reason, AppRole)
}

// Open returns a DB on pool after CheckRuntimeRole has accepted the pool's
// login; otherwise the error (a *RoleError for a login that is not safe).
func Open(ctx context.Context, pool *pgxpool.Pool) (*DB, error) {
	if err := CheckRuntimeRole(ctx, pool); err != nil {
		return nil, err
	}
	return New(pool), nil
}

// CheckRuntimeRole refuses (with a *RoleError) a login that is not the
// runtime role. The login must hold dbchat_app's rights (be dbchat_app, or
// inherit it), and must not be able to become anything more: no SUPERUSER
// or BYPASSRLS or CREATEROLE of its own (CREATEROLE can grant itself any
// non-superuser role), no membership, direct or through other roles, in
// another dbchat role (see platformRoles) or in any role with SUPERUSER,
// BYPASSRLS or CREATEROLE (SET ROLE would reach it), and it owns no
// relation; dbchat_query and the query logins that may connect to the
// database (dbchat_query_<k>, QueryLogin) must have neither SUPERUSER nor
// BYPASSRLS (they read no catalog, so NewSandbox cannot check that itself). Without this check a
// wrong login starts and fails every request (dbchat_auditor), starts with
// the power to bypass isolation (a member of dbchat_owner), or is reported
// as "not migrated" (dbchat_query).
func CheckRuntimeRole(ctx context.Context, pool *pgxpool.Pool) error {
	var (
		user, queryProblem                string
		super, bypass, createRole, hasApp bool
		reachable                         []string
		owned                             int
	)
	if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
		return fmt.Errorf("check the runtime role: %w", err)
	}
	err := pool.QueryRow(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole,
		       pg_has_role(r.oid, $1::name, 'USAGE'),
		       ARRAY(SELECT g.rolname || CASE WHEN g.rolsuper THEN ' (SUPERUSER)' WHEN g.rolbypassrls THEN ' (BYPASSRLS)'
		                                      WHEN g.rolcreaterole THEN ' (CREATEROLE)' ELSE '' END
		             FROM pg_roles g
		             WHERE g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')
		               AND (g.rolname = ANY ($2::text[]) OR g.rolname ~ '^dbchat_query_[0-9]+$'
		                    OR g.rolsuper OR g.rolbypassrls OR g.rolcreaterole)
		             ORDER BY g.rolname),
		       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid),
		       coalesce((SELECT string_agg(concat_ws(', ', CASE WHEN q.rolsuper THEN q.rolname || ' has SUPERUSER' END,
		                                                   CASE WHEN q.rolbypassrls THEN q.rolname || ' has BYPASSRLS' END), ', ' ORDER BY q.rolname)
		                 FROM pg_roles q
		                 WHERE (q.rolsuper OR q.rolbypassrls)
		                   AND (q.rolname = $3 OR (q.rolname ~ '^dbchat_query_[0-9]+$'
		                                           AND has_database_privilege(q.oid, current_database(), 'CONNECT')))), '')
		FROM pg_roles r WHERE r.rolname = current_user`,
		AppRole, platformRoles, QueryRole,
	).Scan(&user, &super, &bypass, &createRole, &hasApp, &reachable, &owned, &queryProblem)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "42501" {
		// Not even the role catalog: dbchat_query, which reads no catalog.
		return &RoleError{User: user, Reason: fmt.Sprintf("%s is not %s and may not even read pg_roles", user, AppRole)}
	}
	if err != nil {
		return fmt.Errorf("check the runtime role: %w", err)
	}
	var bad []string
	switch {
	case super:
		bad = append(bad, user+" has SUPERUSER")
	case bypass:
		bad = append(bad, user+" has BYPASSRLS")
	case createRole:
		bad = append(bad, user+" has CREATEROLE") // it could grant itself dbchat_operator
	}
	if !super {
		if len(reachable) > 0 {
			bad = append(bad, fmt.Sprintf("%s is a member of %s (and could SET ROLE to it)", user, strings.Join(reachable, ", ")))
		}
		if !hasApp {
			bad = append(bad, fmt.Sprintf("%s is not %s and does not inherit its privileges", user, AppRole))
		}
	}
	if owned > 0 {
		bad = append(bad, fmt.Sprintf("%s owns %d relations", user, owned))
	}
	if queryProblem != "" {
		bad = append(bad, queryProblem)
	}
	if len(bad) > 0 {
		return &RoleError{User: user, Reason: strings.Join(bad, "; ")}
	}
	return nil
}
