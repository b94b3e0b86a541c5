package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// batchEnv is a tenant with a table (id bigint, note text) and a superuser
// pool that can read it whatever the policy.
type batchEnv struct {
	d   *dbtest.DB
	db  *tenant.DB
	tn  dbtest.Tenant
	tbl catalog.Table
}

func newBatchEnv(t *testing.T) batchEnv {
	t.Helper()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Batches")
	ctx := context.Background()
	var tbl catalog.Table
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) (err error) {
		tbl, err = catalog.Create(ctx, tx, catalog.TableSpec{Name: "notes", Columns: []catalog.ColumnSpec{{Name: "id", Type: "bigint"}, {Name: "note", Type: "text"}}})
		return err
	}))
	return batchEnv{d, db, tn, tbl}
}

// rows counts the table's rows and those whose _row_id is not their id
// (the input order), as the superuser.
func (e batchEnv) rows(t *testing.T) (n, misplaced int64) {
	t.Helper()
	require.NoError(t, e.d.AdminPool(t).QueryRow(context.Background(),
		"SELECT count(*), count(*) FILTER (WHERE _row_id <> id) FROM "+e.tbl.Ident().Sanitize()).Scan(&n, &misplaced))
	return n, misplaced
}

func (e batchEnv) importCSV(t *testing.T, body io.Reader) (int64, error) {
	var n int64
	err := e.db.TxAs(context.Background(), e.tn.Identity, func(tx tenant.Conn) (err error) {
		n, err = CSV(context.Background(), tx, e.tbl, body)
		return err
	})
	return n, err
}

// csvRows is a CSV of ids 1..n, the row at line bad (if any) carrying a
// non-number id.
func csvRows(n, bad int) string {
	var b strings.Builder
	b.WriteString("id,note\n")
	for i := 1; i <= n; i++ {
		if i+1 == bad {
			fmt.Fprintf(&b, "x%d,row %d\n", i, i)
			continue
		}
		fmt.Fprintf(&b, "%d,row %d\n", i, i)
	}
	return b.String()
}

// An import spanning several batches, by row count and by bytes, stores
// every row in input order (_row_id follows the input).
func TestImportAcrossBatches(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	n := batchRows*2 + batchRows/2
	got, err := e.importCSV(t, strings.NewReader(csvRows(n, 0)))
	require.NoError(t, err)
	require.EqualValues(t, n, got)
	count, misplaced := e.rows(t)
	require.EqualValues(t, n, count)
	require.Zero(t, misplaced)

	// Wide rows: the byte bound cuts these 40 rows into several batches.
	var b strings.Builder
	b.WriteString("id,note\n")
	for i := n + 1; i <= n+40; i++ {
		fmt.Fprintf(&b, "%d,%s\n", i, strings.Repeat("w", batchBytes/8))
	}
	got, err = e.importCSV(t, strings.NewReader(b.String()))
	require.NoError(t, err)
	require.EqualValues(t, 40, got)
	count, misplaced = e.rows(t)
	require.EqualValues(t, n+40, count)
	require.Zero(t, misplaced)
}

// A bad row in a later batch fails the import with its line and column,
// and the batches already inserted are rolled back with the transaction:
// nothing is imported. The same for a JSON element.
func TestBadRowInLaterBatchImportsNothing(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	line := batchRows + 100 // in the second batch
	_, err := e.importCSV(t, strings.NewReader(csvRows(batchRows*3, line)))
	ae := apperr.As(err)
	require.Equal(t, apperr.Invalid, ae.Code, err)
	require.Equal(t, map[string]any{"line": int64(line), "column": "id"}, ae.Details)
	count, _ := e.rows(t)
	require.Zero(t, count, "rows of the first batch were left behind")

	var js strings.Builder
	js.WriteString("[")
	for i := range batchRows * 2 {
		if i > 0 {
			js.WriteString(",")
		}
		id := fmt.Sprint(i + 1)
		if i == batchRows+7 {
			id = `"seven"`
		}
		fmt.Fprintf(&js, `{"id": %s, "note": "n"}`, id)
	}
	js.WriteString("]")
	err = e.db.TxAs(context.Background(), e.tn.Identity, func(tx tenant.Conn) error {
		_, err := JSON(context.Background(), tx, e.tbl, strings.NewReader(js.String()))
		return err
	})
	ae = apperr.As(err)
	require.Equal(t, apperr.Invalid, ae.Code, err)
	require.Equal(t, map[string]any{"index": int64(batchRows + 7), "column": "id"}, ae.Details)
	count, _ = e.rows(t)
	require.Zero(t, count)
}

