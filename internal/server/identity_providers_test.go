package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// testIdP is an identity provider in the test: RSA, EC and Ed25519 signing
// keys, a JWKS endpoint on a loopback address that counts its fetches, and
// a key rotation.
type testIdP struct {
	issuer string
	srv    *httptest.Server
	hits   atomic.Int64

	mu   sync.Mutex
	keys map[string]crypto.Signer // kid -> private key; all are published
}

func newTestIdP(t *testing.T, issuer string) *testIdP {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	p := &testIdP{issuer: issuer, keys: map[string]crypto.Signer{"rsa-1": rsaKey, "ec-1": ecKey, "ed-1": edKey}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.jwks())
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// jwks is the public key set, as the JWKS endpoint serves it.
func (p *testIdP) jwks() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var set jose.JSONWebKeySet
	for kid, k := range p.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Use: "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}

func (p *testIdP) key(kid string) crypto.Signer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[kid]
}

// rotate publishes a new RSA key under kid.
func (p *testIdP) rotate(t *testing.T, kid string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

// claims are a valid token's claims for subject.
func (p *testIdP) claims(subject string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": p.issuer, "aud": "dbchat", "sub": subject, "email": subject + "@corp.example",
		"region": "emea", "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
}

// sign signs claims with key as alg, with kid and extra headers.
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	for k, v := range headers {
		if k == "jwk" {
			opts.EmbedJWK = true
			continue
		}
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// token is a valid token for subject, signed with kid (RS256, ES256 or
// EdDSA by its kind), with claims changed by edit.
func (p *testIdP) token(t *testing.T, kid, subject string, edit func(map[string]any)) string {
	t.Helper()
	c := p.claims(subject)
	if edit != nil {
		edit(c)
	}
	alg := map[string]jose.SignatureAlgorithm{"rsa": jose.RS256, "ec-": jose.ES256, "ed-": jose.EdDSA}[kid[:3]]
	return sign(t, p.key(kid), alg, kid, c, nil)
}

// unsigned builds a token by hand: header and claims as given, signature sig.
func unsigned(header, claims map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c) + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// hs256 forges a token signed with HMAC-SHA256 keyed by secret (the
// algorithm-confusion attack with the provider's public key as secret).
func hs256(header, claims map[string]any, secret []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

// idpEnv is a server whose JWKS refetch interval is short enough to test.
func newIdPEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	cfg := server.Config{Identity: identity.Options{MinRefresh: 500 * time.Millisecond}}
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

// userCount is every tenant's users, counted by the privileged pool.
func (e *env) userCount(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, e.d.AdminPool(t).QueryRow(t.Context(), `SELECT count(*) FROM dbchat.users`).Scan(&n))
	return n
}

type errorJSON struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func decodeError(t *testing.T, body string) errorJSON {
	t.Helper()
	var e errorJSON
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e
}

func (e *env) registerIdP(t *testing.T, key, body string) (int, string) {
	t.Helper()
	return e.rawCall(t, http.MethodPost, "/v1/identity-providers", bearer(key), "application/json", body)
}

func providerBody(issuer, jwksURL string) string {
	return fmt.Sprintf(`{"issuer":%q,"audience":"dbchat","jwks_url":%q,"claims":{"user":"sub","email":"email","role":"role","admin_values":["admin"],"pass":["region"]}}`, issuer, jwksURL)
}

func TestIdentityProviderSignIn(t *testing.T) {
	e := newIdPEnv(t)
	a := dbtest.NewTenant(t, e.db, "Tenant A")
	b := dbtest.NewTenant(t, e.db, "Tenant B")
	idpA := newTestIdP(t, "https://idp-a.example")
	idpB := newTestIdP(t, "https://idp-b.example")
	attacker := newTestIdP(t, "https://idp-a.example") // same issuer, its own keys

	status, body := e.registerIdP(t, a.APIKey, providerBody(idpA.issuer, idpA.srv.URL+"/jwks.json"))
	require.Equal(t, http.StatusCreated, status, body)
	var provA identity.Provider
	require.NoError(t, json.Unmarshal([]byte(body), &provA))
	require.Equal(t, []string{"region"}, provA.Claims.Pass)
	// B's provider has an inline key set (no fetch).
	status, body = e.registerIdP(t, b.APIKey, fmt.Sprintf(`{"issuer":%q,"audience":"dbchat","jwks":%s,"claims":{"pass":["region"]}}`, idpB.issuer, idpB.jwks()))
	require.Equal(t, http.StatusCreated, status, body)

	t.Run("one issuer, one tenant", func(t *testing.T) {
		for _, key := range []string{a.APIKey, b.APIKey} {
			status, body := e.registerIdP(t, key, providerBody(idpA.issuer, idpA.srv.URL+"/other"))
			require.Equal(t, http.StatusConflict, status, body)
			require.Equal(t, "conflict", decodeError(t, body).Error.Code)
		}
	})

	before := e.userCount(t)
	var first meResponse
	t.Run("a valid token provisions once, then reuses the user", func(t *testing.T) {
		first = e.me(t, idpA.token(t, "rsa-1", "alice", nil))
		require.Equal(t, a.ID, first.Tenant.ID)
		require.Equal(t, "member", first.Role)
		require.Equal(t, before+1, e.userCount(t))
		for _, kid := range []string{"rsa-1", "ec-1", "ed-1"} { // RS256, ES256, EdDSA
			again := e.me(t, idpA.token(t, kid, "alice", nil))
			require.Equal(t, first.User.ID, again.User.ID, kid)
		}
		require.Equal(t, before+1, e.userCount(t))
		// The provisioned user is an ordinary user of A: listed, with its email.
		status, body := e.get(t, "/v1/users", a.APIKey)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "alice@corp.example")
		// A member may not manage providers.
		status, body = e.get(t, "/v1/identity-providers", idpA.token(t, "rsa-1", "alice", nil))
		require.Equal(t, http.StatusForbidden, status, body)
	})

	t.Run("the role claim makes an admin, and unmakes one", func(t *testing.T) {
		admin := func(m map[string]any) { m["role"] = []any{"staff", "admin"} }
		me := e.me(t, idpA.token(t, "ec-1", "bob", admin))
		require.Equal(t, "admin", me.Role)
		require.Equal(t, a.ID, me.Tenant.ID)
		status, body := e.get(t, "/v1/identity-providers", idpA.token(t, "ec-1", "bob", admin))
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, idpA.issuer)
		require.NotContains(t, body, idpB.issuer)
		require.Equal(t, "member", e.me(t, idpA.token(t, "ec-1", "bob", nil)).Role)
	})

	t.Run("forged and malformed tokens are refused, nothing provisioned", func(t *testing.T) {
		n := e.userCount(t)
		jku := newTestIdP(t, "https://jku.example")
		rsaPub := idpA.key("rsa-1").Public().(*rsa.PublicKey)
		pubDER, err := x509.MarshalPKIXPublicKey(rsaPub)
		require.NoError(t, err)
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
		pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: rsaPub, KeyID: "rsa-1"})
		c := idpA.claims("mallory")
		edit := func(f func(map[string]any)) map[string]any {
			m := idpA.claims("mallory")
			f(m)
			return m
		}
		rs384, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		require.NoError(t, err)
		good := idpA.token(t, "rsa-1", "mallory", nil)
		parts := strings.Split(good, ".")
		cases := []struct {
			name   string
			token  string
			reason identity.Reason
		}{
			{"alg none", unsigned(map[string]any{"alg": "none", "typ": "JWT"}, c, nil), identity.ReasonAlgorithm},
			{"alg None", unsigned(map[string]any{"alg": "None", "kid": "rsa-1"}, c, nil), identity.ReasonAlgorithm},
			{"alg none with a signature", unsigned(map[string]any{"alg": "none"}, c, []byte("sig")), identity.ReasonAlgorithm},
			{"no alg", unsigned(map[string]any{"kid": "rsa-1"}, c, []byte("sig")), identity.ReasonAlgorithm},
			{"HS256 keyed by the public key PEM", hs256(map[string]any{"alg": "HS256", "kid": "rsa-1"}, c, pubPEM), identity.ReasonAlgorithm},
			{"HS256 keyed by the public JWK", hs256(map[string]any{"alg": "HS256", "kid": "rsa-1"}, c, pubJWK), identity.ReasonAlgorithm},
			{"HS256 keyed by the modulus", hs256(map[string]any{"alg": "HS256"}, c, rsaPub.N.Bytes()), identity.ReasonAlgorithm},
			{"RS384", sign(t, rs384, jose.RS384, "rsa-1", c, nil), identity.ReasonAlgorithm},
			{"PS256", sign(t, rs384, jose.PS256, "rsa-1", c, nil), identity.ReasonAlgorithm},
			{"ES384", sign(t, ec384, jose.ES384, "ec-1", c, nil), identity.ReasonAlgorithm},
			{"expired", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { m["exp"] = time.Now().Add(-10 * time.Minute).Unix() }), identity.ReasonExpired},
			{"no exp", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { delete(m, "exp") }), identity.ReasonExpired},
			{"not yet valid", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { m["nbf"] = time.Now().Add(10 * time.Minute).Unix() }), identity.ReasonNotYetValid},
			{"issued in the future", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { m["iat"] = time.Now().Add(10 * time.Minute).Unix() }), identity.ReasonNotYetValid},
			{"wrong audience", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { m["aud"] = "someone-else" }), identity.ReasonAudience},
			{"no audience", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { delete(m, "aud") }), identity.ReasonAudience},
			{"unknown issuer", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { m["iss"] = "https://unknown.example" }), identity.ReasonIssuer},
			{"no issuer", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { delete(m, "iss") }), identity.ReasonIssuer},
			{"issuer not a string", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { m["iss"] = []string{idpA.issuer} }), identity.ReasonIssuer},
			{"jku header (never fetched)", sign(t, jku.key("rsa-1"), jose.RS256, "rsa-1", c, map[jose.HeaderKey]any{"jku": jku.srv.URL}), identity.ReasonHeader},
			{"x5u header (never fetched)", sign(t, jku.key("rsa-1"), jose.RS256, "rsa-1", c, map[jose.HeaderKey]any{"x5u": jku.srv.URL}), identity.ReasonHeader},
			{"embedded jwk", sign(t, jku.key("rsa-1"), jose.RS256, "", c, map[jose.HeaderKey]any{"jwk": true}), identity.ReasonHeader},
			{"crit header", sign(t, idpA.key("rsa-1"), jose.RS256, "rsa-1", c, map[jose.HeaderKey]any{"crit": []string{"exp"}}), identity.ReasonHeader},
			{"attacker key, registered kid", sign(t, attacker.key("rsa-1"), jose.RS256, "rsa-1", c, nil), identity.ReasonSignature},
			{"attacker key, no kid", sign(t, attacker.key("ec-1"), jose.ES256, "", c, nil), identity.ReasonSignature},
			{"attacker key, unknown kid", sign(t, attacker.key("rsa-1"), jose.RS256, "attacker", c, nil), identity.ReasonSignature},
			{"RS256 header over the EC key's kid", sign(t, idpA.key("rsa-1"), jose.RS256, "ec-1", c, nil), identity.ReasonSignature},
			{"claims changed after signing", parts[0] + "." + b64([]byte(`{"iss":"`+idpA.issuer+`","aud":"dbchat","sub":"root","exp":9999999999}`)) + "." + parts[2], identity.ReasonSignature},
			{"signature stripped", parts[0] + "." + parts[1] + ".", identity.ReasonSignature},
			{"B's key, A's issuer", sign(t, idpB.key("rsa-1"), jose.RS256, "rsa-1", c, nil), identity.ReasonSignature},
			{"B's token naming tenant A", idpB.token(t, "rsa-1", "mallory", func(m map[string]any) { m["tenant_id"] = a.ID.String() }), identity.ReasonTenantClaim},
			{"B's token naming tenant A by slug", idpB.token(t, "rsa-1", "mallory", func(m map[string]any) { m["tenant"] = a.Slug }), identity.ReasonTenantClaim},
			{"no subject", idpA.token(t, "rsa-1", "mallory", func(m map[string]any) { delete(m, "sub") }), identity.ReasonSubject},
			{"subject not a string", sign(t, idpA.key("rsa-1"), jose.RS256, "rsa-1", edit(func(m map[string]any) { m["sub"] = 42 }), nil), identity.ReasonMalformed},
			{"exp not a number", sign(t, idpA.key("rsa-1"), jose.RS256, "rsa-1", edit(func(m map[string]any) { m["exp"] = "tomorrow" }), nil), identity.ReasonMalformed},
			{"garbage in three parts", "a.b.c", identity.ReasonMalformed},
			{"header not JSON", b64([]byte("not json")) + "." + parts[1] + "." + parts[2], identity.ReasonMalformed},
			{"header a JSON array", b64([]byte(`["alg","RS256"]`)) + "." + parts[1] + "." + parts[2], identity.ReasonMalformed},
			{"claims not JSON", parts[0] + "." + b64([]byte("{")) + "." + parts[2], identity.ReasonMalformed},
			{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], identity.ReasonMalformed},
		}
		require.GreaterOrEqual(t, len(cases), 25)
		for _, tc := range cases {
			status, body := e.get(t, "/v1/me", tc.token)
			require.Equal(t, http.StatusUnauthorized, status, "%s: %s", tc.name, body)
			got := decodeError(t, body)
			require.Equal(t, "unauthorized", got.Error.Code, tc.name)
			require.Equal(t, string(tc.reason), got.Error.Details["reason"], "%s: %s", tc.name, body)
			require.NotContains(t, body, a.ID.String(), tc.name)
		}
		// Neither two dots nor an API key: the API key answer.
		for _, raw := range []string{parts[0] + "." + parts[1], good + ".x", "dbc_" + good} {
			status, body := e.get(t, "/v1/me", raw)
			require.Equal(t, http.StatusUnauthorized, status, body)
		}
		require.Equal(t, n, e.userCount(t), "no forged token provisioned a user")
		require.Zero(t, jku.hits.Load(), "jku/x5u were never fetched")
		require.Zero(t, attacker.hits.Load())
	})

	t.Run("tenant B's provider cannot reach tenant A", func(t *testing.T) {
		me := e.me(t, idpB.token(t, "rsa-1", "alice", nil))
		require.Equal(t, b.ID, me.Tenant.ID)
		require.NotEqual(t, first.User.ID, me.User.ID)
		// Its own tenant named in a claim is fine.
		me = e.me(t, idpB.token(t, "ec-1", "alice", func(m map[string]any) { m["tenant_id"] = b.ID.String() }))
		require.Equal(t, b.ID, me.Tenant.ID)
		// A's provider is invisible to B: not listed, not deletable.
		status, body := e.get(t, "/v1/identity-providers", b.APIKey)
		require.Equal(t, http.StatusOK, status, body)
		require.NotContains(t, body, idpA.issuer)
		status, body = e.rawCall(t, http.MethodDelete, "/v1/identity-providers/"+provA.ID.String(), bearer(b.APIKey), "", "")
		require.Equal(t, http.StatusNotFound, status, body)
		require.Equal(t, a.ID, e.me(t, idpA.token(t, "rsa-1", "alice", nil)).Tenant.ID)
	})

	t.Run("key rotation: an unknown kid refetches, rate-limited", func(t *testing.T) {
		time.Sleep(600 * time.Millisecond) // past MinRefresh since the last fetch
		hits := idpA.hits.Load()
		idpA.rotate(t, "rsa-2")
		require.Equal(t, first.User.ID, e.me(t, idpA.token(t, "rsa-2", "alice", nil)).User.ID)
		require.Equal(t, hits+1, idpA.hits.Load(), "one fetch for the new kid")
		// A burst of unknown kids fetches at most once more.
		for range 20 {
			status, _ := e.get(t, "/v1/me", sign(t, attacker.key("rsa-1"), jose.RS256, uuid.NewString(), idpA.claims("x"), nil))
			require.Equal(t, http.StatusUnauthorized, status)
		}
		require.LessOrEqual(t, idpA.hits.Load(), hits+2)
		// Known kids are served from the cache.
		hits = idpA.hits.Load()
		for range 5 {
			e.me(t, idpA.token(t, "rsa-2", "alice", nil))
		}
		require.Equal(t, hits, idpA.hits.Load())
	})

	t.Run("a removed provider signs in no more; its users stay", func(t *testing.T) {
		status, body := e.rawCall(t, http.MethodDelete, "/v1/identity-providers/"+provA.ID.String(), bearer(a.APIKey), "", "")
		require.Equal(t, http.StatusNoContent, status, body)
		status, body = e.get(t, "/v1/me", idpA.token(t, "rsa-1", "alice", nil))
		require.Equal(t, http.StatusUnauthorized, status, body)
		require.Equal(t, string(identity.ReasonIssuer), decodeError(t, body).Error.Details["reason"])
		status, body = e.get(t, "/v1/users", a.APIKey)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "alice@corp.example")
	})
}

