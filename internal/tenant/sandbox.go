package tenant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
// pinned to the tenant's schema and the resource limits set locally; the statement becomes a cursor and at most MaxRows+1 rows are
// fetched, all in one pipelined round trip, then the transaction is rolled
// back.
//
// The pool is shared fairly (admission): at most TenantConns statements of
// one tenant run at once, the rest wait in that tenant's queue, and a freed
// connection goes to the tenants in turn. No message from the server may be
// larger than MaxMessageBytes, so one huge value cannot be read into memory.
type Sandbox struct {
	pool  *pgxpool.Pool
	admit *admission
	// statements counts the statements sent to the database (Statements).
	statements atomic.Int64
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
	return &Sandbox{pool: pool, admit: newAdmission(int(maxConns), min(perTenant, int(maxConns)), queue, DefaultMaxWait)}, nil
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
func (s *Sandbox) Running(tenantID uuid.UUID) int { return s.admit.running(tenantID) }

// Waiting is the number of the tenant's statements waiting for a connection.
func (s *Sandbox) Waiting(tenantID uuid.UUID) int { return s.admit.waiting(tenantID) }

// Statements is the number of statements this sandbox has sent to the
// database (admitted Query calls), for budgets' tests.
func (s *Sandbox) Statements() int64 { return s.statements.Load() }

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
	if err := s.admit.acquire(ctx, tenantID); err != nil {
		return err
	}
	defer s.admit.release(tenantID)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return Translate(err)
	}
	s.statements.Add(1)
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
	if _, ok := errors.AsType[*pgproto3.ExceededMaxBodyLenErr](err); ok {
		// pgconn closed the connection: the rest of the message was
		// never read.
		return ErrRowTooLarge
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

// admission shares the sandbox pool's connections among tenants: at most
// perTenant statements of one tenant hold a connection at once, so one
// tenant's flood of slow statements always leaves the others a connection;
// a tenant's further statements wait in that tenant's queue (at most
// maxQueue of them, for at most maxWait), and when a connection frees up it
// goes to the waiting tenant running the fewest statements (round robin
// among equals), not to whoever asked first.
type admission struct {
	mu        sync.Mutex
	free      int // connections not held by an admitted statement
	perTenant int
	maxQueue  int
	maxWait   time.Duration
	active    map[uuid.UUID]int
	queues    map[uuid.UUID][]*waiter
	turn      []uuid.UUID // tenants with waiters, in round-robin order
}

type waiter struct {
	ready   chan struct{}
	granted bool
}

func newAdmission(conns, perTenant, maxQueue int, maxWait time.Duration) *admission {
	return &admission{
		free: conns, perTenant: perTenant, maxQueue: maxQueue, maxWait: maxWait,
		active: map[uuid.UUID]int{}, queues: map[uuid.UUID][]*waiter{},
	}
}

// errOverloaded is the answer to a statement that finds its tenant's queue
// full or waits too long for a connection (HTTP 503).
func errOverloaded(why string) error {
	return apperr.Errorf(apperr.Unavailable, "overloaded: %s; retry later", why)
}

// acquire admits one statement of t, waiting its turn if t is at its cap or
// no connection is free. The caller must call release(t) once admitted.
func (a *admission) acquire(ctx context.Context, t uuid.UUID) error {
	a.mu.Lock()
	if a.free > 0 && a.active[t] < a.perTenant && len(a.queues[t]) == 0 {
		a.free--
		a.active[t]++
		a.mu.Unlock()
		return nil
	}
	if len(a.queues[t]) >= a.maxQueue {
		a.mu.Unlock()
		return errOverloaded("too many of this tenant's statements are waiting for the sandbox")
	}
	w := &waiter{ready: make(chan struct{})}
	if len(a.queues[t]) == 0 {
		a.turn = append(a.turn, t)
	}
	a.queues[t] = append(a.queues[t], w)
	a.mu.Unlock()

	timer := time.NewTimer(a.maxWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = Translate(ctx.Err())
	case <-timer.C:
		err = errOverloaded("no sandbox connection became free in time")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted { // admitted while giving up: hand the slot on
		a.releaseLocked(t)
		return err
	}
	q := a.queues[t]
	for i, x := range q {
		if x == w {
			a.queues[t] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(a.queues[t]) == 0 {
		a.dropTurn(t)
	}
	return err
}

// release returns t's connection and admits the next waiting statement.
func (a *admission) release(t uuid.UUID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releaseLocked(t)
}

func (a *admission) releaseLocked(t uuid.UUID) {
	a.free++
	if a.active[t]--; a.active[t] <= 0 {
		delete(a.active, t)
	}
	a.dispatch()
}

// dispatch hands free connections to waiting tenants: each goes to the
// waiting tenant under its cap with the fewest running statements (the
// earliest in the round on a tie), which then moves to the end of the round.
// A tenant that floods the sandbox thus never delays one that runs little.
func (a *admission) dispatch() {
	for a.free > 0 {
		pick := -1
		for i, t := range a.turn {
			if a.active[t] < a.perTenant && (pick < 0 || a.active[t] < a.active[a.turn[pick]]) {
				pick = i
			}
		}
		if pick < 0 {
			return
		}
		t := a.turn[pick]
		q := a.queues[t]
		w := q[0]
		a.queues[t] = q[1:]
		w.granted = true
		close(w.ready)
		a.free--
		a.active[t]++
		a.turn = append(a.turn[:pick:pick], a.turn[pick+1:]...)
		if len(a.queues[t]) > 0 {
			a.turn = append(a.turn, t)
		} else {
			delete(a.queues, t)
		}
	}
}

func (a *admission) dropTurn(t uuid.UUID) {
	delete(a.queues, t)
	for i, x := range a.turn {
		if x == t {
			a.turn = append(a.turn[:i:i], a.turn[i+1:]...)
			return
		}
	}
}

// running is the number of t's statements holding a connection.
func (a *admission) running(t uuid.UUID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active[t]
}

// waiting is the number of t's statements in its queue.
func (a *admission) waiting(t uuid.UUID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queues[t])
}
