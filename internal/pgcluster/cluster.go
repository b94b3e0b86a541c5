package pgcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// confFile is our own settings file inside PGDATA; postgresql.conf includes
// it, so we can rewrite it (new port, Fast) without editing initdb's file.
const confFile = "dbchat.conf"

// initialise runs initdb and records the cluster in cluster.json. The state
// file is written last: its presence means the cluster is complete.
func (c *Cluster) initialise(ctx context.Context) error {
	base, err := c.baseDir(ctx)
	if err != nil {
		return err
	}
	c.dataDir = filepath.Join(base, "data")
	c.logFile = filepath.Join(base, "postgres.log")
	if err := c.makeDataDir(); err != nil {
		return err
	}
	fmt.Fprintf(c.log, "pgcluster: initialising cluster in %s\n", c.dataDir)
	if err := c.initdb(ctx, base); err != nil {
		return err
	}
	if err := c.writeServerFile("pg_hba.conf", "host all all 127.0.0.1/32 scram-sha-256\n"); err != nil {
		return err
	}
	if err := c.includeConf(); err != nil {
		return err
	}
	if c.Port, err = freePort(); err != nil {
		return err
	}
	return writeState(c.Dir, c.state())
}

// baseDir is where PGDATA and the log go: Dir itself, unless we are root and
// the postgres user cannot traverse to Dir (say it is under /root), in which
// case a directory under /var/tmp named after Dir is used.
func (c *Cluster) baseDir(ctx context.Context) (string, error) {
	if c.srv.canReach(ctx, c.Dir) {
		return c.Dir, nil
	}
	sum := sha256.Sum256([]byte(c.Dir))
	base := "/var/tmp/dbchat-" + hex.EncodeToString(sum[:6])
	fmt.Fprintf(c.log, "pgcluster: the postgres OS user cannot reach %s; keeping the data directory in %s\n", c.Dir, base)
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	// /var/tmp is world-writable: refuse a look-alike planted by someone else.
	fi, err := os.Lstat(base)
	if err != nil || !fi.IsDir() || !ownedByRoot(fi) {
		return "", fmt.Errorf("pgcluster: %s is not a directory owned by root; remove it and retry", base)
	}
	return base, nil
}

