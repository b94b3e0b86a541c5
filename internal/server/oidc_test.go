package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// fakeLogin is an identity provider's authorization and token endpoints:
// the test plays the user's part at the authorization endpoint (approve
// records the request's PKCE challenge and nonce under a code), and the
// token endpoint gives an ID token for a code only with the verifier whose
// S256 hash is the code's challenge, for the right client and redirect URI.
type fakeLogin struct {
	idp *testIdP
	srv *httptest.Server

	mu       sync.Mutex
	codes    map[string]url.Values // code -> the authorization request
	badNonce bool                  // the next token carries another nonce
	redeemed int
	refusals int
	subject  string
}

func newFakeLogin(t *testing.T, idp *testIdP) *fakeLogin {
	f := &fakeLogin{idp: idp, codes: map[string]url.Values{}, subject: "olga"}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/token", r.URL.Path)
		require.NoError(t, r.ParseForm())
		f.mu.Lock()
		auth, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code")) // a code is good once
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		good := ok && r.PostForm.Get("grant_type") == "authorization_code" &&
			base64.RawURLEncoding.EncodeToString(sum[:]) == auth.Get("code_challenge") &&
			r.PostForm.Get("client_id") == auth.Get("client_id") && r.PostForm.Get("redirect_uri") == auth.Get("redirect_uri")
		nonce := auth.Get("nonce")
		if f.badNonce {
			nonce, f.badNonce = "another", false
		}
		if !good {
			f.refusals++
			f.mu.Unlock()
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		f.redeemed++
		f.mu.Unlock()
		tok := idp.token(t, "ec-1", f.subject, func(c map[string]any) { c["nonce"] = nonce })
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"x","token_type":"Bearer","id_token":%q}`, tok)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// approve is the user signing in at the authorization endpoint the server
// redirected to: it checks the request and returns the callback's query.
func (f *fakeLogin) approve(t *testing.T, location string) (callback string, query url.Values) {
	t.Helper()
	u, err := url.Parse(location)
	require.NoError(t, err)
	require.Equal(t, f.srv.URL+"/authorize", u.Scheme+"://"+u.Host+u.Path)
	q := u.Query()
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, "dbchat", q.Get("client_id"), "the client id is the provider's audience")
	require.Contains(t, q.Get("scope"), "openid")
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		require.GreaterOrEqual(t, len(q.Get(k)), 43, k)
	}
	code := "code-" + q.Get("state")[:8]
	f.mu.Lock()
	f.codes[code] = q
	f.mu.Unlock()
	return q.Get("redirect_uri"), url.Values{"code": {code}, "state": {q.Get("state")}}
}

// A browser signs in through its tenant's identity provider: the server
// redirects it with a PKCE challenge, the callback trades the code with the
// verifier, and the verified ID token's user gets a session cookie that
// reads the tenant's tables. A wrong state, a missing or replayed sign-in,
// a verifier the provider refuses, a token with another nonce, a provider
// without login endpoints and an unknown issuer start no session.
func TestOIDCBrowserSignIn(t *testing.T) {
	e := newIdPEnv(t)
	a := dbtest.NewTenant(t, e.db, "Login tenant")
	idp := newTestIdP(t, "https://idp-login.example")
	f := newFakeLogin(t, idp)
	body := strings.Replace(providerBody(idp.issuer, idp.srv.URL+"/jwks.json"), `"claims"`,
		fmt.Sprintf(`"login":{"authorization_endpoint":%q,"token_endpoint":%q},"claims"`, f.srv.URL+"/authorize", f.srv.URL+"/token"), 1)
	status, resp := e.registerIdP(t, a.APIKey, body)
	require.Equal(t, http.StatusCreated, status, resp)
	require.Contains(t, resp, `"token_endpoint":"`+f.srv.URL+`/token"`)

	browser := func() *http.Client {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	start := func(c *http.Client, issuer string) *http.Response {
		r, err := c.Get(e.url + "/v1/sessions/oidc?issuer=" + url.QueryEscape(issuer))
		require.NoError(t, err)
		r.Body.Close()
		return r
	}
	callback := func(c *http.Client, to string, q url.Values) (*http.Response, string) {
		r, err := c.Get(to + "?" + q.Encode())
		require.NoError(t, err)
		defer r.Body.Close()
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		return r, string(body)
	}
	sessionOf := func(c *http.Client) int {
		r, err := c.Get(e.url + "/v1/sessions/current")
		require.NoError(t, err)
		r.Body.Close()
		return r.StatusCode
	}

	// The whole sign-in.
	b := browser()
	r := start(b, idp.issuer)
	require.Equal(t, http.StatusFound, r.StatusCode)
	pending := r.Header.Get("Set-Cookie")
	for _, flag := range []string{"dbchat_oidc=", "HttpOnly", "SameSite=Lax", "Path=/v1/sessions/oidc"} {
		require.Contains(t, pending, flag)
	}
	to, q := f.approve(t, r.Header.Get("Location"))
	require.Equal(t, e.url+"/v1/sessions/oidc/callback", to)
	r, _ = callback(b, to, q)
	require.Equal(t, http.StatusSeeOther, r.StatusCode)
	require.Equal(t, "/#/chat", r.Header.Get("Location"))
	require.Equal(t, http.StatusOK, sessionOf(b))
	tr, err := b.Get(e.url + "/v1/tables")
	require.NoError(t, err)
	tr.Body.Close()
	require.Equal(t, http.StatusOK, tr.StatusCode, "the session reads its tenant")
	var cur struct {
		Tenant struct {
			ID string `json:"id"`
		} `json:"tenant"`
		User struct {
			Email string `json:"email"`
			Role  string `json:"role"`
		} `json:"user"`
	}
	e.sessionJSON(t, b, "/v1/sessions/current", &cur)
	require.Equal(t, a.ID.String(), cur.Tenant.ID)
	require.Equal(t, "olga@corp.example", cur.User.Email, "the ID token's user, provisioned")
	require.Equal(t, "member", cur.User.Role)

	// The session carries the token's verified claims (app.claims for its
	// requests) and its provider.
	var claims string
	require.NoError(t, e.d.AdminPool(t).QueryRow(t.Context(),
		`SELECT claims::text FROM dbchat.sessions WHERE identity_provider_id IS NOT NULL`).Scan(&claims))
	require.JSONEq(t, `{"region":"emea"}`, claims)

	// The same callback again: the started sign-in is gone.
	r, _ = callback(b, to, q)
	require.Equal(t, http.StatusBadRequest, r.StatusCode)

	refused := func(name string, want int, edit func(b *http.Client, to string, q url.Values) (string, url.Values)) {
		t.Helper()
		b := browser()
		r := start(b, idp.issuer)
		require.Equal(t, http.StatusFound, r.StatusCode)
		to, q := f.approve(t, r.Header.Get("Location"))
		to, q = edit(b, to, q)
		r, body := callback(b, to, q)
		require.Equal(t, want, r.StatusCode, "%s: %s", name, body)
		require.NotContains(t, r.Header.Get("Set-Cookie"), "dbchat_session=", name)
		require.Equal(t, http.StatusUnauthorized, sessionOf(b), name)
	}
	refused("wrong state", http.StatusBadRequest, func(_ *http.Client, to string, q url.Values) (string, url.Values) {
		q.Set("state", strings.Repeat("A", 43))
		return to, q
	})
	refused("a verifier the provider refuses", http.StatusUnauthorized, func(b *http.Client, to string, q url.Values) (string, url.Values) {
		u, _ := url.Parse(e.url + "/v1/sessions/oidc")
		for _, c := range b.Jar.Cookies(u) {
			if c.Name == "dbchat_oidc" {
				raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
				var p map[string]any
				require.NoError(t, json.Unmarshal(raw, &p))
				p["verifier"] = strings.Repeat("v", 43)
				raw, _ = json.Marshal(p)
				c.Value, c.Path = base64.RawURLEncoding.EncodeToString(raw), "/v1/sessions/oidc"
				b.Jar.SetCookies(u, []*http.Cookie{c})
			}
		}
		return to, q
	})
	refused("another nonce", http.StatusUnauthorized, func(_ *http.Client, to string, q url.Values) (string, url.Values) {
		f.mu.Lock()
		f.badNonce = true
		f.mu.Unlock()
		return to, q
	})

	// A browser that started nothing, a provider without login endpoints,
	// an unknown issuer.
	r, _ = callback(browser(), to, q)
	require.Equal(t, http.StatusBadRequest, r.StatusCode)
	plain := newTestIdP(t, "https://idp-plain.example")
	status, resp = e.registerIdP(t, a.APIKey, providerBody(plain.issuer, plain.srv.URL+"/jwks.json"))
	require.Equal(t, http.StatusCreated, status, resp)
	require.Equal(t, http.StatusBadRequest, start(browser(), plain.issuer).StatusCode)
	require.Equal(t, http.StatusUnauthorized, start(browser(), "https://nobody.example").StatusCode)
	require.Equal(t, 2, f.redeemed, "codes redeemed: the sign-in's and the one whose token had another nonce")

	// Removing the provider ends its sessions at once.
	var providers struct {
		Providers []struct {
			ID     string `json:"id"`
			Issuer string `json:"issuer"`
		} `json:"identity_providers"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/identity-providers", a.APIKey, "", &providers)
	for _, p := range providers.Providers {
		if p.Issuer == idp.issuer {
			status, resp := e.callJSON(t, http.MethodDelete, "/v1/identity-providers/"+p.ID, a.APIKey, "")
			require.Equal(t, http.StatusNoContent, status, resp)
		}
	}
	require.Equal(t, http.StatusUnauthorized, sessionOf(b), "the provider is gone, and its sessions")

	// Login endpoints follow the JWKS URL's rule, and browsers are sent to
	// the issuer's host only (no open redirect through a registration).
	elsewhere := strings.Replace(providerBody("https://idp-far.example", idp.srv.URL+"/jwks.json"), `"claims"`,
		`"login":{"authorization_endpoint":"https://phish.example/authorize","token_endpoint":"https://idp-far.example/token"},"claims"`, 1)
	status, resp = e.registerIdP(t, a.APIKey, elsewhere)
	require.Equal(t, http.StatusBadRequest, status, resp)
	require.Equal(t, "login.authorization_endpoint", decodeError(t, resp).Error.Details["field"])
	bad := strings.Replace(providerBody("https://idp-bad.example", idp.srv.URL+"/jwks.json"), `"claims"`,
		`"login":{"authorization_endpoint":"http://idp.example/authorize","token_endpoint":"https://idp.example/token"},"claims"`, 1)
	status, resp = e.registerIdP(t, a.APIKey, bad)
	require.Equal(t, http.StatusBadRequest, status, resp)
	require.Equal(t, "login.authorization_endpoint", decodeError(t, resp).Error.Details["field"])
}

// sessionJSON GETs path with b's cookies and decodes the answer.
func (e *env) sessionJSON(t *testing.T, b *http.Client, path string, out any) {
	t.Helper()
	r, err := b.Get(e.url + path)
	require.NoError(t, err)
	defer r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.NoError(t, json.NewDecoder(r.Body).Decode(out))
}
