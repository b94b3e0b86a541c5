package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Reason says why a token was refused, in the error's details ("reason");
// it names the check that failed and nothing about keys, users or tenants.
type Reason string

// The reasons a token is refused (401 unauthorized).
const (
	ReasonMalformed    Reason = "malformed"          // not a compact JWS with JSON header and claims
	ReasonAlgorithm    Reason = "algorithm_rejected" // alg outside RS256, ES256, EdDSA (none, HS256, ...)
	ReasonHeader       Reason = "header_rejected"    // jku, x5u, jwk, x5c or crit: never followed
	ReasonIssuer       Reason = "unknown_issuer"     // no registered provider has this iss
	ReasonSignature    Reason = "bad_signature"      // no key of the provider verifies it
	ReasonExpired      Reason = "expired"            // exp passed (or missing)
	ReasonNotYetValid  Reason = "not_yet_valid"      // nbf or iat in the future
	ReasonAudience     Reason = "wrong_audience"     // aud lacks the provider's audience
	ReasonSubject      Reason = "missing_subject"    // the mapped user claim is missing or not a string
	ReasonTenantClaim  Reason = "tenant_mismatch"    // a tenant claim names another tenant
	ReasonUserDisabled Reason = "user_disabled"      // the provisioned user was deactivated
)

func refuse(r Reason, what string) error {
	e := apperr.Errorf(apperr.Unauthorized, "invalid token: %s", what)
	e.Details = map[string]any{"reason": string(r)}
	return e
}

// ReasonOf is the reason err refused a token ("" if it is not a refusal).
func ReasonOf(err error) Reason {
	e := apperr.As(err)
	if e.Code != apperr.Unauthorized || e.Details == nil {
		return ""
	}
	r, _ := e.Details["reason"].(string)
	return Reason(r)
}

// Algorithms is the allowlist: asymmetric only, so a provider's public key
// can never serve as an HMAC secret.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// forbiddenHeaders point at keys the token chooses itself. They are never
// fetched or used; a token carrying one is refused outright.
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c", "crit"}

// tenantClaims are claims that would name a dbchat tenant. The tenant is the
// provider's; a token whose claim names another is refused rather than
// silently re-scoped.
var tenantClaims = []string{"tenant_id", "tenant", "dbchat_tenant", "dbchat_tenant_id"}

// Defaults of Options.
const (
	DefaultLeeway     = 60 * time.Second
	DefaultKeysTTL    = 10 * time.Minute
	DefaultMinRefresh = 10 * time.Second
	// DefaultProviderTTL is how long a provider found by issuer is reused.
	// Reusing it is safe: each sign-in's user lookup checks, in the same
	// statement, that the provider is still registered and its tenant
	// active, and a token the cached provider refuses is tried once more
	// with a fresh lookup.
	DefaultProviderTTL = 5 * time.Minute
	maxProviders       = 10000
	// VerifiedTTL is how long a verified token (the same bytes, for the
	// same provider registration) skips its signature check: at most this
	// long, and never past its exp. A deleted provider or a deactivated
	// tenant still stops it at once (the sign-in's user lookup checks both).
	VerifiedTTL   = time.Minute
	maxVerified   = 10000
	maxTokenBytes = 16 << 10
	maxFetchBytes = 1 << 20
)

// Options tune a Verifier; zero fields take the defaults.
type Options struct {
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// KeysTTL is how long a fetched JWKS is used before it is fetched again.
	KeysTTL time.Duration
	// MinRefresh is the least time between two fetches of one JWKS URL: a
	// token with an unknown kid refetches at most this often.
	MinRefresh time.Duration
	// ProviderTTL is how long a provider looked up by issuer is reused.
	ProviderTTL time.Duration
	// Client fetches JWKS URLs (default: 5 s timeout, no redirects).
	Client *http.Client
	// Now is the clock (tests).
	Now func() time.Time
}

