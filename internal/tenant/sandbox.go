package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sandbox runs untrusted SQL (generated or typed by a user) for one tenant.
// Its pool logs in as dbchat_query, which has no rights of its own but may
// become any tenant's role; each run sets the transaction's role to the
// tenant's (SELECT on its own tables, the reviewed functions, no catalog),
// and the statement, a plain query, cannot change it. Each run is one READ
// ONLY transaction with the role and app.tenant_id set locally, search_path
// pinned to the tenant's schema and the resource limits set locally; the statement becomes a cursor and at most MaxRows+1 rows are
// fetched, all in one pipelined round trip, then the transaction is rolled
// back.
type Sandbox struct {
	pool *pgxpool.Pool
}

// NewSandbox opens a pool that must log in as dbchat_query; any other role
// is refused, since running untrusted SQL as the runtime role would void the
// sandbox. Statements use the extended protocol without a prepare step
// (QueryExecModeExec): one statement per message, and the FETCH need not be
// described before its cursor exists.
func NewSandbox(ctx context.Context, connURL string, maxConns int32) (*Sandbox, error) {
	cfg, err := pgxpool.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("sandbox database URL: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.AfterRelease = resetSession
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sandbox database URL: %w", err)
	}
	// dbchat_query reads no catalog (not even pg_roles) and executes no
	// function, so the role's attributes are checked from the runtime pool
	// (CheckRuntimeRole, through Open) and by the audit; here, who we are and
	// that we are no superuser.
	var user, super string
	err = pool.QueryRow(ctx, `SELECT current_user`).Scan(&user)
	if err == nil {
		err = pool.QueryRow(ctx, `SHOW is_superuser`).Scan(&super)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("sandbox pool: %w", err)
	}
	if user != QueryRole || super != "off" {
		pool.Close()
		return nil, fmt.Errorf("sandbox pool must log in as dbchat_query without SUPERUSER or BYPASSRLS, got %s", user)
	}
	return &Sandbox{pool: pool}, nil
}

// resetSession runs DISCARD ALL on a connection returned to the pool (pgxpool
// calls it off the request path), so nothing a statement left in the session
// reaches the next tenant's. The role's rights leave no session state to
// change (setseed, advisory locks and set_config are not executable, SET
// LOCAL ends with the transaction); this is the layer under that one. A
// connection that cannot be reset is dropped.
func resetSession(c *pgx.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Exec(ctx, "DISCARD ALL")
	return err == nil
}

// Close closes the sandbox's pool.
func (s *Sandbox) Close() { s.pool.Close() }

// Limits bound one sandboxed statement.
type Limits struct {
	MaxRows int           // rows fetched; one more is fetched to detect truncation
	Timeout time.Duration // statement_timeout
}

const cursorName = "dbchat_sandbox"

// Query runs sql for tenantID and hands the fetched rows (text format) to
// read, which must consume them before returning.
func (s *Sandbox) Query(ctx context.Context, tenantID uuid.UUID, sql string, lim Limits, read func(pgx.Rows) error) error {
	if tenantID == uuid.Nil {
		return errors.New("sandbox: no tenant")
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return Translate(err)
	}
	defer conn.Release() // a connection left in a transaction is destroyed

	// SET takes no bind parameters. The values are a formatted uuid, a
	// quoted identifier and integers, never caller text.
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	// The tenant's role (named like its schema) is the only one with USAGE
	// on the schema: another tenant's schema is "permission denied" before
	// any of its tables is looked up or locked.
	b.Queue(`SET LOCAL ROLE ` + pgx.Identifier{Schema(tenantID)}.Sanitize())
	b.Queue(fmt.Sprintf(`SET LOCAL app.tenant_id = '%s'`, tenantID))
	b.Queue(`SET LOCAL search_path = ` + pgx.Identifier{Schema(tenantID)}.Sanitize())
	b.Queue(fmt.Sprintf(`SET LOCAL statement_timeout = %d`, max(lim.Timeout.Milliseconds(), 1)))
	b.Queue(`SET LOCAL TimeZone = 'UTC'`)
	b.Queue(`SET LOCAL DateStyle = 'ISO, YMD'`)
	b.Queue(`SET LOCAL IntervalStyle = 'iso_8601'`)
	b.Queue(`SET LOCAL bytea_output = 'hex'`)
	prelude := b.Len()
	// The caller's text only ever follows DECLARE … FOR: the extended
	// protocol refuses a second statement, and DECLARE accepts only a query.
	b.Queue(`DECLARE ` + cursorName + ` NO SCROLL CURSOR FOR ` + sql)
	b.Queue(fmt.Sprintf(`FETCH FORWARD %d FROM %s`, lim.MaxRows+1, cursorName)) // text format: exact values
	b.Queue(`ROLLBACK`)

	br := conn.SendBatch(ctx, b)
	err = func() error {
		for range prelude + 1 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		if err := read(rows); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = br.Exec() // ROLLBACK
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// After an error the batch's ROLLBACK was skipped; end the
		// transaction here, or drop the connection.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
	}
	return err
}
