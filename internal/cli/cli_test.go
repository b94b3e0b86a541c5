package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/db"
	"github.com/dbchat/dbchat/internal/audit/audittest"
	"github.com/dbchat/dbchat/internal/cli"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what a finished command left behind.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the dbchat command in-process with exactly the environment vars
// (nothing leaks in from the process environment).
func run(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := cli.Run(t.Context(), &cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: getenv(vars)}, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// requireOneLineError checks a failed command: exit 1, nothing on stdout and
// a single "dbchat: ..." line on stderr containing each of want.
func requireOneLineError(t *testing.T, r result, want ...string) {
	t.Helper()
	require.Equal(t, 1, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stdout)
	require.True(t, strings.HasPrefix(r.stderr, "dbchat: "), r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	for _, w := range want {
		require.Contains(t, r.stderr, w)
	}
}

// catalogFingerprint renders what migrate controls in the database (relations
// and their ACLs and RLS flags, policies, functions and their ACLs, the
// database ACL) as one string, so two snapshots can be compared.
func catalogFingerprint(t *testing.T, d *dbtest.DB) string {
	t.Helper()
	var fp string
	err := d.AdminPool(t).QueryRow(context.Background(), `
		SELECT concat_ws(E'\n',
			(SELECT string_agg(format('%s.%s %s acl=%s rls=%s/%s', n.nspname, c.relname, c.relkind,
					coalesce(c.relacl::text, '-'), c.relrowsecurity, c.relforcerowsecurity), E'\n' ORDER BY n.nspname, c.relname)
			 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname IN ('dbchat', 'dbchat_migrations')),
			(SELECT string_agg(format('policy %s.%s %s %s roles=%s using=%s check=%s', schemaname, tablename, policyname,
					cmd, roles, qual, with_check), E'\n' ORDER BY tablename, policyname)
			 FROM pg_policies WHERE schemaname = 'dbchat'),
			(SELECT string_agg(format('func %s(%s) acl=%s secdef=%s', p.proname, pg_get_function_identity_arguments(p.oid),
					coalesce(p.proacl::text, '-'), p.prosecdef), E'\n' ORDER BY p.proname)
			 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'dbchat'),
			(SELECT string_agg(format('schema %s acl=%s', nspname, coalesce(nspacl::text, '-')), E'\n' ORDER BY nspname)
			 FROM pg_namespace WHERE nspname IN ('dbchat', 'dbchat_migrations')),
			(SELECT format('database acl=%s', datacl) FROM pg_database WHERE datname = current_database()))`).Scan(&fp)
	require.NoError(t, err)
	return fp
}

func migrationFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return names
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	vars := map[string]string{"DBCHAT_ADMIN_DATABASE_URL": d.AdminURL}

	// dbtest's database is already migrated, so both runs are re-runs; the
	// fingerprint shows the second changes nothing the first left behind.
	r := run(t, vars, "migrate")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "migrate: database is at version")
	before := catalogFingerprint(t, d)

	require.Contains(t, r.stdout, "migrate: 0 tenants on 1 query login (DBCHAT_QUERY_SHARDS)")
	vars["DBCHAT_QUERY_SHARDS"] = "auto" // no tenants: still one login
	r = run(t, vars, "migrate")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.NotContains(t, r.stdout, "applied", "a second migrate applies nothing")
	require.Contains(t, r.stdout, "migrate: 0 tenants on 1 query login (DBCHAT_QUERY_SHARDS)")
	require.Equal(t, before, catalogFingerprint(t, d))

	r = run(t, vars, "migrate", "status")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	files := migrationFiles(t)
	require.Len(t, lines, 1+len(files)+1, "header, one row per migration, summary:\n%s", r.stdout)
	require.Equal(t, []string{"VERSION", "STATE", "APPLIED", "AT", "FILE"}, strings.Fields(lines[0]))
	for i, line := range lines[1 : 1+len(files)] {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 3, line)
		require.Equal(t, "applied", f[1], line)
		require.Equal(t, strings.TrimPrefix(files[i], "migrations/"), f[len(f)-1], line)
	}
	require.Equal(t, "all migrations applied", lines[len(lines)-1])

	vars["DBCHAT_QUERY_SHARDS"] = "many"
	r = run(t, vars, "migrate")
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, `DBCHAT_QUERY_SHARDS="many": want auto or a whole number from 1 to 256`)
	require.Equal(t, before, catalogFingerprint(t, d), "nothing changed")
}

