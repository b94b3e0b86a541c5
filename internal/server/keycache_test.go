package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestRevocationIsImmediateOnEveryInstance: a server remembers the keys it
// verified and no longer looks them up (one round trip per read), yet a key
// revoked, a user deleted or a tenant deactivated through one instance is
// refused by the other at its very next request, for reads (whose check
// rides with the handler's statement) and writes (checked before the
// handler) alike, and nothing is written by a refused request.
func TestRevocationIsImmediateOnEveryInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // instance A
	second := &env{d: e.d, db: tenant.New(e.d.AppPool(t, 4))}
	srv := httptest.NewServer(server.New(second.db, slog.New(slog.NewTextHandler(t.Output(), nil)),
		server.Config{AdminToken: operatorToken}))
	t.Cleanup(srv.Close)
	second.url = srv.URL // instance B
	instances := []*env{e, second}

	a := dbtest.NewTenant(t, e.db, "Revocations")
	other := dbtest.NewTenant(t, e.db, "Bystander")
	member := e.addUser(t, a.APIKey, "member@revocations.test", "member")
	spare := e.mintKey(t, a.APIKey, `{"name":"spare"}`)
	reads := []string{"/v1/tables", "/v1/me", "/v1/history", "/v1/api-keys"}
	remember := func(keys ...string) {
		t.Helper()
		for _, key := range keys {
			for _, inst := range instances {
				for _, path := range reads {
					for range 2 { // the first looks the key up, the second is remembered
						status, body := inst.get(t, path, key)
						require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
					}
				}
			}
		}
	}
	tablesOf := func(key string) int {
		var list struct {
			Tables []any `json:"tables"`
		}
		e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables", key, "", &list)
		return len(list.Tables)
	}
	remember(a.APIKey, member.Key, spare.APIKey, other.APIKey)
	before := tablesOf(a.APIKey)

	// A key revoked on A: B refuses it at once, A too, reads and writes.
	status, body := e.callJSON(t, http.MethodDelete, "/v1/api-keys/"+spare.ID.String(), a.APIKey, "")
	require.Equal(t, http.StatusNoContent, status, body)
	for _, inst := range []*env{second, e} {
		for _, path := range reads {
			inst.requireUnauthorized(t, path, spare.APIKey)
		}
		status, body := inst.callJSON(t, http.MethodPost, "/v1/tables", spare.APIKey,
			`{"name":"sneaky","columns":[{"name":"x","type":"text"}]}`)
		require.Equal(t, http.StatusUnauthorized, status, body)
	}
	require.Equal(t, before, tablesOf(a.APIKey), "a refused write wrote nothing")

	// A user deleted on B: A refuses the user's key at once.
	status, body = second.callJSON(t, http.MethodDelete, "/v1/users/"+member.ID.String(), a.APIKey, "")
	require.Equal(t, http.StatusNoContent, status, body)
	for _, inst := range []*env{e, second} {
		inst.requireUnauthorized(t, "/v1/tables", member.Key)
	}

	// The tenant deactivated by the operator on B: A refuses its admin's
	// remembered key at once; another tenant goes on.
	status, body = second.rawCall(t, http.MethodPatch, "/v1/tenants/"+a.ID.String(), "Bearer "+operatorToken,
		"application/json", `{"is_active":false}`)
	require.Equal(t, http.StatusOK, status, body)
	for _, inst := range []*env{e, second} {
		for _, path := range reads {
			inst.requireUnauthorized(t, path, a.APIKey)
		}
		status, body := inst.get(t, "/v1/tables", other.APIKey)
		require.Equal(t, http.StatusOK, status, body)
	}

	// Reactivated, the key works again (it was forgotten, so it is looked
	// up afresh).
	status, body = second.rawCall(t, http.MethodPatch, "/v1/tenants/"+a.ID.String(), "Bearer "+operatorToken,
		"application/json", `{"is_active":true}`)
	require.Equal(t, http.StatusOK, status, body)
	remember(a.APIKey)
}

// TestSignedInTokenIsConfirmedOnEveryInstance: the same for a token from a
// tenant's identity provider, which a server verifies and signs in once and
// then only confirms: the provider removed or the tenant deactivated
// through one instance, the other refuses the token at its next request,
// with the reason a fresh sign-in would give.
func TestSignedInTokenIsConfirmedOnEveryInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	second := &env{d: e.d, db: tenant.New(e.d.AppPool(t, 4))}
	srv := httptest.NewServer(server.New(second.db, slog.New(slog.NewTextHandler(t.Output(), nil)),
		server.Config{AdminToken: operatorToken}))
	t.Cleanup(srv.Close)
	second.url = srv.URL
	instances := []*env{e, second}

	a := dbtest.NewTenant(t, e.db, "Token Revocations")
	idp := newTestIdP(t, "https://idp-confirm.example")
	var provider struct {
		ID string `json:"id"`
	}
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/identity-providers", a.APIKey,
		fmt.Sprintf(`{"issuer":%q,"audience":"dbchat","jwks":%s}`, idp.issuer, idp.jwks()), &provider)
	alice, bob := idp.token(t, "ec-1", "alice", nil), idp.token(t, "ec-1", "bob", nil)
	remember := func(tokens ...string) {
		t.Helper()
		for _, tok := range tokens {
			for _, inst := range instances {
				for range 2 {
					status, body := getAuth(t, inst.url+"/v1/tables", "Bearer "+tok)
					require.Equal(t, http.StatusOK, status, body)
				}
			}
		}
	}
	remember(alice, bob)

	// The tenant deactivated by the operator on B: A refuses both at once.
	status, body := second.rawCall(t, http.MethodPatch, "/v1/tenants/"+a.ID.String(), "Bearer "+operatorToken,
		"application/json", `{"is_active":false}`)
	require.Equal(t, http.StatusOK, status, body)
	for _, tok := range []string{alice, bob} {
		status, body := getAuth(t, e.url+"/v1/tables", "Bearer "+tok)
		require.Equal(t, http.StatusUnauthorized, status, body)
		require.Equal(t, string(identity.ReasonIssuer), decodeError(t, body).Error.Details["reason"])
	}
	status, body = second.rawCall(t, http.MethodPatch, "/v1/tenants/"+a.ID.String(), "Bearer "+operatorToken,
		"application/json", `{"is_active":true}`)
	require.Equal(t, http.StatusOK, status, body)
	remember(alice, bob)

	// The provider removed on A: B refuses the remembered tokens at once.
	status, body = e.callJSON(t, http.MethodDelete, "/v1/identity-providers/"+provider.ID, a.APIKey, "")
	require.Equal(t, http.StatusNoContent, status, body)
	for _, inst := range []*env{second, e} {
		for _, tok := range []string{alice, bob} {
			status, body := getAuth(t, inst.url+"/v1/tables", "Bearer "+tok)
			require.Equal(t, http.StatusUnauthorized, status, body)
			require.Equal(t, string(identity.ReasonIssuer), decodeError(t, body).Error.Details["reason"])
		}
	}
}

