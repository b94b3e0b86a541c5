// Package auth mints API keys and resolves them to an identity. A key names
// its tenant, so the lookup itself runs inside that tenant's transaction,
// under the same RLS policy as everything else: there is no privileged
// "find any key" path. Keys are random, shown once and stored as SHA-256.
// The tenant a key names is no secret, so until the key is found the lookup
// is admitted as a sign-in (tenant.DB.LookupAs), not in the tenant's share
// of the pool: forged keys naming a tenant do not crowd out its requests.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// keyPrefix marks dbchat keys (and makes leaked ones easy to grep for).
const keyPrefix = "dbc_"

// secretBytes of randomness make keys unguessable, so a fast hash suffices.
const secretBytes = 32

// NewKey is a freshly minted key. Plain is shown to the user once and never
// stored; Prefix (a few characters of the secret) identifies it in lists.
type NewKey struct {
	Plain  string
	Prefix string
	Hash   []byte
}

// Generate mints a key for tenantID: dbc_<tenant hex>_<43 base64url chars>.
func Generate(tenantID uuid.UUID) (NewKey, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return NewKey{}, err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	plain := keyPrefix + hex.EncodeToString(tenantID[:]) + "_" + secret
	return NewKey{Plain: plain, Prefix: secret[:8], Hash: Hash(plain)}, nil
}

// Hash is what the database stores for a key.
func Hash(plain string) []byte {
	sum := sha256.Sum256([]byte(plain))
	return sum[:]
}

// ParseTenant extracts the tenant a key claims. The claim is only a routing
// hint: the key must still match a hash stored under that tenant.
func ParseTenant(plain string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(plain, keyPrefix)
	if !ok || len(rest) != 32+1+43 || rest[32] != '_' {
		return uuid.Nil, false
	}
	raw, err := hex.DecodeString(rest[:32])
	if err != nil {
		return uuid.Nil, false
	}
	id, err := uuid.FromBytes(raw)
	return id, err == nil && id != uuid.Nil
}

// errUnauthorized is the one answer for a missing, malformed, unknown or
// revoked key, so callers learn nothing about which it was.
var errUnauthorized = apperr.Errorf(apperr.Unauthorized, "missing or invalid API key")

// Authenticate resolves a bearer key to the identity it acts as.
func Authenticate(ctx context.Context, db *tenant.DB, plain string) (tenant.Identity, error) {
	return AuthenticateBy(ctx, db, plain, AuthenticateKeyOnly)
}

// AuthenticateKeyOnly is the plain Lookup: the key's row, nothing more.
func AuthenticateKeyOnly(ctx context.Context, tx tenant.Conn, hash []byte) (dbsqlc.AuthenticateKeyRow, error) {
	return dbsqlc.New().AuthenticateKey(ctx, tx, hash)
}

// Lookup finds a key's row by its hash in the key's tenant's transaction,
// in one statement: AuthenticateKey, or a statement that does more in the
// same round trip (limits.Service.KeyLookup takes the request's rate token).
type Lookup func(ctx context.Context, tx tenant.Conn, hash []byte) (dbsqlc.AuthenticateKeyRow, error)

// AuthenticateBy is Authenticate with the key's row found by lookup.
func AuthenticateBy(ctx context.Context, db *tenant.DB, plain string, lookup Lookup) (tenant.Identity, error) {
	return authenticateBy(ctx, db, plain, lookup, false)
}

// authenticateBy looks plain up. Not verified yet, the lookup is a sign-in
// (tenant.DB.LookupAs), not a request of the tenant it names, whose share
// a flood of forged keys naming it would otherwise spend; known (the key
// was found before, see Cache) it is the tenant's own request.
func authenticateBy(ctx context.Context, db *tenant.DB, plain string, lookup Lookup, known bool) (tenant.Identity, error) {
	tenantID, ok := ParseTenant(plain)
	if !ok {
		return tenant.Identity{}, errUnauthorized
	}
	var row dbsqlc.AuthenticateKeyRow
	find := func(tx tenant.Conn) error {
		var err error
		row, err = lookup(ctx, tx, Hash(plain))
		return err
	}
	var err error
	if known {
		err = db.OnceAs(ctx, tenant.Identity{TenantID: tenantID}, find)
	} else {
		err = db.LookupAs(ctx, tenantID, find)
	}
	if apperr.CodeOf(err) == apperr.NotFound {
		return tenant.Identity{}, errUnauthorized
	}
	if err != nil {
		return tenant.Identity{}, err
	}
	id := tenant.Identity{TenantID: tenantID, UserID: row.UserID, Role: tenant.Role(row.Role), KeyID: row.KeyID, Epoch: row.Epoch}
	if row.Stale {
		// At most once a minute per key; a failure to record use is not a
		// reason to refuse the request.
		_ = db.OnceAs(ctx, id, func(tx tenant.Conn) error { return dbsqlc.New().TouchAPIKey(ctx, tx, row.KeyID) })
	}
	return id, nil
}
