package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
)

// receiptPolicies lists a receipt's tables and policies as
// "table: policy (kind)".
func receiptPolicies(sec apiclient.Security) []string {
	var out []string
	for _, tb := range sec.Tables {
		for _, p := range tb.Policies {
			out = append(out, tb.Table+": "+p.Name+" ("+string(p.Kind)+")")
		}
	}
	return out
}

// /v1/sql, /v1/ask, a conversation turn and the streamed done event carry
// the security receipt: for a JWT end user the claim policy of the table it
// read next to tenant_isolation, its claim names (never their values), its
// role and the tenant's database role; for an API key's member no claims; a
// statement reading two tables lists both; another tenant's policies never
// appear.
func TestSecurityReceiptOverHTTP(t *testing.T) {
	t.Parallel()
	e := newAskEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Receipt shop")
	b := dbtest.NewTenant(t, e.db, "Receipt other")
	for _, tn := range []dbtest.Tenant{a, b} {
		require.NoError(t, e.db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	}
	idp := newTestIdP(t, "https://idp-receipt.example")
	status, body := e.registerIdP(t, a.APIKey, providerBody(idp.issuer, idp.srv.URL+"/jwks.json"))
	require.Equal(t, http.StatusCreated, status, body)
	token := func(subject, region, role string) string {
		return idp.token(t, "ec-1", subject, func(c map[string]any) { c["region"], c["role"] = region, role })
	}
	us, admin := token("uma", "US", "member"), token("ada", "GB", "admin")
	var member string
	var memberID string
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		u, err := dbsqlc.New().CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "receipt@example.com", Name: "receipt", Role: "member"})
		if err == nil {
			memberID = u.ID.String()
			member, err = dbtest.CreateKey(ctx, tx, a.ID, u.ID)
		}
		return err
	}))
	tableID := func(key, name string) string {
		var tables struct {
			Tables []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"tables"`
		}
		e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/tables", key, "", &tables)
		for _, tb := range tables.Tables {
			if tb.Name == name {
				return tb.ID
			}
		}
		t.Fatalf("no table %s", name)
		return ""
	}
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/tables/"+tableID(a.APIKey, "customers")+"/policies", admin,
		`{"name":"own_region","column":"country","claim":"region","op":"eq","admins_bypass":true}`, nil)
	// Tenant B's own claim policy, on its own customers: never in A's receipts.
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/tables/"+tableID(b.APIKey, "customers")+"/policies", b.APIKey,
		`{"name":"other_tenant_rule","column":"name","claim":"name","op":"eq"}`, nil)

	security := func(body string) apiclient.Security {
		t.Helper()
		var r struct {
			Security *apiclient.Security `json:"security"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		require.NotNil(t, r.Security, body)
		require.NotContains(t, body, "other_tenant_rule")
		require.NotContains(t, body, tenant.Schema(b.ID))
		return *r.Security
	}
	customers := []string{"customers: claim_own_region (restrictive)", "customers: tenant_isolation (permissive)"}

	// The JWT end user, through each path.
	status, body = e.send(t, http.MethodPost, "/v1/sql", us, map[string]any{"sql": "SELECT count(*) FROM customers"})
	require.Equal(t, http.StatusOK, status, body)
	sec := security(body)
	require.Equal(t, a.ID.String(), sec.TenantId.String())
	require.Equal(t, "member", sec.Role)
	require.Contains(t, sec.Claims, "region")
	require.Equal(t, tenant.MemberRole(a.ID), sec.DatabaseRole, "a member runs as the members' role")
	require.Equal(t, "dbchat_query", sec.SessionRole)
	require.Equal(t, customers, receiptPolicies(sec))
	secJSON, err := json.Marshal(sec)
	require.NoError(t, err)
	require.NotContains(t, string(secJSON), `"US"`, "claim names only, never values")

	status, body = e.send(t, http.MethodPost, "/v1/ask", us, map[string]any{"question": "How many customers do we have?"})
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, customers, receiptPolicies(security(body)))
	require.Contains(t, security(body).Claims, "region")

	conv := e.newConversation(t, us, "receipt")
	status, body = e.send(t, http.MethodPost, "/v1/conversations/"+conv.Id.String()+"/messages", us, map[string]any{"question": "How many customers do we have?"})
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, customers, receiptPolicies(security(body)))

	events := e.stream(t, "/v1/ask", us, `{"question":"How many customers do we have?"}`)
	done := events[len(events)-1]
	require.Equal(t, "done", done.name)
	require.Equal(t, customers, receiptPolicies(security(`{"security":`+string(done.data["security"])+`}`)))

	// The API key's member: no claims; two tables, both listed.
	status, body = e.send(t, http.MethodPost, "/v1/sql", member, map[string]any{
		"sql": "SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id"})
	require.Equal(t, http.StatusOK, status, body)
	sec = security(body)
	require.Equal(t, "member", sec.Role)
	require.Equal(t, []string{}, sec.Claims)
	require.NotNil(t, sec.UserId)
	require.Equal(t, memberID, sec.UserId.String())
	require.Equal(t, append(customers, "orders: tenant_isolation (permissive)"), receiptPolicies(sec))

	// Tenant B sees its own rule, not A's.
	status, body = e.send(t, http.MethodPost, "/v1/sql", b.APIKey, map[string]any{"sql": "SELECT count(*) FROM customers"})
	require.Equal(t, http.StatusOK, status, body)
	require.NotContains(t, body, "own_region")
	require.Contains(t, body, "claim_other_tenant_rule")
}