// Verifier checks provider tokens and resolves them to an identity.
type Verifier struct {
	db        *tenant.DB
	opt       Options
	mu        sync.Mutex
	sets      map[string]*keyCache      // by JWKS URL
	providers map[string]cachedProvider // by issuer
	verified  map[[32]byte]verifiedToken
}

// verifiedToken is a token whose signature and claims one provider
// registration verified: the same bytes skip decoding and the signature
// check until until, while that registration is still the issuer's.
type verifiedToken struct {
	claims   map[string]any
	until    time.Time
	iss      string
	provider uuid.UUID
	signedIn *tenant.Identity // who it signed in as, once it did
}

type cachedProvider struct {
	row dbsqlc.IdentityProviderByIssuerRow
	at  time.Time
}

// NewVerifier returns a Verifier over db.
func NewVerifier(db *tenant.DB, opt Options) *Verifier {
	if opt.Leeway <= 0 {
		opt.Leeway = DefaultLeeway
	}
	if opt.KeysTTL <= 0 {
		opt.KeysTTL = DefaultKeysTTL
	}
	if opt.MinRefresh <= 0 {
		opt.MinRefresh = DefaultMinRefresh
	}
	if opt.ProviderTTL <= 0 {
		opt.ProviderTTL = DefaultProviderTTL
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Verifier{db: db, opt: opt, sets: map[string]*keyCache{}, providers: map[string]cachedProvider{}}
}

// LooksLikeJWT tells a compact JWS (three dot-separated parts) from an API
// key.
func LooksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

// AuthenticateWith is Authenticate for a request: a token that signed in
// lately is neither verified nor signed in again. Its identity carries a
// tenant.Check instead (auth.Confirm: the tenant's credential epoch has not
// moved since the sign-in read it, so the user is still active, with the
// same role, linked to the same provider, in an active tenant; with
// tokens, the request's rate token too), which the request's first
// statement sends in the same round trip; a refusal forgets the token, and
// the server signs in afresh.
func (v *Verifier) AuthenticateWith(ctx context.Context, raw string, tokens auth.TokensFor) (tenant.Identity, error) {
	key := sha256.Sum256([]byte(raw))
	if t, ok := v.wasVerified(key); ok && t.signedIn != nil {
		id := *t.signedIn
		var take *auth.Tokens
		if tokens != nil {
			take = tokens(id.TenantID)
		}
		// Refused, the token is forgotten and signed in afresh, which
		// gives the reason (a removed provider, a disabled user).
		id.Check = auth.Confirm(id, take, func(string) error {
			v.forgetToken(key)
			return refuse(ReasonUserDisabled, "user disabled")
		})
		return id, nil
	}
	id, err := v.Authenticate(ctx, raw)
	if err == nil {
		v.rememberSignIn(key, id)
	}
	return id, err
}

// rememberSignIn records, on a verified token's entry, who it signed in as.
func (v *Verifier) rememberSignIn(key [32]byte, id tenant.Identity) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t, ok := v.verified[key]; ok {
		t.signedIn = &id
		v.verified[key] = t
	}
}

// forgetToken drops a verified token (its sign-in no longer holds).
func (v *Verifier) forgetToken(key [32]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.verified, key)
}

