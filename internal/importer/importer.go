// Package importer loads rows into a tenant's data table from a CSV or JSON
// stream, all or nothing, inside the caller's tenant transaction.
//
// PostgreSQL refuses COPY FROM on tables with row-level security, and every
// data table has forced RLS. So an import
//
//  1. reads the body as a stream and converts every value in Go to its
//     column's type, so that a bad value is reported with its line (CSV) or
//     array index (JSON) and its column;
//  2. gathers the typed rows into batches of at most batchRows rows (fewer
//     when their values pass about batchBytes, or when they arrive slowly),
//     column by column;
//  3. inserts each batch with one INSERT INTO <data table> (tenant_id, cols)
//     SELECT <tenant>, unnest($1::type[]), … whose arrays pgx sends in
//     binary. The statement runs under the tenant_isolation policy: tenant_id
//     is the transaction's tenant (app.tenant_id, read once per statement
//     rather than through the column default once per row) and every row
//     passes the policy's WITH CHECK.
//
// A goroutine parses the next batch while the database inserts the previous
// one, so the Go and PostgreSQL sides of an import run at the same time.
// Batches run in input order in the caller's transaction, so _row_id follows
// the input, and a bad row anywhere fails the import with nothing written:
// the caller's transaction rolls back the batches before it.
//
// Two batches exist at a time (one parsed, one inserted), so memory is flat
// in the number of rows; a single record may not exceed MaxRecordBytes.
//
// NULL rules. JSON: null, or a missing key, is NULL. CSV: an empty unquoted
// field is NULL for every type; a quoted empty field ("") is the empty string
// for text and NULL for every other type (no other type has an empty value);
// there is no NULL marker string ("NULL" and \N are ordinary text). Columns
// left out of the CSV header or of a JSON object are NULL. A NULL in a NOT
// NULL column fails the import naming the line or index and the column.
package importer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/tenant"
)

// MaxRecordBytes caps one CSV record or one JSON array element, so that a
// single giant record cannot take unbounded memory.
const MaxRecordBytes = 64 << 20

// column is one imported column.
type column struct {
	name     string
	sqlType  string
	nullable bool
	text     bool
	conv     converter
}

// tableColumns resolves the table's catalog columns to import columns.
func tableColumns(t catalog.Table) ([]column, map[string]int, error) {
	cols := make([]column, len(t.Columns))
	byName := make(map[string]int, len(t.Columns))
	for i, c := range t.Columns {
		sqlType, ok := sqlTypes[c.DataType]
		if !ok {
			return nil, nil, apperr.Errorf(apperr.Internal, "column %q has unsupported type %q", c.Name, c.DataType)
		}
		cols[i] = column{name: c.Name, sqlType: sqlType, nullable: c.IsNullable, text: c.DataType == "text", conv: converters[c.DataType]}
		byName[c.Name] = i
	}
	return cols, byName, nil
}

// Batch bounds. A thousand rows per statement make the per-statement cost
// (a round trip, planning, the tenant subquery) small next to the rows;
// larger batches measured no faster and cost memory (pgx encodes each
// batch's arguments into buffers grown afresh per statement). The byte
// bound keeps wide rows from making batches large. batchWait hands a
// slowly arriving batch over early, so that the transaction never sits idle
// for long while rows keep coming: dbchat_app's
// idle_in_transaction_session_timeout (60 s) would end it, and the body idle
// timeout (30 s) already bounds a stalled body.
const (
	batchRows  = 1024
	batchBytes = 256 << 10
	batchWait  = time.Second
)

// rows yields the next row's values into vals and reports false at the end.
type rows func(vals []any) (bool, error)

// load inserts the rows next yields into t's cols and returns how many.
func load(ctx context.Context, tx tenant.Conn, t catalog.Table, cols []column, next rows) (int64, error) {
	if len(cols) == 0 {
		return 0, apperr.Errorf(apperr.Invalid, "no columns to import")
	}
	sql := insertSQL(t, cols)
	p := startParser(len(cols), next)
	defer p.stop()
	var inserted int64
	for {
		b := <-p.ready
		if b.err != nil {
			return 0, b.err
		}
		if b.rows > 0 {
			for i, c := range b.cols {
				b.args[i] = c
			}
			tag, err := tx.Exec(ctx, sql, b.args...)
			if err != nil {
				return 0, err
			}
			inserted += tag.RowsAffected()
		}
		if b.last {
			return inserted, nil
		}
		p.free <- b
	}
}

