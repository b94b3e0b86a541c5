package cli_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/audit/probe"
	"github.com/dbchat/dbchat/internal/cli"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The tests of internal/audit/probe live here: the probe attacks the API
// the CLI builds for it (cli.ProbeAPI, the real server), which the probe's
// own package may not import.

func probeConfig(d *dbtest.DB) probe.Config {
	return probe.Config{AppURL: d.AppURL, QueryURL: d.QueryURL, AdminURL: d.AdminURL, API: cli.ProbeAPI}
}

// requireNoResidue checks, as a superuser (RLS does not apply), that the
// database holds no tenant row and no tenant schema.
func requireNoProbeResidue(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rows, err := admin.Query(ctx, `SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'dbchat'::regnamespace AND c.relkind = 'r'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	for _, tbl := range tables {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.`+pgx.Identifier{tbl}.Sanitize()).Scan(&n))
		require.Zero(t, n, "rows left in dbchat.%s", tbl)
	}
	var schemas int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\_%'`).Scan(&schemas))
	require.Zero(t, schemas, "tenant schemas left")
}

func probeFailures(res *audit.ProbeResult) string {
	var b strings.Builder
	for _, a := range res.Attempts {
		if !a.Passed {
			fmt.Fprintf(&b, "#%d %s %s→%s %s %s: %s (%s)\n", a.ID, a.Channel, a.Actor, a.Victim, a.Action, a.Target, a.Outcome, a.Statement)
		}
	}
	return b.String()
}

func TestProbeOnAHealthyDatabaseBlocksEverythingAndLeavesNothing(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	res, err := probe.Run(t.Context(), probeConfig(d))
	require.NoError(t, err)
	require.Empty(t, probeFailures(res), "every attempt is blocked and every control works")
	require.True(t, res.Cleanup.Done, res.Cleanup.Error)
	require.Empty(t, res.Cleanup.Residue)
	requireNoProbeResidue(t, admin)
	require.Len(t, res.Tenants, 2)

	// Coverage: every channel, both directions, every platform table, the
	// data tables, and every id route of the API.
	channels := map[string]int{}
	targets := map[string]bool{}
	directions := map[string]bool{}
	controls := 0
	for _, a := range res.Attempts {
		channels[a.Channel]++
		targets[a.Channel+" "+a.Action+" "+a.Target] = true
		directions[a.Actor+a.Victim] = true
		if a.Control {
			controls++
		}
	}
	for _, ch := range []string{"sql as dbchat_app", "sql as dbchat_query", "http", "sandbox", "integrity"} {
		require.NotZero(t, channels[ch], ch)
	}
	require.Equal(t, 2, channels["integrity"])
	// Token forgery and claim escalation (tokens.go), both directions.
	require.GreaterOrEqual(t, channels["token"], 2*(12+1+2+7+3))
	for _, want := range []string{"token sign in GET /v1/tables with a forged token", "token sign in users provisioned by refused tokens",
		"token control POST /v1/sql as an end user (JWT)", "token read beyond claims POST /v1/sql as an end user (JWT)",
		"token widen claims POST /v1/sql as an end user (JWT)"} {
		require.True(t, targets[want], want)
	}
	require.True(t, directions["AB"] && directions["BA"])
	require.NotZero(t, controls)
	for _, tbl := range dbtest.SeededTables {
		for _, action := range []string{"read", "update", "delete", "move"} {
			require.True(t, targets["sql as dbchat_app "+action+" dbchat."+tbl], "%s dbchat.%s as dbchat_app", action, tbl)
		}
		require.True(t, targets["sql as dbchat_query read dbchat."+tbl], "read dbchat.%s as dbchat_query", tbl)
	}
	for _, tn := range res.Tenants {
		require.True(t, targets["sql as dbchat_query read "+tn.Schema+"."+probe.DataTable], tn.Schema)
	}
	_, endpoints := cli.ProbeAPI(probe.Services{DB: tenant.New(nil)})
	require.NotEmpty(t, endpoints)
	for _, ep := range endpoints {
		// The operator's routes act on any tenant by design (probe.operatorRoute).
		if !strings.Contains(ep.Path, ":") || strings.HasPrefix(ep.Path, "/v1/tenants") || strings.HasPrefix(ep.Path, "/v1/admin/") {
			continue
		}
		doc := regexp.MustCompile(`:([A-Za-z0-9_]+)`).ReplaceAllString(ep.Path, "{$1}")
		found := false
		for k := range targets {
			if strings.HasPrefix(k, "http ") && strings.Contains(k, ep.Method+" "+doc+" (") {
				found = true
			}
		}
		require.True(t, found, "route %s %s is attacked with the other tenant's ids", ep.Method, ep.Path)
	}

	// The matrix: every cell verified, SQL generation included (the probe
	// always answers with the offline generator).
	require.Empty(t, res.Unavailable)
	require.NotZero(t, channels["ask"])
	rep := &audit.Report{Probe: res}
	rep.Finalize()
	for _, row := range rep.Matrix {
		for _, c := range row.Cells {
			require.Equal(t, audit.StatusVerified, c.Status, "%s / %s: %s", row.Operation, c.Column, c.Note)
		}
	}
}

