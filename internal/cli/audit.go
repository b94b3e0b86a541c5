package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/audit/probe"
	"github.com/dbchat/dbchat/internal/server"
)

// cmdAudit reads the audit views (and, with --probe, runs the live
// cross-tenant self-test) and prints the report. Exit 0: clean; 1: findings,
// or probe attempts that did not go as expected, or residue; 2: could not run.
//
// It reads the views as DBCHAT_AUDIT_DATABASE_URL (a dbchat_auditor login),
// else as DBCHAT_ADMIN_DATABASE_URL. --probe also needs DATABASE_URL
// (dbchat_app), DBCHAT_QUERY_DATABASE_URL (dbchat_query) and
// DBCHAT_ADMIN_DATABASE_URL (to remove what it created).
func cmdAudit(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("audit", env)
	format := fs.String("format", "text", "report format: "+strings.Join(audit.Formats, ", "))
	runProbe := fs.Bool("probe", false, "also run the live cross-tenant probe (creates and removes two throwaway tenants)")
	out := fs.String("out", "", "write the report to this file instead of stdout")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || !slices.Contains(audit.Formats, *format) {
		return errUsage
	}
	couldNot := func(format string, a ...any) error {
		fmt.Fprintf(env.Stderr, "dbchat audit: "+format+"\n", a...)
		return exitError{2}
	}

	cfg := loadConfig(env)
	auditURL := strings.TrimSpace(env.Getenv("DBCHAT_AUDIT_DATABASE_URL"))
	source := "DBCHAT_AUDIT_DATABASE_URL"
	if auditURL == "" {
		auditURL, source = cfg.AdminDatabaseURL, "DBCHAT_ADMIN_DATABASE_URL"
	}
	if auditURL == "" {
		return couldNot("set DBCHAT_AUDIT_DATABASE_URL (a dbchat_auditor login) or DBCHAT_ADMIN_DATABASE_URL")
	}
	if *runProbe {
		var missing []string
		for name, v := range map[string]string{"DATABASE_URL": cfg.DatabaseURL, "DBCHAT_QUERY_DATABASE_URL": cfg.QueryDatabaseURL, "DBCHAT_ADMIN_DATABASE_URL": cfg.AdminDatabaseURL} {
			if v == "" {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return couldNot("--probe needs %s", strings.Join(missing, ", "))
		}
	}

	conn, err := pgx.Connect(ctx, auditURL)
	if err != nil {
		return couldNot("%s: %v", source, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep, err := audit.Collect(ctx, conn)
	if err != nil {
		return couldNot("%v (is the database migrated? run `dbchat migrate`)", err)
	}
	if *runProbe {
		// The probe reads what it has just written, so it attacks the
		// primary even when the sandbox reads on a hot standby (whose
		// roles, grants and policies are the primary's, replayed).
		queryURL, _, err := sandboxPrimary(ctx, env, cfg)
		if err != nil {
			return couldNot("probe: %v", err)
		}
		res, err := probe.Run(ctx, probe.Config{AppURL: cfg.DatabaseURL, QueryURL: queryURL, AdminURL: cfg.AdminDatabaseURL, API: probeAPI})
		if err != nil {
			return couldNot("probe: %v", err)
		}
		rep.Probe = res
		rep.Finalize()
	}

	var buf bytes.Buffer
	if err := audit.Render(&buf, rep, *format); err != nil {
		return couldNot("%v", err)
	}
	if *out == "" {
		if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
			return couldNot("%v", err)
		}
	} else {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			return couldNot("%v", err)
		}
		fmt.Fprintf(env.Stderr, "dbchat audit: %s: wrote %s\n", rep.Verdict(), *out)
	}
	if !rep.Summary.Clean {
		return exitError{1}
	}
	return nil
}

// probeAPI is the API the probe attacks: the real server, in-process, on
// the probe's connections and services, with an operator token nobody
// knows (operator routes are not tenant-scoped and not attacked).
func probeAPI(s probe.Services) (http.Handler, []probe.Endpoint) {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	srv := server.New(s.DB, slog.New(slog.DiscardHandler), server.Config{AdminToken: hex.EncodeToString(token), SQL: s.SQL, Ask: s.Ask})
	routes := srv.Endpoints()
	eps := make([]probe.Endpoint, 0, len(routes))
	for _, r := range routes {
		eps = append(eps, probe.Endpoint{Method: r.Method, Path: r.Path})
	}
	return srv, eps
}
