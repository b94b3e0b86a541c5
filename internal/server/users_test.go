package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// operatorToken is the operator token of the servers newOperatorEnv builds.
const operatorToken = "test-operator-token-0123456789"

// newOperatorEnv is newEnv with the operator endpoints enabled.
func newOperatorEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{AdminToken: operatorToken}))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

// rawCall performs method path with authorization (a whole header value, ""
// for none) and, when contentType is not empty, body. It returns status and
// body, and checks that every response but 204 is JSON.
func (e *env) rawCall(t *testing.T, method, path, authorization, contentType, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if contentType != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, rd)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusNoContent {
		require.Empty(t, out)
	} else {
		require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"), "%s %s: %s", method, path, out)
	}
	return resp.StatusCode, string(out)
}

// callJSON performs method path as key with a JSON body ("" sends none).
func (e *env) callJSON(t *testing.T, method, path, key, body string) (int, string) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return e.rawCall(t, method, path, bearer(key), ct, body)
}

// expectJSON is callJSON that requires status want and decodes the body into out
// (when out is not nil).
func (e *env) expectJSON(t *testing.T, want int, method, path, key, body string, out any) string {
	t.Helper()
	status, resp := e.callJSON(t, method, path, key, body)
	require.Equal(t, want, status, "%s %s: %s", method, path, resp)
	if out != nil {
		require.NoError(t, json.Unmarshal([]byte(resp), out), resp)
	}
	return resp
}

type userResp struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Name  string    `json:"name"`
	Role  string    `json:"role"`
}

type newKeyResp struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"`
	UserID    uuid.UUID `json:"user_id"`
	CreatedAt string    `json:"created_at"`
	APIKey    string    `json:"api_key"`
}

type keyResp struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	UserID     uuid.UUID `json:"user_id"`
	CreatedAt  string    `json:"created_at"`
	LastUsedAt *string   `json:"last_used_at"`
	RevokedAt  *string   `json:"revoked_at"`
}

// apiUser is a member user created through the API, with a key of its own.
type apiUser struct {
	ID    uuid.UUID
	KeyID uuid.UUID
	Key   string
}

// addUser creates a user as adminKey and mints it a key.
func (e *env) addUser(t *testing.T, adminKey, email, role string) apiUser {
	t.Helper()
	var u userResp
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/users", adminKey,
		`{"email":"`+email+`","name":"User `+email+`","role":"`+role+`"}`, &u)
	require.Equal(t, email, u.Email)
	require.Equal(t, role, u.Role)
	k := e.mintKey(t, adminKey, `{"name":"key of `+email+`","user_id":"`+u.ID.String()+`"}`)
	require.Equal(t, u.ID, k.UserID)
	return apiUser{ID: u.ID, KeyID: k.ID, Key: k.APIKey}
}

func (e *env) mintKey(t *testing.T, key, body string) newKeyResp {
	t.Helper()
	var k newKeyResp
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/api-keys", key, body, &k)
	require.True(t, strings.HasPrefix(k.APIKey, "dbc_"), k.APIKey)
	require.NotEmpty(t, k.Prefix)
	require.Contains(t, k.APIKey, k.Prefix)
	return k
}

