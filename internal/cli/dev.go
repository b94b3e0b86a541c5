package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
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
	appURL, adminURL, auditorURL := cfg.DatabaseURL, cfg.AdminDatabaseURL, ""
	passwords := appPassword(appURL)
	stateDir := filepath.Dir(*dir)
	demoFile := filepath.Join(stateDir, "demo-"+shortHash(appURL)+".json")
	if appURL == "" {
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
		adminURL, appURL = c.SuperuserURL("dbchat"), c.URL(migrate.AppRole, "dbchat")
		auditorURL = c.URL(migrate.AuditorRole, "dbchat")
		passwords = appPassword(appURL)
		if passwords[migrate.AuditorRole], err = c.Secret(migrate.AuditorRole); err != nil {
			return err
		}
		demoFile = filepath.Join(*dir, "demo.json")
	}
	if adminURL != "" {
		opts := migrate.Options{AdminURL: adminURL, Log: env.Stderr, Passwords: passwords}
		if err := migrate.Run(ctx, opts); err != nil {
			return err
		}
	}
	pool, err := openAppPool(ctx, appURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	key, err := ensureDemo(ctx, tenant.New(pool), demoFile)
	if err != nil {
		return fmt.Errorf("demo tenant: %w", err)
	}
	return listenAndServe(ctx, env, cfg.Addr, pool, func(addr string) {
		fmt.Fprintf(env.Stdout, "\ndemo tenant API key: %s\ntry:\n  curl -s -H 'Authorization: Bearer %s' http://%s/v1/tables\n", key, key, localAddr(addr))
		if auditorURL != "" {
			fmt.Fprintf(env.Stdout, "audit the policies in psql (read-only, no tenant rows):\n  psql '%s'\n", auditorURL)
		}
		fmt.Fprintln(env.Stdout)
	})
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
	if err := db.TxAs(ctx, id, seedDemoCatalog); err != nil {
		return "", err
	}
	b, _ := json.Marshal(demoState{TenantID: res.Tenant.ID.String(), APIKey: res.APIKey})
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", err
	}
	return res.APIKey, os.WriteFile(file, b, 0o600)
}

// demoTables is a small shop: enough for the catalog and later questions.
var demoTables = []struct {
	name, description string
	columns           [][3]string // name, type, description
}{
	{"customers", "People who bought something", [][3]string{
		{"id", "bigint", "Customer number"}, {"name", "text", "Full name"},
		{"country", "text", "ISO country code"}, {"signed_up", "date", "Day of sign-up"}}},
	{"orders", "One row per order", [][3]string{
		{"id", "bigint", "Order number"}, {"customer_id", "bigint", "customers.id"},
		{"amount", "numeric", "Order total in EUR"}, {"ordered_at", "timestamptz", "When it was placed"}}},
}

func seedDemoCatalog(tx tenant.Conn) error {
	ctx := context.Background()
	q := dbsqlc.New()
	for _, t := range demoTables {
		row, err := q.CreateTable(ctx, tx, dbsqlc.CreateTableParams{Name: t.name, Description: t.description})
		if err != nil {
			return err
		}
		for i, c := range t.columns {
			_, err := q.CreateColumn(ctx, tx, dbsqlc.CreateColumnParams{
				TableID: row.ID, Name: c[0], DataType: c[1], Description: c[2], IsNullable: i > 0, Position: int32(i + 1)})
			if err != nil {
				return err
			}
		}
	}
	return nil
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
