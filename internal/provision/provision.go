// Package provision creates tenants: the tenant row (through the one
// operator path, dbchat.create_tenant), its first admin user, that user's
// API key and the tenant's default model, all in one transaction.
package provision

import (
	"context"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// DefaultModel is the model every tenant starts with.
const DefaultModel = "default"

// Request describes a tenant to create.
type Request struct {
	Name       string
	Slug       string // derived from Name when empty
	AdminEmail string // defaults to admin@<slug>.invalid
}

// Result is the created tenant and its first admin's key (shown once).
type Result struct {
	Tenant dbsqlc.Tenant
	Admin  dbsqlc.User
	APIKey string
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CreateTenant creates a tenant with an admin user, key and default model.
func CreateTenant(ctx context.Context, db *tenant.DB, req Request) (Result, error) {
	req, err := normalise(req)
	if err != nil {
		return Result{}, err
	}
	var res Result
	q := dbsqlc.New()
	// No identity yet: create_tenant makes the new tenant this transaction's.
	err = db.TxAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		id, err := q.CreateTenant(ctx, tx, dbsqlc.CreateTenantParams{Name: req.Name, Slug: req.Slug})
		if err != nil {
			return err
		}
		if res.Tenant, err = q.CurrentTenant(ctx, tx); err != nil {
			return err
		}
		if res.Admin, err = q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: req.AdminEmail, Name: "Admin", Role: string(tenant.Admin)}); err != nil {
			return err
		}
		if res.APIKey, err = createKey(ctx, tx, id, res.Admin.ID, "initial admin key"); err != nil {
			return err
		}
		_, err = q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: DefaultModel, Description: "Default model"})
		return err
	})
	if apperr.CodeOf(err) == apperr.Conflict {
		return Result{}, apperr.Errorf(apperr.Conflict, "a tenant with slug %q already exists", req.Slug)
	}
	return res, err
}

// createKey mints and stores a key for userID, returning the plain key.
func createKey(ctx context.Context, tx dbsqlc.DBTX, tenantID, userID uuid.UUID, name string) (string, error) {
	k, err := auth.Generate(tenantID)
	if err != nil {
		return "", err
	}
	_, err = dbsqlc.New().CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: userID, Name: name, Prefix: k.Prefix, KeyHash: k.Hash})
	return k.Plain, err
}

func normalise(req Request) (Request, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 200 {
		return req, apperr.Field("name", "must be 1 to 200 characters")
	}
	if req.Slug == "" {
		req.Slug = slugify(req.Name)
	}
	if !slugPattern.MatchString(req.Slug) {
		return req, apperr.Field("slug", "must be lowercase letters, digits and dashes (at most 63)")
	}
	if req.AdminEmail == "" {
		req.AdminEmail = "admin@" + req.Slug + ".invalid"
	}
	return req, nil
}

func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimSuffix(s[:63], "-")
	}
	return s
}
