package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The 401 body of a cookie that signs nobody in.
const noSessionBody = `{"error":{"code":"unauthorized","message":"missing or invalid session"}}`

// browserResp is one response as the tests look at it.
type browserResp struct {
	status int
	body   string
	header http.Header
}

// send makes a request with optional JSON body and headers (name, value
// pairs) through client.
func send(t *testing.T, client *http.Client, method, url, body string, headers ...string) browserResp {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return browserResp{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// signedIn is a browser's session: its cookie and the answer's body.
type signedIn struct {
	cookie string // dbchat_session=<token>
	token  string
	view   struct {
		Tenant struct {
			ID   uuid.UUID `json:"id"`
			Slug string    `json:"slug"`
			Name string    `json:"name"`
		} `json:"tenant"`
		User struct {
			ID    uuid.UUID `json:"id"`
			Email string    `json:"email"`
			Role  string    `json:"role"`
		} `json:"user"`
		CSRFToken string `json:"csrf_token"`
		ExpiresAt string `json:"expires_at"`
	}
	setCookie string
}

// signIn exchanges key for a session at base.
func signIn(t *testing.T, client *http.Client, base, key string) signedIn {
	t.Helper()
	r := send(t, client, http.MethodPost, base+"/v1/sessions", `{"api_key":"`+key+`"}`)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var s signedIn
	require.NoError(t, json.Unmarshal([]byte(r.body), &s.view), r.body)
	s.setCookie = r.header.Get("Set-Cookie")
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "dbchat_session" {
			s.token = c.Value
		}
	}
	require.NotEmpty(t, s.token, "Set-Cookie: %s", s.setCookie)
	s.cookie = "dbchat_session=" + s.token
	require.NotContains(t, r.body, s.token, "the token travels in the cookie only")
	return s
}

// sessionEnv is newEnv's server behind a URL, plain HTTP.
func sessionEnv(t *testing.T) (*env, *http.Client) {
	t.Helper()
	return newEnv(t), http.DefaultClient
}

func TestSessionCookieAuthAndCSRF(t *testing.T) {
	t.Parallel()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Cookie Co")
	s := signIn(t, client, e.url, a.APIKey)

	require.Equal(t, a.ID, s.view.Tenant.ID)
	require.Equal(t, a.Slug, s.view.Tenant.Slug)
	require.Equal(t, "Cookie Co", s.view.Tenant.Name)
	require.Equal(t, a.AdminID, s.view.User.ID)
	require.Equal(t, "admin", s.view.User.Role)
	require.NotEmpty(t, s.view.User.Email)
	require.NotEmpty(t, s.view.CSRFToken)
	require.NotEmpty(t, s.view.ExpiresAt)

	// The cookie's flags; no Secure over plain HTTP.
	flags := strings.Split(s.setCookie, "; ")
	require.Contains(t, flags, "HttpOnly")
	require.Contains(t, flags, "SameSite=Strict")
	require.Contains(t, flags, "Path=/")
	require.NotContains(t, flags, "Secure")
	require.NotContains(t, s.setCookie, "Max-Age", "a browser-session cookie")
	require.NotContains(t, s.setCookie, "Expires")

	// The cookie alone reads.
	r := send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", s.cookie)
	require.Equal(t, http.StatusOK, r.status, r.body)

	// A write by cookie needs the session's CSRF token; without it or with
	// another, 403 and nothing written.
	create := func(name string, headers ...string) browserResp {
		return send(t, client, http.MethodPost, e.url+"/v1/tables",
			`{"name":"`+name+`","columns":[{"name":"id","type":"bigint"}]}`, headers...)
	}
	other := signIn(t, client, e.url, a.APIKey)
	for _, h := range [][]string{
		{"Cookie", s.cookie},
		{"Cookie", s.cookie, "X-CSRF-Token", ""},
		{"Cookie", s.cookie, "X-CSRF-Token", "wrong"},
		{"Cookie", s.cookie, "X-CSRF-Token", other.view.CSRFToken}, // another session's
		{"Cookie", s.cookie, "X-CSRF-Token", s.view.CSRFToken + "x"},
	} {
		r := create("sneaky", h...)
		require.Equal(t, http.StatusForbidden, r.status, r.body)
		require.Contains(t, r.body, `"code":"csrf_failed"`)
	}
	tables, _ := e.listTables(t, a.APIKey)
	require.Empty(t, tables, "a refused CSRF write wrote nothing")

	r = create("by_cookie", "Cookie", s.cookie, "X-CSRF-Token", s.view.CSRFToken)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	// A bearer key needs no CSRF token, and wins over a cookie.
	r = create("by_key", "Authorization", "Bearer "+a.APIKey)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	r = create("by_key_too", "Authorization", "Bearer "+a.APIKey, "Cookie", "dbchat_session=garbage")
	require.Equal(t, http.StatusCreated, r.status, r.body)
	tables, _ = e.listTables(t, a.APIKey)
	require.ElementsMatch(t, []string{"by_cookie", "by_key", "by_key_too"}, tables)

	// A reloaded page recovers the same CSRF token.
	r = send(t, client, http.MethodGet, e.url+"/v1/sessions/current", "", "Cookie", s.cookie)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Contains(t, r.body, `"csrf_token":"`+s.view.CSRFToken+`"`)
	require.Contains(t, r.body, `"slug":"`+a.Slug+`"`)

	// Signing out needs the CSRF token too, then revokes and clears.
	r = send(t, client, http.MethodDelete, e.url+"/v1/sessions/current", "", "Cookie", s.cookie)
	require.Equal(t, http.StatusForbidden, r.status, r.body)
	r = send(t, client, http.MethodDelete, e.url+"/v1/sessions/current", "", "Cookie", s.cookie, "X-CSRF-Token", s.view.CSRFToken)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	require.Contains(t, r.header.Get("Set-Cookie"), "dbchat_session=;")
	require.Contains(t, r.header.Get("Set-Cookie"), "Max-Age=0")
	for _, path := range []string{"/v1/tables", "/v1/sessions/current", "/v1/me"} {
		r = send(t, client, http.MethodGet, e.url+path, "", "Cookie", s.cookie)
		require.Equal(t, http.StatusUnauthorized, r.status, path)
		require.Equal(t, noSessionBody, r.body)
	}
	// The other session of the same key is untouched.
	r = send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", other.cookie)
	require.Equal(t, http.StatusOK, r.status, r.body)
}

func TestSessionSignInRefusals(t *testing.T) {
	t.Parallel()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Refusals")

	// A bad key: the very 401 of a bad bearer key, and no cookie.
	last := "A"
	if strings.HasSuffix(a.APIKey, last) {
		last = "B"
	}
	for _, key := range []string{"dbc_nope", a.APIKey[:len(a.APIKey)-1] + last, "Bearer " + a.APIKey} {
		r := send(t, client, http.MethodPost, e.url+"/v1/sessions", `{"api_key":"`+key+`"}`)
		require.Equal(t, http.StatusUnauthorized, r.status, r.body)
		require.Equal(t, unauthorizedBody, r.body)
		require.Empty(t, r.header.Get("Set-Cookie"))
	}
	// User mistakes name the field.
	r := send(t, client, http.MethodPost, e.url+"/v1/sessions", `{}`)
	require.Equal(t, http.StatusBadRequest, r.status, r.body)
	require.Contains(t, r.body, `"field":"api_key"`)
	// A form post (what another site can send without CORS) is refused.
	r = send(t, client, http.MethodPost, e.url+"/v1/sessions", "", "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status, r.body)

	// No cookie, or one that is not a session.
	for _, cookie := range []string{"", "dbchat_session=", "dbchat_session=dbs_x", "dbchat_session=" + a.APIKey} {
		r := send(t, client, http.MethodGet, e.url+"/v1/sessions/current", "", "Cookie", cookie)
		require.Equal(t, http.StatusUnauthorized, r.status, "cookie %q: %s", cookie, r.body)
	}
	// A bearer key has no current session.
	r = send(t, client, http.MethodGet, e.url+"/v1/sessions/current", "", "Authorization", "Bearer "+a.APIKey)
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
}

func TestSessionEndsWithItsUserKeyTenantOrTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, client := sessionEnv(t)
	admin := e.d.AdminPool(t)

	// newMember is a member of a fresh tenant with its own key, and a
	// session made from that key.
	newMember := func(t *testing.T, name string) (dbtest.Tenant, uuid.UUID, uuid.UUID, signedIn) {
		a := dbtest.NewTenant(t, e.db, name)
		r := send(t, client, http.MethodPost, e.url+"/v1/users", `{"email":"m@example.com","role":"member"}`, "Authorization", "Bearer "+a.APIKey)
		require.Equal(t, http.StatusCreated, r.status, r.body)
		var u struct{ ID uuid.UUID }
		require.NoError(t, json.Unmarshal([]byte(r.body), &u))
		var key string
		require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
			var err error
			key, err = dbtest.CreateKey(ctx, tx, a.ID, u.ID)
			return err
		}))
		s := signIn(t, client, e.url, key)
		require.Equal(t, "member", s.view.User.Role)
		keyID := e.me(t, key).KeyID
		r = send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", s.cookie)
		require.Equal(t, http.StatusOK, r.status, r.body)
		return a, u.ID, keyID, s
	}
	requireEnded := func(t *testing.T, s signedIn) {
		t.Helper()
		r := send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", s.cookie)
		require.Equal(t, http.StatusUnauthorized, r.status, r.body)
		require.Equal(t, noSessionBody, r.body)
		require.Contains(t, r.header.Get("Set-Cookie"), "Max-Age=0", "a dead session's cookie is cleared")
	}

	t.Run("deleted user", func(t *testing.T) {
		t.Parallel()
		a, userID, _, s := newMember(t, "Deleted User")
		r := send(t, client, http.MethodDelete, e.url+"/v1/users/"+userID.String(), "", "Authorization", "Bearer "+a.APIKey)
		require.Equal(t, http.StatusNoContent, r.status, r.body)
		requireEnded(t, s)
	})
	t.Run("revoked key", func(t *testing.T) {
		t.Parallel()
		a, _, keyID, s := newMember(t, "Revoked Key")
		r := send(t, client, http.MethodDelete, e.url+"/v1/api-keys/"+keyID.String(), "", "Authorization", "Bearer "+a.APIKey)
		require.Equal(t, http.StatusNoContent, r.status, r.body)
		requireEnded(t, s)
	})
	t.Run("deleted key", func(t *testing.T) {
		t.Parallel()
		_, _, keyID, s := newMember(t, "Deleted Key")
		_, err := admin.Exec(ctx, `DELETE FROM dbchat.api_keys WHERE id = $1`, keyID)
		require.NoError(t, err)
		requireEnded(t, s)
	})
	t.Run("deactivated tenant", func(t *testing.T) {
		t.Parallel()
		a, _, _, s := newMember(t, "Deactivated")
		_, err := admin.Exec(ctx, `UPDATE dbchat.tenants SET is_active = false WHERE id = $1`, a.ID)
		require.NoError(t, err)
		requireEnded(t, s)
	})
	t.Run("past its absolute end", func(t *testing.T) {
		t.Parallel()
		_, _, _, s := newMember(t, "Expired")
		_, err := admin.Exec(ctx, `UPDATE dbchat.sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, hash(s.token))
		require.NoError(t, err)
		requireEnded(t, s)
	})
	t.Run("idle too long", func(t *testing.T) {
		t.Parallel()
		_, _, _, s := newMember(t, "Idle")
		// Just inside the 12 h default still works (and is touched) ...
		_, err := admin.Exec(ctx, `UPDATE dbchat.sessions SET last_seen_at = now() - interval '11 hours' WHERE token_hash = $1`, hash(s.token))
		require.NoError(t, err)
		r := send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", s.cookie)
		require.Equal(t, http.StatusOK, r.status, r.body)
		var recent bool
		require.NoError(t, admin.QueryRow(ctx, `SELECT last_seen_at > now() - interval '1 minute' FROM dbchat.sessions WHERE token_hash = $1`, hash(s.token)).Scan(&recent))
		require.True(t, recent, "use moves the idle deadline")
		// ... past it does not.
		_, err = admin.Exec(ctx, `UPDATE dbchat.sessions SET last_seen_at = now() - interval '12 hours 1 second' WHERE token_hash = $1`, hash(s.token))
		require.NoError(t, err)
		requireEnded(t, s)
	})
}

func hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func TestSessionTokenNeverStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Hashes Only")
	s := signIn(t, client, e.url, a.APIKey)
	admin := e.d.AdminPool(t)

	var stored []byte
	var n int
	require.NoError(t, admin.QueryRow(ctx, `SELECT token_hash, count(*) OVER () FROM dbchat.sessions WHERE tenant_id = $1`, a.ID).Scan(&stored, &n))
	require.Equal(t, 1, n)
	require.Equal(t, hash(s.token), stored, "the SHA-256 of the cookie's token")
	secret := s.token[strings.LastIndex(s.token, "_")+1:]
	for _, needle := range []string{secret, s.view.CSRFToken} {
		var found int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.sessions s
			WHERE s::text LIKE '%' || $1 || '%' OR encode(s.token_hash, 'escape') LIKE '%' || $1 || '%'`, needle).Scan(&found))
		require.Zero(t, found, "neither the token nor the CSRF token is in the table")
	}
}