// Authenticate verifies raw, a compact JWS from a registered provider, and
// returns the identity it signs in: the provider's tenant, the user
// provisioned for its subject, and the mapped pass-through claims.
func (v *Verifier) Authenticate(ctx context.Context, raw string) (tenant.Identity, error) {
	key := sha256.Sum256([]byte(raw))
	if t, ok := v.wasVerified(key); ok {
		// The same bytes, verified lately: only the sign-in's lookups run
		// (the user, the provider's registration through its cache).
		p, cached, err := v.provider(ctx, t.iss, false)
		if err == nil && p.ID == t.provider {
			id, err := v.signIn(ctx, p, t.claims, cached)
			if !errors.Is(err, errProviderStale) {
				return id, err
			}
		}
	}
	header, payload, err := peek(raw)
	if err != nil {
		return tenant.Identity{}, err
	}
	if err := checkHeader(header); err != nil {
		return tenant.Identity{}, err
	}
	iss, _ := payload["iss"].(string)
	if iss == "" {
		return tenant.Identity{}, refuse(ReasonIssuer, "unknown issuer")
	}
	// A cached provider first; whatever it refuses (a provider removed or
	// registered again since) is tried once more with a fresh lookup.
	for fresh := false; ; fresh = true {
		p, cached, err := v.provider(ctx, iss, fresh)
		if err != nil {
			return tenant.Identity{}, err
		}
		claims, err := v.verify(ctx, key, raw, iss, p)
		if err == nil {
			var id tenant.Identity
			id, err = v.signIn(ctx, p, claims, cached)
			if !errors.Is(err, errProviderStale) {
				return id, err
			}
		}
		if !cached {
			return tenant.Identity{}, err
		}
		v.forget(iss)
	}
}

// errProviderStale: the cached provider's user lookup found nothing, which
// a fresh lookup must tell apart from a first sight.
var errProviderStale = errors.New("identity: cached provider may be stale")

// peek decodes the header and claims without trusting them: the header is
// checked before anything else, and iss only chooses the provider whose
// keys must then verify the signature.
func peek(raw string) (header, payload map[string]any, err error) {
	bad := refuse(ReasonMalformed, "not a signed JWT")
	parts := strings.Split(raw, ".")
	if len(raw) > maxTokenBytes || len(parts) != 3 {
		return nil, nil, bad
	}
	if header, err = decodeSegment(parts[0]); err != nil {
		return nil, nil, bad
	}
	if payload, err = decodeSegment(parts[1]); err != nil {
		return nil, nil, bad
	}
	return header, payload, nil
}

func decodeSegment(seg string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return m, nil
}

func checkHeader(h map[string]any) error {
	alg, _ := h["alg"].(string)
	allowed := false
	for _, a := range Algorithms {
		allowed = allowed || alg == string(a)
	}
	if !allowed {
		return refuse(ReasonAlgorithm, "signing algorithm not accepted (RS256, ES256 or EdDSA)")
	}
	for _, name := range forbiddenHeaders {
		if _, ok := h[name]; ok {
			return refuse(ReasonHeader, "header "+name+" is not accepted")
		}
	}
	return nil
}

// provider looks the issuer up across tenants (the one lookup that does),
// or reuses a recent answer unless fresh; cached says which. Unknown
// issuers are never cached.
func (v *Verifier) provider(ctx context.Context, iss string, fresh bool) (p dbsqlc.IdentityProviderByIssuerRow, cached bool, err error) {
	now := v.opt.Now()
	if !fresh {
		v.mu.Lock()
		e, ok := v.providers[iss]
		v.mu.Unlock()
		if ok && now.Sub(e.at) < v.opt.ProviderTTL {
			return e.row, true, nil
		}
	}
	// The token is not verified yet (its issuer's keys are what this finds):
	// a sign-in, not in the share of the zero identity's (operator) requests.
	err = v.db.LookupAs(ctx, uuid.Nil, func(tx tenant.Conn) error {
		var err error
		p, err = dbsqlc.New().IdentityProviderByIssuer(ctx, tx, iss)
		return err
	})
	if apperr.CodeOf(err) == apperr.NotFound {
		v.forget(iss)
		return p, false, refuse(ReasonIssuer, "unknown issuer")
	}
	if err != nil {
		return p, false, err
	}
	v.mu.Lock()
	if len(v.providers) >= maxProviders {
		clear(v.providers)
	}
	v.providers[iss] = cachedProvider{row: p, at: now}
	v.mu.Unlock()
	return p, false, nil
}

