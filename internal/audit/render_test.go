package audit_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit"
)

func sampleReport(probe bool) *audit.Report {
	r := &audit.Report{
		GeneratedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Database:    audit.Database{Name: "dbchat", OID: 16384, Host: "db.internal", Port: 5432, ServerVersion: "15.8", Version: "PostgreSQL 15.8", User: "dbchat_auditor"},
		Migration:   3,
		Findings: []audit.Finding{{Lint: "rls_disabled_in_tenant_table", Level: audit.LevelError, ObjectType: "table",
			Object: "dbchat.no_rls", Detail: "row-level security is disabled <b>|</b>", Remedy: "ALTER TABLE dbchat.no_rls ENABLE ROW LEVEL SECURITY;"}},
		Coverage: []audit.Coverage{
			{Schema: "dbchat", Table: "users", Kind: "platform", RLSEnabled: true, RLSForced: true, Policies: []string{"tenant_isolation"},
				TenantColumn: "tenant_id", HasTenantID: true, KeysIncludeTenantID: true, ForeignKeysIncludeTenantID: true, Verdict: "ok", Reason: "fine"},
			{Schema: "dbchat", Table: "no_rls", Kind: "platform", TenantColumn: "tenant_id", HasTenantID: true, Verdict: "fail", Reason: "rls_disabled_in_tenant_table: ..."},
		},
		Policies: []audit.Policy{{Schema: "dbchat", Table: "users", Policy: "tenant_isolation", Kind: "PERMISSIVE", Command: "ALL",
			Roles: []string{"PUBLIC"}, Using: "(tenant_id = ( SELECT ...))", WithCheck: "(tenant_id = ( SELECT ...))"}},
		Roles:  []audit.Role{{Role: "dbchat_app", Login: true}},
		Grants: []audit.Grant{{ObjectType: "table", Schema: "dbchat", Object: "dbchat.users", Grantee: "dbchat_app", Privilege: "SELECT"}},
	}
	if probe {
		r.Probe = &audit.ProbeResult{
			StartedAt: r.GeneratedAt, FinishedAt: r.GeneratedAt.Add(time.Second),
			Tenants: []audit.ProbeTenant{{Label: "A", ID: "a", Schema: "t_a", Marker: "zzm"}},
			Attempts: []audit.Attempt{
				{ID: 1, Channel: "sql as dbchat_app", Actor: "A", Victim: "B", Action: "read", Target: "dbchat.users", Outcome: "0 rows visible", Passed: true, Cells: []string{audit.CellViewOther}},
				{ID: 2, Channel: "http", Actor: "A", Victim: "B", Action: "read", Target: "GET /v1/history/{id}", Outcome: "200 OK", Passed: false, Cells: []string{audit.CellHistory}},
				{ID: 3, Channel: "sandbox", Actor: "A", Victim: "A", Action: "control", Control: true, Outcome: "ran: 1 rows", Passed: true, Cells: []string{audit.CellExecSame}},
			},
			Unavailable: []audit.Unavailable{{What: "POST /v1/ask", Reason: "the server has no SQL generator", Cells: []string{audit.CellGenSame, audit.CellGenOther}}},
			Cleanup:     audit.Cleanup{Done: true, Removed: []string{"tenant A"}, Residue: []string{}},
		}
	}
	r.Finalize()
	return r
}

func render(t *testing.T, r *audit.Report, format string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, audit.Render(&b, r, format))
	return b.String()
}

