package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server/apiclient"
)

type tenantResp struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Slug      string    `json:"slug"`
	IsActive  bool      `json:"is_active"`
	CreatedAt string    `json:"created_at"`
}

// opsCall performs an operator request with the right token.
func (e *env) opsCall(t *testing.T, want int, method, path, body string, out any) string {
	t.Helper()
	return e.expectJSON(t, want, method, path, operatorToken, body, out)
}

// listAllTenants lists every tenant as the operator.
func (e *env) listAllTenants(t *testing.T) []tenantResp {
	t.Helper()
	var resp struct {
		Tenants []tenantResp `json:"tenants"`
	}
	e.opsCall(t, http.StatusOK, http.MethodGet, "/v1/tenants", "", &resp)
	require.NotNil(t, resp.Tenants)
	return resp.Tenants
}

func TestOperatorToken(t *testing.T) {
	t.Parallel()
	enabled := newOperatorEnv(t)
	disabled := newEnv(t) // no AdminToken
	a := dbtest.NewTenant(t, enabled.db, "Op Token")
	routes := [][2]string{
		{http.MethodPost, "/v1/tenants"}, {http.MethodGet, "/v1/tenants"},
		{http.MethodPatch, "/v1/tenants/" + a.ID.String()},
	}
	const badToken = `{"error":{"code":"unauthorized","message":"missing or invalid operator token"}}`
	for _, r := range routes {
		for name, authz := range map[string]string{
			"missing":     "",
			"wrong":       "Bearer " + operatorToken + "x",
			"prefix":      "Bearer " + operatorToken[:len(operatorToken)-1],
			"not bearer":  "Basic " + operatorToken,
			"tenant key":  bearer(a.APIKey),
			"empty token": "Bearer ",
		} {
			status, body := enabled.rawCall(t, r[0], r[1], authz, "application/json", `{"name":"Sneaky","is_active":false}`)
			require.Equal(t, http.StatusUnauthorized, status, "%s %s (%s): %s", r[0], r[1], name, body)
			require.Equal(t, badToken, body)

			// Disabled: the endpoints do not exist, whatever is sent.
			status, body = disabled.rawCall(t, r[0], r[1], authz, "application/json", `{"name":"Sneaky","is_active":false}`)
			require.Equal(t, http.StatusNotFound, status, "%s %s (%s): %s", r[0], r[1], name, body)
			requireErrorShape(t, status, body, http.StatusNotFound, "not_found", "")
		}
		status, body := disabled.rawCall(t, r[0], r[1], "Bearer "+operatorToken, "application/json", `{"name":"Sneaky"}`)
		requireErrorShape(t, status, body, http.StatusNotFound, "not_found", "")
	}
	// None of it created or changed a tenant.
	ts := enabled.listAllTenants(t)
	require.Len(t, ts, 1)
	require.Equal(t, tenantResp{ID: a.ID, Name: "Op Token", Slug: a.Slug, IsActive: true, CreatedAt: ts[0].CreatedAt}, ts[0])
}

