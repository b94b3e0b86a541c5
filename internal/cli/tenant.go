package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dbchat/dbchat/internal/provision"
)

func cmdTenant(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && (args[0] == "export" || args[0] == "import" || args[0] == "erase") {
		return cmdTenantIO(ctx, env, args)
	}
	if len(args) == 0 || args[0] != "create" {
		return errUsage
	}
	fs := newFlags("tenant create", env)
	name := fs.String("name", "", "tenant name (required)")
	slug := fs.String("slug", "", "tenant slug (default: derived from the name)")
	email := fs.String("admin-email", "", "first admin's email")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *name == "" {
		return errUsage
	}
	pool, db, err := openAppPool(ctx, loadConfig(env).DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := provision.CreateTenant(ctx, db, provision.Request{Name: *name, Slug: *slug, AdminEmail: *email})
	if err != nil {
		return err
	}
	if *asJSON {
		out := map[string]any{
			"tenant":  map[string]any{"id": res.Tenant.ID, "name": res.Tenant.Name, "slug": res.Tenant.Slug},
			"user":    map[string]any{"id": res.Admin.ID, "email": res.Admin.Email, "role": res.Admin.Role},
			"api_key": res.APIKey,
		}
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	fmt.Fprintf(env.Stdout, "tenant %s (%s) created: id %s\nadmin API key (shown once): %s\n", res.Tenant.Name, res.Tenant.Slug, res.Tenant.ID, res.APIKey)
	return nil
}