// endless is a body that never ends, and notes any read made after the
// import returned. Early in the second batch it pauses, so that the first
// batch fails while the parser is still reading: a parser left running
// would read again after the import returned.
type endless struct {
	next      int
	pending   []byte
	returned  atomic.Bool
	lateReads atomic.Int64
	paused    atomic.Bool
	resumed   chan struct{} // closed when the pause is over
}

func (r *endless) Read(p []byte) (int, error) {
	if r.returned.Load() {
		r.lateReads.Add(1)
	}
	if len(r.pending) == 0 {
		if r.next == 0 {
			r.pending = []byte("id,note\n")
		} else {
			r.pending = fmt.Appendf(nil, "%d,row\n", r.next)
		}
		if r.next == batchRows+10 {
			r.paused.Store(true)
			time.Sleep(300 * time.Millisecond)
			if r.returned.Load() {
				r.lateReads.Add(1)
			}
			close(r.resumed)
		}
		r.next++
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// When the database refuses a batch, the import stops reading the body
// (which here would never end) and returns the database's error; nothing
// reads the body after the import has returned.
func TestDatabaseErrorStopsTheParser(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	admin := e.d.AdminPool(t)
	ctx := context.Background()
	_, err := admin.Exec(ctx, `CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'P0001'; END $$`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE TRIGGER refuse BEFORE INSERT ON "+e.tbl.Ident().Sanitize()+" FOR EACH STATEMENT EXECUTE FUNCTION public.refuse()")
	require.NoError(t, err)

	body := &endless{resumed: make(chan struct{})}
	_, err = e.importCSV(t, body)
	body.returned.Store(true)
	if body.paused.Load() {
		<-body.resumed
	}
	var pg *pgconn.PgError
	require.True(t, errors.As(err, &pg) || strings.Contains(err.Error(), "refused"), "%v", err)
	require.Zero(t, body.lateReads.Load(), "the body was read after the import returned")
	count, _ := e.rows(t)
	require.Zero(t, count)
}

// Rows that arrive slowly reach the database before the body ends (a batch
// is handed over once it has been filling for batchWait), so the import's
// transaction is not left idle while rows keep coming.
func TestSlowRowsAreInsertedAsTheyCome(t *testing.T) {
	t.Parallel()
	e := newBatchEnv(t)
	pr, pw := io.Pipe()
	// On a failure, end the body before the pools close: an import still
	// waiting for rows holds its connection.
	t.Cleanup(func() { _ = pw.Close() })
	type outcome struct {
		n   int64
		err error
	}
	result := make(chan outcome, 1)
	go func() {
		n, err := e.importCSV(t, pr)
		result <- outcome{n, err}
	}()
	_, err := io.WriteString(pw, "id,note\n1,first\n")
	require.NoError(t, err)
	sent, wrote := 1, time.Now()
	next := func() {
		sent++
		_, err := fmt.Fprintf(pw, "%d,row %d\n", sent, sent)
		require.NoError(t, err)
		wrote = time.Now()
	}
	time.Sleep(batchWait) // the batch has been filling that long when row 2 comes
	next()

	// The body is still open, and the rows so far were inserted. A batch
	// is cut when a row comes after its deadline, and its deadline runs
	// from when the import began to parse, after its setup: on a loaded
	// machine that can be later than this test's first row, so another
	// row follows whenever a deadline has surely passed.
	admin := e.d.AdminPool(t)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var n int
		require.NoError(t, admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'dbchat_app' AND query LIKE 'INSERT INTO%' AND datname = current_database()`).Scan(&n))
		if n == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no INSERT while the body is open")
		if time.Since(wrote) > 2*batchWait {
			next()
		}
	}
	require.NoError(t, pw.Close())
	got := <-result
	require.NoError(t, got.err)
	require.EqualValues(t, sent, got.n)
	count, misplaced := e.rows(t)
	require.EqualValues(t, sent, count)
	require.Zero(t, misplaced)
}
