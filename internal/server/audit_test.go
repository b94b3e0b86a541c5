package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/dbtest"
)

func TestAdminAudit(t *testing.T) {
	t.Parallel()
	e := newOperatorEnv(t)
	a := dbtest.NewTenant(t, e.db, "Audited")

	// The operator gets the JSON report, read through the runtime pool.
	status, body := e.callJSON(t, http.MethodGet, "/v1/admin/audit", operatorToken, "")
	require.Equal(t, http.StatusOK, status, body)
	var rep audit.Report
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	require.True(t, rep.Summary.Clean, body)
	require.Empty(t, rep.Findings)
	require.Equal(t, "dbchat_app", rep.Database.User)
	require.Len(t, rep.Coverage, len(dbtest.SeededTables))
	require.NotEmpty(t, rep.Roles)
	require.NotEmpty(t, rep.Policies)
	require.NotEmpty(t, rep.Grants)
	require.Nil(t, rep.Probe, "the API does not run the probe")
	for _, row := range rep.Matrix {
		for _, c := range row.Cells {
			require.Equal(t, audit.StatusNotProbed, c.Status)
		}
	}

	// Findings do not change the status: the report says it.
	_, err := e.d.AdminPool(t).Exec(context.Background(), `ALTER TABLE dbchat.models NO FORCE ROW LEVEL SECURITY`)
	require.NoError(t, err)
	status, body = e.callJSON(t, http.MethodGet, "/v1/admin/audit", operatorToken, "")
	require.Equal(t, http.StatusOK, status, body)
	rep = audit.Report{}
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	require.False(t, rep.Summary.Clean)
	require.Len(t, rep.FindingsFor("rls_not_forced"), 1)
	require.Equal(t, "dbchat.models", rep.FindingsFor("rls_not_forced")[0].Object)

	// Tenant keys and wrong tokens are refused; without a token configured
	// the route does not exist.
	status, _ = e.callJSON(t, http.MethodGet, "/v1/admin/audit", a.APIKey, "")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = e.callJSON(t, http.MethodGet, "/v1/admin/audit", "", "")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = newEnv(t).callJSON(t, http.MethodGet, "/v1/admin/audit", operatorToken, "")
	require.Equal(t, http.StatusNotFound, status)
}