// insertSQL is the batch INSERT: one array parameter per column, unnested
// in the select list (in step, in order; a FROM unnest(…) would first copy
// the rows into a tuplestore), and tenant_id from the tenant setting as an
// uncorrelated subquery, which PostgreSQL evaluates once per statement.
func insertSQL(t catalog.Table, cols []column) string {
	var list, sel strings.Builder
	list.WriteString("tenant_id")
	sel.WriteString("(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)")
	for i, c := range cols {
		list.WriteString(", " + pgx.Identifier{c.name}.Sanitize())
		if c.sqlType == "numeric" { // sent as text: see convNumeric
			fmt.Fprintf(&sel, ", unnest($%d::text[])::numeric", i+1)
			continue
		}
		fmt.Fprintf(&sel, ", unnest($%d::%s[])", i+1, c.sqlType)
	}
	return "INSERT INTO " + t.Ident().Sanitize() + " (" + list.String() + ") SELECT " + sel.String()
}

// colValues is one column of a batch, sent as an array parameter: pgx
// encodes each element with the column type's binary encoder (nil is NULL).
type colValues []any

// Dimensions, Index and IndexType implement pgtype.ArrayGetter.
func (a colValues) Dimensions() []pgtype.ArrayDimension {
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}
func (a colValues) Index(i int) any { return a[i] }
func (a colValues) IndexType() any  { return nil }

// batch is a run of rows, column by column, then possibly the parser's
// error or the end of the input.
type batch struct {
	cols []colValues
	args []any // cols as Exec's arguments, kept to spare an allocation
	rows int
	err  error
	last bool
}

// parser fills batches from next in a goroutine of its own: ready carries
// them in input order, free brings them back once inserted.
type parser struct {
	ready, free chan *batch
	quit, done  chan struct{}
}

func startParser(ncols int, next rows) *parser {
	p := &parser{ready: make(chan *batch, 1), free: make(chan *batch, 2), quit: make(chan struct{}), done: make(chan struct{})}
	for range 2 {
		p.free <- &batch{cols: make([]colValues, ncols), args: make([]any, ncols)}
	}
	go p.run(ncols, next)
	return p
}

func (p *parser) run(ncols int, next rows) {
	defer close(p.done)
	vals := make([]any, ncols)
	for {
		var b *batch
		select {
		case b = <-p.free:
		case <-p.quit:
			return
		}
		b.rows = 0
		for i := range b.cols {
			b.cols[i] = b.cols[i][:0]
		}
		// A timer rather than a clock read per row: reading the clock cost
		// 3 % of an import's CPU.
		late := new(atomic.Bool)
		timer := time.AfterFunc(batchWait, func() { late.Store(true) })
		for size := 0; b.rows < batchRows && size < batchBytes && !late.Load(); b.rows++ {
			select {
			case <-p.quit:
				return
			default:
			}
			ok, err := next(vals)
			if err != nil || !ok {
				b.err, b.last = err, true
				break
			}
			for i, v := range vals {
				b.cols[i] = append(b.cols[i], v)
				if s, ok := v.(string); ok {
					size += len(s)
				}
			}
			size += 16 * ncols
		}
		timer.Stop()
		select {
		case p.ready <- b:
		case <-p.quit:
			return
		}
		if b.last {
			return
		}
	}
}

// stop makes the parser stop after the row it is reading and waits for it,
// so that nothing reads the caller's body once load has returned.
func (p *parser) stop() {
	close(p.quit)
	<-p.done
}

// valueError reports a bad value at a CSV line or JSON index.
func valueError(where string, at int64, col string, err error) *apperr.Error {
	e := apperr.Errorf(apperr.Invalid, "%s %d, column %q: %s", where, at, col, err.Error())
	e.Details = map[string]any{where: at, "column": col}
	return e
}

var errNotNull = errors.New("a value is required (the column is NOT NULL)")

// readError wraps a failure to read the body. The cause is kept, so the
// HTTP layer can recognise *http.MaxBytesError.
func readError(err error) error {
	return apperr.Wrap(apperr.Invalid, err, "could not read the request body")
}
