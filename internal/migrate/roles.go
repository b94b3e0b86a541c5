package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The dbchat roles. They are cluster-wide, so they are created here rather
// than in a per-database migration.
const (
	// OwnerRole owns the schemas, tables and SECURITY DEFINER functions;
	// migrations run as it. It cannot log in.
	OwnerRole = "dbchat_owner"
	// AppRole is the server's runtime login: DML grants only, no BYPASSRLS.
	AppRole = "dbchat_app"
	// QueryRole runs generated SQL: SELECT on tenant data tables only. It
	// logs in on its own pool, so there is no other role to switch back to.
	QueryRole = "dbchat_query"
	// AuditorRole reads catalogs and audit views, never tenant rows.
	AuditorRole = "dbchat_auditor"
	// OperatorRole owns the one function that lists every tenant; it is the
	// only role with BYPASSRLS, cannot log in and owns no table.
	OperatorRole = "dbchat_operator"
	// SandboxRole holds EXECUTE on the reviewed functions generated SQL may
	// call (query_functions.txt); every tenant role inherits it.
	SandboxRole = "dbchat_sandbox"
	// ProvisionerRole owns dbchat.ensure_tenant_role(), the one function
	// that creates a tenant's role; it is the only role with CREATEROLE and
	// cannot log in.
	ProvisionerRole = "dbchat_provisioner"
)

// roleAttributes are enforced on every migrate, so drift (someone granting
// BYPASSRLS by hand) is undone. Only the operator bypasses RLS and only the
// provisioner creates roles; neither can log in.
var roleAttributes = []struct{ name, attrs string }{
	{OwnerRole, "NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"},
	{AppRole, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT"},
	{QueryRole, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT CONNECTION LIMIT 64"},
	{AuditorRole, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT"},
	{OperatorRole, "NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT"},
	{SandboxRole, "NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT"},
	{ProvisionerRole, "NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB CREATEROLE NOREPLICATION NOINHERIT"},
}

// ExtensionSchema holds the vector extension.
const ExtensionSchema = "extensions"

// roleSearchPath is the platform roles' search_path: the extension's schema
// comes last, so its types and operators resolve without qualification.
const roleSearchPath = `"$user", public, ` + ExtensionSchema

// clientGoneCheck has PostgreSQL check every 250 ms, while a statement
// runs, whether its client's socket is still open, and end the statement if
// not. Without it a statement that sends nothing until it ends (a count over
// a huge join) outlives a client that vanished without a cancel request (a
// dbchat process killed, or a connection closed before the statement began)
// until its statement_timeout.
const clientGoneCheck = "client_connection_check_interval = '250ms'"

// queryRoleSettings are dbchat_query's session defaults; the sandbox also
// sets the per-request ones with SET LOCAL.
var queryRoleSettings = []string{
	clientGoneCheck,
	"default_transaction_read_only = on",
	"statement_timeout = '5s'",
	"lock_timeout = '1s'",
	"idle_in_transaction_session_timeout = '10s'",
	"work_mem = '16MB'",
	"temp_file_limit = '256MB'",
}

// appRoleSettings are dbchat_app's session defaults, so that no request
// can hold a connection or run a statement without end: a transaction left
// idle (a client that stopped sending mid-import) is ended by the server,
// and a statement (a preview deep into a huge table) is cancelled. Row
// imports lift statement_timeout with SET LOCAL for their COPY and INSERT.
// The HTTP layer's own limits (DBCHAT_BODY_IDLE_TIMEOUT, 30s) are shorter,
// so these are the backstop.
var appRoleSettings = []string{
	clientGoneCheck,
	"statement_timeout = '30s'",
	"idle_in_transaction_session_timeout = '60s'",
}

// ensureRoles creates the roles if missing and (re)applies their attributes
// and, when given, login passwords.
func ensureRoles(ctx context.Context, conn *pgx.Conn, passwords map[string]string) error {
	for _, r := range roleAttributes {
		if err := ensureRole(ctx, conn, r.name, r.attrs, passwords[r.name]); err != nil {
			return err
		}
	}
	// The query role's sessions are boxed by default, whatever the statement
	// tries: read-only transactions, bounded time, memory and temp files.
	// temp_file_limit can only be set by a superuser, hence here.
	if err := configureQueryLogin(ctx, conn, QueryRole); err != nil {
		return err
	}
	for _, set := range appRoleSettings {
		if _, err := conn.Exec(ctx, "ALTER ROLE "+AppRole+" SET "+set); err != nil {
			return fmt.Errorf("configure %s (%s): %w", AppRole, set, err)
		}
	}
	for _, r := range []string{OwnerRole, AppRole, AuditorRole} {
		if _, err := conn.Exec(ctx, "ALTER ROLE "+r+" SET search_path = "+roleSearchPath); err != nil {
			return fmt.Errorf("configure %s (search_path): %w", r, err)
		}
	}
	// Migrations (as the owner) hand the operator its function; that takes
	// membership. Role attributes such as BYPASSRLS are never inherited.
	// Likewise the provisioner its function.
	for _, r := range []string{OperatorRole, ProvisionerRole} {
		if _, err := conn.Exec(ctx, "GRANT "+r+" TO "+OwnerRole); err != nil {
			return fmt.Errorf("grant %s to %s: %w", r, OwnerRole, err)
		}
	}
	// A non-superuser admin needs membership to run migrations as the owner.
	var super bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return err
	}
	if !super {
		if _, err := conn.Exec(ctx, "GRANT "+OwnerRole+" TO CURRENT_USER"); err != nil {
			return fmt.Errorf("grant %s to the admin user: %w", OwnerRole, err)
		}
	}
	return nil
}

// ensureRole creates the role name if missing, (re)applies attrs and, when
// pw is given and does not already work, sets its password.
func ensureRole(ctx context.Context, conn *pgx.Conn, name, attrs, pw string) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	verb := "ALTER"
	if !exists {
		verb = "CREATE"
	}
	stmt := fmt.Sprintf("%s ROLE %s %s", verb, pgx.Identifier{name}.Sanitize(), attrs)
	if _, err := conn.Exec(ctx, stmt); err != nil && !isDuplicate(err) {
		return fmt.Errorf("%s role %s: %w", verb, name, err)
	}
	if pw != "" && !loginWorks(ctx, conn.Config(), name, pw) {
		// Utility statements take no bind parameters; format() quotes the literal.
		var alter string
		if err := conn.QueryRow(ctx, `SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)`, name, pw).Scan(&alter); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, alter); err != nil {
			return fmt.Errorf("set password of %s: %w", name, err)
		}
	}
	return nil
}

// configureQueryLogin applies queryRoleSettings to a query login.
func configureQueryLogin(ctx context.Context, conn *pgx.Conn, login string) error {
	for _, set := range queryRoleSettings {
		if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{login}.Sanitize()+" SET "+set); err != nil {
			return fmt.Errorf("configure %s (%s): %w", login, set, err)
		}
	}
	return nil
}

// loginWorks reports whether role can already log in with password. Setting
// an unchanged password again would give the role a new SCRAM secret, which
// breaks a PgBouncer holding the old one (auth passthrough), so migrate only
// sets passwords that do not work yet.
func loginWorks(ctx context.Context, admin *pgx.ConnConfig, role, password string) bool {
	cfg := admin.Copy()
	cfg.User, cfg.Password = role, password
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}
