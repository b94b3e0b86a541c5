package generate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestOfflineProbeBudget asks a question naming 41 capitalised words about a
// table with 120 text columns: the offline generator looks values up with at
// most its budget of sandbox statements (counted by the sandbox itself),
// still places a value that its probes reach, and answers without one that
// lies beyond the budget.
func TestOfflineProbeBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	svc := sandbox.New(db, box)
	tn := dbtest.NewTenant(t, db, "Wide")
	const width = 120
	spec := catalog.TableSpec{Name: "wide"}
	var cols []generate.Column
	for i := range width {
		name := fmt.Sprintf("c%03d", i)
		spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: name, Type: "text"})
		cols = append(cols, generate.Column{Name: name, Type: "text"})
	}
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		tbl, err := catalog.Create(ctx, tx, spec)
		if err != nil {
			return err
		}
		// Lima sits in the third column, Oscar in the last, beyond the
		// budget.
		_, err = tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (c002, c119) VALUES ('Lima', 'Oscar'), ('Kilo', 'Oscar')`)
		return err
	}))
	tctx := tenant.NewContext(ctx, tn.Identity)
	tables := []generate.Table{{Name: "wide", Columns: cols}}

	words := []string{"Lima", "Oscar"}
	for i := range 39 {
		words = append(words, fmt.Sprintf("Word%02d", i))
	}
	// "and" between the words keeps each its own value (a run of
	// capitalised words would also be looked up whole).
	question := "How many wide rows mention " + strings.Join(words, " and ") + "?"

	gen := generate.NewOffline()
	require.Equal(t, 50, gen.MaxProbes)
	ask := func(q string) (generate.Output, int64, error) {
		before := box.Statements()
		out, err := gen.Generate(tctx, generate.Input{Question: q, Tables: tables, FindValues: svc.FindValues})
		return out, box.Statements() - before, err
	}
	out, probes, err := ask("How many wide rows mention Lima?")
	require.NoError(t, err)
	require.Positive(t, probes)
	require.Equal(t, `SELECT count(*) AS count FROM "wide" WHERE "c002" = 'Lima'`, out.SQL)
	res, err := svc.Run(tctx, sandbox.Request{SQL: out.SQL})
	require.NoError(t, err)
	require.Equal(t, `"1"`, string(res.Rows[0][0]))

	// 41 values: at most MaxValues are looked up, in at most MaxProbes
	// statements; the values left unplaced are words the statement cannot
	// use, so the question is refused rather than answered without them.
	_, probes, err = ask(question)
	require.Equal(t, apperr.NoSQL, apperr.CodeOf(err))
	require.LessOrEqual(t, probes, int64(gen.MaxProbes))
	require.Positive(t, probes)

	// A smaller budget: still at most that many statements. Oscar sits in
	// the last column, beyond three probes: refused, not answered as Kilo only.
	gen.MaxProbes = 3
	_, probes, err = ask("How many wide rows mention Kilo or 'Oscar'?")
	require.Equal(t, int64(3), probes)
	require.Equal(t, apperr.NoSQL, apperr.CodeOf(err))
	require.Contains(t, err.Error(), "Oscar")
	out, _, err = ask("How many wide rows mention Kilo?")
	require.NoError(t, err)
	require.Equal(t, `SELECT count(*) AS count FROM "wide" WHERE "c002" = 'Kilo'`, out.SQL)

	// A question it cannot shape is still refused, whatever the values.
	_, _, err = ask("Why did Lima leave?")
	require.Equal(t, apperr.NoSQL, apperr.CodeOf(err))
}

// TestFindValuesQuoting: values with quotes, backslashes, commas and braces
// are looked up exactly (the array literal is escaped), in one statement.
func TestFindValuesQuoting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	svc := sandbox.New(db, box)
	tn := dbtest.NewTenant(t, db, "Quotes")
	odd := []string{`O'Brien`, `back\slash`, `a "quoted", {braced} one`, `NULL`}
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "names", Columns: []catalog.ColumnSpec{{Name: "name", Type: "text"}}})
		if err != nil {
			return err
		}
		for _, v := range odd {
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (name) VALUES ($1)`, v); err != nil {
				return err
			}
		}
		return nil
	}))
	tctx := tenant.NewContext(ctx, tn.Identity)
	before := box.Statements()
	found, err := svc.FindValues(tctx, "names", "name", append([]string{"absent"}, odd...))
	require.NoError(t, err)
	require.ElementsMatch(t, odd, found)
	require.Equal(t, int64(1), box.Statements()-before)
}
