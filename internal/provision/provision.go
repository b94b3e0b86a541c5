// Package provision creates tenants: the tenant row (through the one
// operator path, dbchat.create_tenant), its first admin user, that user's
// API key and the tenant's default model, all in one transaction.
package provision

import (
	"context"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

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
	var err error
	if req.Name, err = NormaliseName("name", req.Name); err != nil {
		return req, err
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
	if req.AdminEmail, err = NormaliseEmail("admin_email", req.AdminEmail); err != nil {
		return req, err
	}
	return req, nil
}

// NormaliseName trims a tenant name and checks it fits the tenants table
// (1 to 200 characters) and is plain text; an error names field.
func NormaliseName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		return name, apperr.Field(field, "must be 1 to 200 characters")
	}
	if !utf8.ValidString(name) {
		return name, apperr.Field(field, "must be valid UTF-8 text")
	}
	for _, r := range name {
		if unsafeInName(r) {
			return name, apperr.Field(field, "must not contain control or bidirectional formatting characters (found %U)", r)
		}
	}
	return name, nil
}

// unsafeInName reports characters a name is refused for: a name is shown in
// logs, terminals (dbchat tenant create) and admin UIs, where control
// characters (newlines, escape sequences, NUL), line and paragraph
// separators and bidirectional overrides can forge lines or make one name
// read as another.
func unsafeInName(r rune) bool {
	switch {
	case unicode.IsControl(r), r == '\u2028', r == '\u2029':
		return true
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// NormaliseEmail trims a user's email and checks it is a bare address
// (local@domain, no display name) of 3 to 320 characters; an error names
// field.
func NormaliseEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || utf8.RuneCountInString(email) > 320 {
		return email, apperr.Field(field, "must be an email address like name@example.com")
	}
	return email, nil
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
