package cli

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// cmdReembed re-embeds a model's training data with the embedder
// DBCHAT_EMBEDDER names, after a switch of embedders: retrieval compares
// only rows of the embedder in use, so until then the other rows are not
// found. It runs in batches and may run while the service serves.
func cmdReembed(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("reembed", env)
	tenantArg := fs.String("tenant", "", "tenant slug or id (required)")
	model := fs.String("model", provision.DefaultModel, "model name")
	all := fs.Bool("all", false, "re-embed every row, not only rows of another embedder")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *tenantArg == "" {
		return errUsage
	}
	e, err := embed.FromEnv(ctx, env.Getenv)
	if err != nil {
		return err
	}
	pool, db, err := openAppPool(ctx, loadConfig(env).DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	tenantID, slug, err := resolveTenant(ctx, db, *tenantArg)
	if err != nil {
		return err
	}
	ctx = tenant.NewContext(ctx, tenant.Identity{TenantID: tenantID})
	var modelID uuid.UUID
	err = db.Once(ctx, func(tx tenant.Conn) error {
		modelID, err = nlsql.ModelID(ctx, tx, *model)
		return err
	})
	if err != nil {
		return err
	}
	store := &nlsql.Store{DB: db, Embedder: e}
	n, err := store.Reembed(ctx, modelID, *all)
	if err != nil {
		return fmt.Errorf("re-embedded %d rows, then: %w", n, err)
	}
	fmt.Fprintf(env.Stdout, "re-embedded %d training rows of model %s (tenant %s) with %s\n", n, *model, slug, e.Name())
	return nil
}

// resolveTenant finds a tenant by id or slug through the operator's listing
// path (the one cross-tenant read).
func resolveTenant(ctx context.Context, db *tenant.DB, arg string) (uuid.UUID, string, error) {
	var tenants []dbsqlc.Tenant
	err := db.OnceAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		var err error
		tenants, err = dbsqlc.New().ListTenants(ctx, tx)
		return err
	})
	if err != nil {
		return uuid.Nil, "", err
	}
	id, idErr := uuid.Parse(arg)
	for _, t := range tenants {
		if t.Slug == arg || idErr == nil && t.ID == id {
			return t.ID, t.Slug, nil
		}
	}
	return uuid.Nil, "", apperr.Errorf(apperr.NotFound, "no tenant %q", arg)
}
