package nlsql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// world is a test database with two tenants that both have the demo tables.
type world struct {
	d     *dbtest.DB
	db    *tenant.DB
	store *nlsql.Store
	a, b  dbtest.Tenant
}

func newWorld(t *testing.T) *world {
	t.Helper()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	w := &world{d: d, db: db, store: &nlsql.Store{DB: db, Embedder: embed.NewLocal()}}
	w.a = dbtest.NewTenant(t, db, "Tenant A")
	w.b = dbtest.NewTenant(t, db, "Tenant B")
	for _, tn := range []dbtest.Tenant{w.a, w.b} {
		require.NoError(t, db.TxAs(context.Background(), tn.Identity, func(tx tenant.Conn) error { return demo.Seed(context.Background(), tx) }))
	}
	return w
}

func as(tn dbtest.Tenant) context.Context {
	return tenant.NewContext(context.Background(), tn.Identity)
}

func (w *world) tx(t *testing.T, tn dbtest.Tenant, fn func(ctx context.Context, tx tenant.Conn) error) {
	t.Helper()
	ctx := as(tn)
	require.NoError(t, w.db.Tx(ctx, func(tx tenant.Conn) error { return fn(ctx, tx) }))
}

func (w *world) modelID(t *testing.T, tn dbtest.Tenant, name string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	w.tx(t, tn, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		id, err = nlsql.ModelID(ctx, tx, name)
		return err
	})
	return id
}

func (w *world) createModel(t *testing.T, tn dbtest.Tenant, name string) uuid.UUID {
	t.Helper()
	var m nlsql.Model
	w.tx(t, tn, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		m, err = nlsql.CreateModel(ctx, tx, nlsql.NewModel{Name: name})
		return err
	})
	return m.ID
}

func (w *world) add(t *testing.T, tn dbtest.Tenant, modelID uuid.UUID, items ...nlsql.NewItem) []nlsql.Item {
	t.Helper()
	out, err := w.store.Add(as(tn), modelID, items, nlsql.SourceUser)
	require.NoError(t, err)
	return out
}

func (w *world) retrieve(t *testing.T, tn dbtest.Tenant, modelID uuid.UUID, question string) nlsql.Context {
	t.Helper()
	vec := embed.NewLocal().Vector(question)
	var c nlsql.Context
	w.tx(t, tn, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		c, err = nlsql.Retrieve(ctx, tx, modelID, embed.NewLocal().Name(), vec, nlsql.Ks{})
		return err
	})
	return c
}

func requireCode(t *testing.T, err error, code apperr.Code, contains ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, apperr.CodeOf(err), "%v", err)
	for _, c := range contains {
		require.Contains(t, apperr.As(err).Message, c)
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := as(w.a)
	err := w.db.Tx(ctx, func(tx tenant.Conn) error {
		m, err := nlsql.CreateModel(ctx, tx, nlsql.NewModel{Name: "sales", LLMModel: "gemini-2.5-flash", Description: "Sales questions"})
		require.NoError(t, err)
		require.Equal(t, "sales", m.Name)
		return nil
	})
	require.NoError(t, err)

	err = w.db.Tx(ctx, func(tx tenant.Conn) error {
		_, err := nlsql.CreateModel(ctx, tx, nlsql.NewModel{Name: "sales"})
		return err
	})
	requireCode(t, err, apperr.Conflict, `a model named "sales" already exists`)
	err = w.db.Tx(ctx, func(tx tenant.Conn) error {
		_, err := nlsql.CreateModel(ctx, tx, nlsql.NewModel{Name: "Bad Name"})
		return err
	})
	requireCode(t, err, apperr.Invalid, "name")

	sales := w.modelID(t, w.a, "sales")
	w.add(t, w.a, sales,
		nlsql.NewItem{Kind: nlsql.KindSQL, Question: "How many customers?", Content: "SELECT count(*) FROM customers"},
		nlsql.NewItem{Kind: nlsql.KindDDL, Content: "CREATE TABLE customers (id bigint)"})

	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		ms, err := nlsql.ListModels(ctx, tx)
		require.NoError(t, err)
		require.Len(t, ms, 2)
		require.Equal(t, provision.DefaultModel, ms[0].Name)
		require.Nil(t, ms[0].LastTrainedAt)
		require.Equal(t, nlsql.Counts{SQL: 1, DDL: 1, Total: 2}, ms[1].Training)
		require.NotNil(t, ms[1].LastTrainedAt)
		m, err := nlsql.GetModel(ctx, tx, "sales")
		require.NoError(t, err)
		require.Equal(t, "gemini-2.5-flash", m.LLMModel)
		return nil
	})

	// Tenant B sees neither the model nor its name.
	err = w.db.Tx(as(w.b), func(tx tenant.Conn) error {
		_, err := nlsql.GetModel(as(w.b), tx, "sales")
		return err
	})
	requireCode(t, err, apperr.NotFound, `model "sales" not found`)
	err = w.db.Tx(as(w.b), func(tx tenant.Conn) error {
		_, err := nlsql.DeleteModel(as(w.b), tx, "sales")
		return err
	})
	requireCode(t, err, apperr.NotFound)

	// The default model stays; deleting another reports its training data.
	err = w.db.Tx(ctx, func(tx tenant.Conn) error {
		_, err := nlsql.DeleteModel(ctx, tx, provision.DefaultModel)
		return err
	})
	requireCode(t, err, apperr.Invalid, "cannot be deleted")
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		c, err := nlsql.DeleteModel(ctx, tx, "sales")
		require.NoError(t, err)
		require.Equal(t, nlsql.Counts{SQL: 1, DDL: 1, Total: 2}, c)
		ms, err := nlsql.ListModels(ctx, tx)
		require.Len(t, ms, 1)
		return err
	})
}

