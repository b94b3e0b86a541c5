package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/pgcluster"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// cmdDev is `make run`: a private cluster under .dbchat/ (unless DATABASE_URL
// is set), migrations, a demo tenant, then the server. Ctrl-C stops both.
func cmdDev(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("dev", env)
	dir := fs.String("dir", ".dbchat/dev", "private cluster directory")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg := loadConfig(env)
	adminURL, auditorURL := cfg.AdminDatabaseURL, ""
	passwords := map[string]string{}
	stateDir := filepath.Dir(*dir)
	demoFile := filepath.Join(stateDir, "demo-"+shortHash(cfg.DatabaseURL)+".json")
	if cfg.DatabaseURL == "" {
		c, err := pgcluster.Ensure(ctx, *dir, env.Stderr)
		if err != nil {
			return err
		}
		defer func() {
			fmt.Fprintln(env.Stderr, "dbchat: stopping the private cluster")
			if err := c.Stop(context.Background()); err != nil {
				fmt.Fprintf(env.Stderr, "dbchat: stop cluster: %v\n", err)
			}
		}()
		adminURL, auditorURL = c.SuperuserURL("dbchat"), c.URL(migrate.AuditorRole, "dbchat")
		cfg.DatabaseURL, cfg.QueryDatabaseURL = c.URL(migrate.AppRole, "dbchat"), c.URL(migrate.QueryRole, "dbchat")
		if passwords[migrate.AuditorRole], err = c.Secret(migrate.AuditorRole); err != nil {
			return err
		}
		demoFile = filepath.Join(*dir, "demo.json")
		if err := writeDevEnv(stateDir, cfg, adminURL); err != nil {
			return err
		}
	}
	if adminURL != "" {
		maps.Copy(passwords, loginPasswords(cfg))
		opts := migrate.Options{AdminURL: adminURL, Log: env.Stderr, Passwords: passwords}
		if err := migrate.Run(ctx, opts); err != nil {
			return err
		}
	}
	pool, db, err := openAppPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	key, err := ensureDemo(ctx, db, demoFile)
	if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	demoID, err := auth.Authenticate(ctx, db, key)
	if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	idp, stopIdP, err := startDevIdP(ctx, db, demoID, *dir)
	if err != nil {
		return err
	}
	defer stopIdP()
	return listenAndServe(ctx, canaryEnv(env, adminURL), cfg, db, func(addr string) {
		base := "http://" + localAddr(addr)
		printTry(env.Stdout, base, key)
		fmt.Fprintf(env.Stdout, "  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"sql\":\"SELECT c.name, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY total DESC\"}' %s/v1/sql\n", key, base)
		fmt.Fprintf(env.Stdout, "  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"question\":\"How many customers do we have?\"}' %s/v1/ask\n", key, base)
		fmt.Fprintf(env.Stdout, "dev-only identity provider of the demo tenant (loopback, see README):\n  issuer %s, keys %s\n  TOKEN=$(./bin/dbchat dev-token --dir %s --sub alice --claim country=US)\n  curl -s -H \"Authorization: Bearer $TOKEN\" %s/v1/tables\n  browser sign-in through it: %s/v1/sessions/oidc?issuer=%s\n", idp.Issuer, idp.JWKSURL, *dir, base, base, url.QueryEscape(idp.Issuer))
		if auditorURL != "" {
			fmt.Fprintf(env.Stdout, "audit the policies in psql (read-only, no tenant rows):\n  psql '%s'\n", auditorURL)
		}
		fmt.Fprintln(env.Stdout)
	})
}

// canaryEnv gives the dev server its privileged URL as the evaluation
// canary's connection (DBCHAT_CANARY_DATABASE_URL, unless set), so that
// evaluations on make run's demo tenant run their leakage canary.
func canaryEnv(env *Env, adminURL string) *Env {
	e := *env
	e.Getenv = func(name string) string {
		if v := env.Getenv(name); v != "" || name != "DBCHAT_CANARY_DATABASE_URL" {
			return v
		}
		return adminURL
	}
	return &e
}

// writeDevEnv saves the private cluster's connection settings so operator
// commands (dbchat tenant create, psql) can reach it while `make run` runs:
//
//	set -a; . ./.dbchat/dev.env; set +a
func writeDevEnv(dir string, cfg config, adminURL string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	body := fmt.Sprintf("DATABASE_URL='%s'\nDBCHAT_QUERY_DATABASE_URL='%s'\nDBCHAT_ADMIN_DATABASE_URL='%s'\n",
		cfg.DatabaseURL, cfg.QueryDatabaseURL, adminURL)
	return os.WriteFile(filepath.Join(dir, "dev.env"), []byte(body), 0o600)
}

// demoState is kept next to the cluster so the demo key, shown once by the
// API, can be printed again on every `make run`.
type demoState struct {
	TenantID string `json:"tenant_id"`
	APIKey   string `json:"api_key"`
}

// ensureDemo returns the demo tenant's key, creating the tenant if the saved
// key no longer works (first run, or a reset database).
func ensureDemo(ctx context.Context, db *tenant.DB, file string) (string, error) {
	var st demoState
	if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &st) == nil {
		if _, err := auth.Authenticate(ctx, db, st.APIKey); err == nil {
			return st.APIKey, nil
		}
	}
	res, err := provision.CreateTenant(ctx, db, provision.Request{Name: "Demo", Slug: "demo"})
	if apperr.CodeOf(err) == apperr.Conflict {
		res, err = provision.CreateTenant(ctx, db, provision.Request{Name: "Demo", Slug: "demo-" + shortHash(file + fmt.Sprint(os.Getpid()))[:6]})
	}
	if err != nil {
		return "", err
	}
	id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
	if err := db.TxAs(ctx, id, func(tx tenant.Conn) error { return demo.Seed(context.Background(), tx) }); err != nil {
		return "", err
	}
	b, _ := json.Marshal(demoState{TenantID: res.Tenant.ID.String(), APIKey: res.APIKey})
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", err
	}
	return res.APIKey, os.WriteFile(file, b, 0o600)
}

// printTry shows the two ways into the demo tenant: the web app's address
// (where the key signs a browser in) beside the first curl line.
func printTry(w io.Writer, base, key string) {
	fmt.Fprintf(w, "\ndemo tenant API key: %s\nweb app: %s/ (sign in with the key)\ntry:\n  curl -s -H 'Authorization: Bearer %s' %s/v1/tables\n",
		key, base, key, base)
}

// localAddr turns a listen address into one a curl on this machine can use.
func localAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}
