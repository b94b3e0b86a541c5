package tenant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Sandbox runs untrusted SQL (generated or typed by a user) for one tenant.
// Its pool logs in as dbchat_query, which has no rights of its own but may
// become any tenant's role; each run sets the transaction's role to the
// tenant's (SELECT on its own tables, the reviewed functions, no catalog),
// and the statement, a plain query, cannot change it. Each run is one READ
// ONLY transaction with the role and app.tenant_id set locally, search_path
// pinned to the tenant's schema and the resource limits set locally, and
// the statement described (one pipelined round trip); then it becomes a
// cursor, wrapped by capValues when it returns text, and at most MaxRows+1
// rows are fetched and the transaction rolled back (one more).
//
// The pool is shared fairly (admission): at most TenantConns statements of
// one tenant run at once, the rest wait in that tenant's queue, and a freed
// connection goes to the tenants in turn. No message from the server may be
// larger than MaxMessageBytes, so one huge value cannot be read into memory.
//
// With a hot standby (UseStandby, replica.go) statements run there the same
// way, once it has replayed their tenant's last write, and on this pool
// otherwise.
type Sandbox struct {
	// pools are the connections to the primary: one pool per query login
	// (SplitLogins), dbchat_query's alone by default; replaced when the
	// database's logins change (FollowQueryShards, reshard).
	pools atomic.Pointer[queryPools]
	base  *pgxpool.Config
	// shards reads the database's query login count (FollowQueryShards);
	// nil: the split is fixed. mu serialises reshard.
	shards func(context.Context) (int, error)
	mu     sync.Mutex
	admit  *admission
	// standby, when set (UseStandby), is where statements run while it is
	// up and has replayed their tenant's writes; pool is then the fallback.
	standby *standby
	// statements counts the statements sent to the database (Statements);
	// cuts the results ended by the per-value cap (ValuesCut).
	statements, cuts atomic.Int64
}

// Sandbox defaults; DBCHAT_SANDBOX_TENANT_CONNS and
// DBCHAT_SANDBOX_TENANT_QUEUE override the first two.
const (
	// DefaultTenantQueue is how many statements of one tenant may wait for
	// a connection; one more is refused at once as overloaded.
	DefaultTenantQueue = 64
	// DefaultMaxWait is the longest a statement waits for a connection
	// before it is refused as overloaded.
	DefaultMaxWait = 30 * time.Second
	// MaxMessageBytes bounds one protocol message from the server, hence one
	// result row: a larger row fails the read (ErrRowTooLarge) after its
	// 5-byte header, before its body is read, and the connection is
	// dropped. It is the sandbox's response cap (4 MiB) plus room for the
	// row's framing: a row this large could never be part of a response.
	MaxMessageBytes = 4<<20 + 64<<10
)

// ErrRowTooLarge reports a result row larger than MaxMessageBytes. The rows
// before it were read; the statement's connection is gone.
var ErrRowTooLarge = errors.New("sandbox: a result row exceeds the message size cap")

// DefaultTenantConns is the per-tenant cap for a pool of maxConns
// connections: half the pool, at least one.
func DefaultTenantConns(maxConns int32) int { return max(1, int(maxConns)/2) }

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s must be a positive integer, got %q", name, v)
	}
	return n, nil
}

