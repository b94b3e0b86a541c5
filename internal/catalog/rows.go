package catalog

import (
	"context"
	"encoding/json"
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
	Columns []RowsColumn `json:"columns"`
	Rows    [][]any      `json:"rows"`
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
func Preview(ctx context.Context, tx tenant.Conn, id uuid.UUID, limit, offset int) (Rows, error) {
	t, err := Get(ctx, tx, id, false)
	if err != nil {
		return Rows{}, err
	}
	if t.Columns, err = memberColumns(ctx, tx, t); err != nil {
		return Rows{}, err
	}
	out := Rows{Columns: make([]RowsColumn, len(t.Columns)), Rows: [][]any{}}
	exprs := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		out.Columns[i] = RowsColumn{Name: col.Name, Type: col.DataType}
		exprs[i] = pgx.Identifier{col.Name}.Sanitize()
		if _, ok := scanTarget(col.DataType).(*pgtype.Text); ok {
			exprs[i] += "::text" // text, numeric (exact digits), anything else
		}
	}
	if len(exprs) == 0 {
		return out, nil
	}
	r, err := tx.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+t.Ident().Sanitize()+
		" ORDER BY _row_id LIMIT $1 OFFSET $2", limit, offset)
	if err != nil {
		return Rows{}, err
	}
	defer r.Close()
	for r.Next() {
		row, err := scanRow(r, out.Columns)
		if err != nil {
			return Rows{}, err
		}
		out.Rows = append(out.Rows, row)
	}
	return out, r.Err()
}

// scanRow reads the current row into one JSON value per column.
func scanRow(r pgx.Rows, cols []RowsColumn) ([]any, error) {
	dst := make([]any, len(cols))
	for i, col := range cols {
		dst[i] = scanTarget(col.Type)
	}
	if err := r.Scan(dst...); err != nil {
		return nil, err
	}
	row := make([]any, len(cols))
	for i := range dst {
		row[i] = jsonValue(dst[i])
	}
	return row, nil
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