func TestAddValidatesAndEmbeds(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	def := w.modelID(t, w.a, provision.DefaultModel)
	ctx := as(w.a)

	items := w.add(t, w.a, def,
		nlsql.NewItem{Kind: nlsql.KindSQL, Question: "  How many customers do we have? ", Content: "SELECT count(*) FROM customers"},
		nlsql.NewItem{Kind: nlsql.KindDDL, Content: "CREATE TABLE customers (id bigint)"},
		nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "Amounts are in EUR."})
	require.Len(t, items, 3)
	for _, it := range items {
		require.Equal(t, "local/hash-v1", *it.Embedder, "the row records its embedder")
		require.Equal(t, nlsql.SourceUser, it.Source)
		require.Equal(t, w.a.AdminID, *it.UserID)
	}
	require.Equal(t, "How many customers do we have?", *items[0].Question, "trimmed")
	require.Nil(t, items[1].Question)

	for _, c := range []struct {
		item nlsql.NewItem
		code apperr.Code
		msg  string
	}{
		{nlsql.NewItem{Kind: "table", Content: "x"}, apperr.Invalid, "kind: must be one of"},
		{nlsql.NewItem{Kind: nlsql.KindDDL}, apperr.Invalid, "content: is required"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q"}, apperr.Invalid, "sql: is required"},
		{nlsql.NewItem{Kind: nlsql.KindDDL, Question: "q", Content: "x"}, apperr.Invalid, "only sql pairs have a question"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "DROP TABLE customers"}, apperr.SQLRejected, "sql: only a query"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "SELECT * FROM secrets"}, apperr.SQLRejected, "sql:"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "SELECT * FROM dbchat.users"}, apperr.SQLRejected, "sql:"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "SELECT 1; SELECT 2"}, apperr.SQLRejected, "exactly one statement"},
		// Training SQL is checked like any statement: a function called as
		// field selection, a foreign schema in COLLATE, a NUL byte.
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "SELECT (1).pg_sleep"}, apperr.SQLRejected, "field selection"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "SELECT c.record_out FROM customers c"}, apperr.SQLRejected, "not a column of c"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: `SELECT 'a' COLLATE t_0123456789abcdef0123456789abcdef."C"`}, apperr.SQLRejected, "collation"},
		{nlsql.NewItem{Kind: nlsql.KindSQL, Question: "q", Content: "SELECT 1\x00; SELECT pg_sleep(1)"}, apperr.Invalid, "sql"},
		// The hook for the generation half: no LLM, no question.
		{nlsql.NewItem{Kind: nlsql.KindSQL, Content: "SELECT count(*) FROM orders"}, apperr.Invalid, "question required"},
	} {
		_, err := w.store.Add(ctx, def, []nlsql.NewItem{c.item}, nlsql.SourceUser)
		requireCode(t, err, c.code, c.msg)
	}
	// A batch names the bad item and writes nothing.
	_, err := w.store.Add(ctx, def, []nlsql.NewItem{
		{Kind: nlsql.KindDDL, Content: "CREATE TABLE a (b int)"},
		{Kind: nlsql.KindSQL, Question: "q", Content: "DELETE FROM customers"}}, nlsql.SourceUser)
	requireCode(t, err, apperr.SQLRejected, "items[1].sql")

	// Tenant B's tables are not tenant A's: B's valid SQL that names a table
	// only A has is rejected for B.
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		_, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "only_a", Columns: []catalog.ColumnSpec{{Name: "x", Type: "text"}}})
		return err
	})
	w.add(t, w.a, def, nlsql.NewItem{Kind: nlsql.KindSQL, Question: "only a", Content: "SELECT x FROM only_a"})
	_, err = w.store.Add(as(w.b), w.modelID(t, w.b, provision.DefaultModel),
		[]nlsql.NewItem{{Kind: nlsql.KindSQL, Question: "only a", Content: "SELECT x FROM only_a"}}, nlsql.SourceUser)
	requireCode(t, err, apperr.SQLRejected)
	// Nor can B write into A's model by id.
	_, err = w.store.Add(as(w.b), def, []nlsql.NewItem{{Kind: nlsql.KindDDL, Content: "x"}}, nlsql.SourceUser)
	requireCode(t, err, apperr.NotFound)

	// With a question writer (the generation half's LLM), a pair may come
	// without a question.
	withLLM := *w.store
	withLLM.QuestionWriter = func(_ context.Context, sql string) (string, error) { return "What does " + sql + " return?", nil }
	out, err := withLLM.Add(ctx, def, []nlsql.NewItem{{Kind: nlsql.KindSQL, Content: "SELECT count(*) FROM orders"}}, nlsql.SourceUser)
	require.NoError(t, err)
	require.Equal(t, "What does SELECT count(*) FROM orders return?", *out[0].Question)

	// Listing: newest first, by kind, paged.
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		all, more, err := nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Limit: 100})
		require.NoError(t, err)
		require.False(t, more)
		require.Len(t, all, 5)
		sqls, _, err := nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Kind: nlsql.KindSQL, Limit: 100})
		require.NoError(t, err)
		require.Len(t, sqls, 3)
		page1, more, err := nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Limit: 2})
		require.NoError(t, err)
		require.True(t, more)
		page3, more, err := nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Limit: 2, Offset: 4})
		require.NoError(t, err)
		require.False(t, more)
		require.Equal(t, all[:2], page1)
		require.Equal(t, all[4:], page3)
		_, _, err = nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Kind: "nope", Limit: 1})
		requireCode(t, err, apperr.Invalid, "kind")
		return nil
	})

	// Deleting: only the model's own ids.
	err = w.db.Tx(as(w.b), func(tx tenant.Conn) error {
		return nlsql.DeleteTrainingData(as(w.b), tx, def, items[0].ID)
	})
	requireCode(t, err, apperr.NotFound, "training data not found")
	other := w.createModel(t, w.a, "other")
	err = w.db.Tx(ctx, func(tx tenant.Conn) error { return nlsql.DeleteTrainingData(ctx, tx, other, items[0].ID) })
	requireCode(t, err, apperr.NotFound)
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		return nlsql.DeleteTrainingData(ctx, tx, def, items[0].ID)
	})
	err = w.db.Tx(ctx, func(tx tenant.Conn) error { return nlsql.DeleteTrainingData(ctx, tx, def, items[0].ID) })
	requireCode(t, err, apperr.NotFound)
}