func TestSessionTenantIsolation(t *testing.T) {
	t.Parallel()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Iso A")
	b := dbtest.NewTenant(t, e.db, "Iso B")
	createCatalog(t, e.db, a, []catalogTable{{"a_only", 1}})
	createCatalog(t, e.db, b, []catalogTable{{"b_only", 1}})
	sa := signIn(t, client, e.url, a.APIKey)

	r := send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", sa.cookie)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Contains(t, r.body, "a_only")
	require.NotContains(t, r.body, "b_only")
	var bt struct {
		Tables []struct{ ID uuid.UUID } `json:"tables"`
	}
	r = send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Authorization", "Bearer "+b.APIKey)
	require.NoError(t, json.Unmarshal([]byte(r.body), &bt), r.body)
	require.Len(t, bt.Tables, 1)
	r = send(t, client, http.MethodGet, e.url+"/v1/tables/"+bt.Tables[0].ID.String(), "", "Cookie", sa.cookie)
	require.Equal(t, http.StatusNotFound, r.status, r.body)

	// A's token pointed at B's tenant matches nothing there.
	forged := strings.Replace(sa.token, strings.ReplaceAll(a.ID.String(), "-", ""), strings.ReplaceAll(b.ID.String(), "-", ""), 1)
	require.NotEqual(t, sa.token, forged)
	r = send(t, client, http.MethodGet, e.url+"/v1/tables", "", "Cookie", "dbchat_session="+forged)
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
}