// TestSessionEndsAtOnceOnEveryInstance: the same for the web app's browser
// sessions, which a server looks up once a minute and confirms in between:
// signed out on one instance, or its API key revoked on the other, the
// cookie is refused by both at its next request, reads and writes alike.
func TestSessionEndsAtOnceOnEveryInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	second := &env{d: e.d, db: tenant.New(e.d.AppPool(t, 4))}
	srv := httptest.NewServer(server.New(second.db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	second.url = srv.URL
	instances := []*env{e, second}

	a := dbtest.NewTenant(t, e.db, "Session Revocations")
	spare := e.mintKey(t, a.APIKey, `{"name":"for the browser"}`)
	first, other := signIn(t, http.DefaultClient, e.url, a.APIKey), signIn(t, http.DefaultClient, second.url, spare.APIKey)
	remember := func(sessions ...signedIn) {
		t.Helper()
		for _, s := range sessions {
			for _, inst := range instances {
				for range 2 {
					r := send(t, http.DefaultClient, http.MethodGet, inst.url+"/v1/tables", "", "Cookie", s.cookie)
					require.Equal(t, http.StatusOK, r.status, r.body)
				}
			}
		}
	}
	remember(first, other)

	// Signed out on A: B refuses the cookie at once.
	r := send(t, http.DefaultClient, http.MethodDelete, e.url+"/v1/sessions/current", "", "Cookie", first.cookie, "X-CSRF-Token", first.view.CSRFToken)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	for _, inst := range []*env{second, e} {
		r := send(t, http.DefaultClient, http.MethodGet, inst.url+"/v1/tables", "", "Cookie", first.cookie)
		require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	}

	// The key the other session came from revoked on B: A refuses it at
	// once, for a write too, which writes nothing.
	status, body := second.callJSON(t, http.MethodDelete, "/v1/api-keys/"+spare.ID.String(), a.APIKey, "")
	require.Equal(t, http.StatusNoContent, status, body)
	r = send(t, http.DefaultClient, http.MethodPost, e.url+"/v1/tables", `{"name":"after_revocation","columns":[{"name":"x","type":"text"}]}`,
		"Cookie", other.cookie, "X-CSRF-Token", other.view.CSRFToken)
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	for _, inst := range instances {
		r := send(t, http.DefaultClient, http.MethodGet, inst.url+"/v1/tables", "", "Cookie", other.cookie)
		require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	}
	status, body = e.get(t, "/v1/tables", a.APIKey)
	require.Equal(t, http.StatusOK, status, body)
	require.NotContains(t, body, "after_revocation")
}

// TestRoleChangeIsFollowedAtOnce: a remembered key whose user changed role
// is not refused: its confirmation says so before anything runs, and the
// server signs in afresh and runs the request with the role the user has
// now, the admin-only checks included, for reads and writes.
func TestRoleChangeIsFollowedAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Role Changes")
	member := e.addUser(t, a.APIKey, "member@roles.test", "member")
	admin := e.d.AdminPool(t)
	setRole := func(role string) {
		t.Helper()
		_, err := admin.Exec(context.Background(), `UPDATE dbchat.users SET role = $1 WHERE id = $2`, role, member.ID)
		require.NoError(t, err)
	}
	for range 2 { // remembered
		status, body := e.get(t, "/v1/analytics", member.Key)
		require.Equal(t, http.StatusForbidden, status, body)
	}
	setRole("admin")
	status, body := e.get(t, "/v1/analytics", member.Key)
	require.Equal(t, http.StatusOK, status, "promoted: the read runs again as an admin: %s", body)
	status, body = e.get(t, "/v1/analytics", member.Key)
	require.Equal(t, http.StatusOK, status, body)

	setRole("member")
	status, body = e.get(t, "/v1/analytics", member.Key)
	require.Equal(t, http.StatusForbidden, status, "demoted: the admin-only check runs again: %s", body)
	require.Equal(t, "member", e.me(t, member.Key).Role)

	setRole("admin")
	status, body = e.callJSON(t, http.MethodPost, "/v1/tables", member.Key, `{"name":"by_promoted","columns":[{"name":"x","type":"text"}]}`)
	require.Equal(t, http.StatusCreated, status, "a write signs in afresh before the handler: %s", body)
}
