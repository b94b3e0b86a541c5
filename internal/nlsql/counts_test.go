package nlsql_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// kindCounts is a (model, embedder) key's rows per kind.
type kindCounts struct{ SQL, DDL, Documentation int64 }

// requireCountsKept checks that tn's dbchat.training_counts, read under the
// policy, equals a count of its training rows (a key with no rows may keep
// a row of zeros), and returns them.
func requireCountsKept(t *testing.T, w *world, tn dbtest.Tenant) map[string]kindCounts {
	t.Helper()
	read := func(ctx context.Context, tx tenant.Conn, sql string) map[string]kindCounts {
		rows, err := tx.Query(ctx, sql)
		require.NoError(t, err)
		out := map[string]kindCounts{}
		for rows.Next() {
			var model uuid.UUID
			var embedder string
			var c kindCounts
			require.NoError(t, rows.Scan(&model, &embedder, &c.SQL, &c.DDL, &c.Documentation))
			if c != (kindCounts{}) {
				out[model.String()+"/"+embedder] = c
			}
		}
		require.NoError(t, rows.Err())
		return out
	}
	var kept, counted map[string]kindCounts
	w.tx(t, tn, func(ctx context.Context, tx tenant.Conn) error {
		kept = read(ctx, tx, `SELECT model_id, embedder, sql_rows, ddl_rows, documentation_rows FROM dbchat.training_counts`)
		counted = read(ctx, tx, `SELECT model_id, embedder, count(*) FILTER (WHERE kind = 'sql'),
			count(*) FILTER (WHERE kind = 'ddl'), count(*) FILTER (WHERE kind = 'documentation')
			FROM dbchat.training_data WHERE embedder IS NOT NULL GROUP BY 1, 2`)
		return nil
	})
	require.Equal(t, counted, kept)
	return kept
}

// Retrieval reads each set's size from dbchat.training_counts (00029), which
// a trigger keeps through every kind of write: inserts, deletes by id and by
// model, re-embedding, updates that move rows between kinds and models, a
// model's deletion, and concurrent writers of one model. Each tenant sees
// and changes only its own counts.
func TestTrainingCountsFollowEveryWrite(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	def := w.modelID(t, w.a, provision.DefaultModel)
	other := w.createModel(t, w.a, "other")
	old := &nlsql.Store{DB: w.db, Embedder: renamed{}}

	items := w.add(t, w.a, def,
		nlsql.NewItem{Kind: nlsql.KindSQL, Question: "How many customers do we have?", Content: "SELECT count(*) FROM customers"},
		nlsql.NewItem{Kind: nlsql.KindSQL, Question: "How many orders?", Content: "SELECT count(*) FROM orders"},
		nlsql.NewItem{Kind: nlsql.KindDDL, Content: "CREATE TABLE customers (id bigint)"},
		nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "Amounts are in EUR."})
	_, err := old.Add(as(w.a), def, []nlsql.NewItem{{Kind: nlsql.KindDocumentation, Content: "Old note."}}, nlsql.SourceUser)
	require.NoError(t, err)
	w.add(t, w.a, other, nlsql.NewItem{Kind: nlsql.KindDDL, Content: "CREATE TABLE orders (id bigint)"})
	w.add(t, w.b, w.modelID(t, w.b, provision.DefaultModel), nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "B's note."})
	_, err = w.store.TrainFromCatalog(as(w.a), def)
	require.NoError(t, err)

	local := def.String() + "/" + w.store.Embedder.Name()
	got := requireCountsKept(t, w, w.a)
	require.Equal(t, int64(2), got[local].SQL)
	require.Equal(t, kindCounts{Documentation: 1}, got[def.String()+"/old-embedder"])
	require.Len(t, got, 3, "A sees its own keys only: %v", got)
	requireCountsKept(t, w, w.b)

	// What retrieval reads is the same number.
	c := w.retrieve(t, w.a, def, "how many customers")
	require.Equal(t, int(got[local].SQL), c.Scans[0].Rows)
	require.Equal(t, int(got[local].DDL), c.Scans[1].Rows)

	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		return nlsql.DeleteTrainingData(ctx, tx, def, items[1].ID)
	})
	requireCountsKept(t, w, w.a)
	n, err := w.store.Reembed(as(w.a), def, false)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got = requireCountsKept(t, w, w.a)
	require.NotContains(t, got, def.String()+"/old-embedder", "re-embedding moved the row")

	// Updates that move rows between kinds and models: as the tenant, and
	// as an operator might in psql (a superuser: no policy applies to it,
	// and the trigger, which runs as the writer, still counts).
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		_, err := tx.Exec(ctx, `UPDATE dbchat.training_data SET kind = 'documentation', question = NULL WHERE id = $1`, items[0].ID)
		return err
	})
	requireCountsKept(t, w, w.a)
	_, err = w.d.AdminPool(t).Exec(ctx, `UPDATE dbchat.training_data SET model_id = $1 WHERE id = $2`, other, items[2].ID)
	require.NoError(t, err)
	requireCountsKept(t, w, w.a)

	// Concurrent writers of one model: the counts add up.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.store.Add(as(w.a), other, []nlsql.NewItem{
				{Kind: nlsql.KindDocumentation, Content: fmt.Sprintf("note %d", i)},
				{Kind: nlsql.KindDDL, Content: fmt.Sprintf("CREATE TABLE t%d (id bigint)", i)}}, nlsql.SourceUser)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got = requireCountsKept(t, w, w.a)
	require.Equal(t, kindCounts{DDL: 10, Documentation: 8}, got[other.String()+"/"+w.store.Embedder.Name()])

	// Deleting a model removes its counts with it (and does not fail on them).
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		_, err := nlsql.DeleteModel(ctx, tx, "other")
		return err
	})
	got = requireCountsKept(t, w, w.a)
	require.NotContains(t, got, other.String()+"/"+w.store.Embedder.Name())
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM dbchat.training_counts WHERE model_id = $1`, other).Scan(&n)
		require.Zero(t, n)
		return err
	})

	// B's counts are B's: A neither sees nor changes them.
	bModel := w.modelID(t, w.b, provision.DefaultModel)
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM dbchat.training_counts WHERE model_id = $1`, bModel).Scan(&n); err != nil {
			return err
		}
		require.Zero(t, n)
		tag, err := tx.Exec(ctx, `UPDATE dbchat.training_counts SET documentation_rows = 99 WHERE model_id = $1`, bModel)
		require.Zero(t, tag.RowsAffected())
		return err
	})
	require.Equal(t, kindCounts{Documentation: 1}, requireCountsKept(t, w, w.b)[bModel.String()+"/"+w.store.Embedder.Name()])
}
