package importer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/importer"
	"github.com/dbchat/dbchat/internal/tenant"
)

// impTable creates a table with one column per type in a fresh tenant.
func impTable(t *testing.T) (*tenant.DB, dbtest.Tenant, catalog.Table) {
	t.Helper()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Importer")
	spec := catalog.TableSpec{Name: "everything"}
	for _, c := range [][2]string{{"t", "text"}, {"i", "integer"}, {"b", "bigint"}, {"n", "numeric"}, {"d", "double precision"},
		{"ok", "boolean"}, {"day", "date"}, {"at", "timestamptz"}, {"u", "uuid"}, {"j", "jsonb"}} {
		spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: c[0], Type: c[1]})
	}
	var tbl catalog.Table
	ctx := context.Background()
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) (err error) {
		tbl, err = catalog.Create(ctx, tx, spec)
		return err
	}))
	return db, tn, tbl
}

// csvQuote encloses v in quotes, doubling quotes inside.
func csvQuote(v string) string { return `"` + strings.ReplaceAll(v, `"`, `""`) + `"` }

// TestAcceptedValuesFitPostgres imports the edge values each converter
// accepts and reads them back as PostgreSQL prints them: whatever Go
// accepts, the database stores, with the meaning intended.
func TestAcceptedValuesFitPostgres(t *testing.T) {
	t.Parallel()
	db, tn, tbl := impTable(t)
	ctx := context.Background()
	zeros := func(n int) string { return strings.Repeat("0", n) }
	cases := map[string][][2]string{ // column -> (input, PostgreSQL's text)
		"t": {{"multi\nline, \"quoted\"", "multi\nline, \"quoted\""}, {"tab\tand emoji 😀", "tab\tand emoji 😀"}, {" ", " "}},
		"i": {{"2147483647", "2147483647"}, {"-2147483648", "-2147483648"}, {" 12 ", "12"}},
		"b": {{"9223372036854775807", "9223372036854775807"}, {"-9223372036854775808", "-9223372036854775808"}},
		"n": {
			{"1.50", "1.50"}, {"-0.001", "-0.001"}, {"1.5e3", "1500"}, {"NaN", "NaN"}, {"-Infinity", "-Infinity"},
			{"1e131071", "1" + zeros(131071)}, {"1e-16383", "0." + zeros(16382) + "1"}, {"0.000", "0.000"},
			{"123456789012345678901234567890.000000001", "123456789012345678901234567890.000000001"},
		},
		"d":   {{"0.1", "0.1"}, {"1e308", "1e+308"}, {"5e-324", "5e-324"}, {"NaN", "NaN"}, {"-inf", "-Infinity"}},
		"ok":  {{"YES", "true"}, {"f", "false"}, {"1", "true"}},
		"day": {{"2024-02-29", "2024-02-29"}, {"9999-12-31", "9999-12-31"}, {"0001-01-01", "0001-01-01"}, {"0000-01-01", "0001-01-01 BC"}},
		"at": {
			{"2024-01-31T12:00:00.5+01:00", "2024-01-31 11:00:00.5"}, {"2024-01-31 12:00:00", "2024-01-31 12:00:00"},
			{"0001-01-01T00:00:00Z", "0001-01-01 00:00:00"}, {"9999-12-31T23:59:59.999999Z", "9999-12-31 23:59:59.999999"},
			{"9999-12-31T23:59:59.9999995Z", "10000-01-01 00:00:00"},
		},
		"u": {{"{0B9F3D8E-3C1A-4E5B-9A7D-2F6C8E1D4A10}", "0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10"}},
		"j": {
			{`{"b":1,"a":[true,null,"\u00e9 \ud83d\ude00"]}`, `{"a": [true, null, "é 😀"], "b": 1}`},
			{`"1e999999"`, `"1e999999"`}, {`[1e1000]`, "[1" + zeros(1000) + "]"}, {`null`, `null`},
			{"[" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "]", "[" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "]"},
		},
	}
	for col, vals := range cases {
		var body strings.Builder
		body.WriteString(col + "\n")
		for _, v := range vals {
			body.WriteString(csvQuote(v[0]) + "\n")
		}
		expr := `"` + col + `"::text`
		if col == "at" {
			expr = `("at" AT TIME ZONE 'UTC')::text`
		}
		var got []string
		err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			n, err := importer.CSV(ctx, tx, tbl, strings.NewReader(body.String()))
			if err != nil {
				return err
			}
			require.EqualValues(t, len(vals), n, col)
			rows, err := tx.Query(ctx, "SELECT "+expr+" FROM "+tbl.Ident().Sanitize()+" ORDER BY _row_id")
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					return err
				}
				got = append(got, s)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			// Leave the table empty for the next column.
			_, err = tx.Exec(ctx, "DELETE FROM "+tbl.Ident().Sanitize())
			return err
		})
		require.NoError(t, err, col)
		var want []string
		for _, v := range vals {
			want = append(want, v[1])
		}
		require.Equal(t, want, got, col)
	}
}

// TestImportTwiceInOneTransaction: imports can follow one another in a
// transaction, and tables with the same column names but other types get
// statements of their own (pgx caches a statement's parameter types by its
// text).
func TestImportTwiceInOneTransaction(t *testing.T) {
	t.Parallel()
	db, tn, tbl := impTable(t)
	ctx := context.Background()
	other := catalog.TableSpec{Name: "other", Columns: []catalog.ColumnSpec{{Name: "i", Type: "text"}}}
	var count, otherCount int64
	err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		o, err := catalog.Create(ctx, tx, other)
		if err != nil {
			return err
		}
		for _, step := range []struct {
			tbl  catalog.Table
			body string
		}{{tbl, "i\n1\n2\n"}, {o, "i\nabc\n"}, {tbl, "i\n3\n"}, {o, "i\ndef\n"}} {
			if _, err := importer.CSV(ctx, tx, step.tbl, strings.NewReader(step.body)); err != nil {
				return err
			}
		}
		if n, err := importer.JSON(ctx, tx, tbl, strings.NewReader(`[{"i": 4}]`)); err != nil || n != 1 {
			return fmt.Errorf("JSON import: %d rows, %w", n, err)
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+tbl.Ident().Sanitize()).Scan(&count); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT count(*) FROM "+o.Ident().Sanitize()).Scan(&otherCount)
	})
	require.NoError(t, err)
	require.EqualValues(t, 4, count)
	require.EqualValues(t, 2, otherCount)
}

// TestBadValueError checks the error's shape at the package boundary.
func TestBadValueError(t *testing.T) {
	t.Parallel()
	db, tn, tbl := impTable(t)
	ctx := context.Background()
	err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		_, err := importer.CSV(ctx, tx, tbl, strings.NewReader("t,i\na,1\nb,x\n"))
		return err
	})
	e := apperr.As(err)
	require.Equal(t, apperr.Invalid, e.Code)
	require.Equal(t, map[string]any{"line": int64(3), "column": "i"}, e.Details)
	require.Equal(t, `line 3, column "i": invalid integer "x"`, e.Message)
}