// NewSandbox opens a pool that must log in as dbchat_query; any other role
// is refused, since running untrusted SQL as the runtime role would void the
// sandbox. Statements use the extended protocol without a prepare step
// (QueryExecModeExec): one statement per message, and the FETCH need not be
// described before its cursor exists.
//
// At most DBCHAT_SANDBOX_TENANT_CONNS statements of one tenant run at once
// (default DefaultTenantConns(maxConns), capped at maxConns), and at most
// DBCHAT_SANDBOX_TENANT_QUEUE (default DefaultTenantQueue) wait.
func NewSandbox(ctx context.Context, connURL string, maxConns int32) (*Sandbox, error) {
	cfg, err := pgxpool.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("sandbox database URL: %w", err)
	}
	perTenant, err := envInt("DBCHAT_SANDBOX_TENANT_CONNS", DefaultTenantConns(maxConns))
	if err != nil {
		return nil, err
	}
	queue, err := envInt("DBCHAT_SANDBOX_TENANT_QUEUE", DefaultTenantQueue)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.MaxProtocolMessageBodyLen = MaxMessageBytes
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.AfterRelease = resetSession
	if cfg.ConnConfig.User != QueryRole {
		return nil, fmt.Errorf("sandbox pool must log in as %s, not %q", QueryRole, cfg.ConnConfig.User)
	}
	pools, err := newQueryPools(cfg, 1, checkLogin)
	if err != nil {
		return nil, fmt.Errorf("sandbox database URL: %w", err)
	}
	// Fail now, not at the first statement, when the login is wrong.
	conn, err := pools.pools[0].Acquire(ctx)
	if err != nil {
		pools.close()
		return nil, fmt.Errorf("sandbox pool: %w", err)
	}
	conn.Release()
	s := &Sandbox{base: cfg, admit: newAdmission("sandbox", int(maxConns), min(perTenant, int(maxConns)), queue, DefaultMaxWait)}
	s.pools.Store(pools)
	return s, nil
}

// checkLogin refuses a sandbox connection that is not login without
// superuser, from what the server reports at login: the login reads no
// catalog (not even pg_roles) and executes no function, so its other
// attributes are checked from the runtime pool (CheckRuntimeRole, through
// Open) and by the audit.
func checkLogin(c *pgx.Conn, login string) error {
	pc := c.PgConn()
	if user, super := pc.ParameterStatus("session_authorization"), pc.ParameterStatus("is_superuser"); user != login || super != "off" {
		return fmt.Errorf("sandbox pool must log in as %s without SUPERUSER or BYPASSRLS, got %s", login, user)
	}
	return nil
}

// SplitLogins makes the sandbox log in, for each statement, as the query
// login of its tenant (QueryLogin), the database's tenants being split
// across shards of them (dbchat.query_shards(), QueryShards): each login is
// the URL's user with its shard's suffix and the same password, and the
// pool's size bounds the connections of all logins together. Call it
// before the first Query and before UseStandby.
func (s *Sandbox) SplitLogins(shards int) error {
	if shards <= 1 {
		return nil
	}
	pools, err := newQueryPools(s.base, shards, checkLogin)
	if err != nil {
		return fmt.Errorf("sandbox database URL: %w", err)
	}
	s.pools.Swap(pools).close()
	return nil
}

// FollowQueryShards splits the sandbox's logins as the database does
// (QueryShards on db, the runtime DB), and follows a later change: when a
// login is refused its tenant's role, the count is read again and, if it
// changed (dbchat migrate with another DBCHAT_QUERY_SHARDS), the sandbox
// moves to the new logins and runs the statement again, so running servers
// need no restart. Call it before the first Query and before UseStandby.
func (s *Sandbox) FollowQueryShards(ctx context.Context, db *DB) error {
	n, err := QueryShards(ctx, db)
	if err != nil {
		return fmt.Errorf("the query logins (dbchat.query_shards()): %w", err)
	}
	if err := s.SplitLogins(n); err != nil {
		return err
	}
	s.shards = func(ctx context.Context) (int, error) { return QueryShards(ctx, db) }
	return nil
}

// reshard runs after a statement on pools (split across used logins) was
// refused its tenant's role. It reports whether running it again may
// succeed: another statement already moved the sandbox to other logins,
// or the database's count changed and the sandbox (and its standby) moved
// now; statements on the old pools finish there.
func (s *Sandbox) reshard(ctx context.Context, used *queryPools) bool {
	if s.shards == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pools.Load() != used {
		return true
	}
	n, err := s.shards(ctx)
	if err != nil || n == len(used.pools) {
		return false
	}
	pools, err := newQueryPools(s.base, n, checkLogin)
	if err != nil {
		return false
	}
	go s.pools.Swap(pools).close()
	if st := s.standby; st != nil {
		if pools, err := newQueryPools(st.base, n, checkStandbyLogin); err == nil {
			go st.pools.Swap(pools).close()
		}
	}
	return true
}