// A database that does not exist yet is created and migrated from scratch,
// each migration reported once; a re-run reports none.
func TestMigrateFreshDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := url.Parse(dbtest.AdminURL(t))
	require.NoError(t, err)
	name := "dbchat_clitest_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	admin.Path = "/" + name
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dbtest.AdminURL(t))
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	vars := map[string]string{"DBCHAT_ADMIN_DATABASE_URL": admin.String()}

	r := run(t, vars, "migrate")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	for _, f := range migrationFiles(t) {
		require.Equal(t, 1, strings.Count(r.stdout, "migrate: applied "+strings.TrimPrefix(f, "migrations/")), r.stdout)
	}

	r = run(t, vars, "migrate")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.NotContains(t, r.stdout, "applied", r.stdout)
}

func TestMigrateNeedsAdminURL(t *testing.T) {
	t.Parallel()
	requireOneLineError(t, run(t, nil, "migrate"), "DBCHAT_ADMIN_DATABASE_URL is not set")
}

func TestTenantCreate(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	vars := map[string]string{"DATABASE_URL": d.AppURL}

	r := run(t, vars, "tenant", "create", "--name", "Acme Corp", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	var out struct {
		Tenant struct {
			ID   uuid.UUID `json:"id"`
			Name string    `json:"name"`
			Slug string    `json:"slug"`
		} `json:"tenant"`
		APIKey string `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.NotEqual(t, uuid.Nil, out.Tenant.ID)
	require.Equal(t, "Acme Corp", out.Tenant.Name)
	require.Equal(t, "acme-corp", out.Tenant.Slug)
	require.True(t, strings.HasPrefix(out.APIKey, "dbc_"), out.APIKey)

	// The printed key works against the API over the same database.
	srv := httptest.NewServer(server.New(tenant.New(d.AppPool(t, 2)), slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/me", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+out.APIKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var me struct {
		Tenant struct {
			ID uuid.UUID `json:"id"`
		} `json:"tenant"`
		Role string `json:"role"`
	}
	require.NoError(t, json.Unmarshal(body, &me))
	require.Equal(t, out.Tenant.ID, me.Tenant.ID)
	require.Equal(t, "admin", me.Role)

	// Slugs are unique across tenants, even though no tenant sees another.
	r = run(t, vars, "tenant", "create", "--name", "Acme Again", "--slug", "acme-corp")
	requireOneLineError(t, r, `"acme-corp" already exists`)

	// A name is plain text: it is printed to terminals and logs, where an
	// escape sequence or a newline would forge output.
	r = run(t, vars, "tenant", "create", "--name", "Acme\x1b[2J Corp")
	requireOneLineError(t, r, "name: must not contain control or bidirectional formatting characters (found U+001B)")
	r = run(t, vars, "tenant", "create", "--name", "Acme\nCorp")
	requireOneLineError(t, r, "(found U+000A)")
	r = run(t, vars, "tenant", "create", "--name", "Acme \xff Corp")
	requireOneLineError(t, r, "name: must be valid UTF-8 text")

	r = run(t, vars, "tenant", "create", "--json")
	require.Equal(t, 2, r.code, "missing --name is a usage error; stderr: %s", r.stderr)
	require.Contains(t, r.stderr, "usage: dbchat")
}

func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)

	t.Run("no DATABASE_URL", func(t *testing.T) {
		t.Parallel()
		requireOneLineError(t, run(t, nil, "serve"), "DATABASE_URL is not set")
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		// Port 1 on loopback: nothing listens, the connection is refused at once.
		u, err := url.Parse(d.AppURL)
		require.NoError(t, err)
		u.Host = "127.0.0.1:1"
		r := run(t, map[string]string{"DATABASE_URL": u.String()}, "serve")
		requireOneLineError(t, r, "cannot reach", "127.0.0.1:1")
		pw, _ := u.User.Password()
		require.NotContains(t, r.stderr, pw, "the password stays out of the error")
	})

	t.Run("superuser", func(t *testing.T) {
		t.Parallel()
		// As a superuser every RLS policy would be bypassed.
		r := run(t, map[string]string{"DATABASE_URL": d.AdminURL}, "serve")
		requireOneLineError(t, r, "SUPERUSER", "refusing to start")
	})
}

// loginRole creates a login role with attrs (e.g. "BYPASSRLS") that is a
// member of memberOf, for the length of t, and returns a URL of d as it.
// Roles are cluster-wide: the name is random and not dbchat_*, so the audit
// views of concurrent tests never list it.
func loginRole(t *testing.T, d *dbtest.DB, attrs string, memberOf ...string) string {
	t.Helper()
	ctx := context.Background()
	admin := d.AdminPool(t)
	name := "clitest_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	pw := strings.ReplaceAll(uuid.NewString(), "-", "")
	_, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD '%s'", name, attrs, pw))
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE "+name); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	for _, g := range memberOf {
		_, err := admin.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", pgx.Identifier{g}.Sanitize(), name))
		require.NoError(t, err)
	}
	u, err := url.Parse(d.AppURL)
	require.NoError(t, err)
	u.User = url.UserPassword(name, pw)
	return u.String()
}

// The runtime login must be dbchat_app (or inherit only it): every other
// login is refused before serving, with a message naming dbchat_app, instead
// of starting and failing every request, starting with the power to bypass
// RLS, or reporting the database as not migrated.
func TestServeRefusesTheWrongRole(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx := context.Background()
	// A role outside dbchat that bypasses RLS; a login that may SET ROLE to it
	// would bypass RLS too.
	admin := d.AdminPool(t)
	bypasser := "clitest_bypass_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	_, err := admin.Exec(ctx, "CREATE ROLE "+bypasser+" NOLOGIN BYPASSRLS")
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE "+bypasser); err != nil {
			t.Errorf("drop role %s: %v", bypasser, err)
		}
	})

	const right = "(connect as dbchat_app; see docs/SECURITY.md)"
	for _, c := range []struct {
		name string
		url  func(t *testing.T) string
		want []string
	}{
		{"the auditor", func(t *testing.T) string { return audittest.AuditorURL(t, d) },
			[]string{"logs in as dbchat_auditor", "dbchat_auditor is not dbchat_app and does not inherit its privileges"}},
		{"the query role", func(t *testing.T) string { return d.QueryURL },
			[]string{"logs in as dbchat_query", "dbchat_query is not dbchat_app"}},
		{"a member of dbchat_owner", func(t *testing.T) string { return loginRole(t, d, "", "dbchat_owner", "dbchat_app") },
			// dbchat_owner is a member of dbchat_operator (and of
			// dbchat_provisioner), so the login reaches them too.
			[]string{"is a member of dbchat_operator (BYPASSRLS), dbchat_owner, dbchat_provisioner (CREATEROLE) (and could SET ROLE to it)"}},
		{"a member of dbchat_app and dbchat_sandbox", func(t *testing.T) string { return loginRole(t, d, "", "dbchat_app", "dbchat_sandbox") },
			[]string{"is a member of dbchat_sandbox (and could SET ROLE to it)"}},
		{"a member of dbchat_owner without dbchat_app", func(t *testing.T) string { return loginRole(t, d, "", "dbchat_owner") },
			[]string{"is a member of dbchat_operator (BYPASSRLS), dbchat_owner", "is not dbchat_app and does not inherit its privileges"}},
		{"a member of dbchat_app and dbchat_query", func(t *testing.T) string { return loginRole(t, d, "", "dbchat_app", "dbchat_query") },
			// (and, through the tenant roles dbchat_query may take, of dbchat_sandbox)
			[]string{"is a member of dbchat_query"}},
		{"a member of dbchat_app and dbchat_auditor", func(t *testing.T) string { return loginRole(t, d, "", "dbchat_app", "dbchat_auditor") },
			[]string{"is a member of dbchat_auditor"}},
		{"a member of a BYPASSRLS role", func(t *testing.T) string { return loginRole(t, d, "", "dbchat_app", bypasser) },
			[]string{"is a member of " + bypasser + " (BYPASSRLS)"}},
		{"a BYPASSRLS login", func(t *testing.T) string { return loginRole(t, d, "BYPASSRLS", "dbchat_app") },
			[]string{"has BYPASSRLS"}},
		// CREATEROLE could GRANT dbchat_operator to itself.
		{"a CREATEROLE login", func(t *testing.T) string { return loginRole(t, d, "CREATEROLE", "dbchat_app") },
			[]string{"has CREATEROLE"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Were the login accepted, serve would serve until the deadline
			// and exit 0, failing the checks below instead of hanging.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			vars := map[string]string{"DATABASE_URL": c.url(t), "DBCHAT_ADDR": "127.0.0.1:0"}
			code := cli.Run(ctx, &cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: getenv(vars)}, []string{"serve"})
			r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			requireOneLineError(t, r, append([]string{"refusing to start", right}, c.want...)...)
			require.NotContains(t, r.stderr, "not migrated")
		})
	}

	// A login whose only dbchat membership is dbchat_app (inherited) is the
	// runtime role by another name: accepted, and it works.
	r := run(t, map[string]string{"DATABASE_URL": loginRole(t, d, "", "dbchat_app")}, "tenant", "create", "--name", "Inherits App")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "tenant Inherits App (inherits-app) created")
}

func TestServeListensAndShutsDown(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// stdout through a pipe, so the test can wait for the listening line.
	stdoutR, stdoutW := io.Pipe()
	var stderr syncBuffer
	const token = "metrics-test-operator-token"
	env := &cli.Env{Stdout: stdoutW, Stderr: &stderr, Getenv: getenv(map[string]string{
		"DATABASE_URL":        d.AppURL,
		"DBCHAT_ADDR":         "127.0.0.1:0",
		"DBCHAT_METRICS_ADDR": "127.0.0.1:0",
		"DBCHAT_ADMIN_TOKEN":  token,
	})}
	done := make(chan int, 1)
	go func() {
		code := cli.Run(ctx, env, []string{"serve"})
		stdoutW.Close() // ends the reader below if serve never gets to listen
		done <- code
	}()

	lines := waitForLines(t, stdoutR, &stderr, "dbchat: metrics on ", "dbchat: listening on ")
	metricsURL, base := lines[0], lines[1]
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), base)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }() // keep stdout from blocking

	get := func(url, authorization string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	status, body := get(base+"/healthz", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"status":"ok"}`, body)

	// On the API's address /metrics is the operator's; on
	// DBCHAT_METRICS_ADDR it needs no token, and that listener serves
	// nothing else.
	status, body = get(base+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = get(base+"/metrics", "Bearer "+token)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "dbchat_db_pool_connections")
	require.True(t, strings.HasPrefix(metricsURL, "http://127.0.0.1:") && strings.HasSuffix(metricsURL, "/metrics"), metricsURL)
	require.NotEqual(t, base+"/metrics", metricsURL, "a listener of its own")
	status, body = get(metricsURL, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `dbchat_http_requests_total{method="GET",route="/metrics",status="401"} 1`)
	status, _ = get(strings.TrimSuffix(metricsURL, "/metrics")+"/healthz", "")
	require.Equal(t, http.StatusNotFound, status)
	status, _ = get(strings.TrimSuffix(metricsURL, "/metrics")+"/v1/me", "")
	require.Equal(t, http.StatusNotFound, status)

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stderr: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context was cancelled")
	}
}

// waitForLines reads stdout until it has seen a line starting with each
// prefix, in order, and returns the rest of each line.
func waitForLines(t *testing.T, stdout io.Reader, stderr *syncBuffer, prefixes ...string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(stdout)
	for len(out) < len(prefixes) && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefixes[len(out)]); ok {
			out = append(out, rest)
		}
	}
	if len(out) < len(prefixes) {
		t.Fatalf("serve exited before printing %q (scan error %v); stderr: %s", prefixes[len(out)], sc.Err(), stderr.String())
	}
	return out
}