func TestIdentityProviderValidation(t *testing.T) {
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Tenant A")
	idp := newTestIdP(t, "https://idp.example")
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: idp.key("rsa-1"), KeyID: "k"}}})
	symmetric, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k"}}})
	cases := []struct{ body, field string }{
		{`{"audience":"dbchat","jwks_url":"https://idp.example/jwks"}`, "issuer"},
		{`{"issuer":"https://idp.example","jwks_url":"https://idp.example/jwks"}`, "audience"},
		{`{"issuer":"https://idp.example","audience":"dbchat"}`, "jwks_url"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"http://idp.example/jwks"}`, "jwks_url"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"http://10.0.0.1/jwks"}`, "jwks_url"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"https://user:pw@idp.example/jwks"}`, "jwks_url"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"/jwks"}`, "jwks_url"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"https://idp.example/jwks","jwks":` + string(idp.jwks()) + `}`, "jwks"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks":{"keys":[]}}`, "jwks"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks":` + string(private) + `}`, "jwks"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks":` + string(symmetric) + `}`, "jwks"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks":{"keys":[{"kty":"RSA"}]}}`, "jwks"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"https://idp.example/jwks","claims":{"admin_values":["admin"]}}`, "claims.role"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"https://idp.example/jwks","claims":{"pass":["region","region"]}}`, "claims.pass"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"https://idp.example/jwks","claims":{"pass":[""]}}`, "claims.pass"},
		{`{"issuer":"https://idp.example","audience":"dbchat","jwks_url":"https://idp.example/jwks","claims":{"role":"r","admin_values":[""]}}`, "claims.admin_values"},
	}
	for _, tc := range cases {
		status, body := e.registerIdP(t, a.APIKey, tc.body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", tc.body, body)
		require.Equal(t, tc.field, decodeError(t, body).Error.Details["field"], "%s: %s", tc.body, body)
	}
	status, body := e.get(t, "/v1/identity-providers", a.APIKey)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"identity_providers":[]}`, body)

	// Loopback http is accepted (tests, local setups); the claim user defaults to sub.
	for _, u := range []string{"http://127.0.0.1:9/jwks", "http://localhost/jwks", "http://[::1]/jwks"} {
		status, body := e.registerIdP(t, a.APIKey, fmt.Sprintf(`{"issuer":%q,"audience":"dbchat","jwks_url":%q}`, u, u))
		require.Equal(t, http.StatusCreated, status, body)
		require.Contains(t, body, `"user":"sub"`)
	}

	// Members may not register.
	var memberKey string
	require.NoError(t, e.db.TxAs(t.Context(), a.Identity, func(tx tenant.Conn) error {
		id := uuid.New()
		if _, err := tx.Exec(t.Context(), `INSERT INTO dbchat.users (id, email, role) VALUES ($1, 'm@example.com', 'member')`, id); err != nil {
			return err
		}
		var err error
		memberKey, err = dbtest.CreateKey(t.Context(), tx, a.ID, id)
		return err
	}))
	status, body = e.registerIdP(t, memberKey, providerBody("https://m.example", "https://m.example/jwks"))
	require.Equal(t, http.StatusForbidden, status, body)
}