// refusedRole reports a prelude whose SET LOCAL ROLE was refused
// (preludeFailed): the login may not become the tenant's role.
func refusedRole(err error) bool {
	var pg *pgconn.PgError
	return apperr.CodeOf(err) == apperr.Unavailable && errors.As(err, &pg) && pg.Code == "42501"
}

// SetTenantLimits changes how many statements of one tenant run at once and
// how many may wait (tests, and callers that size them themselves).
func (s *Sandbox) SetTenantLimits(conns, queue int) {
	a := s.admit
	a.mu.Lock()
	defer a.mu.Unlock()
	a.perTenant, a.maxQueue = max(1, conns), max(0, queue)
	a.dispatch()
}

// Running is the number of the tenant's statements holding a connection,
// Waiting the number in its queue.
func (s *Sandbox) Running(tenantID uuid.UUID) int { return s.admit.running(tenantSlot(tenantID)) }

// Waiting is the number of the tenant's statements waiting for a connection.
func (s *Sandbox) Waiting(tenantID uuid.UUID) int { return s.admit.waiting(tenantSlot(tenantID)) }

// Statements is the number of statements this sandbox has sent to the
// database (admitted Query calls), for budgets' tests.
func (s *Sandbox) Statements() int64 { return s.statements.Load() }

// Login is the query login tenantID's statements run under (QueryLogin
// with the sandbox's split, SplitLogins).
func (s *Sandbox) Login(tenantID uuid.UUID) string {
	return QueryLogin(tenantID, len(s.pools.Load().pools))
}

// Connections is the number of connections the sandbox has open on the
// primary, across its query logins: at most the pool's size.
func (s *Sandbox) Connections() int { return int(s.pools.Load().established()) }

// ValuesCut is the number of results the database ended early because a
// value was larger than MaxValueBytes (capValues).
func (s *Sandbox) ValuesCut() int64 { return s.cuts.Load() }

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

// Close closes the sandbox's pools.
func (s *Sandbox) Close() {
	s.pools.Load().close()
	if s.standby != nil {
		s.standby.close()
	}
}

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
	// The end user behind the statement: the request's identity when it is
	// this tenant's (the claim policies read app.user_id, app.role and
	// app.claims), none otherwise.
	var user Identity
	if id, ok := FromContext(ctx); ok && id.TenantID == tenantID {
		user = id
	}
	claims, err := claimsSetting(user.Claims)
	if err != nil {
		return err
	}
	if err := s.admit.acquire(ctx, tenantSlot(tenantID)); err != nil {
		return err
	}
	defer s.admit.release(tenantSlot(tenantID))
	// SET takes no bind parameters. The values are formatted uuids, a
	// quoted identifier, one of two role names, integers and the claims'
	// JSON as an escaped string literal (E'...': the same whatever
	// standard_conforming_strings says); never the statement's text.
	prelude := []string{
		`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`,
		// The tenant's roles (named like its schema) are the only ones
		// with USAGE on the schema: another tenant's schema is "permission
		// denied" before any of its tables is looked up or locked. Members
		// get the role without the restricted columns (ReadRole).
		`SET LOCAL ROLE ` + pgx.Identifier{ReadRole(tenantID, user)}.Sanitize(),
		fmt.Sprintf(`SET LOCAL app.tenant_id = '%s'`, tenantID),
		fmt.Sprintf(`SET LOCAL app.user_id = '%s'`, settingValue(user.UserID)),
		fmt.Sprintf(`SET LOCAL app.role = '%s'`, roleSetting(user.Role)),
		`SET LOCAL app.claims = ` + escapeLiteral(claims),
		`SET LOCAL search_path = ` + pgx.Identifier{Schema(tenantID)}.Sanitize(),
		fmt.Sprintf(`SET LOCAL statement_timeout = %d`, max(lim.Timeout.Milliseconds(), 1)),
		`SET LOCAL TimeZone = 'UTC'`,
		`SET LOCAL DateStyle = 'ISO, YMD'`,
		`SET LOCAL IntervalStyle = 'iso_8601'`,
		`SET LOCAL bytea_output = 'hex'`,
	}
	fetch := fmt.Sprintf(`FETCH FORWARD %d FROM %s`, lim.MaxRows+1, cursorName) // text format: exact values

	// On a standby (replica.go) when it is up and has replayed the tenant's
	// writes; on the primary when not, or when the standby failed under
	// the statement before any row was read.
	if st := s.standby; st != nil {
		if st.ready(ctx, tenantID) {
			used := s.pools.Load()
			conn, err := st.pools.Load().acquire(ctx, tenantID)
			if err == nil {
				reading := false
				err = s.execute(ctx, conn, prelude, sql, fetch, func(rows pgx.Rows) error {
					reading = true
					return read(rows)
				})
				if refusedRole(err) && s.reshard(ctx, used) {
					// Moved to other logins: on the primary, this once.
				} else if reading || !st.failed(ctx, err) {
					st.ran.Add(1)
					return err
				}
			} else if ctx.Err() != nil {
				return Translate(err)
			} else {
				// Refused, unreachable, or no longer a standby
				// (checkStandbyLogin): the primary, for a while.
				st.down()
			}
		}
		st.fellBack.Add(1)
	}
	used := s.pools.Load()
	err = s.onPrimary(ctx, used, tenantID, prelude, sql, fetch, read)
	if refusedRole(err) && s.reshard(ctx, used) {
		err = s.onPrimary(ctx, s.pools.Load(), tenantID, prelude, sql, fetch, read)
	}
	return err
}

