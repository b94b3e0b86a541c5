package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
	primaryURL := strings.TrimSpace(env.Getenv("DBCHAT_QUERY_PRIMARY_DATABASE_URL"))
	standby := primaryURL != ""
	if !standby {
		hot, err := tenant.InHotStandby(ctx, cfg.QueryDatabaseURL)
		if err != nil {
			return nil, false, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
		}
		standby = hot
	}
	if !standby {
		box, err := tenant.NewSandbox(ctx, cfg.QueryDatabaseURL, 8)
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
	// The primary's dbchat_query and the standby's runtime login: a
	// physical standby has the primary's roles and passwords, so by
	// default each URL is the other's server with this one's login.
	if primaryURL == "" {
		if primaryURL, err = withLogin(cfg.DatabaseURL, cfg.QueryDatabaseURL); err != nil {
			return nil, false, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL is a hot standby and DBCHAT_QUERY_PRIMARY_DATABASE_URL is unset: %w", err)
		}
	}
	monitorURL, err := withLogin(cfg.QueryDatabaseURL, cfg.DatabaseURL)
	if err != nil {
		return nil, false, fmt.Errorf("the standby's replay position (DATABASE_URL's login on DBCHAT_QUERY_DATABASE_URL's server): %w", err)
	}
	box, err = tenant.NewSandbox(ctx, primaryURL, 8)
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
