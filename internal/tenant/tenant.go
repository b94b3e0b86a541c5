// Package tenant is where tenant isolation is enforced in Go. Every query the
// service runs goes through DB.Tx, which takes a pooled connection, begins a
// transaction and sets app.tenant_id and app.user_id with
// set_config(..., true), the bind-parameter form of SET LOCAL. The settings
// end with the transaction, so a pooled connection (or a PgBouncer in
// transaction mode) never carries one tenant's context into another's. The
// tenant_isolation policies in db/migrations do the filtering; nothing here
// adds WHERE tenant_id clauses.
//
// Untrusted SQL (Sandbox) runs on a pool of its own as dbchat_query, a role
// with no rights but membership in every tenant's role. Each statement's
// transaction also sets the tenant's role (t_<hex>, like its schema) with SET
// LOCAL ROLE: that role reads its own schema only, calls only the reviewed
// functions and reads no catalog, so the database, not only the SQL parser,
// keeps a statement inside its tenant.
//
// To keep round trips few, BEGIN and set_config are not sent on their own:
// they travel in one pipelined batch with the transaction's first statement,
// so a one-query transaction costs two round trips (statement, COMMIT), and
// Once runs a single statement (or one batch) in one round trip. Statements
// whose results are needed only later (Conn.Defer) ride along with the
// transaction's next statement, or with its COMMIT. An identity resolved from
// memory (a key or token the server verified lately) carries a Check, whose
// function call takes the setting statement's place in the request's first
// batch: it confirms the credential in the database and raises otherwise,
// so the statement behind it never runs for a revoked credential, and an
// authenticated read is still one round trip.
//
// With the pool shared among tenants (ShareAmongTenants), each tenant's
// transactions hold at most its share of the connections and wait in its
// own queue. The lookup of a credential not verified yet (an API key or a
// session cookie, which name their tenant in plain text; LookupAs) runs in
// that tenant's transaction, so RLS still confines it to the tenant's rows,
// but it is admitted apart, among the sign-ins, not in the tenant's share:
// anyone can send keys naming any tenant, and forged ones must not spend the
// share that the tenant's verified requests run in.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
)

// Conn is what a tenant transaction offers: the sqlc DBTX methods plus COPY
// (for imports), pipelined batches (several statements, one round trip) and
// deferred statements.
type Conn interface {
	dbsqlc.DBTX
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	RunBatch(ctx context.Context, b *pgx.Batch) error
	// Defer queues b's statements to travel in the transaction's next
	// round trip, ahead of the statement that makes it (in a Tx, COMMIT
	// at the latest; in Once, the one statement, or the settings alone if
	// there is none). Their callbacks (QueuedQuery.Query, QueryRow, Exec)
	// run in order before that statement's result is read, so what they
	// set is ready after the next statement returns, or after the
	// transaction. A deferred statement that fails fails the statement it
	// travelled with, and the transaction. For reads: a callback's own
	// error does not stop the statements sent in the same round trip.
	Defer(b *pgx.Batch)
}

// DB runs tenant transactions on a pool. Handlers get a DB, never the pool.
type DB struct {
	pool           *pgxpool.Pool
	acquireTimeout time.Duration
	admit          *admission // nil: first come, first served
}

// ShareFromEnv calls ShareAmongTenants with DBCHAT_TENANT_CONNS (default:
// all but one of the pool's connections, so one tenant alone keeps most of
// the pool and another always finds one), DBCHAT_TENANT_QUEUE (default
// DefaultTenantQueue) and DBCHAT_SIGNIN_CONNS (default DefaultSignInConns).
func (db *DB) ShareFromEnv() error {
	perTenant, err := envInt("DBCHAT_TENANT_CONNS", max(1, db.MaxConns()-1))
	if err != nil {
		return err
	}
	queue, err := envInt("DBCHAT_TENANT_QUEUE", DefaultTenantQueue)
	if err != nil {
		return err
	}
	signIns, err := envInt("DBCHAT_SIGNIN_CONNS", DefaultSignInConns(db.MaxConns()))
	if err != nil {
		return err
	}
	db.ShareAmongTenants(perTenant, queue, signIns)
	return nil
}