func TestRetrieveNearestAndIsolated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	aDef := w.modelID(t, w.a, provision.DefaultModel)
	bDef := w.modelID(t, w.b, provision.DefaultModel)
	aX := w.createModel(t, w.a, "x")

	// Identical text in both tenants and in two models of A.
	pairs := []nlsql.NewItem{
		{Kind: nlsql.KindSQL, Question: "How many customers do we have?", Content: "SELECT count(*) FROM customers"},
		{Kind: nlsql.KindSQL, Question: "Total order amount per country", Content: "SELECT c.country, sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY 1"},
		{Kind: nlsql.KindSQL, Question: "List the five largest orders", Content: "SELECT * FROM orders ORDER BY amount DESC LIMIT 5"},
		{Kind: nlsql.KindDDL, Content: "CREATE TABLE customers (id bigint, name text, country text)"},
		{Kind: nlsql.KindDocumentation, Content: "Order amounts are in EUR."},
	}
	aItems := w.add(t, w.a, aDef, pairs...)
	bItems := w.add(t, w.b, bDef, pairs...)
	xItems := w.add(t, w.a, aX, pairs[0])

	ids := func(items []nlsql.Item) map[uuid.UUID]bool {
		m := map[uuid.UUID]bool{}
		for _, it := range items {
			m[it.ID] = true
		}
		return m
	}
	aIDs, bIDs, xIDs := ids(aItems), ids(bItems), ids(xItems)

	c := w.retrieve(t, w.a, aDef, "how many customers are there")
	require.Len(t, c.SQL, 3)
	require.Equal(t, "How many customers do we have?", c.SQL[0].Question, "nearest first")
	require.Equal(t, "SELECT count(*) FROM customers", c.SQL[0].Content)
	require.Less(t, c.SQL[0].Distance, c.SQL[1].Distance)
	require.Len(t, c.DDL, 1)
	require.Len(t, c.Documentation, 1)
	for _, m := range append(append(c.SQL, c.DDL...), c.Documentation...) {
		require.True(t, aIDs[m.ID], "only A's default model's rows")
		require.False(t, bIDs[m.ID], "never B's rows, identical text or not")
		require.False(t, xIDs[m.ID], "never model x's rows")
	}
	for _, s := range c.Scans {
		require.Equal(t, "exact", s.Method)
	}

	// Model x has only its one pair.
	cx := w.retrieve(t, w.a, aX, "how many customers are there")
	require.Len(t, cx.SQL, 1)
	require.True(t, xIDs[cx.SQL[0].ID])
	require.Empty(t, cx.DDL)

	// B, asking with A's model id, gets nothing: the id is not B's.
	cb := w.retrieve(t, w.b, aDef, "how many customers are there")
	require.Empty(t, cb.SQL)
	require.Empty(t, cb.DDL)
	require.Empty(t, cb.Documentation)

	// Only rows of the same embedder are compared.
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		got, err := nlsql.Retrieve(ctx, tx, aDef, "gemini/gemini-embedding-001", embed.NewLocal().Vector("customers"), nlsql.Ks{})
		require.NoError(t, err)
		require.Empty(t, got.SQL)
		// k per kind; negative skips a kind.
		got, err = nlsql.Retrieve(ctx, tx, aDef, embed.NewLocal().Name(), embed.NewLocal().Vector("customers"), nlsql.Ks{SQL: 2, DDL: -1})
		require.NoError(t, err)
		require.Len(t, got.SQL, 2)
		require.Empty(t, got.DDL)
		require.Len(t, got.Documentation, 1)
		return nil
	})
}