// wantHeaders are the browser protections on every response.
var wantHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
		"font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"X-Frame-Options":            "DENY",
	"Cross-Origin-Opener-Policy": "same-origin",
}

func TestSecurityHeadersAndSecureCookieOverTLS(t *testing.T) {
	t.Parallel()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Headers")
	tlsSrv := httptest.NewTLSServer(server.New(e.db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(tlsSrv.Close)

	check := func(t *testing.T, r browserResp, tls bool) {
		t.Helper()
		for k, v := range wantHeaders {
			require.Equal(t, v, r.header.Get(k), k)
		}
		require.NotEmpty(t, r.header.Get("Permissions-Policy"))
		if tls {
			require.Contains(t, r.header.Get("Strict-Transport-Security"), "max-age=")
		} else {
			require.Empty(t, r.header.Get("Strict-Transport-Security"), "HSTS only over TLS")
		}
	}
	for _, tc := range []struct {
		base   string
		client *http.Client
		tls    bool
	}{{e.url, client, false}, {tlsSrv.URL, tlsSrv.Client(), true}} {
		ok := send(t, tc.client, http.MethodGet, tc.base+"/v1/tables", "", "Authorization", "Bearer "+a.APIKey)
		require.Equal(t, http.StatusOK, ok.status, ok.body)
		check(t, ok, tc.tls)
		denied := send(t, tc.client, http.MethodGet, tc.base+"/v1/tables", "")
		require.Equal(t, http.StatusUnauthorized, denied.status)
		check(t, denied, tc.tls)
		health := send(t, tc.client, http.MethodGet, tc.base+"/healthz", "")
		require.Equal(t, http.StatusOK, health.status)
		check(t, health, tc.tls)
		missing := send(t, tc.client, http.MethodPost, tc.base+"/v1/nope", "{}")
		require.Equal(t, http.StatusNotFound, missing.status)
		check(t, missing, tc.tls)

		s := signIn(t, tc.client, tc.base, a.APIKey)
		flags := strings.Split(s.setCookie, "; ")
		if tc.tls {
			require.Contains(t, flags, "Secure", s.setCookie)
		} else {
			require.NotContains(t, flags, "Secure", s.setCookie)
		}
		require.Contains(t, flags, "HttpOnly")
		require.Contains(t, flags, "SameSite=Strict")
	}
}

func TestSessionActsWithTheUsersCurrentRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Roles")
	r := send(t, client, http.MethodPost, e.url+"/v1/users", `{"email":"m@example.com","role":"member"}`, "Authorization", "Bearer "+a.APIKey)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var u struct{ ID uuid.UUID }
	require.NoError(t, json.Unmarshal([]byte(r.body), &u))
	var key string
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		var err error
		key, err = dbtest.CreateKey(ctx, tx, a.ID, u.ID)
		return err
	}))
	s := signIn(t, client, e.url, key)
	create := func() browserResp {
		return send(t, client, http.MethodPost, e.url+"/v1/tables", `{"name":"t","columns":[{"name":"id","type":"bigint"}]}`,
			"Cookie", s.cookie, "X-CSRF-Token", s.view.CSRFToken)
	}
	r = create()
	require.Equal(t, http.StatusForbidden, r.status, r.body)
	require.Contains(t, r.body, `"code":"forbidden"`, "a member's session is a member")

	_, err := e.d.AdminPool(t).Exec(ctx, `UPDATE dbchat.users SET role = 'admin' WHERE id = $1`, u.ID)
	require.NoError(t, err)
	r = create()
	require.Equal(t, http.StatusCreated, r.status, "the same cookie acts with the role the user has now: %s", r.body)
}

func TestSessionForwardedProtoTrustedOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	e, client := sessionEnv(t)
	a := dbtest.NewTenant(t, e.db, "Proxy")
	trusting := httptest.NewServer(server.New(e.db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{TrustForwardedProto: true}))
	t.Cleanup(trusting.Close)

	for _, tc := range []struct {
		base   string
		secure bool
	}{{e.url, false}, {trusting.URL, true}} {
		r := send(t, client, http.MethodPost, tc.base+"/v1/sessions", `{"api_key":"`+a.APIKey+`"}`, "X-Forwarded-Proto", "https")
		require.Equal(t, http.StatusCreated, r.status, r.body)
		flags := strings.Split(r.header.Get("Set-Cookie"), "; ")
		hsts := r.header.Get("Strict-Transport-Security")
		if tc.secure {
			require.Contains(t, flags, "Secure")
			require.NotEmpty(t, hsts)
		} else {
			require.NotContains(t, flags, "Secure", "a client's claim of https is not believed by default")
			require.Empty(t, hsts)
		}
	}
}