func (e *env) listUsers(t *testing.T, key string) []userResp {
	t.Helper()
	var resp struct {
		Users []userResp `json:"users"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/users", key, "", &resp)
	require.NotNil(t, resp.Users)
	return resp.Users
}

func (e *env) listKeys(t *testing.T, key string) []keyResp {
	t.Helper()
	var resp struct {
		Keys []keyResp `json:"api_keys"`
	}
	body := e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/api-keys", key, "", &resp)
	require.NotContains(t, body, "key_hash")
	require.NotContains(t, body, "tenant_id")
	require.NotContains(t, body, "dbc_", "a listed key must never show the key itself")
	require.NotNil(t, resp.Keys)
	return resp.Keys
}

func idsOfUsers(us []userResp) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(us))
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

func idsOfKeys(ks []keyResp) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(ks))
	for _, k := range ks {
		ids = append(ids, k.ID)
	}
	return ids
}

// requireErrorShape checks status and the one error shape with code (and, when
// field is not empty, details.field).
func requireErrorShape(t *testing.T, status int, body string, wantStatus int, code, field string) {
	t.Helper()
	require.Equal(t, wantStatus, status, body)
	var e struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), body)
	require.Equal(t, code, e.Error.Code, body)
	require.NotEmpty(t, e.Error.Message, body)
	if field != "" {
		require.Equal(t, field, e.Error.Details["field"], body)
		require.Contains(t, e.Error.Message, field, "the message names the field")
	}
}

// Every tenant-key endpoint of this surface, as an admin and as a member.
func TestUsersAndKeysByRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Roles")
	m := e.addUser(t, a.APIKey, "member@roles.test", "member")
	adminKeyID := e.me(t, a.APIKey).KeyID

	meBody := e.me(t, m.Key)
	require.Equal(t, "member", meBody.Role)
	require.Equal(t, m.ID, meBody.User.ID)
	require.Equal(t, m.KeyID, meBody.KeyID)

	forbidden := func(t *testing.T, method, path, body string) {
		t.Helper()
		status, resp := e.callJSON(t, method, path, m.Key, body)
		requireErrorShape(t, status, resp, http.StatusForbidden, "forbidden", "")
	}

	t.Run("create user", func(t *testing.T) {
		var u userResp
		e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/users", a.APIKey, `{"email":" second@roles.test ","role":"admin"}`, &u)
		require.Equal(t, userResp{ID: u.ID, Email: "second@roles.test", Role: "admin"}, u)
		forbidden(t, http.MethodPost, "/v1/users", `{"email":"x@roles.test","role":"member"}`)

		status, body := e.callJSON(t, http.MethodPost, "/v1/users", a.APIKey, `{"email":"member@roles.test","role":"admin"}`)
		requireErrorShape(t, status, body, http.StatusConflict, "conflict", "")
		require.Contains(t, body, "member@roles.test")

		for body, field := range map[string]string{
			`{"email":"not-an-email","role":"member"}`:                                            "email",
			`{"email":"Bob <bob@roles.test>","role":"member"}`:                                    "email",
			`{"role":"member"}`:                                                                   "email",
			`{"email":"ok@roles.test","role":"owner"}`:                                            "role",
			`{"email":"ok@roles.test"}`:                                                           "role",
			`{"email":"ok@roles.test","role":"member","name":7}`:                                  "name",
			`{"email":"ok@roles.test","role":"member","name":"` + strings.Repeat("n", 201) + `"}`: "name",
		} {
			status, resp := e.callJSON(t, http.MethodPost, "/v1/users", a.APIKey, body)
			requireErrorShape(t, status, resp, http.StatusBadRequest, "invalid", field)
		}
	})

	t.Run("list users", func(t *testing.T) {
		all := e.listUsers(t, a.APIKey)
		require.Contains(t, idsOfUsers(all), a.AdminID)
		require.Contains(t, idsOfUsers(all), m.ID)
		mine := e.listUsers(t, m.Key)
		require.Equal(t, []uuid.UUID{m.ID}, idsOfUsers(mine), "a member sees only itself")
		require.Equal(t, "member@roles.test", mine[0].Email)
	})

	t.Run("api keys", func(t *testing.T) {
		// A member mints keys for itself, implicitly or by naming itself.
		own := e.mintKey(t, m.Key, `{"name":"laptop"}`)
		require.Equal(t, m.ID, own.UserID)
		require.Equal(t, "laptop", own.Name)
		named := e.mintKey(t, m.Key, `{"name":"ci","user_id":"`+m.ID.String()+`"}`)
		require.Equal(t, m.ID, named.UserID)
		require.Equal(t, m.ID, e.me(t, own.APIKey).User.ID)
		require.Equal(t, own.ID, e.me(t, own.APIKey).KeyID)
		forbidden(t, http.MethodPost, "/v1/api-keys", `{"name":"steal","user_id":"`+a.AdminID.String()+`"}`)
		forbidden(t, http.MethodPost, "/v1/api-keys", `{"name":"steal","user_id":"`+uuid.NewString()+`"}`)

		// An admin mints keys for itself and for any user of the tenant.
		adm := e.mintKey(t, a.APIKey, `{"name":"admin 2"}`)
		require.Equal(t, a.AdminID, adm.UserID)
		forM := e.mintKey(t, a.APIKey, `{"name":"for member","user_id":"`+m.ID.String()+`"}`)
		require.Equal(t, m.ID, e.me(t, forM.APIKey).User.ID)
		require.Equal(t, "member", e.me(t, forM.APIKey).Role, "a key acts with its user's role, not its creator's")

		status, body := e.callJSON(t, http.MethodPost, "/v1/api-keys", a.APIKey, `{"name":"ghost","user_id":"`+uuid.NewString()+`"}`)
		requireErrorShape(t, status, body, http.StatusNotFound, "not_found", "")
		for body, field := range map[string]string{
			`{"name":"x","user_id":"nope"}`: "user_id",
			`{"name":"x","user_id":12}`:     "user_id",
			`{"name":"   "}`:                "name",
			`{}`:                            "name",
		} {
			status, resp := e.callJSON(t, http.MethodPost, "/v1/api-keys", m.Key, body)
			requireErrorShape(t, status, resp, http.StatusBadRequest, "invalid", field)
		}

		// Lists: admins every key of the tenant, members their own.
		all := idsOfKeys(e.listKeys(t, a.APIKey))
		for _, id := range []uuid.UUID{adminKeyID, m.KeyID, own.ID, named.ID, adm.ID, forM.ID} {
			require.Contains(t, all, id)
		}
		mine := e.listKeys(t, m.Key)
		require.ElementsMatch(t, []uuid.UUID{m.KeyID, own.ID, named.ID, forM.ID}, idsOfKeys(mine))
		for _, k := range mine {
			require.Equal(t, m.ID, k.UserID)
			require.Nil(t, k.RevokedAt)
		}

		// A member cannot revoke another user's key: it is "not found".
		status, body = e.callJSON(t, http.MethodDelete, "/v1/api-keys/"+adm.ID.String(), m.Key, "")
		requireErrorShape(t, status, body, http.StatusNotFound, "not_found", "")
		require.Equal(t, a.AdminID, e.me(t, adm.APIKey).User.ID, "still works")

		// A member revokes its own key; the next request with it fails.
		e.expectJSON(t, http.StatusNoContent, http.MethodDelete, "/v1/api-keys/"+own.ID.String(), m.Key, "", nil)
		e.requireUnauthorized(t, "/v1/me", own.APIKey)
		// An admin revokes a member's key and its own second key.
		e.expectJSON(t, http.StatusNoContent, http.MethodDelete, "/v1/api-keys/"+named.ID.String(), a.APIKey, "", nil)
		e.requireUnauthorized(t, "/v1/users", named.APIKey)
		e.expectJSON(t, http.StatusNoContent, http.MethodDelete, "/v1/api-keys/"+adm.ID.String(), a.APIKey, "", nil)
		e.requireUnauthorized(t, "/v1/tenant", adm.APIKey)
		// Revoking is idempotent, and the rows stay for audit.
		e.expectJSON(t, http.StatusNoContent, http.MethodDelete, "/v1/api-keys/"+adm.ID.String(), a.APIKey, "", nil)
		revoked := map[uuid.UUID]bool{}
		for _, k := range e.listKeys(t, a.APIKey) {
			revoked[k.ID] = k.RevokedAt != nil
		}
		require.Equal(t, map[uuid.UUID]bool{adminKeyID: false, m.KeyID: false, own.ID: true, named.ID: true, adm.ID: true, forM.ID: false}, revoked)
		// The keys in use got a last_used_at.
		for _, k := range e.listKeys(t, m.Key) {
			if k.ID == m.KeyID {
				require.NotNil(t, k.LastUsedAt)
			}
		}

		status, body = e.callJSON(t, http.MethodDelete, "/v1/api-keys/"+uuid.NewString(), a.APIKey, "")
		requireErrorShape(t, status, body, http.StatusNotFound, "not_found", "")
	})

	t.Run("delete user", func(t *testing.T) {
		doomed := e.addUser(t, a.APIKey, "doomed@roles.test", "member")
		e.me(t, doomed.Key)
		// Things the user made outlive it (their user_id becomes NULL).
		ctx := context.Background()
		q := dbsqlc.New()
		err := e.db.TxAs(ctx, tenant.Identity{TenantID: a.ID, UserID: doomed.ID, Role: tenant.Member}, func(tx tenant.Conn) error {
			if _, err := q.CreateTable(ctx, tx, dbsqlc.CreateTableParams{Name: "doomed_made_this"}); err != nil {
				return err
			}
			_, err := q.CreateQueryHistory(ctx, tx, dbsqlc.CreateQueryHistoryParams{Status: "success"})
			return err
		})
		require.NoError(t, err)
		forbidden(t, http.MethodDelete, "/v1/users/"+doomed.ID.String(), "")
		forbidden(t, http.MethodDelete, "/v1/users/"+m.ID.String(), "") // not even itself

		// An admin cannot delete itself: the tenant would lose its admin.
		status, body := e.callJSON(t, http.MethodDelete, "/v1/users/"+a.AdminID.String(), a.APIKey, "")
		requireErrorShape(t, status, body, http.StatusBadRequest, "invalid", "")
		require.Equal(t, a.AdminID, e.me(t, a.APIKey).User.ID)

		e.expectJSON(t, http.StatusNoContent, http.MethodDelete, "/v1/users/"+doomed.ID.String(), a.APIKey, "", nil)
		e.requireUnauthorized(t, "/v1/me", doomed.Key) // its keys went with it
		require.NotContains(t, idsOfUsers(e.listUsers(t, a.APIKey)), doomed.ID)
		require.NotContains(t, idsOfKeys(e.listKeys(t, a.APIKey)), doomed.KeyID)
		names, _ := e.listTables(t, a.APIKey)
		require.Contains(t, names, "doomed_made_this")

		status, body = e.callJSON(t, http.MethodDelete, "/v1/users/"+doomed.ID.String(), a.APIKey, "")
		requireErrorShape(t, status, body, http.StatusNotFound, "not_found", "")
	})

	t.Run("current tenant", func(t *testing.T) {
		for _, key := range []string{a.APIKey, m.Key} {
			var tn struct {
				ID       uuid.UUID `json:"id"`
				Slug     string    `json:"slug"`
				IsActive bool      `json:"is_active"`
			}
			e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tenant", key, "", &tn)
			require.Equal(t, a.ID, tn.ID)
			require.Equal(t, a.Slug, tn.Slug)
			require.True(t, tn.IsActive)
		}
	})

	t.Run("no key", func(t *testing.T) {
		for _, r := range [][2]string{
			{http.MethodGet, "/v1/tenant"}, {http.MethodGet, "/v1/users"}, {http.MethodPost, "/v1/users"},
			{http.MethodDelete, "/v1/users/" + m.ID.String()}, {http.MethodGet, "/v1/api-keys"},
			{http.MethodPost, "/v1/api-keys"}, {http.MethodDelete, "/v1/api-keys/" + m.KeyID.String()},
		} {
			for _, authz := range []string{"", "Bearer " + operatorToken, bearer(m.Key + "x")} {
				status, body := e.rawCall(t, r[0], r[1], authz, "application/json", `{}`)
				require.Equal(t, http.StatusUnauthorized, status, "%s %s: %s", r[0], r[1], body)
				require.Equal(t, unauthorizedBody, body)
			}
		}
	})
}

// Tenant B, naming A's objects by id, gets exactly what it gets for ids that
// do not exist, and never sees A's objects in its lists.
func TestUsersAndKeysAcrossTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Cross A")
	b := dbtest.NewTenant(t, e.db, "Cross B")
	am := e.addUser(t, a.APIKey, "member@cross-a.test", "member")
	aKeyID := e.me(t, a.APIKey).KeyID
	bm := e.addUser(t, b.APIKey, "member@cross-b.test", "member")

	notFound := func(t *testing.T, method, path, key, body string) string {
		t.Helper()
		status, resp := e.callJSON(t, method, path, key, body)
		requireErrorShape(t, status, resp, http.StatusNotFound, "not_found", "")
		return resp
	}
	for _, key := range []string{b.APIKey, bm.Key} {
		for _, path := range []string{"/v1/api-keys/", "/v1/users/"} {
			if path == "/v1/users/" && key == bm.Key {
				continue // members are stopped before the lookup (403)
			}
			want := notFound(t, http.MethodDelete, path+uuid.NewString(), key, "")
			require.Equal(t, want, notFound(t, http.MethodDelete, path+"not-a-uuid", key, ""))
			for _, id := range []uuid.UUID{a.AdminID, am.ID, aKeyID, am.KeyID} {
				require.Equal(t, want, notFound(t, http.MethodDelete, path+id.String(), key, ""), "%s%s", path, id)
			}
		}
	}
	// B's admin cannot mint a key for A's user.
	want := notFound(t, http.MethodPost, "/v1/api-keys", b.APIKey, `{"name":"x","user_id":"`+uuid.NewString()+`"}`)
	for _, id := range []uuid.UUID{a.AdminID, am.ID} {
		require.Equal(t, want, notFound(t, http.MethodPost, "/v1/api-keys", b.APIKey, `{"name":"x","user_id":"`+id.String()+`"}`))
	}

	// Nothing of A's changed.
	require.Equal(t, am.ID, e.me(t, am.Key).User.ID)
	require.Equal(t, a.AdminID, e.me(t, a.APIKey).User.ID)
	require.ElementsMatch(t, []uuid.UUID{a.AdminID, am.ID}, idsOfUsers(e.listUsers(t, a.APIKey)))

	// B's lists hold B's objects only.
	require.ElementsMatch(t, []uuid.UUID{b.AdminID, bm.ID}, idsOfUsers(e.listUsers(t, b.APIKey)))
	bKeys := idsOfKeys(e.listKeys(t, b.APIKey))
	require.Len(t, bKeys, 2)
	for _, id := range []uuid.UUID{aKeyID, am.KeyID} {
		require.NotContains(t, bKeys, id)
	}
	require.Equal(t, []uuid.UUID{bm.KeyID}, idsOfKeys(e.listKeys(t, bm.Key)))
	require.Equal(t, []uuid.UUID{bm.ID}, idsOfUsers(e.listUsers(t, bm.Key)))

	// The same email may exist in two tenants.
	e.addUser(t, b.APIKey, "member@cross-a.test", "member")
}

// Malformed requests get a 4xx in the one error shape, never a 500.
func TestBadRequestBodies(t *testing.T) {
	t.Parallel()
	e := newOperatorEnv(t)
	a := dbtest.NewTenant(t, e.db, "Bad Input")
	adminAuth := bearer(a.APIKey)
	opsAuth := bearer(operatorToken)
	routes := []struct {
		method, path, authorization string
	}{
		{http.MethodPost, "/v1/users", adminAuth},
		{http.MethodPost, "/v1/api-keys", adminAuth},
		{http.MethodPost, "/v1/tenants", opsAuth},
		{http.MethodPatch, "/v1/tenants/" + a.ID.String(), opsAuth},
	}
	cases := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"text/plain", "text/plain", `{"name":"x"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", `name=x`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"malformed", "application/json", `{"name":`, http.StatusBadRequest, "invalid"},
		{"syntax", "application/json", `{"name" "x"}`, http.StatusBadRequest, "invalid"},
		{"empty", "application/json", ``, http.StatusBadRequest, "invalid"},
		{"array", "application/json", `[1,2]`, http.StatusBadRequest, "invalid"},
		{"unknown field", "application/json", `{"name":"x","tenant_id":"` + uuid.NewString() + `"}`, http.StatusBadRequest, "invalid"},
		{"two values", "application/json", `{} {}`, http.StatusBadRequest, "invalid"},
		{"wrong type", "application/json", `{"name":["x"]}`, http.StatusBadRequest, "invalid"},
	}
	for _, r := range routes {
		for _, c := range cases {
			status, body := e.rawCall(t, r.method, r.path, r.authorization, c.contentType, c.body)
			require.Equal(t, c.status, status, "%s %s %s: %s", r.method, r.path, c.name, body)
			requireErrorShape(t, status, body, c.status, c.code, "")
		}
	}
	// Nothing was created or changed by any of it.
	require.Equal(t, []uuid.UUID{a.AdminID}, idsOfUsers(e.listUsers(t, a.APIKey)))
	require.Len(t, e.listKeys(t, a.APIKey), 1)
	require.Equal(t, "Bad Input", e.listAllTenants(t)[0].Name)
}
