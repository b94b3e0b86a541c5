// Package migrate prepares a database for dbchat: it creates the database if
// missing, the cluster-wide roles, the vector extension and the database
// grants with a privileged connection, then applies the embedded goose
// migrations as dbchat_owner. Every step is idempotent.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/dbchat/dbchat/db"
)

// VersionTable is goose's bookkeeping table, kept out of the tenant schemas.
const VersionTable = "dbchat_migrations.goose_db_version"

// lockKey serialises concurrent migrate runs (tests create templates in
// parallel processes); it is taken in the maintenance database.
const lockKey = 0x6462636861740001

// Options configures Run.
type Options struct {
	// AdminURL is a privileged connection (superuser, or CREATEROLE and
	// CREATEDB) to the target database.
	AdminURL string
	// Passwords sets login passwords by role name (optional).
	Passwords map[string]string
	// Log receives one line per applied migration; nil discards.
	Log io.Writer
	// QueryShards is how many query logins the database's tenants are split
	// across (dbchat_query, dbchat_query_1, …; DBCHAT_QUERY_SHARDS); 0 keeps
	// the database's current count (1 when new). Each login takes
	// Passwords[QueryRole].
	QueryShards int
	// TenantsPerLogin, when positive, chooses the count instead
	// (DBCHAT_QUERY_SHARDS=auto, TenantsPerQueryLogin): the smallest power
	// of two that gives no login more tenants, never fewer logins than the
	// database has.
	TenantsPerLogin int
}

// Run brings the database to the latest migration. Running it twice is a no-op.
func Run(ctx context.Context, opts Options) error {
	return run(ctx, opts, nil)
}

// run is Run over the migrations in fsys, nil for the embedded ones (tests
// add a failing one).
func run(ctx context.Context, opts Options, fsys fs.FS) error {
	cfg, err := pgx.ParseConfig(opts.AdminURL)
	if err != nil {
		return fmt.Errorf("DBCHAT_ADMIN_DATABASE_URL: %w", err)
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	// One run at a time, start to end: two instances starting together
	// would race on CREATE EXTENSION, the roles and the grants.
	maint, err := lockCluster(ctx, cfg)
	if err != nil {
		return err
	}
	defer maint.Close(context.Background())
	if err := prepareCluster(ctx, maint, cfg, opts.Passwords); err != nil {
		return err
	}
	if err := prepareDatabase(ctx, cfg); err != nil {
		return err
	}
	provider, closeDB, err := newProvider(cfg, fsys)
	if err != nil {
		return err
	}
	defer closeDB()
	results, err := provider.Up(ctx)
	if pe := (*goose.PartialError)(nil); errors.As(err, &pe) {
		results = pe.Applied
	}
	for _, r := range results {
		fmt.Fprintf(log, "migrate: applied %s (%s)\n", r.Source.Path, r.Duration.Round(1e6))
	}
	if err != nil {
		return upErr(ctx, provider, err)
	}
	return finish(ctx, cfg, opts)
}

// upErr names the migration that failed and the version the database stays
// at. Goose runs each migration in its own transaction (none of ours opts
// out with NO TRANSACTION), so nothing of the failed one was applied.
func upErr(ctx context.Context, provider *goose.Provider, err error) error {
	pe := (*goose.PartialError)(nil)
	if !errors.As(err, &pe) || pe.Failed == nil || pe.Failed.Source == nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	at := "the previous version"
	if v, verr := provider.GetDBVersion(ctx); verr == nil {
		at = fmt.Sprintf("migration %d", v)
	}
	return fmt.Errorf("apply migrations: %s failed and was rolled back; the database stays at %s: %w",
		path.Base(pe.Failed.Source.Path), at, pe.Err)
}

// lockCluster connects to the maintenance database and takes the migrate
// lock there; it is held until the connection closes.
func lockCluster(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	maint := cfg.Copy()
	maint.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, maint)
	if err != nil {
		return nil, fmt.Errorf("connect to the maintenance database: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(lockKey)); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// prepareCluster creates the roles and the database on conn, a connection
// to the maintenance database that holds the migrate lock.
func prepareCluster(ctx context.Context, conn *pgx.Conn, cfg *pgx.ConnConfig, passwords map[string]string) error {
	if err := ensureRoles(ctx, conn, passwords); err != nil {
		return err
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, cfg.Database).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		stmt := fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{cfg.Database}.Sanitize(), OwnerRole)
		if _, err := conn.Exec(ctx, stmt); err != nil && !isDuplicate(err) {
			return fmt.Errorf("create database %s: %w", cfg.Database, err)
		}
	}
	return nil
}

// prepareDatabase does what only a privileged role may: the extension, the
// migrations schema, and database-level grants (PUBLIC loses CONNECT/TEMP).
func prepareDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", cfg.Database, err)
	}
	defer conn.Close(context.Background())
	dbName := pgx.Identifier{cfg.Database}.Sanitize()
	stmts := []string{
		// Extensions live in a schema of their own, not in public (splinter
		// 0014): only the platform roles have USAGE on it and find it on
		// their search_path (roleSearchPath), untrusted SQL never does.
		`CREATE SCHEMA IF NOT EXISTS ` + ExtensionSchema,
		`REVOKE ALL ON SCHEMA ` + ExtensionSchema + ` FROM PUBLIC`,
		`GRANT USAGE ON SCHEMA ` + ExtensionSchema + ` TO ` + OwnerRole + `, ` + AppRole + `, ` + AuditorRole,
		`CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA ` + ExtensionSchema,
		`DO $$ BEGIN
			IF (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector') <> '` + ExtensionSchema + `' THEN
				ALTER EXTENSION vector SET SCHEMA ` + ExtensionSchema + `;
			END IF;
		END $$`,
		`CREATE SCHEMA IF NOT EXISTS dbchat_migrations AUTHORIZATION ` + OwnerRole,
		`REVOKE ALL ON DATABASE ` + dbName + ` FROM PUBLIC`,
		`GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ` + dbName + ` TO ` + OwnerRole,
		`GRANT CONNECT, TEMPORARY ON DATABASE ` + dbName + ` TO ` + AppRole,
		`GRANT CONNECT ON DATABASE ` + dbName + ` TO ` + QueryRole + `, ` + AuditorRole,
	}
	stmts = append(stmts, hardenFunctions...)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			if strings.Contains(s, "CREATE EXTENSION") && extensionMissing(err) {
				return fmt.Errorf("create extension vector: %w (install pgvector: `make pgvector`, or use the pgvector/pgvector Docker image)", err)
			}
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// hardenFunctions closes what a statement could call even if the SQL parser
// let it through. Any role can change any custom setting, and set_config can
// change app.tenant_id or role from inside a SELECT: only the roles that set
// the tenant keep it. Session-level advisory locks would outlive a sandboxed
// statement on a pooled connection; signalling and notifying other backends
// (all dbchat_query sessions share one role) is never needed. Superusers, and
// so pg_dump run by a DBA, are unaffected. These are per-database grants on
// built-in functions, so only the privileged migrate connection can make them.
var hardenFunctions = []string{
	`REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC`,
	`GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO ` + OwnerRole + `, ` + AppRole + `, ` + AuditorRole,
	`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint), pg_catalog.pg_advisory_lock(integer, integer),
		pg_catalog.pg_advisory_lock_shared(bigint), pg_catalog.pg_advisory_lock_shared(integer, integer),
		pg_catalog.pg_try_advisory_lock(bigint), pg_catalog.pg_try_advisory_lock(integer, integer),
		pg_catalog.pg_try_advisory_lock_shared(bigint), pg_catalog.pg_try_advisory_lock_shared(integer, integer),
		pg_catalog.pg_notify(text, text), pg_catalog.pg_cancel_backend(integer),
		pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC`,
	// Every sandboxed statement runs as the same role, so pg_stat_activity
	// would show one tenant the SQL text (and literals) of another's.
	`REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC`,
	`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC`,
	`GRANT SELECT ON pg_catalog.pg_stat_activity TO ` + AuditorRole,
	`GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) TO ` + AuditorRole,
}