func (v *Verifier) forget(iss string) {
	v.mu.Lock()
	delete(v.providers, iss)
	v.mu.Unlock()
}

// verify checks the signature with the provider's keys, then the
// registered claims; it returns every claim of the token.
func (v *Verifier) verify(ctx context.Context, key [32]byte, raw, iss string, p dbsqlc.IdentityProviderByIssuerRow) (map[string]any, error) {
	if t, ok := v.wasVerified(key); ok && t.provider == p.ID {
		return t.claims, nil
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return nil, refuse(ReasonMalformed, "not a signed JWT")
	}
	all, err := v.signed(ctx, tok, p)
	if err != nil {
		return nil, err
	}
	exp, err := v.checkClaims(all, iss, p.Audience)
	if err != nil {
		return nil, err
	}
	v.remember(key, verifiedToken{claims: all, until: exp, iss: iss, provider: p.ID})
	return all, nil
}

// wasVerified returns a token verified less than VerifiedTTL ago and not
// yet expired.
func (v *Verifier) wasVerified(key [32]byte) (verifiedToken, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.verified[key]
	if !ok || !v.opt.Now().Before(t.until) {
		return verifiedToken{}, false
	}
	return t, true
}

// remember keeps a verified token until VerifiedTTL from now or its exp
// (t.until on entry), whichever comes first; the cache is emptied when full.
func (v *Verifier) remember(key [32]byte, t verifiedToken) {
	if limit := v.opt.Now().Add(VerifiedTTL); limit.Before(t.until) {
		t.until = limit
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verified == nil || len(v.verified) >= maxVerified {
		v.verified = map[[32]byte]verifiedToken{}
	}
	v.verified[key] = t
}

// signed returns the token's claims once one of the issuer's keys (of the
// header's kid and algorithm, when the key names them) verifies it.
func (v *Verifier) signed(ctx context.Context, tok *jwt.JSONWebToken, p dbsqlc.IdentityProviderByIssuerRow) (map[string]any, error) {
	h := tok.Headers[0]
	keys, err := v.keys(ctx, p, h.KeyID)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		var all map[string]any
		if tok.Claims(k.Key, &all) == nil {
			return all, nil
		}
	}
	return nil, refuse(ReasonSignature, "signature not verified by the issuer's keys")
}

// checkClaims checks the registered claims of a verified token: exp is
// required, exp/nbf/iat within the leeway, iss and aud as registered.
func (v *Verifier) checkClaims(all map[string]any, iss, audience string) (time.Time, error) {
	// Typed: a verified token whose exp is not a number or whose sub is
	// not a string is malformed, not forged.
	var std jwt.Claims
	if b, err := json.Marshal(all); err != nil || json.Unmarshal(b, &std) != nil {
		return time.Time{}, refuse(ReasonMalformed, "claims not valid")
	}
	if std.Expiry == nil {
		return time.Time{}, refuse(ReasonExpired, "expired or without exp")
	}
	err := std.ValidateWithLeeway(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{audience}, Time: v.opt.Now()}, v.opt.Leeway)
	switch {
	case err == nil:
		return std.Expiry.Time(), nil
	case errors.Is(err, jwt.ErrExpired):
		return time.Time{}, refuse(ReasonExpired, "expired or without exp")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return time.Time{}, refuse(ReasonNotYetValid, "not yet valid")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return time.Time{}, refuse(ReasonAudience, "wrong audience")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return time.Time{}, refuse(ReasonIssuer, "unknown issuer")
	}
	return time.Time{}, refuse(ReasonMalformed, "claims not valid")
}

