package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// RowsColumn names and types one column of a Rows page.
type RowsColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Rows is a page of a table's rows: user columns only, in import order.
// Each row holds one value per column, encoded as Preview documents.
type Rows struct {
	Columns []RowsColumn        `json:"columns"`
	Rows    [][]json.RawMessage `json:"rows"`
	// Truncated: the byte cap ended the page before its limit (Preview).
	Truncated bool `json:"truncated"`
}

// Preview pages through a table's rows in _row_id (import) order, user
// columns only. A caller who is not a tenant admin gets the columns the
// members' role holds SELECT on, as PostgreSQL's grants say (memberColumns):
// the same rule that stops members' SQL from reading a restricted column.
//
// Values are JSON-faithful: NULL is null; integer, double precision and
// boolean are JSON numbers and booleans; bigint and numeric are JSON strings
// holding the exact decimal text (a JSON number would lose precision in
// JavaScript and other float64 readers); a double precision NaN or ±Infinity
// is the string "NaN", "Infinity" or "-Infinity"; date is "YYYY-MM-DD";
// timestamptz is RFC 3339 in UTC with up to microseconds
// ("2024-01-31T12:00:00.5Z"); infinite dates and timestamps are "infinity" or
// "-infinity"; uuid is its canonical string; jsonb is the JSON value itself.
//
// A page holds at most maxBytes of values, counted as the sandbox counts a
// result (the server passes sandbox.DefaultMaxBytes, /v1/sql's cap): each
// value's JSON plus one byte. The rows that fit come back whole, in order,
// and Truncated says the cap ended the page before limit rows; the next page
// starts at offset+len(Rows). As in the sandbox a value is never cut short:
// a row that does not fit ends the page, even the first one (read such a
// value with /v1/sql, e.g. left(col, n)). Tables take records of up to 64
// MiB, so without the cap one preview of large values held hundreds of MiB.
//
// The database makes the first cut, so that it never sends what could not
// fit (previewSQL); this function then counts the JSON it encodes, which
// may be longer than the text the database measured (escapes), and stops
// at the cap itself too.
func Preview(ctx context.Context, tx tenant.Conn, id uuid.UUID, limit, offset, maxBytes int) (Rows, error) {
	t, err := Get(ctx, tx, id, false)
	if err != nil {
		return Rows{}, err
	}
	if t.Columns, err = memberColumns(ctx, tx, t); err != nil {
		return Rows{}, err
	}
	out := Rows{Columns: make([]RowsColumn, len(t.Columns)), Rows: [][]json.RawMessage{}}
	for i, col := range t.Columns {
		out.Columns[i] = RowsColumn{Name: col.Name, Type: col.DataType}
	}
	if len(out.Columns) == 0 {
		return out, nil
	}
	r, err := tx.Query(ctx, previewSQL(t), limit, offset, maxBytes)
	if err != nil {
		return Rows{}, err
	}
	defer r.Close()
	size := 0
	for r.Next() {
		row, cut, err := scanRow(r, out.Columns)
		if err != nil {
			return Rows{}, err
		}
		for _, v := range row {
			size += len(v) + 1
		}
		if cut || size > maxBytes {
			out.Truncated = true
			break
		}
		out.Rows = append(out.Rows, row)
	}
	return out, r.Err()
}

// previewSQL is Preview's statement over t's (readable) columns, with
// parameters limit ($1), offset ($2) and the byte cap ($3). The page (p)
// reads the columns as they are stored; each row's size (w) is its values'
// text length, plus one each, 4 for a NULL ("null"); a running sum over the
// page (s) finds the first row past the cap. That row comes back with its
// values NULL and dbchat_cut true, and no row after it comes back at all:
// the database never sends a value that could not fit. octet_length of a
// text column reads only the stored length (it does not fetch a TOASTed
// value); other types are measured by their text form, which the database
// computes for the page's rows (at most 1000, under the runtime role's
// statement_timeout). The values keep their column types (only those
// scanTarget reads as text are cast, as before); the page is fenced (LIMIT,
// OFFSET 0) so that the rows Preview skips and the sizes are computed once.
func previewSQL(t Table) string {
	n := len(t.Columns)
	names, aliases, sizes, values := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, col := range t.Columns {
		c := fmt.Sprintf("c%d", i+1)
		names[i], aliases[i] = pgx.Identifier{col.Name}.Sanitize(), c
		sizes[i] = "coalesce(octet_length(p." + c + "::text), 4)::bigint + 1"
		v := "s." + c
		if _, ok := scanTarget(col.DataType).(*pgtype.Text); ok {
			v += "::text" // text, numeric (exact digits), anything else
		}
		values[i] = "CASE WHEN s.dbchat_upto > $3::bigint THEN NULL ELSE " + v + " END"
	}
	return "SELECT " + strings.Join(values, ", ") + ", s.dbchat_upto > $3::bigint AS dbchat_cut" +
		"\nFROM (SELECT w.*, sum(w.dbchat_size) OVER (ORDER BY w.dbchat_row ROWS UNBOUNDED PRECEDING) AS dbchat_upto" +
		"\n  FROM (SELECT p.*, " + strings.Join(sizes, " + ") + " AS dbchat_size" +
		"\n    FROM (SELECT _row_id, " + strings.Join(names, ", ") + " FROM " + t.Ident().Sanitize() +
		" ORDER BY _row_id LIMIT $1 OFFSET $2) AS p(dbchat_row, " + strings.Join(aliases, ", ") + ")" +
		" OFFSET 0) AS w) AS s" +
		"\nWHERE s.dbchat_upto - s.dbchat_size <= $3::bigint" +
		"\nORDER BY s.dbchat_row"
}