// onPrimary runs the statement on a connection of pools, the primary's.
func (s *Sandbox) onPrimary(ctx context.Context, pools *queryPools, tenantID uuid.UUID, prelude []string, sql, fetch string, read func(pgx.Rows) error) error {
	conn, err := pools.acquire(ctx, tenantID)
	if err != nil {
		return Translate(err)
	}
	return s.execute(ctx, conn, prelude, sql, fetch, read)
}

// execute runs the statement on conn, the prelude first, and releases conn.
func (s *Sandbox) execute(ctx context.Context, conn *pgxpool.Conn, prelude []string, sql, fetch string, read func(pgx.Rows) error) error {
	s.statements.Add(1)
	defer conn.Release() // a connection left in a transaction is destroyed

	// The per-value cap: describe the statement as the tenant (with the
	// prelude, one round trip), then run it
	// wrapped so that the database replaces any value too large for a
	// response before sending it (capValues). If the statement cannot be
	// described, or the wrapper is refused, it runs as written, as below.
	fields, err := describe(ctx, conn, prelude, sql)
	if err != nil && !errors.Is(err, errNoDescription) {
		return preludeFailed(s.finish(conn, err))
	}
	if err == nil {
		if wrapped, ok := capValues(sql, fields); ok {
			failed, err := run(ctx, conn, nil, wrapped, fetch, func(rows pgx.Rows) error {
				return read(&cutRows{Rows: rows, n: len(fields), cuts: &s.cuts})
			})
			if !failed || !retryPlain(ctx, conn, err) {
				return s.finish(conn, err)
			}
		} else {
			// Nothing to cap: run it in the open transaction.
			_, err := run(ctx, conn, nil, sql, fetch, read)
			return s.finish(conn, err)
		}
		if err := rollback(conn); err != nil {
			return err
		}
	}
	_, err = run(ctx, conn, prelude, sql, fetch, read)
	return s.finish(conn, err)
}

// preludeFailed words a refusal of the transaction's prelude, which holds
// no text of the caller's: the login may not become the tenant's role
// (query logins out of step with the database) or a setting was refused.
// It is the service's fault, not the statement's, so it is not answered
// as an SQL error. An error already worded (a lost connection) stays so.
func preludeFailed(err error) error {
	var pg *pgconn.PgError
	var known *apperr.Error
	if !errors.As(err, &known) && errors.As(err, &pg) {
		return apperr.Wrap(apperr.Unavailable, pg, fmt.Sprintf("the SQL sandbox could not open the tenant's transaction (%s %s): "+
			"if DBCHAT_QUERY_SHARDS changed, run dbchat migrate", pg.Code, pg.Message))
	}
	return err
}

// escapeLiteral quotes s as an escape string constant (E'...'), whose
// meaning does not depend on standard_conforming_strings: backslashes and
// quotes are doubled. s never holds a NUL (JSON escapes control characters).
func escapeLiteral(s string) string {
	return `E'` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + `'`
}