// signIn maps the verified claims and finds, or provisions, the user.
func (v *Verifier) signIn(ctx context.Context, p dbsqlc.IdentityProviderByIssuerRow, claims map[string]any, cached bool) (tenant.Identity, error) {
	for _, name := range tenantClaims {
		if val, ok := claims[name]; ok && fmt.Sprint(val) != p.TenantID.String() {
			return tenant.Identity{}, refuse(ReasonTenantClaim, "a tenant claim names another tenant")
		}
	}
	subject, _ := claims[p.UserClaim].(string)
	if subject == "" || len(subject) > 1000 {
		return tenant.Identity{}, refuse(ReasonSubject, "user claim missing")
	}
	role := tenant.Member
	if p.RoleClaim != "" && hasAny(claims[p.RoleClaim], p.AdminValues) {
		role = tenant.Admin
	}
	id, err := v.user(ctx, p, subject, role, claims, cached)
	if err != nil {
		return tenant.Identity{}, err
	}
	id.Claims = map[string]any{}
	for _, name := range p.PassClaims {
		if val, ok := claims[name]; ok {
			id.Claims[name] = val
		}
	}
	return id, nil
}

func hasAny(v any, want []string) bool {
	var have []string
	switch x := v.(type) {
	case string:
		have = []string{x} // compared whole: "not admin" is not "admin"
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				have = append(have, s)
			}
		}
	}
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// user is the tenant's user for (provider, subject), provisioned on first
// sight; its role follows the token's role claim. With a cached provider,
// finding no user is errProviderStale: only a fresh lookup provisions.
func (v *Verifier) user(ctx context.Context, p dbsqlc.IdentityProviderByIssuerRow, subject string, role tenant.Role, claims map[string]any, cached bool) (tenant.Identity, error) {
	scope := tenant.Identity{TenantID: p.TenantID}
	key := dbsqlc.UserBySubjectParams{IdentityProviderID: &p.ID, Subject: &subject}
	u, err := v.bySubject(ctx, scope, key)
	switch {
	case apperr.CodeOf(err) == apperr.NotFound && cached:
		return tenant.Identity{}, errProviderStale
	case apperr.CodeOf(err) == apperr.NotFound:
		u, err = v.provision(ctx, scope, key, dbsqlc.ProvisionUserParams{
			Email: email(claims, p.EmailClaim, fallbackEmail(p.ID, subject)), FallbackEmail: fallbackEmail(p.ID, subject),
			Name: name(claims), Role: string(role), IdentityProviderID: p.ID, Subject: subject,
		})
	}
	if err != nil {
		return tenant.Identity{}, err
	}
	if !u.IsActive {
		return tenant.Identity{}, refuse(ReasonUserDisabled, "user disabled")
	}
	if tenant.Role(u.Role) != role { // the role follows the claim on every sign-in
		err = v.db.OnceAs(ctx, scope, func(tx tenant.Conn) error {
			return dbsqlc.New().SetUserRole(ctx, tx, dbsqlc.SetUserRoleParams{ID: u.ID, Role: string(role)})
		})
		if err != nil {
			return tenant.Identity{}, err
		}
	}
	// After SetUserRole the epoch read with the user has moved: the first
	// confirmation refuses it as changed and the next sign-in reads it anew.
	return tenant.Identity{TenantID: p.TenantID, UserID: u.ID, Role: role, Epoch: u.Epoch}, nil
}

// bySubject reads the user a provider's subject signed in as before.
func (v *Verifier) bySubject(ctx context.Context, scope tenant.Identity, key dbsqlc.UserBySubjectParams) (dbsqlc.UserBySubjectRow, error) {
	var u dbsqlc.UserBySubjectRow
	err := v.db.OnceAs(ctx, scope, func(tx tenant.Conn) error {
		var err error
		u, err = dbsqlc.New().UserBySubject(ctx, tx, key)
		return err
	})
	return u, err
}

