package tenant

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Role is a user's role within its tenant.
type Role string

// The roles a tenant user can have.
const (
	Admin  Role = "admin"
	Member Role = "member"
)

// Identity is who a request acts as. The zero Identity means "no tenant":
// every tenant table then shows zero rows and refuses every insert.
type Identity struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Role     Role
	KeyID    uuid.UUID
	// Epoch is the tenant's credential epoch, read in the statement that
	// looked the credential up (dbchat.credential_epochs, migration 00034;
	// -1: none): a server that remembers the credential confirms that it
	// has not moved (internal/auth).
	Epoch int64
	// Claims are the end user's verified claims (from the identity
	// provider's token, mapped by the tenant's claim mapping); nil for API
	// keys. Every tenant transaction carries them as the transaction-local
	// setting app.claims (JSON), which row policies read through
	// dbchat.claim(name). They are never taken from a request body.
	Claims map[string]any
	// Check, when set, confirms the credential in the request's first
	// tenant transaction (see Check); nil for an identity the database
	// already confirmed (a key just looked up) or built by the server.
	Check *Check
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity carried by ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// settingValue renders an id for set_config: the nil UUID becomes the empty
// string, which the policies' nullif(...) turns into NULL, matching nothing.
func settingValue(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// roleSetting renders a role for app.role: only the two known roles pass,
// anything else is the empty string (which no policy takes for admin).
func roleSetting(r Role) string {
	if r == Admin || r == Member {
		return string(r)
	}
	return ""
}

// claimsSetting renders claims for app.claims: a JSON object, or the empty
// string for none (dbchat.claim then returns NULL for every name).
func claimsSetting(claims map[string]any) (string, error) {
	if len(claims) == 0 {
		return "", nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", apperr.Wrap(apperr.Internal, err, "end-user claims are not JSON")
	}
	return string(b), nil
}

// Schema is the name of a tenant's data schema, derived from its id only
// (never from user input); the database's dbchat.tenant_schema() computes the
// same name.
func Schema(tenantID uuid.UUID) string {
	return "t_" + strings.ReplaceAll(tenantID.String(), "-", "")
}

// MemberRole is the database role the statements of a tenant's members run
// as: Schema(tenantID) + "_m", which reads only the columns no admin marked
// restricted (migration 00015). Schema(tenantID) itself is the admins'.
func MemberRole(tenantID uuid.UUID) string { return Schema(tenantID) + "_m" }

// ReadRole is the role id's untrusted statements in tenantID run as: the
// tenant's role for its admins, the members' role for anyone else (a
// statement without an end user included), so that restricted columns stay
// with admins.
func ReadRole(tenantID uuid.UUID, id Identity) string {
	if id.TenantID == tenantID && id.Role == Admin {
		return Schema(tenantID)
	}
	return MemberRole(tenantID)
}