// DefaultSignInConns is how many of a pool of n connections sign-ins
// (LookupAs) hold at most by default: a quarter, at least 2 (so sign-ins
// naming one tenant leave another tenant's one), but never the whole pool.
func DefaultSignInConns(n int) int { return max(1, min(max(2, n/4), n-1)) }

// ShareAmongTenants caps how many of the pool's connections one tenant's
// transactions hold at once (perTenant, at most the pool's size) and queues
// the rest per tenant (at most queue each), handing a freed connection to
// the waiting tenant that holds the fewest: one tenant's slow requests then
// always leave the others a connection. A transaction waits at most the
// acquire timeout (3 s when none is set) before 503 overloaded. The zero
// identity (operator requests) counts as one tenant.
//
// Sign-ins (LookupAs) are shared apart: all of them hold at most signIns
// connections (at least 1, at most the pool's size), those naming one
// tenant at most all but one of these, and each named tenant's wait in a
// queue of their own (at most queue). So however many forged credentials
// name a tenant, its verified requests keep its share, and the other
// tenants' keep the pool less signIns. Call it before the DB is used.
func (db *DB) ShareAmongTenants(perTenant, queue, signIns int) {
	wait := db.acquireTimeout
	if wait <= 0 {
		wait = 3 * time.Second
	}
	n := db.MaxConns()
	a := newAdmission("database", n, max(1, min(perTenant, n)), queue, wait)
	a.lookupConns = max(1, min(signIns, n))
	a.perLookup = max(1, a.lookupConns-1)
	db.admit = a
}

// SetAcquireTimeout bounds how long a transaction waits for a pooled
// connection: past d, with every connection busy, it fails with
// apperr.Overloaded (503 and Retry-After) instead of queueing without end.
// Zero waits as long as the request's context allows. Call it before the DB
// is used.
func (db *DB) SetAcquireTimeout(d time.Duration) { db.acquireTimeout = d }

// MaxConns is the pool's size (zero for a DB without a pool).
func (db *DB) MaxConns() int {
	if db.pool == nil {
		return 0
	}
	return int(db.pool.Config().MaxConns)
}

// AcquireTimeout is the bound set by SetAcquireTimeout (zero: none).
func (db *DB) AcquireTimeout() time.Duration { return db.acquireTimeout }

// New wraps pool. The pool must connect as a role without BYPASSRLS.
func New(pool *pgxpool.Pool) *DB { return &DB{pool: pool} }

// Tx runs fn in a transaction scoped to the identity carried by ctx. A ctx
// without identity is refused rather than run unscoped.
func (db *DB) Tx(ctx context.Context, fn func(tx Conn) error) error {
	id, ok := FromContext(ctx)
	if !ok {
		return apperr.Errorf(apperr.Internal, "tenant transaction without identity")
	}
	return db.TxAs(ctx, id, fn)
}

// TxAs runs fn in a transaction scoped to id. The zero Identity gives a
// transaction with no tenant: tenant tables show nothing and accept nothing.
// fn's error (or a failed COMMIT) rolls everything back; errors come back
// translated into apperr codes.
func (db *DB) TxAs(ctx context.Context, id Identity, fn func(tx Conn) error) error {
	return db.run(ctx, id, tenantSlot(id.TenantID), false, fn)
}

// Once runs exactly one statement (or one RunBatch, and what fn deferred)
// scoped to the identity in ctx, in one round trip: the tenant setting and
// the statements travel in one pipeline, which PostgreSQL executes as one
// implicit transaction, so set_config(..., true) still ends with it, and a
// failure in any statement rolls back all of them. A second statement in fn
// is refused. The statements commit as soon as they succeed, whatever fn
// returns afterwards, so use Once for reads and for writes that need no
// later check.
func (db *DB) Once(ctx context.Context, fn func(tx Conn) error) error {
	id, ok := FromContext(ctx)
	if !ok {
		return apperr.Errorf(apperr.Internal, "tenant transaction without identity")
	}
	return db.OnceAs(ctx, id, fn)
}