// provision creates the member (or admin) a subject's first sign-in
// makes. A concurrent first sight that wins makes the insert return no row
// (inside the transaction the error is still pgx's; TxAs translates it
// later) or, when it inserted the same email (a unique key the ON CONFLICT
// does not arbitrate), a conflict: either way the winner's user is read.
func (v *Verifier) provision(ctx context.Context, scope tenant.Identity, key dbsqlc.UserBySubjectParams, p dbsqlc.ProvisionUserParams) (dbsqlc.UserBySubjectRow, error) {
	q := dbsqlc.New()
	var u dbsqlc.UserBySubjectRow
	err := v.db.TxAs(ctx, scope, func(tx tenant.Conn) error {
		row, err := q.ProvisionUser(ctx, tx, p)
		if errors.Is(err, pgx.ErrNoRows) {
			u, err = q.UserBySubject(ctx, tx, key)
			return err
		}
		u = dbsqlc.UserBySubjectRow(row)
		return err
	})
	if apperr.CodeOf(err) == apperr.Conflict {
		return v.bySubject(ctx, scope, key)
	}
	return u, err
}

// email is the mapped email claim, or fallback when there is none.
func email(claims map[string]any, claim, fallback string) string {
	e, _ := claims[claim].(string)
	e = strings.ToLower(strings.TrimSpace(e))
	if claim == "" || len(e) < 3 || len(e) > 320 || !strings.Contains(e, "@") {
		return fallback
	}
	return e
}

// fallbackEmail stands in for a missing email, or one another user of the
// tenant has: unique per provider and subject, and undeliverable (.invalid).
func fallbackEmail(provider uuid.UUID, subject string) string {
	sum := sha256.Sum256([]byte(provider.String() + "\x00" + subject))
	return "idp-" + hex.EncodeToString(sum[:10]) + "@users.invalid"
}

func name(claims map[string]any) string {
	n, _ := claims["name"].(string)
	if len([]rune(n)) > 200 {
		return ""
	}
	return n
}

// keyCache is one JWKS URL's keys.
type keyCache struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
	err     error     // last attempt's failure
}

// keys are the provider's verification keys: the inline set, or the cached
// fetched set, fetched again when it is older than KeysTTL or lacks kid
// (at most once per MinRefresh).
func (v *Verifier) keys(ctx context.Context, p dbsqlc.IdentityProviderByIssuerRow, kid string) ([]jose.JSONWebKey, error) {
	if p.JwksUrl == "" {
		keys, err := ParseKeySet(p.Jwks)
		if err != nil {
			return nil, apperr.Wrap(apperr.Internal, err, "stored key set invalid")
		}
		return keys, nil
	}
	v.mu.Lock()
	c := v.sets[p.JwksUrl]
	if c == nil {
		c = &keyCache{}
		v.sets[p.JwksUrl] = c
	}
	v.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	now := v.opt.Now()
	stale := c.keys == nil || now.Sub(c.fetched) > v.opt.KeysTTL
	missing := kid != "" && !hasKid(c.keys, kid)
	if (stale || missing) && (c.tried.IsZero() || now.Sub(c.tried) >= v.opt.MinRefresh) {
		c.tried = now
		// Not the request's context: a client that hangs up mid-fetch must
		// not leave every other sign-in without keys until MinRefresh.
		keys, err := v.fetch(context.WithoutCancel(ctx), p.JwksUrl)
		if err == nil {
			c.keys, c.fetched, c.err = keys, now, nil
		} else {
			c.err = err
		}
	}
	if c.keys == nil {
		return nil, apperr.Wrap(apperr.Unavailable, c.err, "the identity provider's keys are unavailable")
	}
	return c.keys, nil
}

func hasKid(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// fetch reads a JWKS URL: 200 only, no redirects, at most 1 MiB; the keys
// it cannot use (private, symmetric, encryption) are dropped.
func (v *Verifier) fetch(ctx context.Context, url string) ([]jose.JSONWebKey, error) {
	if err := CheckJWKSURL(url); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.opt.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxFetchBytes {
		return nil, fmt.Errorf("jwks %s: larger than 1 MiB", url)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks %s: %w", url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if checkKey(k) == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks %s: no usable public signing key", url)
	}
	return keys, nil
}
