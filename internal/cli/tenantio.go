package cli

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenantio"
)

// cmdTenantIO runs tenant export, import and erase. They need to see every
// row of one tenant whatever the per-user policies say, so they connect
// with DBCHAT_ADMIN_DATABASE_URL's privileged role and name the tenant in
// every statement (package tenantio).
func cmdTenantIO(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("tenant "+args[0], env)
	var tenantArg, out, in, name, slug, confirm, operator *string
	asJSON := fs.Bool("json", false, "print JSON")
	switch args[0] {
	case "export":
		tenantArg = fs.String("tenant", "", "tenant slug or id (required)")
		out = fs.String("out", "", "file to write (required)")
	case "import":
		in = fs.String("in", "", "export file to read (required)")
		name = fs.String("name", "", "the new tenant's name (required)")
		slug = fs.String("slug", "", "the new tenant's slug (default: derived from the name)")
	case "erase":
		tenantArg = fs.String("tenant", "", "tenant slug or id (required)")
		confirm = fs.String("confirm", "", "the tenant's slug again (required)")
		operator = fs.String("operator", "", "who erases, for the erasure log (default: the OS user)")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	for _, required := range []*string{tenantArg, out, in, name, confirm} {
		if required != nil && *required == "" {
			return errUsage
		}
	}
	adminURL := loadConfig(env).AdminDatabaseURL
	if adminURL == "" {
		return errors.New("DBCHAT_ADMIN_DATABASE_URL is not set (tenant " + args[0] + " needs the privileged connection)")
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("DBCHAT_ADMIN_DATABASE_URL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	switch args[0] {
	case "export":
		return tenantExport(ctx, env, conn, *tenantArg, *out, *asJSON)
	case "import":
		return tenantImport(ctx, env, conn, *in, *name, *slug, *asJSON)
	default:
		op := *operator
		if op == "" {
			if u, err := user.Current(); err == nil {
				op = u.Username
			} else {
				op = env.Getenv("USER")
			}
		}
		return tenantErase(ctx, env, conn, *tenantArg, *confirm, op, *asJSON)
	}
}

func tenantExport(ctx context.Context, env *Env, conn *pgx.Conn, tenantArg, out string, asJSON bool) error {
	// Resolve first, so an unknown tenant leaves no file behind.
	if _, err := tenantio.Resolve(ctx, conn, tenantArg); err != nil {
		return err
	}
	// Written beside out and renamed at the end: a failed export leaves
	// no file that looks whole.
	f, err := os.CreateTemp(filepath.Dir(out), ".dbchat-export-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	m, err := tenantio.Export(ctx, conn, tenantArg, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{"out": out, "manifest": m})
	}
	var rows int64
	for _, f := range m.Platform {
		rows += f.Rows
	}
	var data int64
	for _, f := range m.Data {
		data += f.Rows
	}
	fmt.Fprintf(env.Stdout, "exported tenant %s (%s) to %s: %d platform rows in %d tables, %d data rows in %d tables\n",
		m.Slug, m.TenantID, out, rows, len(m.Platform), data, len(m.Data))
	return nil
}

func tenantImport(ctx context.Context, env *Env, conn *pgx.Conn, in, name, slug string, asJSON bool) error {
	zr, err := zip.OpenReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	defer zr.Close()
	res, err := tenantio.Import(ctx, conn, &zr.Reader, name, slug)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{
			"tenant":  map[string]any{"id": res.Tenant.ID, "name": res.Tenant.Name, "slug": res.Tenant.Slug},
			"user":    map[string]any{"id": res.AdminID, "email": res.AdminEmail, "role": "admin"},
			"api_key": res.APIKey,
			"from":    map[string]any{"tenant_id": res.Manifest.TenantID, "slug": res.Manifest.Slug},
		})
	}
	fmt.Fprintf(env.Stdout, "tenant %s (%s) imported from %s: id %s\nadmin %s API key (shown once): %s\n",
		res.Tenant.Name, res.Tenant.Slug, res.Manifest.Slug, res.Tenant.ID, res.AdminEmail, res.APIKey)
	return nil
}

func tenantErase(ctx context.Context, env *Env, conn *pgx.Conn, tenantArg, confirm, operator string, asJSON bool) error {
	ev, err := tenantio.Erase(ctx, conn, tenantArg, confirm, operator)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(ev)
	}
	w := env.Stdout
	fmt.Fprintf(w, "erased tenant %s (%s) at %s by %s\n", ev.Slug, ev.TenantID, ev.ErasedAt.UTC().Format("2006-01-02T15:04:05Z"), ev.Operator)
	fmt.Fprintf(w, "dropped schema %s with %d data tables; roles: %s\n", ev.SchemaDropped, ev.DataTables, orNone(strings.Join(ev.RolesDropped, ", ")))
	names := make([]string, 0, len(ev.Deleted))
	for n := range ev.Deleted {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, ev.Deleted[n])
	}
	fmt.Fprintf(w, "deleted rows: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "evidence: scanned %d tables (%d uuid/text/json columns) of every schema for %s: 0 rows; schema exists: %v; role exists: %v (skipped: %s)\n",
		ev.Scan.Tables, ev.Scan.Columns, ev.TenantID, ev.Scan.Schema, ev.Scan.Role, strings.Join(ev.Scan.Skipped, ", "))
	fmt.Fprintf(w, "recorded in %s\n", tenantio.ErasureLog)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// exportOver is the server's operator export (GET
// /v1/admin/tenants/{id}/export): tenantio.Export on a privileged
// connection of its own per export.
func exportOver(adminURL string) server.Exporter {
	return func(ctx context.Context, tenantArg string, w io.Writer) error {
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return apperr.Wrap(apperr.Unavailable, err, "the privileged connection for exports is unavailable")
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = tenantio.Export(ctx, conn, tenantArg, w)
		return err
	}
}