func TestCreateAndListTenants(t *testing.T) {
	t.Parallel()
	e := newOperatorEnv(t)
	require.Empty(t, e.listAllTenants(t))

	var created struct {
		Tenant tenantResp `json:"tenant"`
		User   userResp   `json:"user"`
		APIKey string     `json:"api_key"`
	}
	body := e.opsCall(t, http.StatusCreated, http.MethodPost, "/v1/tenants",
		`{"name":"Acme Corp","slug":"acme","admin_email":"boss@acme.test"}`, &created)
	require.NotContains(t, body, "key_hash")
	require.Equal(t, "Acme Corp", created.Tenant.Name)
	require.Equal(t, "acme", created.Tenant.Slug)
	require.True(t, created.Tenant.IsActive)
	require.NotEmpty(t, created.Tenant.CreatedAt)
	require.Equal(t, "boss@acme.test", created.User.Email)
	require.Equal(t, "admin", created.User.Role)
	require.True(t, strings.HasPrefix(created.APIKey, "dbc_"))

	// The key works at once, as the tenant's admin.
	me := e.me(t, created.APIKey)
	require.Equal(t, created.Tenant.ID, me.Tenant.ID)
	require.Equal(t, created.User.ID, me.User.ID)
	require.Equal(t, "admin", me.Role)
	require.Equal(t, []uuid.UUID{created.User.ID}, idsOfUsers(e.listUsers(t, created.APIKey)))

	// Slug and admin email default from the name.
	var second struct {
		Tenant tenantResp `json:"tenant"`
		User   userResp   `json:"user"`
		APIKey string     `json:"api_key"`
	}
	e.opsCall(t, http.StatusCreated, http.MethodPost, "/v1/tenants", `{"name":"Globex  Inc."}`, &second)
	require.Equal(t, "globex-inc", second.Tenant.Slug)
	require.Equal(t, "admin@globex-inc.invalid", second.User.Email)
	require.Equal(t, second.Tenant.ID, e.me(t, second.APIKey).Tenant.ID)

	// The operator sees both; each tenant sees only itself.
	ts := e.listAllTenants(t)
	require.Len(t, ts, 2)
	require.Equal(t, []uuid.UUID{created.Tenant.ID, second.Tenant.ID}, []uuid.UUID{ts[0].ID, ts[1].ID}, "oldest first")
	require.Equal(t, created.Tenant, ts[0])
	var own tenantResp
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tenant", second.APIKey, "", &own)
	require.Equal(t, second.Tenant, own)

	// Duplicate slug, explicit or derived.
	for _, body := range []string{`{"name":"Other","slug":"acme"}`, `{"name":"ACME"}`} {
		status, resp := e.callJSON(t, http.MethodPost, "/v1/tenants", operatorToken, body)
		requireErrorShape(t, status, resp, http.StatusConflict, "conflict", "")
		require.Contains(t, resp, `acme`)
	}

	// Bad input names the field.
	for body, field := range map[string]string{
		`{}`:             "name",
		`{"name":"   "}`: "name",
		`{"name":"` + strings.Repeat("x", 201) + `"}`: "name",
		`{"name":"Ok","slug":"Not OK"}`:               "slug",
		`{"name":"Ok","slug":"-dash"}`:                "slug",
		`{"name":"!!!"}`:                              "slug",
		`{"name":"Ok","admin_email":"nope"}`:          "admin_email",
		`{"name":"Ok","admin_email":"a b@c.d"}`:       "admin_email",
		`{"name":"Ok","slug":7}`:                      "slug",
		// Control and bidirectional formatting characters inside a name
		// (at the ends they are trimmed like spaces).
		`{"name":"Acme\nCorp"}`:        "name",
		`{"name":"Acme\tCorp"}`:        "name",
		`{"name":"Acme\u0000Corp"}`:    "name",
		`{"name":"Acme\u001b[2JCorp"}`: "name",
		`{"name":"Acme\u0085Corp"}`:    "name",
		`{"name":"Acme\u2028Corp"}`:    "name",
		`{"name":"Acme\u202eproC"}`:    "name",
		`{"name":"Acme\u2067Corp"}`:    "name",
	} {
		status, resp := e.callJSON(t, http.MethodPost, "/v1/tenants", operatorToken, body)
		requireErrorShape(t, status, resp, http.StatusBadRequest, "invalid", field)
	}
	require.Len(t, e.listAllTenants(t), 2, "failed requests created nothing")
}

