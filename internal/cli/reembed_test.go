package cli_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// oldEmbedder is the local embedder under another name: rows written with
// it are what a deployment has after switching embedders.
type oldEmbedder struct{ embed.Local }

func (oldEmbedder) Name() string { return "old-embedder" }

func TestReembed(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Reembed Co")
	ctx := tenant.NewContext(context.Background(), tn.Identity)
	var modelID uuid.UUID
	require.NoError(t, db.Tx(ctx, func(tx tenant.Conn) error {
		var err error
		modelID, err = nlsql.ModelID(ctx, tx, provision.DefaultModel)
		return err
	}))
	old := &nlsql.Store{DB: db, Embedder: oldEmbedder{}}
	_, err := old.Add(ctx, modelID, []nlsql.NewItem{
		{Kind: nlsql.KindDocumentation, Content: "Amounts are in EUR."},
		{Kind: nlsql.KindDDL, Content: "CREATE TABLE t (x int)"}}, nlsql.SourceUser)
	require.NoError(t, err)

	vars := map[string]string{"DATABASE_URL": d.AppURL}
	r := run(t, vars, "reembed", "--tenant", tn.Slug, "--model", "default")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "re-embedded 2 training rows of model default (tenant "+tn.Slug+") with local/hash-v1\n", r.stdout)
	r = run(t, vars, "reembed", "--tenant", tn.ID.String())
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "re-embedded 0 training rows")
	r = run(t, vars, "reembed", "--tenant", tn.Slug, "--all")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "re-embedded 2 training rows")

	requireOneLineError(t, run(t, vars, "reembed", "--tenant", "no-such-tenant"), `no tenant "no-such-tenant"`)
	requireOneLineError(t, run(t, vars, "reembed", "--tenant", tn.Slug, "--model", "nope"), `model "nope" not found`)
	requireOneLineError(t, run(t, map[string]string{"DATABASE_URL": d.AppURL, "DBCHAT_EMBEDDER": "gemini"}, "reembed", "--tenant", tn.Slug), "GEMINI_API_KEY")
	require.Equal(t, 2, run(t, vars, "reembed").code, "--tenant is required")
}
