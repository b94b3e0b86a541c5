package cli

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The README's browser sign-in through `dbchat dev`'s identity provider,
// with every redirect followed as a browser does: the server's start sends
// the browser to the dev provider, which signs it in as the login hint and
// sends it back with a code; the callback trades the code with the PKCE
// verifier, and the session is the provisioned user's, with its claims.
func TestDevProviderBrowserSignIn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	a := dbtest.NewTenant(t, db, "Demo")
	st, stop, err := startDevIdP(ctx, db, a.Identity, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	ts := httptest.NewServer(server.New(db, slog.New(slog.DiscardHandler), server.Config{}))
	t.Cleanup(ts.Close)

	for _, c := range []struct{ hint, email, role string }{{"", "alice@dev.invalid", "member"}, {"admin", "admin@dev.invalid", "admin"}} {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		browser := &http.Client{Jar: jar}
		start := ts.URL + "/v1/sessions/oidc?issuer=" + url.QueryEscape(st.Issuer)
		if c.hint != "" {
			// The user's choice at the provider: its login_hint.
			browser.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
				if req.URL.Path == "/authorize" {
					q := req.URL.Query()
					q.Set("login_hint", c.hint)
					req.URL.RawQuery = q.Encode()
				}
				return nil
			}
		}
		resp, err := browser.Get(start)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "the chain ends at the web app")
		require.Equal(t, "/", resp.Request.URL.Path)

		resp, err = browser.Get(ts.URL + "/v1/sessions/current")
		require.NoError(t, err)
		var cur struct {
			User struct{ Email, Role string } `json:"user"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&cur))
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, c.email, cur.User.Email)
		require.Equal(t, c.role, cur.User.Role)
	}
}
