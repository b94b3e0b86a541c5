package nlsql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// vannaCSV is what `vn.get_training_data().to_csv("export.csv")` writes:
// pandas' index first, NaN questions empty, SQL with newlines quoted.
const vannaCSV = `,id,question,content,training_data_type
0,0f1c-sql,How many customers do we have?,SELECT count(*) FROM customers,sql
1,8a2e-sql,Largest orders,"SELECT id, amount
FROM orders
ORDER BY amount DESC
LIMIT 5",sql
2,77b1-ddl,,"CREATE TABLE customers (id bigint, name text)",ddl
3,5d0c-doc,,Order amounts are in EUR.,documentation
`

// Pandas' to_json orientations of the same DataFrame (two rows).
const (
	vannaRecords = `[{"id":"0f1c-sql","question":"How many customers do we have?","content":"SELECT count(*) FROM customers","training_data_type":"sql"},
{"id":"77b1-ddl","question":null,"content":"CREATE TABLE customers (id bigint, name text)","training_data_type":"ddl"}]`
	vannaColumns = `{"id":{"0":"0f1c-sql","1":"77b1-ddl"},"question":{"0":"How many customers do we have?","1":null},
"content":{"0":"SELECT count(*) FROM customers","1":"CREATE TABLE customers (id bigint, name text)"},
"training_data_type":{"0":"sql","1":"ddl"}}`
	vannaSplit = `{"columns":["id","question","content","training_data_type"],"index":[0,1],
"data":[["0f1c-sql","How many customers do we have?","SELECT count(*) FROM customers","sql"],["77b1-ddl",null,"CREATE TABLE customers (id bigint, name text)","ddl"]]}`
)

func TestParseVanna(t *testing.T) {
	t.Parallel()
	rows, err := nlsql.ParseVanna(strings.NewReader(vannaCSV), "csv")
	require.NoError(t, err)
	require.Len(t, rows, 4)
	require.Equal(t, nlsql.VannaRow{ID: "8a2e-sql", Question: "Largest orders", Content: "SELECT id, amount\nFROM orders\nORDER BY amount DESC\nLIMIT 5", Type: "sql"}, rows[1])
	require.Equal(t, nlsql.VannaRow{ID: "77b1-ddl", Content: "CREATE TABLE customers (id bigint, name text)", Type: "ddl"}, rows[2])

	want := []nlsql.VannaRow{
		{ID: "0f1c-sql", Question: "How many customers do we have?", Content: "SELECT count(*) FROM customers", Type: "sql"},
		{ID: "77b1-ddl", Content: "CREATE TABLE customers (id bigint, name text)", Type: "ddl"},
	}
	for name, doc := range map[string]string{"records": vannaRecords, "columns": vannaColumns, "split": vannaSplit} {
		rows, err := nlsql.ParseVanna(strings.NewReader(doc), "json")
		require.NoError(t, err, name)
		require.Equal(t, want, rows, name)
	}

	for _, c := range []struct {
		name, format, doc, msg string
	}{
		{"bad type", "csv", "id,question,content,training_data_type\na,,x,ddl\nb,,y,table\n", `row 2 (id "b"): training_data_type: must be one of sql, ddl, documentation, got "table"`},
		{"no type column", "csv", "id,question,content\na,,x\n", "no training_data_type column"},
		{"no rows", "csv", "id,question,content,training_data_type\n", "no rows"},
		{"broken quote", "csv", "id,question,content,training_data_type\na,,\"x,ddl\n", "malformed CSV"},
		{"json number", "json", `[{"id":"a","content":"x","training_data_type":"ddl"},{"id":"b","content":7,"training_data_type":"ddl"}]`, `row 2 (id "b"): content: must be a string or null`},
		{"json not object", "json", `[{"content":"x","training_data_type":"ddl"}, 3]`, "row 2: not a JSON object"},
		{"json syntax", "json", `[{"content":`, "malformed JSON"},
		{"json scalar", "json", `"hello"`, "want an array of rows"},
	} {
		_, err := nlsql.ParseVanna(strings.NewReader(c.doc), c.format)
		requireCode(t, err, apperr.Invalid, c.msg)
	}
	_, err = nlsql.ParseVanna(strings.NewReader("x"), "xml")
	requireCode(t, err, apperr.UnsupportedMedia)
}

func TestVannaImport(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	def := w.modelID(t, w.a, provision.DefaultModel)
	ctx := as(w.a)

	rows, err := nlsql.ParseVanna(strings.NewReader(vannaCSV), "csv")
	require.NoError(t, err)
	res, err := w.store.Import(ctx, def, rows)
	require.NoError(t, err)
	require.Equal(t, nlsql.ImportResult{Imported: nlsql.Counts{SQL: 2, DDL: 1, Documentation: 1, Total: 4}}, res)

	// Importing again (or the same rows as JSON) skips what is there.
	res, err = w.store.Import(ctx, def, rows)
	require.NoError(t, err)
	require.Equal(t, nlsql.ImportResult{Skipped: 4}, res)
	jrows, err := nlsql.ParseVanna(strings.NewReader(vannaColumns), "json")
	require.NoError(t, err)
	res, err = w.store.Import(ctx, def, jrows)
	require.NoError(t, err)
	require.Equal(t, 2, res.Skipped)

	// Imported pairs are retrievable.
	c := w.retrieve(t, w.a, def, "how many customers are there?")
	require.Equal(t, "SELECT count(*) FROM customers", c.SQL[0].Content)

	// A bad row anywhere: 400 naming it, nothing imported.
	bad := append(append([]nlsql.VannaRow(nil), rows...),
		nlsql.VannaRow{ID: "new-doc", Content: "new documentation", Type: "documentation"},
		nlsql.VannaRow{ID: "evil-sql", Question: "drop it", Content: "DROP TABLE customers", Type: "sql"})
	_, err = w.store.Import(ctx, def, bad)
	requireCode(t, err, apperr.SQLRejected, `row 6 (id "evil-sql") content:`)
	bad[5] = nlsql.VannaRow{ID: "no-q", Content: "SELECT 1", Type: "sql"}
	_, err = w.store.Import(ctx, def, bad)
	requireCode(t, err, apperr.Invalid, `row 6 (id "no-q") question: question required`)
	bad[5] = nlsql.VannaRow{ID: "empty", Type: "ddl"}
	_, err = w.store.Import(ctx, def, bad)
	requireCode(t, err, apperr.Invalid, `row 6 (id "empty") content: is required`)
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		all, _, err := nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Limit: 100})
		require.Len(t, all, 4, "nothing of the failed imports")
		for _, it := range all {
			require.Equal(t, nlsql.SourceImport, it.Source)
		}
		return err
	})
}