// retryPlain reports whether a statement whose wrapped DECLARE failed with
// err is run again as written, so that its error (or success) is exactly
// what it would have been: yes, except when the request is over, the
// connection gone, or the failure took the statement's time or memory
// (statement timeout, out of memory), which a second run would only repeat.
func retryPlain(ctx context.Context, conn *pgxpool.Conn, err error) bool {
	if ctx.Err() != nil || conn.Conn().IsClosed() {
		return false
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return pg.Code != "57014" && pg.Code[:2] != "53"
}

// errNoDescription: the statement could not be described (the transaction
// was rolled back); it runs as written and fails or not as it would have.
var errNoDescription = errors.New("sandbox: statement not described")

// describe opens the tenant's transaction (prelude) and describes sql in it
// (Parse and Describe, unnamed), in one pipelined round trip. It returns
// errNoDescription, the transaction ended, if sql could not be described,
// and any other error when the transaction could not be opened.
func describe(ctx context.Context, conn *pgxpool.Conn, prelude []string, sql string) ([]pgconn.FieldDescription, error) {
	pl := conn.Conn().PgConn().StartPipeline(ctx)
	for _, q := range prelude {
		pl.SendQueryParams(q, nil, nil, nil, nil)
	}
	pl.SendPrepare("", sql, nil)
	if err := pl.Sync(); err != nil {
		_ = pl.Close()
		return nil, err
	}
	var fields []pgconn.FieldDescription
	var preludeErr, describeErr error
	for i := range len(prelude) + 1 {
		res, err := pl.GetResults()
		if err == nil {
			switch r := res.(type) {
			case *pgconn.ResultReader:
				_, err = r.Close()
			case *pgconn.StatementDescription:
				fields = r.Fields
			default:
				err = fmt.Errorf("sandbox: unexpected pipeline result %T", res)
			}
		}
		if err != nil {
			if i < len(prelude) {
				preludeErr = err
			} else {
				describeErr = err
			}
			break
		}
	}
	cerr := pl.Close()
	switch {
	case preludeErr != nil:
		return nil, preludeErr
	case describeErr != nil:
		var pg *pgconn.PgError
		if ctx.Err() != nil || conn.Conn().IsClosed() || !errors.As(describeErr, &pg) {
			return nil, describeErr
		}
		if err := rollback(conn); err != nil {
			return nil, err
		}
		return nil, errNoDescription
	case cerr != nil:
		return nil, cerr
	}
	return fields, nil
}

// rollback ends the connection's transaction, or closes the connection.
func rollback(conn *pgxpool.Conn) error {
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
		_ = conn.Conn().Close(rctx)
		return err
	}
	return nil
}

