// Package pgcluster manages a private PostgreSQL cluster kept in one
// directory, so that `dbchat dev` and `make test` need no system-wide
// server, no root password and no shared state with other projects.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Cluster is a private PostgreSQL cluster living under Dir.
type Cluster struct {
	Dir  string // the directory passed to Ensure (absolute)
	Port int    // TCP port on 127.0.0.1

	dataDir string // PGDATA; Dir/data unless the postgres user cannot reach Dir
	logFile string // server log, written by the server's OS user
	opts    Options
	log     io.Writer
	srv     server
	secrets string // where Secret keeps passwords; empty: Dir/secrets (a standby shares its primary's)
}

// Options tunes a cluster; the zero value is right for a dev server whose
// data should survive a crash.
type Options struct {
	// Fast turns off fsync, synchronous_commit and full_page_writes: a crash
	// may corrupt the cluster, which is fine for throwaway test clusters and
	// makes them much quicker.
	Fast bool
	// SharedBuffers is the server's shared_buffers: a PostgreSQL size
	// ("4GB") or a share of this machine's memory ("25%", the usual advice
	// for a dedicated server); empty: 128MB, PostgreSQL's default, right for
	// tests and a dev server. The vector benchmarks run with a quarter of
	// memory, so that their large HNSW graphs stay in it.
	SharedBuffers string
}

// Ensure initialises the cluster on first use (initdb) and starts it if it is not running; it reuses an existing one.
func Ensure(ctx context.Context, dir string, log io.Writer) (*Cluster, error) {
	return EnsureWith(ctx, dir, log, Options{})
}

// EnsureWith is Ensure with Options, so test clusters can trade durability
// for speed. Options apply whenever this call starts the server; a server
// that is already running keeps the settings it was started with.
func EnsureWith(ctx context.Context, dir string, log io.Writer, opts Options) (*Cluster, error) {
	if log == nil {
		log = io.Discard
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	srv, err := findServer()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: abs, opts: opts, log: log, srv: srv}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	unlock, err := lockDir(ctx, abs)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := c.ensureLocked(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ensureLocked does the work of EnsureWith while the directory lock is held,
// so that concurrent callers never both run initdb or start two servers.
func (c *Cluster) ensureLocked(ctx context.Context) error {
	st, err := readState(c.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := c.initialise(ctx); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		c.adopt(st)
	}
	running, err := c.running(ctx)
	if err != nil {
		return err
	}
	if running {
		fmt.Fprintf(c.log, "pgcluster: reusing server on 127.0.0.1:%d (%s)\n", c.Port, c.dataDir)
		return waitTCP(ctx, c.Port, 10*time.Second)
	}
	return c.start(ctx)
}

// adopt fills in the paths and port that an earlier initialise recorded.
func (c *Cluster) adopt(st state) {
	c.Port = st.Port
	c.dataDir = filepath.Join(c.Dir, "data")
	if st.DataDir != "" {
		c.dataDir = st.DataDir
	}
	c.logFile = filepath.Join(c.Dir, "postgres.log")
	if st.LogFile != "" {
		c.logFile = st.LogFile
	}
}

// URL returns a postgres:// URL for user on database dbname (password included), host 127.0.0.1.
// If the password cannot be read or created the URL carries none, and
// connecting will then fail with an authentication error.
func (c *Cluster) URL(user, dbname string) string {
	u := &url.URL{
		Scheme: "postgres",
		User:   url.User(user),
		Host:   net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:   "/" + dbname,
		// The server has no TLS configured; saying so avoids a wasted
		// round trip on every connection.
		RawQuery: "sslmode=disable",
	}
	if pw, err := c.Secret(user); err == nil {
		u.User = url.UserPassword(user, pw)
	}
	return u.String()
}

// SuperuserURL is URL for the bootstrap superuser "postgres".
func (c *Cluster) SuperuserURL(dbname string) string {
	return c.URL("postgres", dbname)
}

// Stop shuts the server down cleanly (pg_ctl stop -m fast) and waits,
// its hot standby (EnsureStandby) first. Stopping a server that is not
// running is not an error, so callers can always defer Stop.
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.stopStandby(ctx); err != nil {
		return err
	}
	unlock, err := lockDir(ctx, c.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	running, err := c.running(ctx)
	if err != nil || !running {
		return err
	}
	out, err := c.srv.run(ctx, c.log, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %v: %s", err, lastLines(out, 5))
	}
	return nil
}
