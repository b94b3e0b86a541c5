package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

// neighbours is a noisy and a quiet tenant, each with a table "items", on a
// sandbox of their own. The noisy tenant's statements are made slow without
// burning CPU: a superuser holds an ACCESS EXCLUSIVE lock on its table, so
// each statement waits in the database (holding its sandbox connection)
// until block's transaction ends.
type neighbours struct {
	box          *tenant.Sandbox
	svc          *sandbox.Service
	noisy, quiet dbtest.Tenant
	noisyTable   pgx.Identifier
	quietTable   pgx.Identifier
	admin        *dbtest.DB
}

func newNeighbours(t *testing.T, conns int32) *neighbours {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	box, err := tenant.NewSandbox(ctx, d.QueryURL, conns)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	n := &neighbours{box: box, svc: sandbox.New(db, box), admin: d,
		noisy: dbtest.NewTenant(t, db, "Noisy"), quiet: dbtest.NewTenant(t, db, "Quiet")}
	for _, tn := range []dbtest.Tenant{n.noisy, n.quiet} {
		require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "items",
				Columns: []catalog.ColumnSpec{{Name: "id", Type: "bigint"}}})
			if tn.ID == n.noisy.ID {
				n.noisyTable = tbl.Ident()
			} else {
				n.quietTable = tbl.Ident()
			}
			return err
		}))
	}
	return n
}

// block locks the tables (the noisy tenant's by default) until the
// returned function is called.
func (n *neighbours) block(t *testing.T, tables ...pgx.Identifier) (unblock func()) {
	t.Helper()
	if len(tables) == 0 {
		tables = []pgx.Identifier{n.noisyTable}
	}
	ctx := context.Background()
	tx, err := n.admin.AdminPool(t).Begin(ctx)
	require.NoError(t, err)
	for _, tbl := range tables {
		_, err = tx.Exec(ctx, `LOCK TABLE `+tbl.Sanitize()+` IN ACCESS EXCLUSIVE MODE`)
		require.NoError(t, err)
	}
	var once sync.Once
	unblock = func() { once.Do(func() { _ = tx.Rollback(ctx) }) }
	t.Cleanup(unblock)
	return unblock
}

// slow starts one of the noisy tenant's statements; done receives its
// error when it returns.
func (n *neighbours) slow(ctx context.Context, done chan<- error) { n.slowAs(ctx, n.noisy, done) }

func (n *neighbours) slowAs(ctx context.Context, tn dbtest.Tenant, done chan<- error) {
	go func() {
		_, err := n.svc.Run(tenant.NewContext(ctx, tn.Identity),
			sandbox.Request{SQL: `SELECT count(*) FROM items`, Timeout: sandbox.MaxTimeout})
		done <- err
	}()
}

// until waits for cond, which the test's own actions make true.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 10*time.Millisecond, what)
}

func (n *neighbours) quietSelect(t *testing.T, ctx context.Context) {
	t.Helper()
	res, err := n.svc.Run(tenant.NewContext(ctx, n.quiet.Identity), sandbox.Request{SQL: `SELECT 1 AS one`})
	require.NoError(t, err)
	require.Equal(t, [][]json.RawMessage{{json.RawMessage("1")}}, res.Rows)
}