func TestTrainFromCatalog(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	def := w.modelID(t, w.a, provision.DefaultModel)
	ctx := as(w.a)
	mine := w.add(t, w.a, def, nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "written by hand"})

	res, err := w.store.TrainFromCatalog(ctx, def)
	require.NoError(t, err)
	require.Equal(t, nlsql.CatalogResult{Tables: 2, DDL: 2, Documentation: 2}, res)

	var first []nlsql.Item
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		first, _, err = nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Source: nlsql.SourceCatalog, Limit: 100})
		return err
	})
	require.Len(t, first, 4)
	var ddl, docs []string
	for _, it := range first {
		switch it.Kind {
		case nlsql.KindDDL:
			ddl = append(ddl, it.Content)
		case nlsql.KindDocumentation:
			docs = append(docs, it.Content)
		}
	}
	customers := ddl[0]
	if !strings.Contains(customers, "CREATE TABLE customers (") {
		customers = ddl[1]
	}
	require.Equal(t, `-- People who bought something
CREATE TABLE customers (
    id bigint NOT NULL, -- Customer number
    name text, -- Full name
    country text, -- ISO 3166 country code
    signed_up date -- Day of sign-up
);`, customers)
	for _, d := range ddl {
		require.NotContains(t, d, "tenant_id")
		require.NotContains(t, d, "_row_id")
		require.NotContains(t, d, "t_", "unqualified: no tenant schema")
	}
	joined := strings.Join(docs, "\n")
	require.Contains(t, joined, "Table orders: One row per order")
	require.Contains(t, joined, "- orders.amount: Order total in EUR")

	// Re-running replaces instead of duplicating; hand-written rows stay.
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		_, err := dbsqlc.New().UpdateTable(ctx, tx, dbsqlc.UpdateTableParams{ID: tableID(t, ctx, tx, "orders"), IsActive: new(false)})
		return err
	})
	res, err = w.store.TrainFromCatalog(ctx, def)
	require.NoError(t, err)
	require.Equal(t, nlsql.CatalogResult{Tables: 1, DDL: 1, Documentation: 1, Replaced: 4}, res, "an inactive table is left out")
	w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
		all, _, err := nlsql.ListTrainingData(ctx, tx, def, nlsql.ListFilter{Limit: 100})
		require.Len(t, all, 3)
		kept := false
		for _, it := range all {
			kept = kept || it.ID == mine[0].ID
			require.NotContains(t, it.Content, "orders (")
		}
		require.True(t, kept)
		return err
	})
	// Tenant B's model is untouched by A's runs.
	w.tx(t, w.b, func(ctx context.Context, tx tenant.Conn) error {
		all, _, err := nlsql.ListTrainingData(ctx, tx, w.modelID(t, w.b, provision.DefaultModel), nlsql.ListFilter{Limit: 100})
		require.Empty(t, all)
		return err
	})
}