// OnceAs is Once for an explicit identity.
func (db *DB) OnceAs(ctx context.Context, id Identity, fn func(tx Conn) error) error {
	return db.run(ctx, id, tenantSlot(id.TenantID), true, fn)
}

// LookupAs is OnceAs(ctx, Identity{TenantID: claimed}, fn) for the lookup
// of a credential that names claimed but is not verified yet (an API key's
// or a session's hash; the zero tenant for a lookup across tenants). The
// statement runs with claimed's tenant setting, so RLS confines it to
// claimed's rows exactly as OnceAs would; only its admission differs: it
// waits among the sign-ins naming claimed (see ShareAmongTenants), never in
// claimed's own share or queue, which stay for requests whose credential
// was verified. Without sharing it is OnceAs.
func (db *DB) LookupAs(ctx context.Context, claimed uuid.UUID, fn func(tx Conn) error) error {
	return db.run(ctx, Identity{TenantID: claimed}, lookupSlot(claimed), true, fn)
}

// run runs fn as id, admitted (when the pool is shared) as s.
func (db *DB) run(ctx context.Context, id Identity, s slot, once bool, fn func(tx Conn) error) error {
	claims, err := claimsSetting(id.Claims)
	if err != nil {
		return err
	}
	if db.admit != nil {
		if err := db.admit.acquire(ctx, s); err != nil {
			return err
		}
		defer db.admit.release(s)
	}
	conn, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	// Release destroys a connection still inside a transaction (after a panic
	// or a failed ROLLBACK), so no state survives into the pool.
	defer conn.Release()

	tx := &txConn{conn: conn.Conn(), tenantID: settingValue(id.TenantID), userID: settingValue(id.UserID),
		role: roleSetting(id.Role), claims: claims, once: once}
	tx.check = id.Check
	if err := fn(tx); err != nil {
		tx.rollback()
		return Translate(err)
	}
	return Translate(tx.commit(ctx))
}

// acquire takes a pooled connection, waiting at most acquireTimeout. A wait
// that runs out with every connection in use is Overloaded; one that runs
// out while connections are being opened (a database that does not answer)
// is Unavailable.
func (db *DB) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if db.acquireTimeout <= 0 {
		conn, err := db.pool.Acquire(ctx)
		return conn, Translate(err)
	}
	actx, cancel := context.WithTimeout(ctx, db.acquireTimeout)
	defer cancel()
	conn, err := db.pool.Acquire(actx)
	if err == nil {
		return conn, nil
	}
	if ctx.Err() == nil && actx.Err() != nil {
		if st := db.pool.Stat(); st.AcquiredConns() >= st.MaxConns() {
			return nil, apperr.Wrap(apperr.Overloaded, err, "every database connection is busy; try again shortly")
		}
		return nil, apperr.Wrap(apperr.Unavailable, err, "the database did not answer in time; try again later")
	}
	return nil, Translate(err)
}

// txConn implements dbsqlc.DBTX on one connection, opening the transaction
// lazily with the first statement.
type txConn struct {
	conn     *pgx.Conn
	tenantID string
	userID   string
	role     string // app.role: "admin", "member" or ""
	claims   string // app.claims: a JSON object or ""
	once     bool   // implicit transaction: one statement, no BEGIN/COMMIT
	begun    bool
	check    *Check             // the identity's, to run with the first statement unless done
	deferred []*pgx.QueuedQuery // Defer's, sent with the next round trip
}

// errSecondStatement guards Once: a second statement would run outside the
// implicit transaction, without the tenant setting.
var errSecondStatement = errors.New("tenant: Once allows exactly one statement")

// ErrRolledBack reports a COMMIT that PostgreSQL turned into a ROLLBACK
// because a statement in the transaction had failed.
var ErrRolledBack = errors.New("tenant: transaction was rolled back")

// setContext sets the transaction's identity: the tenant, the user, the
// user's role in its tenant (what admins_bypass claim policies compare) and
// the end user's claims as JSON (what dbchat.claim reads), all
// transaction-local.
const setContext = `SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true),
	set_config('app.role', $3, true), set_config('app.claims', $4, true)`