// TestNoisyTenantLeavesQuietOneAConnection: a tenant that sends more slow
// statements than the sandbox has connections gets at most its share (half
// the pool by default); the rest wait in its queue, and another tenant's
// statement runs at once, while every noisy statement is still running or
// waiting.
func TestNoisyTenantLeavesQuietOneAConnection(t *testing.T) {
	t.Parallel()
	n := newNeighbours(t, 4)
	unblock := n.block(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const noisy = 6
	done := make(chan error, noisy)
	for range noisy {
		n.slow(ctx, done)
	}
	until(t, "the noisy tenant holds its share and queues the rest", func() bool {
		return n.box.Running(n.noisy.ID) == 2 && n.box.Waiting(n.noisy.ID) == noisy-2
	})

	n.quietSelect(t, context.Background())
	require.Empty(t, done, "a noisy statement returned before the quiet one did")
	require.Equal(t, 2, n.box.Running(n.noisy.ID))

	// Unblocked, every noisy statement completes: waiting was queueing,
	// not refusal.
	unblock()
	for range noisy {
		require.NoError(t, <-done)
	}
}

// TestTenantQueueIsBounded: beyond its running cap and queue, a tenant's
// statement is refused at once as overloaded (503), and the tenant can run
// statements again once its queue drains.
func TestTenantQueueIsBounded(t *testing.T) {
	t.Parallel()
	n := newNeighbours(t, 2)
	n.box.SetTenantLimits(1, 1)
	unblock := n.block(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	n.slow(ctx, done)
	n.slow(ctx, done)
	until(t, "one running, one waiting", func() bool {
		return n.box.Running(n.noisy.ID) == 1 && n.box.Waiting(n.noisy.ID) == 1
	})
	_, err := n.svc.Run(tenant.NewContext(ctx, n.noisy.Identity), sandbox.Request{SQL: `SELECT 1`})
	require.Equal(t, apperr.Overloaded, apperr.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "overloaded")
	require.Contains(t, apperr.As(err).Details, "history_id", "the refusal is in the history")
	n.quietSelect(t, ctx)

	unblock()
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	_, err = n.svc.Run(tenant.NewContext(ctx, n.noisy.Identity), sandbox.Request{SQL: `SELECT 1`})
	require.NoError(t, err)
}

// TestFreedConnectionGoesToTheQuieterTenant: the pool is full of the noisy
// tenant's statements (its cap raised to the whole pool) and more of them
// wait; when one ends, the connection goes to the quiet tenant's statement
// that arrived after them, not to the noisy tenant's next one.
func TestFreedConnectionGoesToTheQuieterTenant(t *testing.T) {
	t.Parallel()
	n := newNeighbours(t, 2)
	n.box.SetTenantLimits(2, 10)
	// Both tables locked: the quiet statement, once admitted, holds its
	// connection where the test can see it.
	unblock := n.block(t, n.noisyTable, n.quietTable)
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	done := make(chan error, 4)
	n.slow(first, done)
	until(t, "the first noisy statement runs", func() bool { return n.box.Running(n.noisy.ID) == 1 })
	for range 3 {
		n.slow(context.Background(), done)
	}
	until(t, "the pool is full and two noisy statements wait", func() bool {
		return n.box.Running(n.noisy.ID) == 2 && n.box.Waiting(n.noisy.ID) == 2
	})
	quiet := make(chan error, 1)
	n.slowAs(context.Background(), n.quiet, quiet)
	until(t, "the quiet statement waits", func() bool { return n.box.Waiting(n.quiet.ID) == 1 })

	cancelFirst() // the first noisy statement ends and frees its connection
	require.Error(t, <-done)
	until(t, "the quiet statement got the freed connection", func() bool { return n.box.Running(n.quiet.ID) == 1 })
	require.Equal(t, 1, n.box.Running(n.noisy.ID))
	require.Equal(t, 2, n.box.Waiting(n.noisy.ID))

	unblock()
	require.NoError(t, <-quiet)
	for range 3 {
		require.NoError(t, <-done)
	}
}

// xs is an SQL expression of n x's that the guard admits: repeat() builds at
// most sqlguard.MaxBuiltBytes a call, so larger values are aggregated from
// such pieces, as a statement that wants one still can.
func xs(n int) string {
	const piece = sqlguard.MaxBuiltBytes
	return fmt.Sprintf(`((SELECT coalesce(string_agg(repeat('x', %d), ''), '') FROM generate_series(1, %d)) || repeat('x', %d))`, piece, n/piece, n%piece)
}

// TestHugeValueIsNotReadIntoMemory: a value far larger than the response cap
// is replaced by the database before it is sent (the sandbox's per-value cap,
// tenant.MaxValueBytes), so the service allocates a fraction of it, and the
// result ends truncated as the byte cap would have it. Not parallel: it
// measures the process's allocations.
func TestHugeValueIsNotReadIntoMemory(t *testing.T) {
	n := newNeighbours(t, 2)
	const size = 64 << 20
	ctx := tenant.NewContext(context.Background(), n.quiet.Identity)
	cut := n.box.ValuesCut()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := n.svc.Run(ctx, sandbox.Request{SQL: `SELECT 1 AS n, ` + xs(67108864) + ` AS big`, Timeout: sandbox.MaxTimeout})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.Empty(t, res.Rows)
	require.Equal(t, []sandbox.Column{{Name: "n", Type: "integer"}, {Name: "big", Type: "text"}}, res.Columns)
	allocated := after.TotalAlloc - before.TotalAlloc
	require.Less(t, allocated, uint64(size/8), "bytes allocated while running a statement with a %d-byte value", size)
	require.Equal(t, cut+1, n.box.ValuesCut(), "the database cut the value")

	// The rows before an oversized one are kept, in the statement's order;
	// a value under the cap is untouched.
	for _, big := range []string{xs(4194305), `CAST(` + xs(4194305) + ` AS varchar)`} {
		res, err = n.svc.Run(ctx, sandbox.Request{SQL: `SELECT n, CASE WHEN n = 3 THEN ` + big + ` END AS v
			FROM generate_series(1, 5) AS n ORDER BY n DESC`})
		require.NoError(t, err, big)
		require.True(t, res.Truncated, big)
		require.Equal(t, [][]json.RawMessage{{json.RawMessage("5"), json.RawMessage(`null`)}, {json.RawMessage("4"), json.RawMessage(`null`)}}, res.Rows, big)
	}
	require.Equal(t, cut+3, n.box.ValuesCut())

	// Values up to the cap still arrive whole.
	res, err = n.svc.Run(ctx, sandbox.Request{SQL: `SELECT repeat('y', 1000000) AS v`})
	require.NoError(t, err)
	require.False(t, res.Truncated)
	require.Len(t, res.Rows, 1)
	require.Equal(t, `"`+strings.Repeat("y", 1000000)+`"`, string(res.Rows[0][0]))
}

// TestOversizedRowIsNotReadIntoMemory: a row whose values are each under the
// per-value cap but together larger than the response cap is refused by the
// driver after its header (tenant.MaxMessageBytes), before its body is read.
func TestOversizedRowIsNotReadIntoMemory(t *testing.T) {
	n := newNeighbours(t, 2)
	ctx := tenant.NewContext(context.Background(), n.quiet.Identity)
	var cols []string
	for range 12 {
		cols = append(cols, xs(4000000))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := n.svc.Run(ctx, sandbox.Request{SQL: `SELECT ` + strings.Join(cols, ", "), Timeout: sandbox.MaxTimeout})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.Empty(t, res.Rows)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(48000000/8))

	// The sandbox works on afterwards (the connection was replaced).
	n.quietSelect(t, context.Background())
}

// TestTenantLimitsFromEnvironment: DBCHAT_SANDBOX_TENANT_CONNS and
// DBCHAT_SANDBOX_TENANT_QUEUE size the cap and the queue; a bad value stops
// the sandbox from opening. Not parallel: it sets the environment.
func TestTenantLimitsFromEnvironment(t *testing.T) {
	t.Setenv("DBCHAT_SANDBOX_TENANT_CONNS", "3")
	t.Setenv("DBCHAT_SANDBOX_TENANT_QUEUE", "1")
	n := newNeighbours(t, 4)
	unblock := n.block(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 4)
	for range 4 {
		n.slow(ctx, done)
	}
	until(t, "three run, one waits", func() bool {
		return n.box.Running(n.noisy.ID) == 3 && n.box.Waiting(n.noisy.ID) == 1
	})
	_, err := n.svc.Run(tenant.NewContext(ctx, n.noisy.Identity), sandbox.Request{SQL: `SELECT 1`})
	require.Contains(t, err.Error(), "overloaded")
	unblock()
	for range 4 {
		require.NoError(t, <-done)
	}

	t.Setenv("DBCHAT_SANDBOX_TENANT_CONNS", "none")
	_, err = tenant.NewSandbox(context.Background(), n.admin.QueryURL, 4)
	require.ErrorContains(t, err, "DBCHAT_SANDBOX_TENANT_CONNS")
}