func tableID(t *testing.T, ctx context.Context, tx tenant.Conn, name string) uuid.UUID {
	rows, err := dbsqlc.New().ListTables(ctx, tx)
	require.NoError(t, err)
	for _, r := range rows {
		if r.Name == name {
			return r.ID
		}
	}
	t.Fatalf("no table %s", name)
	return uuid.Nil
}

// renamed is the local embedder under another name, as if the deployment had
// used another embedder before.
type renamed struct{ embed.Local }

func (renamed) Name() string { return "old-embedder" }

func TestReembed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	def := w.modelID(t, w.a, provision.DefaultModel)
	old := &nlsql.Store{DB: w.db, Embedder: renamed{}}
	_, err := old.Add(as(w.a), def, []nlsql.NewItem{
		{Kind: nlsql.KindSQL, Question: "How many customers do we have?", Content: "SELECT count(*) FROM customers"},
		{Kind: nlsql.KindDocumentation, Content: "Amounts are in EUR."}}, nlsql.SourceUser)
	require.NoError(t, err)
	w.add(t, w.a, def, nlsql.NewItem{Kind: nlsql.KindDDL, Content: "CREATE TABLE customers (id bigint)"})
	// B's rows of the old embedder are not A's to re-embed.
	_, err = old.Add(as(w.b), w.modelID(t, w.b, provision.DefaultModel), []nlsql.NewItem{{Kind: nlsql.KindDocumentation, Content: "b"}}, nlsql.SourceUser)
	require.NoError(t, err)

	c := w.retrieve(t, w.a, def, "how many customers")
	require.Empty(t, c.SQL, "rows of another embedder are not compared")

	n, err := w.store.Reembed(as(w.a), def, false)
	require.NoError(t, err)
	require.Equal(t, 2, n, "only the rows of the other embedder")
	c = w.retrieve(t, w.a, def, "how many customers")
	require.Len(t, c.SQL, 1)
	require.Len(t, c.Documentation, 1)

	n, err = w.store.Reembed(as(w.a), def, false)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = w.store.Reembed(as(w.a), def, true)
	require.NoError(t, err)
	require.Equal(t, 3, n, "--all")

	w.tx(t, w.b, func(ctx context.Context, tx tenant.Conn) error {
		all, _, err := nlsql.ListTrainingData(ctx, tx, w.modelID(t, w.b, provision.DefaultModel), nlsql.ListFilter{Limit: 10})
		require.Equal(t, "old-embedder", *all[0].Embedder)
		return err
	})
}
