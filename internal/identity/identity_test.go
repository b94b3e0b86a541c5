package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/tenant"
)

func TestCheckJWKSURL(t *testing.T) {
	for _, ok := range []string{"https://idp.example/jwks", "https://10.1.2.3:8443/k", "http://127.0.0.1:9/jwks", "http://localhost/jwks", "http://[::1]/jwks", "http://127.8.9.10/jwks"} {
		require.NoError(t, identity.CheckJWKSURL(ok), ok)
	}
	for _, bad := range []string{"", "/jwks", "idp.example/jwks", "http://idp.example/jwks", "http://10.0.0.1/jwks", "http://localhost.evil.example/jwks",
		"ftp://idp.example/jwks", "https://u:p@idp.example/jwks", "https://idp.example/jwks#x", "file:///etc/passwd", "https:///jwks"} {
		require.Error(t, identity.CheckJWKSURL(bad), bad)
	}
}

func TestParseKeySet(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	set := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		require.NoError(t, err)
		return b
	}
	keys, err := identity.ParseKeySet(set(jose.JSONWebKey{Key: k.Public(), KeyID: "a", Use: "sig"}))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	for name, raw := range map[string][]byte{
		"private key":    set(jose.JSONWebKey{Key: k, KeyID: "a"}),
		"symmetric key":  set(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "a"}),
		"encryption key": set(jose.JSONWebKey{Key: k.Public(), KeyID: "a", Use: "enc"}),
		"no keys":        []byte(`{"keys":[]}`),
		"not a set":      []byte(`[1,2]`),
		"broken key":     []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA"}]}`),
	} {
		_, err := identity.ParseKeySet(raw)
		require.Error(t, err, name)
	}
}

// TestAuthenticate checks what a valid token becomes: the provider's
// tenant, one user per subject even when its first tokens race, the role
// from the role claim compared whole, and only the pass-through claims.
func TestAuthenticate(t *testing.T) {
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 8))
	a := dbtest.NewTenant(t, db, "Tenant A")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Use: "sig"}}})
	require.NoError(t, err)
	spec := identity.Spec{Issuer: "https://idp.example", Audience: "dbchat", JWKS: jwks,
		Claims: identity.Claims{Email: "email", Role: "groups", AdminValues: []string{"admin"}, Pass: []string{"region", "teams"}}}
	require.NoError(t, spec.Validate())
	require.NoError(t, db.TxAs(t.Context(), a.Identity, func(tx tenant.Conn) error {
		_, err := identity.Create(t.Context(), tx, spec)
		return err
	}))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	require.NoError(t, err)
	token := func(sub string, extra map[string]any) string {
		c := map[string]any{"iss": spec.Issuer, "aud": []string{"other", "dbchat"}, "sub": sub, "exp": time.Now().Add(time.Hour).Unix(),
			"email": sub + "@corp.example", "region": "emea", "teams": []string{"x", "y"}, "secret": "not passed"}
		for k, v := range extra {
			c[k] = v
		}
		tok, err := jwt.Signed(signer).Claims(c).Serialize()
		require.NoError(t, err)
		return tok
	}
	v := identity.NewVerifier(db, identity.Options{})
	users := func() int {
		var n int
		require.NoError(t, d.AdminPool(t).QueryRow(t.Context(), `SELECT count(*) FROM dbchat.users`).Scan(&n))
		return n
	}

	before := users()
	var wg sync.WaitGroup
	ids, errs := make([]uuid.UUID, 8), make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			id, err := v.Authenticate(t.Context(), token("carol", nil))
			ids[i], errs[i] = id.UserID, err
		})
	}
	wg.Wait()
	for i, id := range ids {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], id, "one user for a subject, however its first tokens race")
	}
	require.NotEqual(t, uuid.Nil, ids[0])
	require.Equal(t, before+1, users())

	id, err := v.Authenticate(t.Context(), token("carol", nil))
	require.NoError(t, err)
	require.Equal(t, a.ID, id.TenantID)
	require.Equal(t, tenant.Member, id.Role)
	require.Equal(t, map[string]any{"region": "emea", "teams": []any{"x", "y"}}, id.Claims)

	id, err = v.Authenticate(t.Context(), token("carol", map[string]any{"groups": "not admin"}))
	require.NoError(t, err)
	require.Equal(t, tenant.Member, id.Role, "a role string is compared whole")
	id, err = v.Authenticate(t.Context(), token("carol", map[string]any{"groups": []string{"staff", "admin"}}))
	require.NoError(t, err)
	require.Equal(t, tenant.Admin, id.Role)
	require.Equal(t, ids[0], id.UserID)

	// An email another user of the tenant has is not linked to that user.
	var adminEmail string
	require.NoError(t, d.AdminPool(t).QueryRow(t.Context(), `SELECT email FROM dbchat.users WHERE id = $1`, a.AdminID).Scan(&adminEmail))
	id, err = v.Authenticate(t.Context(), token("dave", map[string]any{"email": adminEmail, "groups": "admin"}))
	require.NoError(t, err)
	require.NotEqual(t, a.AdminID, id.UserID)
	var email string
	require.NoError(t, d.AdminPool(t).QueryRow(t.Context(), `SELECT email FROM dbchat.users WHERE id = $1`, id.UserID).Scan(&email))
	require.Regexp(t, `^idp-[0-9a-f]{20}@users\.invalid$`, email)

	// A deactivated user is refused.
	_, err = d.AdminPool(t).Exec(t.Context(), `UPDATE dbchat.users SET is_active = false WHERE id = $1`, id.UserID)
	require.NoError(t, err)
	_, err = v.Authenticate(t.Context(), token("dave", nil))
	require.Equal(t, identity.ReasonUserDisabled, identity.ReasonOf(err))

	// The provider is cached by issuer, yet a deactivated tenant signs in no
	// more at once: the user lookup checks it, then a fresh lookup refuses.
	_, err = v.Authenticate(t.Context(), token("carol", nil))
	require.NoError(t, err)
	_, err = d.AdminPool(t).Exec(t.Context(), `UPDATE dbchat.tenants SET is_active = false WHERE id = $1`, a.ID)
	require.NoError(t, err)
	_, err = v.Authenticate(t.Context(), token("carol", nil))
	require.Equal(t, identity.ReasonIssuer, identity.ReasonOf(err))
	_, err = v.Authenticate(t.Context(), token("erin", nil))
	require.Equal(t, identity.ReasonIssuer, identity.ReasonOf(err))
	require.Equal(t, before+2, users(), "nothing provisioned in a deactivated tenant")
}

