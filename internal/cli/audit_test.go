package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/audit/audittest"
	"github.com/dbchat/dbchat/internal/dbtest"
)

func TestAuditCleanDatabase(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	vars := map[string]string{"DBCHAT_AUDIT_DATABASE_URL": audittest.AuditorURL(t, d)}

	r := run(t, vars, "audit")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	require.Empty(t, r.stderr)
	require.Contains(t, r.stdout, "dbchat isolation audit: CLEAN")
	require.Contains(t, r.stdout, "read as dbchat_auditor")
	require.Contains(t, r.stdout, "findings (audit.findings): none")
	require.Contains(t, r.stdout, "dbchat.tenants")
	require.Contains(t, r.stdout, "not probed")

	// Every format; --out writes the file and says so on stderr.
	dir := t.TempDir()
	for _, format := range audit.Formats {
		out := filepath.Join(dir, "report."+format)
		r := run(t, vars, "audit", "--format", format, "--out", out)
		require.Equal(t, 0, r.code, r.stderr)
		require.Empty(t, r.stdout)
		require.Contains(t, r.stderr, "CLEAN: wrote "+out)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.NotEmpty(t, b)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var rep audit.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	require.True(t, rep.Summary.Clean)
	require.Empty(t, rep.Findings)
	require.Nil(t, rep.Probe)
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	require.Contains(t, string(html), "not probed")

	// Without DBCHAT_AUDIT_DATABASE_URL the admin URL is used.
	r = run(t, map[string]string{"DBCHAT_ADMIN_DATABASE_URL": d.AdminURL}, "audit", "--format", "markdown")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "# dbchat isolation audit: CLEAN")
}

func TestAuditReportsEveryLintAndExits1(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	vars := map[string]string{"DBCHAT_AUDIT_DATABASE_URL": audittest.AuditorURL(t, d)}
	audittest.Break(t, d.AdminPool(t))

	r := run(t, vars, "audit")
	require.Equal(t, 1, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "dbchat isolation audit: NOT CLEAN")
	for _, b := range audittest.Breakages {
		require.Regexp(t, `(?m)^  (ERROR|WARN ) `+b.Lint+`  \S+( \S+)? `+regexpQuote(b.Object)+`$`, r.stdout, "%s on %s", b.Lint, b.Object)
	}

	r = run(t, vars, "audit", "--format", "json")
	require.Equal(t, 1, r.code)
	var rep audit.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	for _, b := range audittest.Breakages {
		found := false
		for _, f := range rep.FindingsFor(b.Lint) {
			found = found || f.Object == b.Object
		}
		require.True(t, found, "%s on %s", b.Lint, b.Object)
	}
}

func regexpQuote(s string) string {
	return strings.NewReplacer(".", `\.`, "(", `\(`, ")", `\)`).Replace(s)
}

func TestAuditProbe(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	out := filepath.Join(t.TempDir(), "audit.html")
	vars := map[string]string{
		"DBCHAT_AUDIT_DATABASE_URL": audittest.AuditorURL(t, d),
		"DBCHAT_ADMIN_DATABASE_URL": d.AdminURL,
		"DATABASE_URL":              d.AppURL,
		"DBCHAT_QUERY_DATABASE_URL": d.QueryURL,
	}
	r := run(t, vars, "audit", "--probe", "--format", "html", "--out", out)
	require.Equal(t, 0, r.code, r.stderr)
	html, err := os.ReadFile(out)
	require.NoError(t, err)
	page := string(html)
	require.Contains(t, page, `class="verdict clean"`)
	require.Contains(t, page, "verified")
	require.NotContains(t, page, "not probed</span>")
	require.NotContains(t, page, `class="FAIL"`)
	require.Contains(t, page, "verified: no residue")

	r = run(t, vars, "audit", "--probe", "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rep audit.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.NotNil(t, rep.Probe)
	require.NotZero(t, rep.Summary.Attempts)
	require.Equal(t, rep.Summary.Attempts, rep.Summary.Passed)
	require.True(t, rep.Probe.Cleanup.Done)
	require.Empty(t, rep.Probe.Cleanup.Residue)

	var tenants, schemas int
	admin := d.AdminPool(t)
	require.NoError(t, admin.QueryRow(context.Background(), `SELECT count(*) FROM dbchat.tenants`).Scan(&tenants))
	require.NoError(t, admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\_%'`).Scan(&schemas))
	require.Zero(t, tenants+schemas, "the probe leaves nothing behind")
}

func TestAuditCouldNotRun(t *testing.T) {
	t.Parallel()
	// Usage mistakes: exit 2 with the usage text.
	r := run(t, nil, "audit", "--format", "pdf")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "usage: dbchat")
	r = run(t, nil, "audit", "extra")
	require.Equal(t, 2, r.code)

	// Nothing to connect to, or an unreachable database: exit 2, one line.
	r = run(t, nil, "audit")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "DBCHAT_AUDIT_DATABASE_URL")
	r = run(t, map[string]string{"DBCHAT_AUDIT_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, "audit")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "dbchat audit: DBCHAT_AUDIT_DATABASE_URL")
	require.Empty(t, r.stdout)

	// --probe names the connections it is missing.
	r = run(t, map[string]string{"DBCHAT_AUDIT_DATABASE_URL": "postgres://x@127.0.0.1:1/x"}, "audit", "--probe")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--probe needs DATABASE_URL, DBCHAT_ADMIN_DATABASE_URL, DBCHAT_QUERY_DATABASE_URL")
}