// txOptions are transaction-local settings a context asks for, sent in the
// same statement as the identity.
type txOptions struct {
	customPlans bool // WithCustomPlans
	asyncCommit bool // WithAsyncCommit
}

type optionsKey struct{}

func optionsOf(ctx context.Context) txOptions {
	o, _ := ctx.Value(optionsKey{}).(txOptions)
	return o
}

// settings are o's set_config calls, each led by ", ".
func (o txOptions) settings() string {
	var s string
	if o.customPlans {
		s += ", set_config('plan_cache_mode', 'force_custom_plan', true)"
	}
	if o.asyncCommit {
		s += ", set_config('synchronous_commit', 'off', true)"
	}
	return s
}

// WithCustomPlans marks ctx so that its transactions plan every statement
// for its actual parameters. For statements with optional filters
// ("$1 IS NULL OR col = $1") PostgreSQL's generic plan, chosen after five
// executions of a prepared statement, can be far worse than a custom one.
func WithCustomPlans(ctx context.Context) context.Context {
	o := optionsOf(ctx)
	o.customPlans = true
	return context.WithValue(ctx, optionsKey{}, o)
}

// WithAsyncCommit marks ctx so that its transactions commit without
// waiting for the WAL flush (synchronous_commit off, transaction-local):
// for records whose last fraction of a second may be lost in a server
// crash, never half-written (usage analytics). The commit and any row lock
// the transaction holds then end without a disk wait.
func WithAsyncCommit(ctx context.Context) context.Context {
	o := optionsOf(ctx)
	o.asyncCommit = true
	return context.WithValue(ctx, optionsKey{}, o)
}

// queueStart queues what opens the transaction, unless it is open: BEGIN
// (not in Once), then the tenant context, or the identity's check, which
// sets it. It returns the check if its call was queued last.
func (t *txConn) queueStart(ctx context.Context, b *pgx.Batch) (*Check, error) {
	if t.begun {
		return nil, nil
	}
	t.begun = true
	// The check is claimed only while this batch is in flight, so no
	// caller's code runs while it holds it.
	check := t.check
	if check != nil {
		pending, err := check.claim()
		if err != nil {
			return nil, err // it failed in an earlier transaction
		}
		if !pending {
			check = nil // an earlier transaction confirmed it
		}
	}
	if !t.once {
		b.Queue("BEGIN")
	}
	settings := optionsOf(ctx).settings()
	if check == nil {
		b.Queue(setContext+settings, t.tenantID, t.userID, t.role, t.claims)
		return nil, nil
	}
	if settings != "" {
		b.Queue("SELECT " + settings[len(", "):])
	}
	b.Queue(check.statement(), append([]any{t.tenantID, t.userID, t.role, t.claims}, check.Args...)...)
	return check, nil
}