// run sends, in one round trip, the prelude (if any), DECLARE … FOR query,
// the FETCH and ROLLBACK, and hands the fetched rows to read. declareFailed
// reports an error from the prelude or the DECLARE (the statement did not
// start); the transaction is then aborted, not ended.
func run(ctx context.Context, conn *pgxpool.Conn, prelude []string, query, fetch string, read func(pgx.Rows) error) (declareFailed bool, err error) {
	b := &pgx.Batch{}
	for _, q := range prelude {
		b.Queue(q)
	}
	// The caller's text only ever follows DECLARE … FOR: the extended
	// protocol refuses a second statement, and DECLARE accepts only a query.
	b.Queue(`DECLARE ` + cursorName + ` NO SCROLL CURSOR FOR ` + query)
	b.Queue(fetch)
	b.Queue(`ROLLBACK`)
	br := conn.SendBatch(ctx, b)
	declareFailed = true
	err = func() error {
		for range len(prelude) + 1 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		declareFailed = false
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
	return declareFailed && err != nil, err
}

// finish maps a run's error and, after an error, ends the transaction (the
// batch's ROLLBACK was skipped) or drops the connection.
func (s *Sandbox) finish(conn *pgxpool.Conn, err error) error {
	if _, ok := errors.AsType[*pgproto3.ExceededMaxBodyLenErr](err); ok {
		// pgconn closed the connection: the rest of the message was
		// never read.
		return ErrRowTooLarge
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller is gone. pgx sends one cancel request, which may land
		// before the statement starts, and then waits for the server; a
		// closed socket instead ends the backend's statement within
		// client_connection_check_interval (set for the role by migrate).
		_ = conn.Conn().PgConn().Conn().Close()
		return err
	}
	if err != nil {
		closed := conn.Conn().IsClosed()
		_ = rollback(conn)
		return lostInSandbox(err, closed)
	}
	return nil
}

// MaxValueBytes is the per-value cap: a value whose text is longer could
// never be part of a response (the sandbox's byte cap is 4 MiB), so the
// database replaces it before sending and the result ends there, truncated.
const MaxValueBytes = 4 << 20

// capValues wraps sql so that the database sends no text, varchar,
// char(n), xml or bytea value whose text is longer than MaxValueBytes: each
// such value becomes NULL and a last column, dbchat_cut, says the row had
// one (cutRows ends the result there). The wrapper adds only octet_length
// (text, char, bytea), binary casts (xml to text), comparisons and CASE, all
// executable by the tenant roles; a value of another type (json, jsonb,
// arrays, records, …) would need its type's output function, which the
// tenant roles may not execute, so it is not measured here: a row too large
// for a response is refused by the driver instead (MaxMessageBytes). The
// statement is fenced (OFFSET 0) so that each value is computed once, and
// keeps its row order (a subquery scan and a lateral nested loop preserve
// it). ok is false when no column needs a cap.
func capValues(sql string, fields []pgconn.FieldDescription) (string, bool) {
	var cols, aliases, measures, flags []string
	for i, f := range fields {
		c := fmt.Sprintf("q.c%d", i+1)
		aliases = append(aliases, fmt.Sprintf("c%d", i+1))
		name := pgx.Identifier{f.Name}.Sanitize()
		var size string
		limit := MaxValueBytes
		switch f.DataTypeOID {
		case 25, 1043, 1042: // text, varchar, char(n)
			size = "octet_length(" + c + ")"
		case 142: // xml: a binary cast to text
			size = "octet_length(" + c + "::text)"
		case 17: // bytea, sent as hex: two characters a byte
			size, limit = "octet_length("+c+")", MaxValueBytes/2
		default:
			cols = append(cols, c+" AS "+name)
			continue
		}
		b := fmt.Sprintf("b%d", i+1)
		measures = append(measures, fmt.Sprintf("COALESCE(%s > %d, false) AS %s", size, limit, b))
		flags = append(flags, "l."+b)
		cols = append(cols, fmt.Sprintf("CASE WHEN l.%s THEN NULL ELSE %s END AS %s", b, c, name))
	}
	if len(measures) == 0 {
		return "", false
	}
	return "SELECT " + strings.Join(cols, ", ") + ", " + strings.Join(flags, " OR ") + " AS dbchat_cut" +
		" FROM (SELECT * FROM (\n" + sql + "\n) AS q0 OFFSET 0) AS q(" + strings.Join(aliases, ", ") + ")" +
		", LATERAL (SELECT " + strings.Join(measures, ", ") + " OFFSET 0) AS l", true
}

// cutRows hides capValues' last column and ends the rows, with
// ErrRowTooLarge, at the first row that had a value cut.
type cutRows struct {
	pgx.Rows
	n    int
	cut  bool
	cuts *atomic.Int64
}

func (r *cutRows) FieldDescriptions() []pgconn.FieldDescription {
	return r.Rows.FieldDescriptions()[:r.n]
}

func (r *cutRows) Next() bool {
	if r.cut || !r.Rows.Next() {
		return false
	}
	if raw := r.Rows.RawValues(); len(raw) > r.n && string(raw[r.n]) == "t" {
		r.cut = true
		r.cuts.Add(1)
		return false
	}
	return true
}

func (r *cutRows) RawValues() [][]byte { return r.Rows.RawValues()[:r.n] }

func (r *cutRows) Values() ([]any, error) {
	v, err := r.Rows.Values()
	if err != nil {
		return nil, err
	}
	return v[:r.n], nil
}

func (r *cutRows) Scan(...any) error {
	return errors.New("sandbox: rows are read with RawValues")
}

func (r *cutRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	if r.cut {
		return ErrRowTooLarge
	}
	return nil
}
