package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/importer"
	"github.com/dbchat/dbchat/internal/tenant"
)

// importRows loads a CSV (text/csv) or JSON (application/json) body into a
// table, all or nothing, in the request's tenant transaction; see package
// importer for the formats, the NULL rules and how RLS is respected.
func (s *Server) importRows(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var load func(context.Context, tenant.Conn, catalog.Table, io.Reader) (int64, error)
	mt, params, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "text/csv":
		load = importer.CSV
	case "application/json":
		load = importer.JSON
	}
	if cs, ok := params["charset"]; load == nil || ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		s.fail(c, apperr.Errorf(apperr.UnsupportedMedia, "Content-Type must be text/csv or application/json (UTF-8)"))
		return
	}
	limit := s.cfg.MaxImportBytes
	if c.Request.ContentLength > limit {
		s.fail(c, importTooLarge(limit))
		return
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	var n int64
	err = s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		t, err := catalog.Get(ctx, tx, id, false)
		if err != nil {
			return err
		}
		n, err = load(ctx, tx, t, body)
		return err
	})
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		err = importTooLarge(mbe.Limit)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"inserted": n})
}

func importTooLarge(limit int64) error {
	return apperr.Errorf(apperr.TooLarge, "import body exceeds %d bytes; nothing was imported", limit)
}

// rowsColumn describes a column in a listRows response.
type rowsColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// listRows pages through a table's rows in _row_id (import) order, user
// columns only.
//
// Values are JSON-faithful: NULL is null; integer, double precision and
// boolean are JSON numbers and booleans; bigint and numeric are JSON strings
// holding the exact decimal text (a JSON number would lose precision in
// JavaScript and other float64 readers); a double precision NaN or ±Infinity
// is the string "NaN", "Infinity" or "-Infinity"; date is "YYYY-MM-DD";
// timestamptz is RFC 3339 in UTC with up to microseconds
// ("2024-01-31T12:00:00.5Z"); infinite dates and timestamps are "infinity" or
// "-infinity"; uuid is its canonical string; jsonb is the JSON value itself.
func (s *Server) listRows(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	offset, err := queryInt(c, "offset", 0, 0, math.MaxInt)
	if err != nil {
		s.fail(c, err)
		return
	}
	var cols []rowsColumn
	rows := [][]any{}
	err = s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		t, err := catalog.Get(ctx, tx, id, false)
		if err != nil {
			return err
		}
		cols = make([]rowsColumn, len(t.Columns))
		exprs := make([]string, len(t.Columns))
		for i, col := range t.Columns {
			cols[i] = rowsColumn{Name: col.Name, Type: col.DataType}
			exprs[i] = pgx.Identifier{col.Name}.Sanitize()
			if _, ok := rowScanTarget(col.DataType).(*pgtype.Text); ok {
				exprs[i] += "::text" // text, numeric (exact digits), anything else
			}
		}
		if len(exprs) == 0 {
			return nil
		}
		r, err := tx.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+t.Ident().Sanitize()+
			" ORDER BY _row_id LIMIT $1 OFFSET $2", limit, offset)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			dst := make([]any, len(cols))
			for i, col := range cols {
				dst[i] = rowScanTarget(col.Type)
			}
			if err := r.Scan(dst...); err != nil {
				return err
			}
			row := make([]any, len(cols))
			for i := range dst {
				row[i] = rowJSONValue(dst[i])
			}
			rows = append(rows, row)
		}
		return r.Err()
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"columns": cols, "rows": rows, "limit": limit, "offset": offset})
}

func rowScanTarget(typ string) any {
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

// jsonValue renders a scanned value as documented on listRows.
func rowJSONValue(v any) any {
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
			return rowInfinity(v.InfinityModifier, func() string { return v.Time.Format(time.DateOnly) })
		}
	case *pgtype.Timestamptz:
		if v.Valid {
			return rowInfinity(v.InfinityModifier, func() string { return v.Time.UTC().Format(time.RFC3339Nano) })
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

func rowInfinity(m pgtype.InfinityModifier, finite func() string) string {
	switch m {
	case pgtype.Infinity:
		return "infinity"
	case pgtype.NegativeInfinity:
		return "-infinity"
	}
	return finite()
}
