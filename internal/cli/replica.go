package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbchat/dbchat/internal/tenant"
)

// openSandbox opens the SQL sandbox of serve. DBCHAT_QUERY_DATABASE_URL
// may name a hot standby (detected from what the server reports at login,
// or declared by setting DBCHAT_QUERY_PRIMARY_DATABASE_URL): statements
// then run there, and on the primary as dbchat_query when the standby lags
// past DBCHAT_REPLICA_MAX_WAIT or is down. replica reports which.
func openSandbox(ctx context.Context, env *Env, cfg config, db *tenant.DB, log *slog.Logger) (box *tenant.Sandbox, replica bool, err error) {
	conns, err := sandboxConns(ctx, env, db)
	if err != nil {
		return nil, false, err
	}
	primaryURL, standby, err := sandboxPrimary(ctx, env, cfg)
	if err != nil {
		return nil, false, err
	}
	if !standby {
		box, err := newSandbox(ctx, cfg.QueryDatabaseURL, db, conns)
		if err != nil {
			return nil, false, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
		}
		return box, false, nil
	}
	maxWait := tenant.DefaultReplicaMaxWait
	if v := strings.TrimSpace(env.Getenv("DBCHAT_REPLICA_MAX_WAIT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, false, fmt.Errorf("DBCHAT_REPLICA_MAX_WAIT=%q: want a duration such as 1s", v)
		}
		maxWait = d
	}
	// The standby's runtime login reads its replay position (see
	// sandboxPrimary for the other way round).
	monitorURL, err := withLogin(cfg.QueryDatabaseURL, cfg.DatabaseURL)
	if err != nil {
		return nil, false, fmt.Errorf("the standby's replay position (DATABASE_URL's login on DBCHAT_QUERY_DATABASE_URL's server): %w", err)
	}
	box, err = newSandbox(ctx, primaryURL, db, conns)
	if err != nil {
		return nil, false, fmt.Errorf("DBCHAT_QUERY_PRIMARY_DATABASE_URL (the sandbox on the primary): %w", err)
	}
	if err := box.UseStandby(ctx, db, tenant.StandbyConfig{URL: cfg.QueryDatabaseURL, MonitorURL: monitorURL, MaxWait: maxWait}); err != nil {
		box.Close()
		return nil, false, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL (a hot standby): %w", err)
	}
	log.Info("the SQL sandbox reads on a hot standby", slog.Duration("max_wait", maxWait))
	return box, true, nil
}

// DefaultSandboxConns is the SQL sandbox's connections in serve
// (DBCHAT_SANDBOX_CONNS), shared by its query logins, unless the tenants
// are split across more logins.
const DefaultSandboxConns = 8

// sandboxConns reads DBCHAT_SANDBOX_CONNS: a query login's CONNECTION
// LIMIT is 64, for every server together. Unset, it is one connection per
// query login of the database (dbchat.query_shards()), at least
// DefaultSandboxConns: with fewer, a statement whose login has no idle
// connection closes another login's and logs in anew.
func sandboxConns(ctx context.Context, env *Env, db *tenant.DB) (int32, error) {
	v := strings.TrimSpace(env.Getenv("DBCHAT_SANDBOX_CONNS"))
	if v == "" {
		n, err := tenant.QueryShards(ctx, db)
		if err != nil {
			return 0, fmt.Errorf("the query logins (dbchat.query_shards()): %w", err)
		}
		return int32(max(DefaultSandboxConns, min(n, 64))), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 64 {
		return 0, fmt.Errorf("DBCHAT_SANDBOX_CONNS=%q: want a whole number from 1 to 64 (a query login's connection limit)", v)
	}
	return int32(n), nil
}

// newSandbox opens the sandbox on the primary with conns connections,
// split across the database's query logins as it is now and later
// (migration 00031, FollowQueryShards).
func newSandbox(ctx context.Context, queryURL string, db *tenant.DB, conns int32) (*tenant.Sandbox, error) {
	box, err := tenant.NewSandbox(ctx, queryURL, conns)
	if err != nil {
		return nil, err
	}
	if err := box.FollowQueryShards(ctx, db); err != nil {
		box.Close()
		return nil, err
	}
	return box, nil
}

// sandboxPrimary is the sandbox's dbchat_query login on the primary, and
// whether DBCHAT_QUERY_DATABASE_URL names a hot standby (declared by
// DBCHAT_QUERY_PRIMARY_DATABASE_URL, or reported by the server at login).
// With a standby and no DBCHAT_QUERY_PRIMARY_DATABASE_URL it is
// DATABASE_URL's server with DBCHAT_QUERY_DATABASE_URL's login: a physical
// standby has the primary's roles and passwords.
func sandboxPrimary(ctx context.Context, env *Env, cfg config) (primaryURL string, standby bool, err error) {
	if primaryURL = strings.TrimSpace(env.Getenv("DBCHAT_QUERY_PRIMARY_DATABASE_URL")); primaryURL != "" {
		return primaryURL, true, nil
	}
	hot, err := tenant.InHotStandby(ctx, cfg.QueryDatabaseURL)
	if err != nil {
		return "", false, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
	}
	if !hot {
		return cfg.QueryDatabaseURL, false, nil
	}
	if primaryURL, err = withLogin(cfg.DatabaseURL, cfg.QueryDatabaseURL); err != nil {
		return "", false, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL is a hot standby and DBCHAT_QUERY_PRIMARY_DATABASE_URL is unset: %w", err)
	}
	return primaryURL, true, nil
}

// withLogin returns server (a postgres:// URL) with login's user and
// password.
func withLogin(server, login string) (string, error) {
	s, err1 := url.Parse(server)
	l, err2 := url.Parse(login)
	if err := errors.Join(err1, err2); err != nil || s.Host == "" || l.User == nil {
		return "", errors.New("both URLs must be postgres:// URLs with a user")
	}
	s.User = l.User
	return s.String(), nil
}
