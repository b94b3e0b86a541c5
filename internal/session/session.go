// Package session signs the web app in: an API key is exchanged for a
// browser session, so the key itself never stays in the browser.
//
// A session token is dbs_<tenant hex>_<43 base64url chars> (32 bytes from
// crypto/rand), shaped like an API key for the same reason: it names its
// tenant, so every lookup runs inside that tenant's transaction under the
// tenant_isolation policy, in one round trip, with no privileged "find any
// session" path. The tenant in the token is only a routing hint: the token
// must still match a hash stored under that tenant.
//
// The database stores the token's SHA-256 only. The CSRF token is derived
// from the session token (a SHA-256 under a label of its own) rather than
// stored, so the table holds nothing that signs anyone in or forges a
// request, and a reloaded page recovers the same CSRF token from its cookie.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// CookieName is the session cookie's name (part of the web app's contract).
const CookieName = "dbchat_session"

// CSRFHeader carries the CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// Defaults for Options' zero fields.
const (
	DefaultIdle   = 12 * time.Hour
	DefaultMaxAge = 7 * 24 * time.Hour
)

// tokenPrefix marks session tokens apart from API keys (dbc_).
const tokenPrefix = "dbs_"

// maxUserAgent is the most of a User-Agent kept (the column's limit).
const maxUserAgent = 500

// Options are the session lifetimes.
type Options struct {
	// Idle ends a session unused for this long (DefaultIdle when zero).
	Idle time.Duration
	// MaxAge ends a session this long after sign-in however active it is
	// (DefaultMaxAge when zero).
	MaxAge time.Duration
}

// Service creates, resolves and revokes sessions.
type Service struct {
	db   *tenant.DB
	opts Options
	q    *dbsqlc.Queries

	mu         sync.Mutex
	remembered map[[32]byte]rememberedSession // see AuthenticateWith
	remember   time.Duration                  // how long (a minute; tests change it)
}

// rememberedSession is a session looked up lately, until when it may be
// resolved from memory.
type rememberedSession struct {
	sess  Session
	until time.Time
}

// maxRemembered bounds the sessions a server remembers; the map is emptied
// when full.
const maxRemembered = 10000

// New returns a Service over db; zero options take the defaults.
func New(db *tenant.DB, opts Options) *Service {
	if opts.Idle <= 0 {
		opts.Idle = DefaultIdle
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	return &Service{db: db, opts: opts, q: dbsqlc.New(), remember: time.Minute}
}

// Session is a resolved session: who it acts as and its CSRF token.
type Session struct {
	ID        uuid.UUID
	Identity  tenant.Identity
	CSRFToken string
	// ExpiresAt is when the session ends if it stays unused from now on.
	ExpiresAt time.Time
}

// TenantRef is the tenant part of View.
type TenantRef struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
	Name string    `json:"name"`
}

// UserRef is the user part of View.
type UserRef struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Role  string    `json:"role"`
}

