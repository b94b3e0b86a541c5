package tenant_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestCheckRunsOnceAndBeforeTheStatement: an identity's Check rides with
// the first statement of the request's first transaction, once however
// many transactions the request runs at the same time; a check that fails
// stops the statement behind it (a write writes nothing) and every later
// transaction of the request.
func TestCheckRunsOnceAndBeforeTheStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	a := dbtest.NewTenant(t, db, "Checks")
	var keyID uuid.UUID
	require.NoError(t, d.AdminPool(t).QueryRow(ctx, `SELECT id FROM dbchat.api_keys WHERE tenant_id = $1`, a.ID).Scan(&keyID))
	check := func(key uuid.UUID, scans *atomic.Int64) *tenant.Check {
		return &tenant.Check{Func: "dbchat.confirm_key", Args: []any{key, 0, nil, nil}, Scan: func(row pgx.Row) error {
			scans.Add(1)
			var rate, burst, tokens float64
			var allowed bool
			var taken int
			return row.Scan(&rate, &burst, &tokens, &allowed, &taken)
		}}
	}
	models := func() int {
		var n int
		require.NoError(t, db.OnceAs(ctx, a.Identity, func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM dbchat.models`).Scan(&n)
		}))
		return n
	}

	// A good key: eight concurrent transactions, one check.
	var scans atomic.Int64
	id := a.Identity
	id.Check = check(keyID, &scans)
	rctx := tenant.NewContext(ctx, id)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			require.NoError(t, db.Once(rctx, func(tx tenant.Conn) error { _, err := dbsqlc.New().ListTables(rctx, tx); return err }))
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, scans.Load())
	require.False(t, id.Check.Pending())
	require.NoError(t, db.Verify(rctx), "Verify returns the outcome, without running it again")
	require.EqualValues(t, 1, scans.Load())

	// Another key id: the check raises, the insert behind it never runs,
	// and the request's later transactions fail the same way at once.
	before := models()
	var bad atomic.Int64
	id.Check = check(uuid.New(), &bad)
	rctx = tenant.NewContext(ctx, id)
	err := db.Once(rctx, func(tx tenant.Conn) error {
		_, err := tx.Exec(rctx, `INSERT INTO dbchat.models (name) VALUES ('after a failed check')`)
		return err
	})
	var pg *pgconn.PgError
	require.True(t, errors.As(err, &pg) && pg.Code == "DC401", "%v", err)
	require.Equal(t, before, models(), "the statement behind a failed check did not run")
	require.Error(t, db.Tx(rctx, func(tx tenant.Conn) error { _, err := dbsqlc.New().ListTables(rctx, tx); return err }))
	require.Error(t, db.Verify(rctx))
	require.EqualValues(t, 1, bad.Load())
}
