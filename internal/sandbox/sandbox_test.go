package sandbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

// fixture is two tenants with the same table name and marker rows.
type fixture struct {
	db   *tenant.DB
	svc  *sandbox.Service
	a, b dbtest.Tenant
	d    *dbtest.DB
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 4)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	f := &fixture{db: db, svc: sandbox.New(db, box), d: d}
	f.a = dbtest.NewTenant(t, db, "A")
	f.b = dbtest.NewTenant(t, db, "B")
	for _, tn := range []struct {
		t      dbtest.Tenant
		marker string
	}{{f.a, "alpha"}, {f.b, "bravo"}} {
		err := db.TxAs(ctx, tn.t.Identity, func(tx tenant.Conn) error {
			tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "items", Columns: []catalog.ColumnSpec{
				{Name: "id", Type: "bigint"}, {Name: "label", Type: "text"}, {Name: "price", Type: "numeric"},
				{Name: "seen", Type: "timestamptz"}, {Name: "meta", Type: "jsonb"}, {Name: "ok", Type: "boolean"}}})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (id, label, price, seen, meta, ok) VALUES
				(9007199254740993, $1, 12345678901234567890.123456789, '2024-06-01 10:00:00.5+02', '{"k": [1, 2]}', true),
				(2, $1 || '-2', NULL, NULL, NULL, false)`, tn.marker)
			return err
		})
		require.NoError(t, err)
	}
	return f
}

func (f *fixture) run(t *testing.T, tn dbtest.Tenant, sql string) (sandbox.Result, error) {
	ctx := tenant.NewContext(context.Background(), tn.Identity)
	return f.svc.Run(ctx, sandbox.Request{SQL: sql, Timeout: 2 * time.Second})
}

func TestRunsAQueryWithFaithfulValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := f.run(t, f.a, `SELECT id, label, price, seen, meta, ok, NULL::text AS nothing FROM items ORDER BY id DESC`)
	require.NoError(t, err)
	require.Equal(t, 2, res.RowCount)
	require.False(t, res.Truncated)
	require.Equal(t, "bigint", res.Columns[0].Type)
	b, _ := json.Marshal(res.Rows[0])
	require.JSONEq(t, `["9007199254740993", "alpha", "12345678901234567890.123456789", "2024-06-01T08:00:00.5Z", {"k": [1, 2]}, true, null]`, string(b))
	require.Contains(t, string(b), "9007199254740993", "bigint without float loss")
	require.Contains(t, string(b), "12345678901234567890.123456789", "numeric without float loss")
	require.NotZero(t, res.HistoryID)
}

func TestOnlyTheTenantsRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := f.run(t, f.b, `SELECT label FROM items`)
	require.NoError(t, err)
	b, _ := json.Marshal(res.Rows)
	require.NotContains(t, string(b), "alpha")
	require.Contains(t, string(b), "bravo")
}

func TestRejectedAndFailedAreRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.run(t, f.a, `DELETE FROM items`)
	require.Equal(t, apperr.SQLRejected, apperr.CodeOf(err))
	require.Contains(t, apperr.As(err).Details, "history_id")
	_, err = f.run(t, f.a, `SELECT 1/0 FROM items`)
	require.Equal(t, apperr.SQLFailed, apperr.CodeOf(err))
	require.Contains(t, apperr.As(err).Message, "division by zero")
}

func TestTruncatesAtTheRowCap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := tenant.NewContext(context.Background(), f.a.Identity)
	res, err := f.svc.Run(ctx, sandbox.Request{SQL: `SELECT * FROM generate_series(1, 100000)`, MaxRows: 10})
	require.NoError(t, err)
	require.Equal(t, 10, res.RowCount)
	require.True(t, res.Truncated)
}

func TestTimeoutEndsRunawayQueries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := tenant.NewContext(context.Background(), f.a.Identity)
	_, err := f.svc.Run(ctx, sandbox.Request{SQL: `SELECT count(*) FROM generate_series(1, 1000000000)`, Timeout: 200 * time.Millisecond})
	require.Equal(t, apperr.SQLFailed, apperr.CodeOf(err))
	require.Contains(t, apperr.As(err).Message, "statement timeout")
	// The pool is still usable afterwards.
	_, err = f.run(t, f.a, `SELECT 1`)
	require.NoError(t, err)
}

// A policy read earlier in the request (PolicyBatch, deferred into the
// caller's transaction) is the one layer 1 checks against; without one, Run
// reads the tenant's current tables.
func TestRunUsesTheCallersPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	actx := tenant.NewContext(ctx, f.a.Identity)
	var read sqlguard.Policy
	require.NoError(t, f.db.Tx(actx, func(tx tenant.Conn) error {
		tx.Defer(sandbox.PolicyBatch(f.a.ID, &read))
		return nil
	}))
	require.True(t, read.Tables["items"], "the deferred read ran: %+v", read)

	res, err := f.svc.Run(actx, sandbox.Request{SQL: "SELECT label FROM items ORDER BY id", Policy: &read})
	require.NoError(t, err)
	require.Equal(t, 2, res.RowCount)
	require.NotNil(t, res.Tree, "the accepted parse tree comes back")

	without := read
	without.Tables = map[string]bool{}
	_, err = f.svc.Run(actx, sandbox.Request{SQL: "SELECT label FROM items", Policy: &without})
	require.Equal(t, apperr.SQLRejected, apperr.CodeOf(err), "%v", err)

	_, err = f.svc.Run(actx, sandbox.Request{SQL: "SELECT label FROM items"})
	require.NoError(t, err, "nil: the current tables")
}