// View is what the web app learns about its session (the body of POST and
// GET /v1/sessions): its JSON tags are API.
type View struct {
	Tenant    TenantRef `json:"tenant"`
	User      UserRef   `json:"user"`
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Created is a new session: the token goes into the cookie, never into a
// body or a log.
type Created struct {
	Token string
	View  View
}

// errUnauthorized is the one answer for a missing, malformed, unknown,
// expired or revoked session, so callers learn nothing about which it was.
var errUnauthorized = apperr.Errorf(apperr.Unauthorized, "missing or invalid session")

// SignIn exchanges an API key for a session of the key's user. A bad key
// gets the same 401 as a bad bearer key.
func (s *Service) SignIn(ctx context.Context, apiKey, userAgent string) (Created, error) {
	id, err := auth.Authenticate(ctx, s.db, apiKey)
	if err != nil {
		return Created{}, err
	}
	return s.Start(ctx, id, userAgent, nil)
}

// Start opens a session for an identity already verified: an API key's
// (SignIn) or an ID token's from the browser sign-in through the tenant's
// identity provider, whose id is then provider: the session keeps the
// token's claims for its requests and ends when the provider is removed.
func (s *Service) Start(ctx context.Context, id tenant.Identity, userAgent string, provider *uuid.UUID) (Created, error) {
	claims, err := claimsJSON(id.Claims)
	if err != nil {
		return Created{}, err
	}
	token, err := newToken(id.TenantID)
	if err != nil {
		return Created{}, err
	}
	var out Created
	err = s.db.TxAs(ctx, id, func(tx tenant.Conn) error {
		row, err := s.q.CreateSession(ctx, tx, dbsqlc.CreateSessionParams{ApiKeyID: keyOf(id),
			TokenHash: Hash(token), UserAgent: truncate(userAgent, maxUserAgent), ExpiresAt: time.Now().Add(s.opts.MaxAge),
			Claims: claims, IdentityProviderID: provider})
		if err != nil {
			return err
		}
		end := row.CreatedAt.Add(s.opts.Idle)
		if row.ExpiresAt.Before(end) {
			end = row.ExpiresAt
		}
		out.View, err = s.view(ctx, tx, Session{Identity: id, CSRFToken: CSRFToken(token), ExpiresAt: end})
		return err
	})
	out.Token = token
	return out, err
}

// Authenticate resolves a cookie's token to its session. Last use is
// written at most once a minute, so requests do not each become a write.
func (s *Service) Authenticate(ctx context.Context, token string) (Session, error) {
	return s.authenticate(ctx, token, false)
}

// authenticate looks token up. The cookie names its tenant and is not
// verified yet, so the lookup is a sign-in (tenant.DB.LookupAs), not in the
// tenant's share of the pool, which forged cookies naming it would
// otherwise spend; known (found before, see AuthenticateWith) it is the
// tenant's own request.
func (s *Service) authenticate(ctx context.Context, token string, known bool) (Session, error) {
	tenantID, ok := ParseTenant(token)
	if !ok {
		return Session{}, errUnauthorized
	}
	var row dbsqlc.AuthenticateSessionRow
	find := func(tx tenant.Conn) error {
		var err error
		row, err = s.q.AuthenticateSession(ctx, tx, dbsqlc.AuthenticateSessionParams{IdleSeconds: s.opts.Idle.Seconds(), TokenHash: Hash(token)})
		return err
	}
	var err error
	if known {
		err = s.db.OnceAs(ctx, tenant.Identity{TenantID: tenantID}, find)
	} else {
		err = s.db.LookupAs(ctx, tenantID, find)
	}
	if apperr.CodeOf(err) == apperr.NotFound {
		return Session{}, errUnauthorized
	}
	if err != nil {
		return Session{}, err
	}
	id := tenant.Identity{TenantID: tenantID, UserID: row.UserID, Role: tenant.Role(row.Role)}
	if len(row.Claims) > 0 {
		if err := json.Unmarshal(row.Claims, &id.Claims); err != nil {
			return Session{}, err
		}
	}
	if row.ApiKeyID != nil {
		id.KeyID = *row.ApiKeyID
	}
	if row.Stale {
		// A failure to record use is not a reason to refuse the request.
		_ = s.db.OnceAs(ctx, id, func(tx tenant.Conn) error { return s.q.TouchSession(ctx, tx, row.ID) })
	}
	return Session{ID: row.ID, Identity: id, CSRFToken: CSRFToken(token), ExpiresAt: row.EndsAt}, nil
}

// AuthenticateWith is Authenticate for a request: a session looked up in
// the last minute is resolved from memory, its identity carrying a
// tenant.Check (dbchat.confirm_session through auth.Confirmation: not
// signed out, expired or idle, its user, tenant and key still good; with
// tokens, the request's rate token too) that the request's first statement
// sends in the same round trip. A refusal forgets it. The lookup a minute
// later also records the session's use, as Authenticate does; it runs in
// the session's tenant's share of the pool, not among the sign-ins, since
// only the cookie's holder can send a token found before (a lookup that
// refuses it forgets it).
func (s *Service) AuthenticateWith(ctx context.Context, token string, tokens auth.TokensFor) (Session, error) {
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	s.mu.Lock()
	r, ok := s.remembered[key]
	s.mu.Unlock()
	if ok && now.Before(r.until) {
		sess := r.sess
		var take *auth.Tokens
		if tokens != nil {
			take = tokens(sess.Identity.TenantID)
		}
		sess.Identity.Check = auth.Confirmation("dbchat.confirm_session", []any{sess.ID, s.opts.Idle.Seconds()}, take,
			func(string) error {
				s.forget(key)
				return errUnauthorized
			})
		return sess, nil
	}
	sess, err := s.authenticate(ctx, token, ok)
	switch {
	case err == nil:
		s.mu.Lock()
		if s.remembered == nil || len(s.remembered) >= maxRemembered {
			s.remembered = map[[32]byte]rememberedSession{}
		}
		s.remembered[key] = rememberedSession{sess: sess, until: now.Add(s.remember)}
		s.mu.Unlock()
	case ok && apperr.CodeOf(err) == apperr.Unauthorized:
		s.forget(key) // no longer good: its next lookup is a sign-in again
	}
	return sess, err
}

func (s *Service) forget(key [32]byte) {
	s.mu.Lock()
	delete(s.remembered, key)
	s.mu.Unlock()
}

// Describe is the View of a resolved session (its tenant and user as they
// are now).
func (s *Service) Describe(ctx context.Context, sess Session) (View, error) {
	var v View
	err := s.db.OnceAs(ctx, sess.Identity, func(tx tenant.Conn) error {
		var err error
		v, err = s.view(ctx, tx, sess)
		return err
	})
	return v, err
}

// Revoke signs the session out: its cookie stops working at once.
func (s *Service) Revoke(ctx context.Context, sess Session) error {
	return s.db.OnceAs(ctx, sess.Identity, func(tx tenant.Conn) error {
		_, err := s.q.RevokeSession(ctx, tx, sess.ID)
		return err
	})
}

func (s *Service) view(ctx context.Context, tx tenant.Conn, sess Session) (View, error) {
	me, err := s.q.GetMe(ctx, tx, sess.Identity.UserID)
	if err != nil {
		return View{}, err
	}
	return View{
		Tenant:    TenantRef{ID: me.Tenant.ID, Slug: me.Tenant.Slug, Name: me.Tenant.Name},
		User:      UserRef{ID: me.User.ID, Email: me.User.Email, Role: me.User.Role},
		CSRFToken: sess.CSRFToken, ExpiresAt: sess.ExpiresAt.UTC(),
	}, nil
}

// CheckCSRF reports whether header is the session's CSRF token (a
// constant-time compare, so timing tells nothing about the token).
func (sess Session) CheckCSRF(header string) bool {
	return header != "" && subtle.ConstantTimeCompare([]byte(header), []byte(sess.CSRFToken)) == 1
}

// Hash is what the database stores for a token.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CSRFToken derives a session's CSRF token from its token. The label keeps
// it apart from Hash, so the stored hash never equals the CSRF token.
func CSRFToken(token string) string {
	sum := sha256.Sum256([]byte("dbchat csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParseTenant extracts the tenant a token names.
func ParseTenant(token string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
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

// newToken mints a session token for tenantID.
func newToken(tenantID uuid.UUID) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return tokenPrefix + hex.EncodeToString(tenantID[:]) + "_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// keyOf is the API key a session is made from, so revoking it ends the
// session; nil for an identity without one.
func keyOf(id tenant.Identity) *uuid.UUID {
	if id.KeyID == uuid.Nil {
		return nil
	}
	k := id.KeyID
	return &k
}

// truncate cuts s to at most n bytes, dropping a rune cut in half (the
// column must hold valid text).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// claimsJSON is what a session stores of an identity's claims: nil (SQL
// NULL) for none.
func claimsJSON(claims map[string]any) ([]byte, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	return json.Marshal(claims)
}