func TestUpdateTenant(t *testing.T) {
	t.Parallel()
	e := newOperatorEnv(t)
	a := dbtest.NewTenant(t, e.db, "Leaver")
	b := dbtest.NewTenant(t, e.db, "Stayer")
	am := e.addUser(t, a.APIKey, "member@leaver.test", "member")
	path := "/v1/tenants/" + a.ID.String()

	var got tenantResp
	e.opsCall(t, http.StatusOK, http.MethodPatch, path, `{"is_active":false}`, &got)
	require.Equal(t, a.ID, got.ID)
	require.False(t, got.IsActive)
	require.Equal(t, "Leaver", got.Name)

	// Every key of A fails on its next request; B is untouched.
	e.requireUnauthorized(t, "/v1/me", a.APIKey)
	e.requireUnauthorized(t, "/v1/users", am.Key)
	require.Equal(t, b.ID, e.me(t, b.APIKey).Tenant.ID)
	active := map[uuid.UUID]bool{}
	for _, tn := range e.listAllTenants(t) {
		active[tn.ID] = tn.IsActive
	}
	require.Equal(t, map[uuid.UUID]bool{a.ID: false, b.ID: true}, active)

	// Reactivation (with a rename) restores the keys.
	e.opsCall(t, http.StatusOK, http.MethodPatch, path, `{"is_active":true,"name":"  Returner "}`, &got)
	require.True(t, got.IsActive)
	require.Equal(t, "Returner", got.Name)
	require.Equal(t, a.Slug, got.Slug, "the slug never changes")
	me := e.me(t, a.APIKey)
	require.Equal(t, "Returner", me.Tenant.Name)
	require.Equal(t, am.ID, e.me(t, am.Key).User.ID)

	// A rename alone keeps the tenant active; an empty patch changes nothing.
	e.opsCall(t, http.StatusOK, http.MethodPatch, path, `{"name":"Renamed"}`, &got)
	require.Equal(t, "Renamed", got.Name)
	require.True(t, got.IsActive)
	var same tenantResp
	e.opsCall(t, http.StatusOK, http.MethodPatch, path, `{}`, &same)
	require.Equal(t, got, same)
	e.opsCall(t, http.StatusOK, http.MethodPatch, path, `{"name":null,"is_active":null}`, &same)
	require.Equal(t, got, same)

	// B was never touched by any of it.
	var bt tenantResp
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tenant", b.APIKey, "", &bt)
	require.Equal(t, "Stayer", bt.Name)
	require.True(t, bt.IsActive)

	// Unknown and malformed ids are 404 with the same body.
	status, want := e.callJSON(t, http.MethodPatch, "/v1/tenants/"+uuid.NewString(), operatorToken, `{"is_active":false}`)
	requireErrorShape(t, status, want, http.StatusNotFound, "not_found", "")
	status, body := e.callJSON(t, http.MethodPatch, "/v1/tenants/not-a-uuid", operatorToken, `{"is_active":false}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, want, body)
	status, body = e.callJSON(t, http.MethodPatch, "/v1/tenants/"+uuid.NewString(), operatorToken, `{}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, want, body)

	for body, field := range map[string]string{
		`{"name":""}`: "name",
		`{"name":"` + strings.Repeat("y", 201) + `"}`: "name",
		`{"is_active":"no"}`:                          "is_active",
	} {
		status, resp := e.callJSON(t, http.MethodPatch, path, operatorToken, body)
		requireErrorShape(t, status, resp, http.StatusBadRequest, "invalid", field)
	}
	// A rename is held to the same rule as a new name.
	for _, body := range []string{`{"name":"Two\nLines"}`, `{"name":"Esc\u001b]0;owned\u0007"}`, `{"name":"Evil\u202egnp.exe"}`} {
		status, resp := e.callJSON(t, http.MethodPatch, path, operatorToken, body)
		requireErrorShape(t, status, resp, http.StatusBadRequest, "invalid", "name")
		require.Contains(t, resp, "control or bidirectional formatting characters", body)
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tenant", a.APIKey, "", &got)
	require.Equal(t, "Renamed", got.Name, "refused renames changed nothing")
	require.Equal(t, a.ID, e.me(t, a.APIKey).Tenant.ID)
}

// A tenant admin turns llm_data_access on and off for its own tenant only;
// a member may not; the setting is required and the default is off.
func TestTenantSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "A")
	b := dbtest.NewTenant(t, e.db, "B")
	var got apiclient.Tenant
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tenant", a.APIKey, "", &got)
	require.False(t, got.LlmDataAccess)
	e.expectJSON(t, http.StatusOK, http.MethodPatch, "/v1/tenant", a.APIKey, `{"llm_data_access":true}`, &got)
	require.True(t, got.LlmDataAccess)
	require.Equal(t, a.ID, got.Id)
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tenant", b.APIKey, "", &got)
	require.False(t, got.LlmDataAccess, "another tenant's setting is its own")

	member := e.addUser(t, a.APIKey, "member@a.test", "member")
	status, body := e.callJSON(t, http.MethodPatch, "/v1/tenant", member.Key, `{"llm_data_access":false}`)
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.callJSON(t, http.MethodPatch, "/v1/tenant", a.APIKey, `{}`)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"field":"llm_data_access"`)
	e.expectJSON(t, http.StatusOK, http.MethodPatch, "/v1/tenant", a.APIKey, `{"llm_data_access":false}`, &got)
	require.False(t, got.LlmDataAccess)
}
