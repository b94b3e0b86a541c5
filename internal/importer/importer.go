// Package importer loads rows into a tenant's data table from a CSV or JSON
// stream, all or nothing, inside the caller's tenant transaction.
//
// PostgreSQL refuses COPY FROM on tables with row-level security, and every
// data table has forced RLS. So an import
//
//  1. reads the body as a stream and converts every value in Go to its
//     column's type, so that a bad value is reported with its line (CSV) or
//     array index (JSON) and its column;
//  2. COPYs the typed rows (binary, through pgx.CopyFromSource pulling from
//     the parser) into a temporary staging table created in the same
//     transaction (temp tables have no RLS, and ON COMMIT DROP);
//  3. moves them with one INSERT INTO <data table> (cols) SELECT cols FROM
//     <staging>, which runs under the tenant_isolation policy: tenant_id comes
//     from the column default (the transaction's tenant) and every row passes
//     the policy's WITH CHECK.
//
// Only one record is held at a time (plus pgx's 64 KiB COPY buffer), so
// memory is flat in the number of rows; a single record may not exceed
// MaxRecordBytes. The staging table lives in the session's temp buffers and,
// past temp_buffers, in temporary files on the server.
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
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"

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

// rowSource adapts a parser to pgx.CopyFromSource. next fills vals with the
// next row's values and reports false at the end.
type rowSource struct {
	next func(vals []any) (bool, error)
	vals []any
	err  error
}

func (s *rowSource) Next() bool {
	if s.err != nil {
		return false
	}
	ok, err := s.next(s.vals)
	if err != nil {
		s.err = err
		return false
	}
	return ok
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }
func (s *rowSource) Err() error             { return s.err }

// load runs steps 2 and 3 for cols, pulling rows from src.
func load(ctx context.Context, tx tenant.Conn, t catalog.Table, cols []column, src *rowSource) (int64, error) {
	if len(cols) == 0 {
		return 0, apperr.Errorf(apperr.Invalid, "no columns to import")
	}
	staging := stagingName(cols)
	names := make([]string, len(cols))
	var ddl, list strings.Builder
	for i, c := range cols {
		names[i] = c.name
		if i > 0 {
			ddl.WriteString(", ")
			list.WriteString(", ")
		}
		id := pgx.Identifier{c.name}.Sanitize()
		ddl.WriteString(id + " " + c.sqlType)
		list.WriteString(id)
	}
	// No constraints on the staging table: NOT NULL is checked in Go, where
	// the line is known, and the final INSERT re-checks everything.
	if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE "+pgx.Identifier{staging}.Sanitize()+" ("+ddl.String()+") ON COMMIT DROP"); err != nil {
		return 0, err
	}
	stagingIdent := pgx.Identifier{"pg_temp", staging}
	src.vals = make([]any, len(cols))
	n, err := tx.CopyFrom(ctx, stagingIdent, names, src)
	// The parser's own error is the one to report: pgx would return the
	// server's echo of it ("COPY from stdin failed: ...").
	if src.err != nil {
		return 0, src.err
	}
	if err != nil {
		return 0, err
	}
	var inserted int64
	if n > 0 {
		// A temp table is never scanned in parallel or synchronised, so the
		// heap scan returns the rows in COPY order and _row_id follows the
		// order of the input.
		tag, err := tx.Exec(ctx, "INSERT INTO "+t.Ident().Sanitize()+" ("+list.String()+") SELECT "+list.String()+" FROM "+stagingIdent.Sanitize())
		if err != nil {
			return 0, err
		}
		inserted = tag.RowsAffected()
	}
	// Free the temp space now rather than at commit, and let a caller import
	// again in the same transaction.
	if _, err := tx.Exec(ctx, "DROP TABLE "+stagingIdent.Sanitize()); err != nil {
		return 0, err
	}
	return inserted, nil
}

// stagingName names the staging table after its column names and types:
// pgx caches the column types of a COPY target by its SQL text, so two
// imports whose COPY statements read the same must have the same types.
func stagingName(cols []column) string {
	h := fnv.New64a()
	for _, c := range cols {
		h.Write([]byte(c.name))
		h.Write([]byte{0})
		h.Write([]byte(c.sqlType))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("dbchat_import_%016x", h.Sum64())
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
