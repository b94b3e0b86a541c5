// Package pgbouncer starts a private PgBouncer in transaction pooling mode in
// front of a PostgreSQL server, for tests that must show that a pooler which
// hands one server connection to many clients in turn carries no tenant
// context from one transaction into the next.
//
// It keeps everything in a temporary directory (configuration, auth file,
// log, pid file), listens on a free loopback port only, and runs in the
// foreground as our child, so Stop (or our death, on Linux) ends it. Clients
// authenticate with SCRAM against the secrets the server itself stores
// (copied from pg_authid), and PgBouncer logs in to the server with SCRAM
// pass-through, so no plain password is ever written down.
package pgbouncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotInstalled means no pgbouncer binary was found.
var ErrNotInstalled = errors.New("pgbouncer is not installed: run `make pgbouncer` (`make test` installs it)")

// Options configure Start.
type Options struct {
	// ServerURL is a privileged URL of the PostgreSQL server to pool: it
	// must be able to read pg_authid (a superuser). Its host and port are
	// what PgBouncer connects to; every database name is passed through.
	ServerURL string
	// Users are the roles clients will log in as. Each needs a SCRAM
	// password on the server (PostgreSQL's default password_encryption).
	Users []string
	// PoolSize is default_pool_size: server connections per database and
	// user. Default 4, small, so that connections are shared hard.
	PoolSize int
	// MaxClients is max_client_conn. Default 500.
	MaxClients int
}

// Bouncer is a running PgBouncer.
type Bouncer struct {
	Port int // on 127.0.0.1
	Bin  string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit status, once done

	stopOnce sync.Once
}

// Find returns the path of the pgbouncer binary, or ErrNotInstalled.
// Debian installs it in /usr/sbin, which is often not on a user's PATH.
func Find() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer", "/opt/homebrew/bin/pgbouncer"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Start launches PgBouncer in front of opts.ServerURL and waits until it
// accepts connections. Call Stop when done.
func Start(ctx context.Context, opts Options) (*Bouncer, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 4
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 500
	}
	if len(opts.Users) == 0 {
		return nil, errors.New("pgbouncer: no users given")
	}
	srv, err := pgconn.ParseConfig(opts.ServerURL)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: server URL: %w", err)
	}
	secrets, err := scramSecrets(ctx, opts.ServerURL, opts.Users)
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(ctx, cred)
	if err != nil {
		return nil, err
	}
	b := &Bouncer{Bin: bin, dir: dir}
	if err := b.writeFile("userlist.txt", userlist(secrets), cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The port is free when we ask, but another process may take it before
	// PgBouncer binds: then PgBouncer exits, and we try another.
	for attempt := 0; ; attempt++ {
		b.Port, err = freePort()
		if err == nil {
			err = b.writeFile("pgbouncer.ini", b.config(srv, opts), cred)
		}
		if err == nil {
			err = b.launch(ctx, cred)
		}
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

// URL is a client URL for user on database dbname through PgBouncer. TLS is
// off (loopback only). Clients must not use named prepared statements, which
// PgBouncer 1.18 cannot follow across transactions: add
// default_query_exec_mode=exec for pgx (see README, "PgBouncer").
func (b *Bouncer) URL(user, password, dbname string) string {
	u := &url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Log returns PgBouncer's log so far (for failure messages).
func (b *Bouncer) Log() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(out)
}

// Stop shuts PgBouncer down (immediate shutdown: open client connections
// are closed), waits for it and removes its directory. It is safe to call
// more than once.
func (b *Bouncer) Stop() error {
	var err error
	b.stopOnce.Do(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(10 * time.Second):
				_ = b.cmd.Process.Kill()
				<-b.done
				err = errors.New("pgbouncer: did not stop on SIGTERM; killed")
			}
		}
		if rerr := os.RemoveAll(b.dir); err == nil && rerr != nil {
			err = fmt.Errorf("pgbouncer: %w", rerr)
		}
	})
	return err
}