// makeDataDir creates an empty PGDATA owned by the server user. A non-empty
// one without cluster.json is a half-finished initdb; we do not delete data
// on a guess, we ask.
func (c *Cluster) makeDataDir() error {
	if ents, err := os.ReadDir(c.dataDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("pgcluster: %s is not empty but %s is missing (interrupted initdb?); remove the directory and retry",
			c.dataDir, filepath.Join(c.Dir, stateFile))
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return c.srv.chown(c.dataDir)
}

// initdb creates the cluster with a scram password for "postgres". C.UTF-8
// is not available everywhere, hence the retry with plain C. (On failure
// initdb empties the directory it was given, so the retry starts clean.)
func (c *Cluster) initdb(ctx context.Context, base string) error {
	pwfile, err := c.pwfile(base)
	if err != nil {
		return err
	}
	defer os.Remove(pwfile)
	args := []string{"-D", c.dataDir, "--auth=scram-sha-256", "--username=postgres",
		"--pwfile=" + pwfile, "--encoding=UTF8", "--no-instructions"}
	if c.opts.Fast {
		args = append(args, "--no-sync") // throwaway: skip the fsync of every file
	}
	var out []byte
	for _, locale := range []string{"C.UTF-8", "C"} {
		out, err = c.srv.run(ctx, c.log, "initdb", append(args, "--locale="+locale)...)
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("pgcluster: initdb failed: %v\n%s", err, lastLines(out, 20))
}

// pwfile writes the superuser password where initdb (running as the server
// user) can read it; the caller removes it.
func (c *Cluster) pwfile(base string) (string, error) {
	pw, err := c.Secret("postgres")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(base, ".pwfile-*")
	if err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(pw + "\n"); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := c.srv.chown(f.Name()); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// includeConf makes postgresql.conf read confFile (last, so it wins).
func (c *Cluster) includeConf() error {
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Added by dbchat's pgcluster.\ninclude_if_exists = '%s'\n", confFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// writeConf writes our settings: TCP on loopback only, and no Unix socket,
// which avoids /var/run permissions and clashes with a system server.
func (c *Cluster) writeConf() error {
	buffers, err := sharedBuffers(c.opts.SharedBuffers)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`# Written by dbchat's pgcluster on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = ''
max_connections = 200
shared_buffers = %s
`, c.Port, buffers)
	if c.opts.Fast {
		conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
	}
	return c.writeServerFile(confFile, conf)
}

// writeServerFile writes a file in PGDATA owned by the server user.
func (c *Cluster) writeServerFile(name, content string) error {
	path := filepath.Join(c.dataDir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return c.srv.chown(path)
}

// running asks pg_ctl, which also treats a postmaster.pid whose process is
// gone as "not running". A postmaster that was killed outright is a zombie
// until its parent (init, since pg_ctl has exited) reaps it, which some
// inits do only now and then: pg_ctl counts it as running, but it is not,
// and nothing will ever answer on its port. Starting is then refused (the
// lock file still names it) until it is reaped, and the caller may retry.
func (c *Cluster) running(ctx context.Context) (bool, error) {
	out, err := c.srv.run(ctx, io.Discard, "pg_ctl", "status", "-D", c.dataDir)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return !c.zombie(), nil
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return false, nil
	}
	return false, fmt.Errorf("pgcluster: pg_ctl status: %v: %s", err, lastLines(out, 3))
}

// zombie reports whether postmaster.pid names a process that has exited
// and not been reaped (Linux; elsewhere it reports false).
func (c *Cluster) zombie() bool {
	pidFile, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(pidFile), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// start starts a stopped server, first moving it to a new port if something
// else has taken the recorded one.
func (c *Cluster) start(ctx context.Context) error {
	if !portFree(c.Port) {
		p, err := freePort()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.log, "pgcluster: port %d is taken, moving the cluster to port %d\n", c.Port, p)
		c.Port = p
		if err := writeState(c.Dir, c.state()); err != nil {
			return err
		}
	}
	if err := c.writeConf(); err != nil {
		return err
	}
	if err := c.touchLog(); err != nil {
		return err
	}
	if _, err := c.srv.run(ctx, c.log, "pg_ctl", "start", "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60"); err != nil {
		return fmt.Errorf("pgcluster: starting the server failed: %v; last lines of %s:\n%s", err, c.logFile, tailFile(c.logFile, 20))
	}
	fmt.Fprintf(c.log, "pgcluster: server running on 127.0.0.1:%d\n", c.Port)
	return waitTCP(ctx, c.Port, 10*time.Second)
}

// touchLog creates the log so the server user can append to it even when it
// may not create files next to it.
func (c *Cluster) touchLog() error {
	f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	f.Close()
	return c.srv.chown(c.logFile)
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitTCP waits until the server accepts connections; pg_ctl -w should have
// waited already, this guards against a server that is still starting when
// another process launched it.
func waitTCP(ctx context.Context, port int, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgcluster: server not accepting connections on %s: %v", addr, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sizeSetting is a PostgreSQL memory size as the configuration file takes it.
var sizeSetting = regexp.MustCompile(`^[1-9][0-9]*(kB|MB|GB|TB)$`)

// sharedBuffers resolves Options.SharedBuffers to a setting: a size as
// given, a percentage of the machine's memory (/proc/meminfo) in MB.
func sharedBuffers(v string) (string, error) {
	switch pct, isPct := strings.CutSuffix(v, "%"); {
	case v == "":
		return "128MB", nil
	case sizeSetting.MatchString(v):
		return v, nil
	case isPct:
		n, err := strconv.Atoi(pct)
		if err != nil || n < 1 || n > 80 {
			return "", fmt.Errorf("pgcluster: shared_buffers %q: a percentage must be 1%%-80%%", v)
		}
		mem, err := os.ReadFile("/proc/meminfo")
		if err != nil {
			return "", fmt.Errorf("pgcluster: shared_buffers %q needs the machine's memory: %w", v, err)
		}
		var kb int
		for line := range strings.Lines(string(mem)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			}
		}
		if kb == 0 {
			return "", fmt.Errorf("pgcluster: shared_buffers %q: no MemTotal in /proc/meminfo", v)
		}
		return strconv.Itoa(max(kb/1024*n/100, 128)) + "MB", nil
	}
	return "", fmt.Errorf("pgcluster: shared_buffers %q: want a size such as 4GB or a share such as 25%%", v)
}