// TestProbeOnADatabaseSplitAcrossQueryLogins: with the tenants split across
// query logins (DBCHAT_QUERY_SHARDS), the probe's sandbox and its plain
// connections log in as each tenant's own login, and every attempt is
// still blocked (a probe that kept dbchat_query would fail the attempts of
// a tenant on another login: permission denied to set role).
func TestProbeOnADatabaseSplitAcrossQueryLogins(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	d.SplitQueryLogins(t, 16)
	res, err := probe.Run(t.Context(), probeConfig(d))
	require.NoError(t, err)
	require.Empty(t, probeFailures(res))
	require.True(t, res.Cleanup.Done, res.Cleanup.Error)
	logins := map[string]bool{}
	for _, tn := range res.Tenants {
		id, err := uuid.Parse(tn.ID)
		require.NoError(t, err)
		logins[tenant.QueryLogin(id, 16)] = true
	}
	t.Logf("the probe's tenants' query logins: %v", logins)
}

// TestProbeCatchesABrokenPolicy shows the probe bites: with a policy that
// lets every tenant read dbchat.users, the reads fail, through SQL and HTTP,
// and the cleanup still leaves nothing behind.
func TestProbeCatchesABrokenPolicy(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	_, err := admin.Exec(context.Background(), `CREATE POLICY open_read ON dbchat.users FOR SELECT USING (true)`)
	require.NoError(t, err)

	res, err := probe.Run(t.Context(), probeConfig(d))
	require.NoError(t, err)
	failed := probeFailures(res)
	require.Contains(t, failed, "sql as dbchat_app A→B read dbchat.users: LEAK")
	require.Contains(t, failed, "sql as dbchat_app B→A read dbchat.users: LEAK")
	require.Contains(t, failed, "http A→B read GET /v1/users: MARKER LEAKED")
	require.NotContains(t, failed, "dbchat.api_keys", "only what the policy opens leaks")
	require.True(t, res.Cleanup.Done, res.Cleanup.Error)
	require.Empty(t, res.Cleanup.Residue)
	requireNoProbeResidue(t, admin)

	rep := &audit.Report{Probe: res}
	rep.Finalize()
	require.False(t, rep.Summary.Clean)
	require.NotZero(t, rep.Summary.Failed)
}

// TestProbeCatchesAClaimThatAdmitsEveryone: with dbchat.claim broken (it
// returns the claim's name, which the probe's policy compares its marked
// row with), an end user outside the claim policy sees the row, and the
// probe's claim attempts say so; forged tokens stay refused.
func TestProbeCatchesAClaimThatAdmitsEveryone(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	admin := d.AdminPool(t)
	_, err := admin.Exec(context.Background(), `CREATE OR REPLACE FUNCTION dbchat.claim(p_name text) RETURNS text
		LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT p_name $$`)
	require.NoError(t, err)

	res, err := probe.Run(t.Context(), probeConfig(d))
	require.NoError(t, err)
	failed := probeFailures(res)
	require.Contains(t, failed, "token A→A read beyond claims POST /v1/sql as an end user (JWT): 200 OK; the row beyond its claims was returned")
	require.Contains(t, failed, "token B→B read beyond claims POST /v1/sql as an end user (JWT): 200 OK; the row beyond its claims was returned")
	require.NotContains(t, failed, "forged token")
	require.True(t, res.Cleanup.Done, res.Cleanup.Error)
	requireNoProbeResidue(t, admin)
}

func TestProbeNeedsItsConnections(t *testing.T) {
	t.Parallel()
	_, err := probe.Run(context.Background(), probe.Config{AppURL: "postgres://x@127.0.0.1:1/x"})
	require.ErrorContains(t, err, "the probe needs")
	u := "postgres://x@127.0.0.1:1/x"
	_, err = probe.Run(context.Background(), probe.Config{AppURL: u, QueryURL: u, AdminURL: u})
	require.ErrorContains(t, err, "the probe needs the API")
}