// Restart shuts PgBouncer down at once (SIGTERM, its immediate shutdown:
// every client and server connection is closed, as when an operator
// restarts it or it crashes) and starts it again on the same port with the
// same configuration, waiting until it accepts connections. Not safe to
// call concurrently with Stop or itself.
func (b *Bouncer) Restart(ctx context.Context) error {
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	}
	cred, err := credential()
	if err != nil {
		return err
	}
	// The port was ours a moment ago; another process may take it in
	// between, and then launch reports PgBouncer's exit.
	return b.launch(ctx, cred)
}

// config is pgbouncer.ini: every database name maps to the same server.
func (b *Bouncer) config(srv *pgconn.Config, opts Options) string {
	host := srv.Host
	if host == "localhost" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf(`;; Written by dbchat's internal/pgbouncer; removed on Stop.
[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
pidfile = %s
logfile = %s
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = %d
server_tls_sslmode = prefer
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
`, host, srv.Port, b.Port, filepath.Join(b.dir, "pgbouncer.pid"), filepath.Join(b.dir, "pgbouncer.log"),
		filepath.Join(b.dir, "userlist.txt"), opts.PoolSize, opts.MaxClients)
}

// launch starts the process and waits for it to listen, or to die.
func (b *Bouncer) launch(ctx context.Context, cred *syscall.Credential) error {
	var out bytes.Buffer
	cmd := exec.Command(b.Bin, filepath.Join(b.dir, "pgbouncer.ini"))
	cmd.Dir = "/"
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = procAttr(cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgbouncer: start %s: %w", b.Bin, err)
	}
	done := make(chan struct{})
	go func() {
		b.err = cmd.Wait()
		close(done)
	}()
	b.cmd, b.done = cmd, done
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("pgbouncer: exited at start (%v): %s\n%s", b.err, strings.TrimSpace(out.String()), lastLines(b.Log(), 10))
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			if ctx.Err() != nil {
				return fmt.Errorf("pgbouncer: %w", ctx.Err())
			}
			return fmt.Errorf("pgbouncer: not listening on %s after 15s\n%s", addr, lastLines(b.Log(), 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scramSecrets reads each user's stored SCRAM secret from pg_authid.
func scramSecrets(ctx context.Context, serverURL string, users []string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: connecting to the server: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = ANY($1)`, users)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: reading pg_authid (needs a superuser URL): %w", err)
	}
	secrets := map[string]string{}
	for rows.Next() {
		var name, secret string
		if err := rows.Scan(&name, &secret); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
		secrets[name] = secret
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	for _, u := range users {
		s, ok := secrets[u]
		switch {
		case !ok:
			return nil, fmt.Errorf("pgbouncer: role %q does not exist on the server", u)
		case !strings.HasPrefix(s, "SCRAM-SHA-256$"):
			return nil, fmt.Errorf("pgbouncer: role %q has no SCRAM-SHA-256 password (set password_encryption = scram-sha-256 and reset it)", u)
		}
	}
	return secrets, nil
}

// userlist renders the auth file: "name" "secret", quotes doubled.
func userlist(secrets map[string]string) string {
	var sb strings.Builder
	for name, secret := range secrets {
		fmt.Fprintf(&sb, "%s %s\n", quote(name), quote(secret))
	}
	return sb.String()
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// credential is the OS user PgBouncer runs as: it refuses to run as root,
// so root hands it to "postgres" (as internal/pgcluster does the server).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: running as root but cannot find the \"postgres\" OS user to run pgbouncer as: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// makeDir creates the private directory, owned by the user PgBouncer runs
// as. As root, the temp directory must be one that user can traverse.
func makeDir(ctx context.Context, cred *syscall.Credential) (string, error) {
	parent := os.TempDir()
	if cred != nil && !canReach(ctx, cred, parent) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "dbchat-pgbouncer-*")
	if err != nil {
		return "", fmt.Errorf("pgbouncer: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("pgbouncer: %w", err)
		}
	}
	return dir, nil
}

// canReach asks the kernel whether cred's user can traverse dir.
func canReach(ctx context.Context, cred *syscall.Credential, dir string) bool {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `test -x "$1"`, "sh", dir)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd.Run() == nil
}

// writeFile writes a private (0600) file in the directory, owned by cred.
func (b *Bouncer) writeFile(name, content string, cred *syscall.Credential) error {
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgbouncer: %w", err)
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgbouncer: %w", err)
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgbouncer: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