func TestSummaryAndMatrix(t *testing.T) {
	t.Parallel()
	r := sampleReport(false)
	require.False(t, r.Summary.Clean)
	require.Equal(t, 1, r.Summary.Errors)
	require.Equal(t, 1, r.Summary.TablesOK)
	require.Equal(t, 1, r.Summary.TablesFail)
	require.Len(t, r.Matrix, 6)
	for _, row := range r.Matrix {
		for _, c := range row.Cells {
			require.Equal(t, audit.StatusNotProbed, c.Status, "without a probe no cell claims anything")
		}
	}

	r = sampleReport(true)
	cells := map[string]audit.MatrixCell{}
	for _, row := range r.Matrix {
		for _, c := range row.Cells {
			cells[c.Key] = c
		}
	}
	require.Equal(t, audit.StatusVerified, cells[audit.CellViewOther].Status)
	require.Equal(t, []int{1}, cells[audit.CellViewOther].Attempts)
	require.Equal(t, audit.StatusFailed, cells[audit.CellHistory].Status)
	require.Equal(t, []int{2}, cells[audit.CellHistory].Failed)
	require.Equal(t, audit.StatusVerified, cells[audit.CellExecSame].Status)
	require.Equal(t, audit.StatusNotAvailable, cells[audit.CellGenOther].Status)
	require.Contains(t, cells[audit.CellGenOther].Note, "POST /v1/ask")
	require.Equal(t, audit.StatusNotAvailable, cells[audit.CellCreateSame].Status)
	require.Equal(t, 1, r.Summary.Failed)
	require.False(t, r.Summary.Clean)

	// A clean database and a clean probe are clean.
	r.Findings, r.Probe.Attempts = nil, r.Probe.Attempts[:1]
	r.Finalize()
	require.True(t, r.Summary.Clean)
	// Residue is not clean.
	r.Probe.Cleanup.Residue = []string{"schema t_a"}
	r.Finalize()
	require.False(t, r.Summary.Clean)
}

func TestRenderFormats(t *testing.T) {
	t.Parallel()
	for _, probe := range []bool{false, true} {
		r := sampleReport(probe)

		text := render(t, r, "text")
		require.Contains(t, text, "dbchat isolation audit: NOT CLEAN")
		require.Contains(t, text, "rls_disabled_in_tenant_table")
		require.Contains(t, text, "remedy: ALTER TABLE dbchat.no_rls")
		require.Contains(t, text, "dbchat.users")
		require.Contains(t, text, "View tables")

		var back audit.Report
		require.NoError(t, json.Unmarshal([]byte(render(t, r, "json")), &back))
		require.Equal(t, r.Findings, back.Findings)
		require.Equal(t, r.Summary, back.Summary)
		require.Equal(t, probe, back.Probe != nil)

		mdown := render(t, r, "markdown")
		require.Contains(t, mdown, "# dbchat isolation audit: NOT CLEAN")
		require.Contains(t, mdown, `<b>\|</b>`, "pipes escaped in table cells")

		html := render(t, r, "html")
		require.True(t, strings.HasPrefix(html, "<!DOCTYPE html>"))
		require.Contains(t, html, "<style>", "CSS is inline")
		require.Contains(t, html, "@media print")
		for _, external := range []string{"<script", "<link", "src=", "http://", "https://", "url("} {
			require.NotContains(t, html, external, "self-contained: no %s", external)
		}
		require.Contains(t, html, "&lt;b&gt;", "text is escaped")
		require.NotContains(t, html, "<b>|</b>")
		for _, want := range []string{"db.internal:5432", "PostgreSQL 15.8", "2025-01-02 03:04:05 UTC", "<dt>Migration</dt><dd>3</dd>",
			"View tables", "Create tables", "SQL generation", "Query execution", "Training data", "Query history",
			"Same tenant", "Other tenant", "rls_disabled_in_tenant_table", "Remedy:", "dbchat.users"} {
			require.Contains(t, html, want)
		}
		if probe {
			require.Contains(t, html, `<a href="#attempt-1">#1</a>`, "cells link to the attempts behind them")
			require.Contains(t, html, `id="attempt-2"`)
			require.Contains(t, html, "not available")
		} else {
			require.Equal(t, 10, len(regexp.MustCompile(`not probed</span>`).FindAllString(html, -1)), "every cell says not probed")
		}
	}
	require.Error(t, audit.Render(&bytes.Buffer{}, sampleReport(false), "pdf"))
}