// A verified token skips its signature check for a while, but never past
// its exp, never for other bytes, and never past a deactivated tenant (the
// user lookup still runs on every sign-in).
func TestVerifiedTokensAreRemembered(t *testing.T) {
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	a := dbtest.NewTenant(t, db, "Tenant A")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Use: "sig"}}})
	require.NoError(t, err)
	spec := identity.Spec{Issuer: "https://idp.example", Audience: "dbchat", JWKS: jwks}
	require.NoError(t, spec.Validate())
	require.NoError(t, db.TxAs(t.Context(), a.Identity, func(tx tenant.Conn) error {
		_, err := identity.Create(t.Context(), tx, spec)
		return err
	}))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	require.NoError(t, err)
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{"iss": spec.Issuer, "aud": "dbchat", "sub": "frank",
		"exp": now.Add(30 * time.Second).Unix()}).Serialize()
	require.NoError(t, err)
	clock := now
	v := identity.NewVerifier(db, identity.Options{Now: func() time.Time { return clock }})

	first, err := v.Authenticate(t.Context(), tok)
	require.NoError(t, err)
	again, err := v.Authenticate(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, first, again)

	// Other bytes (a flipped signature) are verified, and refused.
	forged := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(tok, "AA")]
	_, err = v.Authenticate(t.Context(), forged)
	require.Error(t, err)

	// Past its exp (and the leeway) the token is refused, remembered or not.
	clock = now.Add(30*time.Second + identity.DefaultLeeway + time.Second)
	_, err = v.Authenticate(t.Context(), tok)
	require.Equal(t, identity.ReasonExpired, identity.ReasonOf(err))

	// Within its life, a deactivated tenant stops it at once.
	clock = now
	_, err = d.AdminPool(t).Exec(t.Context(), `UPDATE dbchat.tenants SET is_active = false WHERE id = $1`, a.ID)
	require.NoError(t, err)
	_, err = v.Authenticate(t.Context(), tok)
	require.Error(t, err)
}
