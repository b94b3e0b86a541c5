// Package identity signs end users in with tokens from their tenant's own
// identity provider (OIDC/JWT, issue 15 §1).
//
// A tenant admin registers a provider (Spec): its issuer, the audience its
// tokens carry, where its signing keys are (a JWKS URL, or an inline JWK set)
// and a claim mapping. The registry is a tenant table under the same forced
// tenant_isolation policy as every other; an issuer belongs to one tenant
// only (a global unique key, 409 for a second tenant).
//
// Signing in (Verifier.Authenticate) needs the provider before any tenant is
// known: the token's unverified iss is looked up through
// dbchat_ops.identity_provider_by_issuer, a SECURITY DEFINER function owned by
// dbchat_operator that returns one exact issuer's verification data and its
// tenant. The signature is then checked against that provider's keys with
// go-jose (RS256, ES256 and EdDSA only), and exp, nbf, iat, iss and aud
// against the provider's registration. The tenant the request acts in is the
// provider's, never a claim of the token. The first token of a subject
// provisions a user just in time.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Claims is a provider's claim mapping.
type Claims struct {
	// User names the claim that identifies the end user (default "sub").
	User string `json:"user"`
	// Email names the claim holding the user's email ("" for none).
	Email string `json:"email"`
	// Role names a claim (string or array of strings); a user whose role
	// claim holds one of AdminValues is a tenant admin, anyone else a member.
	Role        string   `json:"role"`
	AdminValues []string `json:"admin_values"`
	// Pass names the claims passed through to the request's identity.
	Pass []string `json:"pass"`
}

// Spec is a provider as registered (POST /v1/identity-providers).
type Spec struct {
	Issuer   string          `json:"issuer"`
	Audience string          `json:"audience"`
	JWKSURL  string          `json:"jwks_url,omitempty"`
	JWKS     json.RawMessage `json:"jwks,omitempty"`
	Claims   Claims          `json:"claims"`
	// Login enables the web app's sign-in through the provider (OpenID
	// Connect code flow with PKCE; see login.go); nil: tokens only.
	Login *Login `json:"login,omitempty"`
}