// scanRow reads the current row into one JSON value per column, and its
// last column, previewSQL's dbchat_cut.
func scanRow(r pgx.Rows, cols []RowsColumn) ([]json.RawMessage, bool, error) {
	dst := make([]any, len(cols)+1)
	for i, col := range cols {
		dst[i] = scanTarget(col.Type)
	}
	var cut bool
	dst[len(cols)] = &cut
	if err := r.Scan(dst...); err != nil {
		return nil, false, err
	}
	row := make([]json.RawMessage, len(cols))
	for i := range cols {
		b, err := json.Marshal(jsonValue(dst[i]))
		if err != nil {
			return nil, false, err
		}
		row[i] = b
	}
	return row, cut, nil
}

// scanTarget is where a value of column type typ is scanned; types without
// an exact Go form are read as text.
func scanTarget(typ string) any {
	switch typ {
	case "integer":
		return new(pgtype.Int4)
	case "bigint":
		return new(pgtype.Int8)
	case "double precision":
		return new(pgtype.Float8)
	case "boolean":
		return new(pgtype.Bool)
	case "date":
		return new(pgtype.Date)
	case "timestamptz":
		return new(pgtype.Timestamptz)
	case "uuid":
		return new(pgtype.UUID)
	case "jsonb":
		return new([]byte)
	}
	return new(pgtype.Text)
}

// jsonValue renders a scanned value as documented on Preview.
func jsonValue(v any) any {
	switch v := v.(type) {
	case *pgtype.Text:
		if v.Valid {
			return v.String
		}
	case *pgtype.Int4:
		if v.Valid {
			return v.Int32
		}
	case *pgtype.Int8:
		if v.Valid {
			return strconv.FormatInt(v.Int64, 10)
		}
	case *pgtype.Float8:
		switch {
		case !v.Valid:
		case math.IsNaN(v.Float64):
			return "NaN"
		case math.IsInf(v.Float64, 1):
			return "Infinity"
		case math.IsInf(v.Float64, -1):
			return "-Infinity"
		default:
			return v.Float64
		}
	case *pgtype.Bool:
		if v.Valid {
			return v.Bool
		}
	case *pgtype.Date:
		if v.Valid {
			return infinity(v.InfinityModifier, func() string { return v.Time.Format(time.DateOnly) })
		}
	case *pgtype.Timestamptz:
		if v.Valid {
			return infinity(v.InfinityModifier, func() string { return v.Time.UTC().Format(time.RFC3339Nano) })
		}
	case *pgtype.UUID:
		if v.Valid {
			return uuid.UUID(v.Bytes).String()
		}
	case *[]byte:
		if *v != nil {
			return json.RawMessage(*v)
		}
	}
	return nil
}

// infinity spells PostgreSQL's infinite dates and timestamps, else finite().
func infinity(m pgtype.InfinityModifier, finite func() string) string {
	switch m {
	case pgtype.Infinity:
		return "infinity"
	case pgtype.NegativeInfinity:
		return "-infinity"
	}
	return finite()
}

// memberColumns keeps t's columns that the request's end user may read:
// all of them for a tenant admin; for anyone else those the members' role
// holds SELECT on (has_column_privilege over the grants of migration 00015).
func memberColumns(ctx context.Context, tx tenant.Conn, t Table) ([]dbsqlc.DatabaseColumn, error) {
	id, _ := tenant.FromContext(ctx)
	if tenant.ReadRole(t.TenantID, id) == t.Schema {
		return t.Columns, nil
	}
	names, err := dbsqlc.New().MemberReadableColumns(ctx, tx, dbsqlc.MemberReadableColumnsParams{
		TableID: t.ID, MemberRole: tenant.MemberRole(t.TenantID), Relation: t.Ident().Sanitize()})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(t.Columns, func(c dbsqlc.DatabaseColumn) bool { return !slices.Contains(names, c.Name) }), nil
}
