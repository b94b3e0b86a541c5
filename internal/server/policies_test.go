package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Two end users of one tenant, signed in with JWTs whose region claims
// differ, read the demo customers under a claim policy on country: the
// preview, /v1/sql, /v1/ask and a conversation turn each show a user only
// its region's rows, an admin (admins_bypass) all of them, an API key's
// member none; PostgreSQL enforces it (a transaction with the claims set
// counts the same).
func TestClaimPoliciesPerEndUser(t *testing.T) {
	t.Parallel()
	e := newAskEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Claims shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	idp := newTestIdP(t, "https://idp-claims.example")
	status, body := e.registerIdP(t, a.APIKey, providerBody(idp.issuer, idp.srv.URL+"/jwks.json"))
	require.Equal(t, http.StatusCreated, status, body)
	token := func(subject string, region any, role string) string {
		return idp.token(t, "ec-1", subject, func(c map[string]any) {
			c["region"], c["role"] = region, role
		})
	}
	us, gb := token("uma", "US", "member"), token("gabe", "GB", "member")
	admin := token("ada", "GB", "admin")
	var member string
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		u, err := dbsqlc.New().CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "plain@example.com", Name: "plain", Role: "member"})
		if err == nil {
			member, err = dbtest.CreateKey(ctx, tx, a.ID, u.ID)
		}
		return err
	}))

	var tables struct {
		Tables []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"tables"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables", a.APIKey, "", &tables)
	var customers string
	for _, tb := range tables.Tables {
		if tb.Name == "customers" {
			customers = tb.ID
		}
	}
	require.NotEmpty(t, customers)
	policies := "/v1/tables/" + customers + "/policies"

	// counts is what key sees of customers through each reading path.
	counts := func(key string) []string {
		t.Helper()
		var preview catalog.Rows
		e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables/"+customers+"/rows?limit=100", key, "", &preview)
		status, body := e.send(t, http.MethodPost, "/v1/sql", key, map[string]any{"sql": "SELECT count(*) FROM customers"})
		require.Equal(t, http.StatusOK, status, body)
		var sql struct {
			Rows [][]json.RawMessage `json:"rows"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &sql))
		ask := e.ask(t, key, "How many customers do we have?")
		require.Equal(t, `SELECT count(*) AS count FROM "customers"`, ask.SQL)
		conv := e.newConversation(t, key, "claims")
		turn := e.turn(t, key, conv.Id, "How many customers do we have?")
		return []string{fmt.Sprintf(`"%d"`, len(preview.Rows)), string(sql.Rows[0][0]), string(ask.Rows[0][0]), string(turn.Rows[0][0])}
	}
	all := []string{`"4"`, `"4"`, `"4"`, `"4"`}
	n := func(v string) []string { return []string{v, v, v, v} }
	require.Equal(t, n(`"4"`), counts(us), "no policy yet")

	// Only admins manage policies.
	def := `{"name":"own_region","column":"country","claim":"region","op":"eq","admins_bypass":true}`
	status, body = e.callJSON(t, http.MethodPost, policies, us, def)
	require.Equal(t, http.StatusForbidden, status, body)
	var created catalog.Policy
	e.expectJSON(t, http.StatusCreated, http.MethodPost, policies, admin, def, &created)
	require.Equal(t, "own_region", created.Name)
	require.True(t, created.AdminsBypass)

	require.Equal(t, n(`"2"`), counts(us), "US: Grace and Barbara")
	require.Equal(t, n(`"1"`), counts(gb), "GB: Ada")
	require.Equal(t, all, counts(admin), "admins_bypass")
	require.Equal(t, all, counts(a.APIKey), "the admin's API key: admins_bypass")
	require.Equal(t, n(`"0"`), counts(member), "an API key carries no claims: no row")

	// The database enforces it: a transaction as the US user counts 2.
	var rows int
	require.NoError(t, e.db.OnceAs(ctx, tenant.Identity{TenantID: a.ID, Role: tenant.Member, Claims: map[string]any{"region": "US"}},
		func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM `+tenant.Schema(a.ID)+`.customers`).Scan(&rows)
		}))
	require.Equal(t, 2, rows)

	// Bad definitions: 400 naming the field, nothing created.
	for _, c := range []struct{ body, field string }{
		{`{"name":"p","column":"nope","claim":"region","op":"eq"}`, "column"},
		{`{"name":"p","column":"tenant_id","claim":"region","op":"eq"}`, "column"},
		{`{"name":"p","column":"country","claim":"region","op":"like"}`, "op"},
		{`{"name":"p","column":"country","claim":["region"],"op":"eq"}`, "claim"},
		{`{"name":"p","column":"country","claim":{"a":1},"op":"in"}`, "claim"},
		{`{"name":"p","column":"country","claim":"it's","op":"eq"}`, "claim"},
		{`{"name":"P; DROP","column":"country","claim":"region","op":"eq"}`, "name"},
	} {
		status, body := e.callJSON(t, http.MethodPost, policies, admin, c.body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", c.body, body)
		require.Equal(t, c.field, decodeError(t, body).Error.Details["field"], body)
	}
	status, body = e.callJSON(t, http.MethodPost, policies, admin, def)
	require.Equal(t, http.StatusConflict, status, body)
	var list struct {
		Policies []catalog.Policy `json:"policies"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, policies, a.APIKey, "", &list)
	require.Len(t, list.Policies, 1)
	require.Equal(t, created.ID, list.Policies[0].ID)
	var pgPolicies int
	require.NoError(t, e.d.AdminPool(t).QueryRow(ctx, `SELECT count(*) FROM pg_policies WHERE schemaname = $1 AND tablename = 'customers'`,
		tenant.Schema(a.ID)).Scan(&pgPolicies))
	require.Equal(t, 2, pgPolicies, "tenant_isolation and claim_own_region, nothing half-created")

	// An array claim with in; then dropping the eq policy leaves it.
	multi := token("mo", []any{"US", "GB"}, "member")
	inDef := `{"name":"regions","column":"country","claim":"region","op":"in"}`
	e.expectJSON(t, http.StatusCreated, http.MethodPost, policies, admin, inDef, &created)
	require.Equal(t, n(`"0"`), counts(multi), "eq: an array is no scalar claim")
	require.Equal(t, n(`"2"`), counts(us), "in: a scalar claim is a one-element array")
	status, _ = e.callJSON(t, http.MethodDelete, policies+"/"+list.Policies[0].ID.String(), admin, "")
	require.Equal(t, http.StatusNoContent, status)
	status, _ = e.callJSON(t, http.MethodDelete, policies+"/"+list.Policies[0].ID.String(), admin, "")
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, n(`"3"`), counts(multi), "in: US and GB")
	require.Equal(t, n(`"0"`), counts(a.APIKey), "no admins_bypass on regions")

	// Claim policies are FOR SELECT: an import still writes every row,
	// here through the admin's key, which itself now sees none.
	status, body = e.rawCall(t, http.MethodPost, "/v1/tables/"+customers+"/rows", bearer(a.APIKey), "application/json",
		`[{"id":5,"name":"Katherine Johnson","country":"US"}]`)
	require.Contains(t, body, `"inserted":1`, status)
	require.Equal(t, n(`"3"`), counts(us))
}