// Login is where the web app's sign-in sends the browser and trades its
// code. The OIDC client id is the provider's audience, as an ID token's
// aud is the client it was issued to.
type Login struct {
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// Provider is a registered provider as the API shows it.
type Provider struct {
	ID        uuid.UUID       `json:"id"`
	Issuer    string          `json:"issuer"`
	Audience  string          `json:"audience"`
	JWKSURL   string          `json:"jwks_url,omitempty"`
	JWKS      json.RawMessage `json:"jwks,omitempty"`
	Claims    Claims          `json:"claims"`
	Login     *Login          `json:"login,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// Bounds of a registration.
const (
	maxTextLen   = 2000
	maxClaimName = 200
	maxPass      = 50
	maxJWKSBytes = 64 << 10
	maxJWKSKeys  = 50
)

// Validate normalises s and checks every field; an error names the field.
func (s *Spec) Validate() error {
	s.Issuer, s.Audience, s.JWKSURL = strings.TrimSpace(s.Issuer), strings.TrimSpace(s.Audience), strings.TrimSpace(s.JWKSURL)
	if err := text("issuer", s.Issuer); err != nil {
		return err
	}
	if err := text("audience", s.Audience); err != nil {
		return err
	}
	hasKeys := len(s.JWKS) > 0 && string(s.JWKS) != "null"
	switch {
	case s.JWKSURL == "" && !hasKeys:
		return apperr.Field("jwks_url", "give jwks_url or an inline jwks")
	case s.JWKSURL != "" && hasKeys:
		return apperr.Field("jwks", "give jwks_url or jwks, not both")
	case hasKeys:
		if _, err := ParseKeySet(s.JWKS); err != nil {
			return apperr.Field("jwks", "%s", err.Error())
		}
	default:
		if err := CheckJWKSURL(s.JWKSURL); err != nil {
			return apperr.Field("jwks_url", "%s", err.Error())
		}
	}
	if !hasKeys {
		s.JWKS = nil
	}
	if err := s.Login.validate(s.Issuer); err != nil {
		return err
	}
	return s.Claims.validate()
}

// validate checks both endpoints like a JWKS URL (https, or http on a
// loopback host), and that the authorization endpoint, where the server
// sends browsers, is on the issuer's host (or a loopback one): the start of
// a sign-in must not be a redirect to anywhere a tenant admin likes.
func (l *Login) validate(issuer string) error {
	if l == nil {
		return nil
	}
	for field, v := range map[string]*string{"login.authorization_endpoint": &l.AuthorizationEndpoint, "login.token_endpoint": &l.TokenEndpoint} {
		*v = strings.TrimSpace(*v)
		if err := CheckJWKSURL(*v); err != nil {
			return apperr.Field(field, "%s", err.Error())
		}
	}
	auth, _ := url.Parse(l.AuthorizationEndpoint)
	iss, err := url.Parse(issuer)
	if !isLoopback(auth.Hostname()) && (err != nil || !strings.EqualFold(auth.Host, iss.Host)) {
		return apperr.Field("login.authorization_endpoint", "must be on the issuer's host (%s)", iss.Host)
	}
	return nil
}

func (c *Claims) validate() error {
	if c.User == "" {
		c.User = "sub"
	}
	for field, v := range map[string]string{"claims.user": c.User, "claims.email": c.Email, "claims.role": c.Role} {
		if err := claimName(field, v, field == "claims.user"); err != nil {
			return err
		}
	}
	if c.Role == "" && len(c.AdminValues) > 0 {
		return apperr.Field("claims.role", "admin_values need a role claim")
	}
	if len(c.AdminValues) > maxPass {
		return apperr.Field("claims.admin_values", "at most %d values", maxPass)
	}
	for _, v := range c.AdminValues {
		if err := claimName("claims.admin_values", v, true); err != nil {
			return err
		}
	}
	if len(c.Pass) > maxPass {
		return apperr.Field("claims.pass", "at most %d claims", maxPass)
	}
	seen := map[string]bool{}
	for _, v := range c.Pass {
		if err := claimName("claims.pass", v, true); err != nil {
			return err
		}
		if seen[v] {
			return apperr.Field("claims.pass", "%q is listed twice", v)
		}
		seen[v] = true
	}
	if c.AdminValues == nil {
		c.AdminValues = []string{}
	}
	if c.Pass == nil {
		c.Pass = []string{}
	}
	return nil
}

func text(field, v string) error {
	if v == "" || len(v) > maxTextLen || !utf8.ValidString(v) || strings.ContainsAny(v, " \t\r\n") {
		return apperr.Field(field, "must be 1 to %d characters without spaces", maxTextLen)
	}
	return nil
}

func claimName(field, v string, required bool) error {
	if v == "" && !required {
		return nil
	}
	if v == "" || len(v) > maxClaimName || !utf8.ValidString(v) {
		return apperr.Field(field, "must be 1 to %d characters", maxClaimName)
	}
	return nil
}

// CheckJWKSURL accepts an https URL, or an http one whose host is a
// loopback address (tests and local setups).
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errString("must be an absolute URL without credentials or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errString("must be https (http only for a loopback host)")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type errString string

func (e errString) Error() string { return string(e) }

// ParseKeySet parses a JWK set and keeps only what may verify a token:
// public RSA, EC and Ed25519 keys meant for signatures. A private or
// symmetric key in the set is an error (a registration must never carry a
// secret, and a symmetric key is how HS256 confusion starts).
func ParseKeySet(raw []byte) ([]jose.JSONWebKey, error) {
	if len(raw) > maxJWKSBytes {
		return nil, errString("is larger than 64 KiB")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, errString("is not a JWK set ({\"keys\": [...]}) of valid keys")
	}
	if len(set.Keys) == 0 || len(set.Keys) > maxJWKSKeys {
		return nil, errString("must hold 1 to 50 keys")
	}
	for _, k := range set.Keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
	}
	return set.Keys, nil
}

// checkKey accepts a public RSA, EC or Ed25519 key meant for signatures.
func checkKey(k jose.JSONWebKey) error {
	switch k.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return errString("must hold public RSA, EC or Ed25519 keys only")
	}
	if k.Use != "" && k.Use != "sig" {
		return errString("keys must be signature keys (use \"sig\")")
	}
	return nil
}

// Create registers spec (already validated) in the caller's tenant. A
// second registration of an issuer, by any tenant, is a conflict.
func Create(ctx context.Context, tx tenant.Conn, spec Spec) (Provider, error) {
	var jwksURL *string
	if spec.JWKSURL != "" {
		jwksURL = &spec.JWKSURL
	}
	var login struct{ AuthorizationEndpoint, TokenEndpoint *string }
	if spec.Login != nil {
		login.AuthorizationEndpoint, login.TokenEndpoint = &spec.Login.AuthorizationEndpoint, &spec.Login.TokenEndpoint
	}
	row, err := dbsqlc.New().CreateIdentityProvider(ctx, tx, dbsqlc.CreateIdentityProviderParams{
		Issuer: spec.Issuer, Audience: spec.Audience, JwksUrl: jwksURL, Jwks: spec.JWKS,
		UserClaim: spec.Claims.User, EmailClaim: spec.Claims.Email, RoleClaim: spec.Claims.Role,
		AdminValues: spec.Claims.AdminValues, PassClaims: spec.Claims.Pass,
		AuthorizationEndpoint: login.AuthorizationEndpoint, TokenEndpoint: login.TokenEndpoint,
	})
	if apperr.CodeOf(err) == apperr.Conflict {
		err = apperr.Errorf(apperr.Conflict, "issuer %q is already registered; an issuer belongs to one tenant only", spec.Issuer)
	}
	return toProvider(row), err
}

// List is the caller's tenant's providers.
func List(ctx context.Context, tx tenant.Conn) ([]Provider, error) {
	rows, err := dbsqlc.New().ListIdentityProviders(ctx, tx)
	out := make([]Provider, len(rows))
	for i, r := range rows {
		out[i] = toProvider(r)
	}
	return out, err
}

// Delete removes one of the caller's tenant's providers; its users stay,
// unlinked. Another tenant's provider is not found, like an unknown one.
func Delete(ctx context.Context, tx tenant.Conn, id uuid.UUID) error {
	n, err := dbsqlc.New().DeleteIdentityProvider(ctx, tx, id)
	if err == nil && n == 0 {
		err = apperr.Errorf(apperr.NotFound, "not found")
	}
	return err
}

func toProvider(r dbsqlc.DbchatIdentityProvider) Provider {
	p := Provider{ID: r.ID, Issuer: r.Issuer, Audience: r.Audience, JWKS: r.Jwks, CreatedAt: r.CreatedAt,
		Claims: Claims{User: r.UserClaim, Email: r.EmailClaim, Role: r.RoleClaim, AdminValues: r.AdminValues, Pass: r.PassClaims}}
	if r.JwksUrl != nil {
		p.JWKSURL = *r.JwksUrl
	}
	if r.AuthorizationEndpoint != nil && r.TokenEndpoint != nil {
		p.Login = &Login{AuthorizationEndpoint: *r.AuthorizationEndpoint, TokenEndpoint: *r.TokenEndpoint}
	}
	return p
}