// finish runs the privileged steps that follow the migrations in one
// transaction: the runtime and auditor roles read the migration version (for
// /readyz and audits), and built-in functions and catalogs are restricted
// (restrictBuiltins), which must see the functions the migrations created.
func finish(ctx context.Context, cfg *pgx.ConnConfig, opts Options) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := ensureQueryLogins(ctx, conn, opts.QueryShards, opts.TenantsPerLogin, opts.Passwords[QueryRole]); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Two migrate runs would update the same pg_proc and pg_class rows
		// ("tuple concurrently updated"): one at a time.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `GRANT USAGE ON SCHEMA dbchat_migrations TO `+AppRole+`, `+AuditorRole+`;
			GRANT SELECT ON `+VersionTable+` TO `+AppRole+`, `+AuditorRole)
		if err != nil {
			return err
		}
		return restrictBuiltins(ctx, tx)
	})
}

// newProvider opens a one-connection database/sql handle that runs as the
// owner role, and a goose provider over the migrations in fsys (nil: the
// embedded ones).
func newProvider(cfg *pgx.ConnConfig, fsys fs.FS) (*goose.Provider, func(), error) {
	owner := cfg.Copy()
	sqlDB := stdlib.OpenDB(*owner, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		// SET ROLE does not apply the role's settings: the search_path too.
		_, err := c.Exec(ctx, "SET ROLE "+OwnerRole+"; SET search_path = "+roleSearchPath)
		return err
	}))
	sqlDB.SetMaxOpenConns(1)
	if fsys == nil {
		sub, err := fs.Sub(db.Migrations, "migrations")
		if err != nil {
			sqlDB.Close()
			return nil, nil, err
		}
		fsys = sub
	}
	store, err := database.NewStore(database.DialectPostgres, VersionTable)
	if err != nil {
		sqlDB.Close()
		return nil, nil, err
	}
	p, err := goose.NewProvider("", sqlDB, fsys, goose.WithStore(store), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		sqlDB.Close()
		return nil, nil, err
	}
	return p, func() { sqlDB.Close() }, nil
}

// Status reports each migration as applied or pending.
func Status(ctx context.Context, adminURL string) ([]*goose.MigrationStatus, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return nil, err
	}
	p, closeDB, err := newProvider(cfg, nil)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	return p.Status(ctx)
}

// Latest is the newest migration version embedded in this binary.
func Latest() (int64, error) {
	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		return 0, errors.Join(errors.New("no migrations embedded"), err)
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return 0, err
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// extensionMissing reports whether err says the server has no such
// extension installed (its control file is missing), the one case where
// installing pgvector is the fix.
func extensionMissing(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "58P01" || pg.Code == "0A000")
}

func isDuplicate(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "42710" || pg.Code == "42P04")
}