// send sends tail in one pipeline after what must precede it: the
// transaction's opening (queueStart) and the deferred statements, whose
// results it reads (running their callbacks). It returns the batch's
// results at tail's first statement; the caller closes them.
func (t *txConn) send(ctx context.Context, tail ...*pgx.QueuedQuery) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	check, err := t.queueStart(ctx, b)
	if err != nil {
		return nil, err
	}
	head, deferred := len(b.QueuedQueries), t.deferred
	t.deferred = nil
	b.QueuedQueries = append(append(b.QueuedQueries, deferred...), tail...)
	br := t.conn.SendBatch(ctx, b)
	for i := range head {
		if check != nil && i == head-1 {
			err := check.Scan(br.QueryRow())
			check.finish(err)
			check = nil
			if err != nil {
				br.Close()
				return nil, err
			}
			continue
		}
		if _, err := br.Exec(); err != nil {
			if check != nil {
				check.unclaim() // it did not get to run
			}
			br.Close()
			return nil, fmt.Errorf("begin tenant transaction: %w", err)
		}
	}
	for _, q := range deferred {
		var err error
		if q.Fn != nil {
			err = q.Fn(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

// direct reports whether a statement can go straight to the connection:
// the transaction is open and nothing waits to travel with it.
func (t *txConn) direct() bool { return t.begun && len(t.deferred) == 0 }

// Defer implements Conn.
func (t *txConn) Defer(b *pgx.Batch) { t.deferred = append(t.deferred, b.QueuedQueries...) }

// CopyFrom implements Conn. COPY cannot share a pipeline with other
// statements, so the transaction is opened first if need be.
func (t *txConn) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if t.once {
		return 0, errors.New("tenant: COPY needs a transaction (use Tx, not Once)")
	}
	if !t.direct() {
		if _, err := t.Exec(ctx, "SELECT 1"); err != nil {
			return 0, err
		}
	}
	return t.conn.CopyFrom(ctx, table, columns, src)
}

// RunBatch implements Conn: b's statements travel in one pipeline, inside
// the transaction (opened in the same pipeline if need be), and their
// queued callbacks run in order; the first error stops the rest. In Once
// the batch is the one statement.
func (t *txConn) RunBatch(ctx context.Context, b *pgx.Batch) error {
	if t.once && t.begun {
		return errSecondStatement
	}
	if t.direct() {
		return t.conn.SendBatch(ctx, b).Close()
	}
	br, err := t.send(ctx, b.QueuedQueries...)
	if err != nil {
		return err
	}
	return br.Close()
}

// Exec implements dbsqlc.DBTX.
func (t *txConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.once && t.begun {
		return pgconn.CommandTag{}, errSecondStatement
	}
	if t.direct() {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, &pgx.QueuedQuery{SQL: sql, Arguments: args})
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, errors.Join(err, br.Close())
}

// Query implements dbsqlc.DBTX.
func (t *txConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.once && t.begun {
		return nil, errSecondStatement
	}
	if t.direct() {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.send(ctx, &pgx.QueuedQuery{SQL: sql, Arguments: args})
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow implements dbsqlc.DBTX.
func (t *txConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.once && t.begun {
		return errRow{errSecondStatement}
	}
	if t.direct() {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	br, err := t.send(ctx, &pgx.QueuedQuery{SQL: sql, Arguments: args})
	if err != nil {
		return errRow{err}
	}
	return &batchRow{row: br.QueryRow(), br: br}
}

// commit ends the transaction, sending what is deferred: in a Tx with
// COMMIT, in Once with the settings if no statement took it along.
func (t *txConn) commit(ctx context.Context) error {
	if t.once {
		switch {
		case len(t.deferred) == 0:
			return nil
		case t.begun:
			return errSecondStatement
		}
		br, err := t.send(ctx)
		if err != nil {
			return err
		}
		return br.Close()
	}
	if !t.begun && len(t.deferred) == 0 {
		return nil // nothing to commit
	}
	tag, err := t.Exec(ctx, "COMMIT")
	if err != nil {
		t.rollback() // a deferred statement ahead of it failed: COMMIT did not run
		return err
	}
	if tag.String() == "ROLLBACK" {
		return ErrRolledBack
	}
	return nil
}

// rollback ends the transaction even when the request's ctx is cancelled;
// if it cannot, the connection is closed (and dropped by the pool).
func (t *txConn) rollback() {
	t.deferred = nil
	if !t.begun || t.once || t.conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = t.conn.Close(ctx)
	}
}

// batchRows closes the batch along with the rows of its last statement.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	if r.br == nil {
		return
	}
	r.Rows.Close()
	r.err = r.br.Close()
	r.br = nil
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// batchRow closes the batch once its single row is scanned.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r *batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil || errors.Is(err, pgx.ErrNoRows) && cerr != nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Stat reports pool statistics (for metrics); it exposes no connection.
func (db *DB) Stat() *pgxpool.Stat { return db.pool.Stat() }

// SetStatementTimeout sets statement_timeout for the rest of tx (SET LOCAL
// semantics), e.g. to lift the runtime role's default for a long import.
func SetStatementTimeout(ctx context.Context, tx Conn, d time.Duration) error {
	_, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, strconv.FormatInt(d.Milliseconds(), 10))
	return err
}
