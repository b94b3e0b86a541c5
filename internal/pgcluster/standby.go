package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// standbyDir is where a cluster keeps its hot standby: its own Dir, with
// its own cluster.json (port, paths) and lock, so it is found, reused and
// stopped like the primary.
const standbyDir = "standby"

// replicationHBA lets the superuser stream WAL over loopback; the standby
// connects as "postgres" with the primary's own password.
const replicationHBA = "host replication postgres 127.0.0.1/32 scram-sha-256\n"

// EnsureStandby returns a hot standby of c (which must be running) that
// streams from it: on first use it copies the primary with pg_basebackup
// (-R writes primary_conninfo and standby.signal) into Dir/standby and
// starts it on a free port; later calls reuse it, starting it if it is
// stopped. It returns once the standby accepts connections, is in recovery
// and has replayed everything the primary had written when it was called.
// A standby that is not a copy of this primary (the primary was
// re-initialised) is thrown away and copied again. Stop stops it with c.
//
// The primary needs wal_level replica and WAL senders (PostgreSQL's
// defaults, which writeConf keeps) and a pg_hba line for replication,
// which this adds (and reloads) when it is missing.
func (c *Cluster) EnsureStandby(ctx context.Context) (*Cluster, error) {
	s := &Cluster{Dir: filepath.Join(c.Dir, standbyDir), opts: c.opts, log: c.log, srv: c.srv, secrets: c.secretsDir()}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	unlock, err := lockDir(ctx, s.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		err := c.ensureStandbyLocked(ctx, s)
		if err == nil || attempt == 1 || !errors.Is(err, errNotACopy) {
			return s, err
		}
		fmt.Fprintf(c.log, "pgcluster: %v; copying the primary again\n", err)
		if err := s.discard(ctx); err != nil {
			return nil, err
		}
	}
}

// errNotACopy: the standby's data directory is not a copy of this primary.
var errNotACopy = errors.New("the standby is not a copy of this primary")

func (c *Cluster) ensureStandbyLocked(ctx context.Context, s *Cluster) error {
	st, err := readState(s.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := c.basebackup(ctx, s); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		s.adopt(st)
	}
	running, err := s.running(ctx)
	if err != nil {
		return err
	}
	if !running {
		if err := s.start(ctx); err != nil {
			return err
		}
	} else if err := waitTCP(ctx, s.Port, 10*time.Second); err != nil {
		return err
	}
	return c.waitStandby(ctx, s)
}

// basebackup copies the running primary into s's data directory as a
// standby and records s in its cluster.json (last, as initialise does).
func (c *Cluster) basebackup(ctx context.Context, s *Cluster) error {
	if err := c.allowReplication(ctx); err != nil {
		return err
	}
	base, err := s.baseDir(ctx)
	if err != nil {
		return err
	}
	s.dataDir = filepath.Join(base, "data")
	s.logFile = filepath.Join(base, "postgres.log")
	if err := s.makeDataDir(); err != nil {
		return err
	}
	pw, err := c.Secret("postgres")
	if err != nil {
		return err
	}
	fmt.Fprintf(c.log, "pgcluster: copying the primary on port %d into %s (pg_basebackup)\n", c.Port, s.dataDir)
	// The password goes in the connection string because the server
	// binaries run without PG* variables; -R writes it into the standby's
	// primary_conninfo (postgresql.auto.conf, mode 0600, the server user's),
	// next to the secrets this directory already holds.
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s application_name=dbchat_standby", c.Port, pw)
	// A replication slot keeps the primary's WAL until the standby has it,
	// so a standby stopped (or slow) while the primary runs many tests can
	// still catch up; max_slot_wal_keep_size (allowReplication) bounds it.
	if err := c.resetSlot(ctx); err != nil {
		return err
	}
	args := []string{"-D", s.dataDir, "-d", conninfo, "-R", "-X", "stream", "-c", "fast", "-C", "-S", standbySlot}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.srv.run(ctx, c.log, "pg_basebackup", args...); err != nil {
		// Leave an empty directory, so the next attempt starts clean.
		_ = s.emptyDataDir()
		return fmt.Errorf("pgcluster: pg_basebackup failed: %v\n%s", err, lastLines(out, 20))
	}
	// A standby copied again keeps its port when it can.
	if s.Port == 0 || !portFree(s.Port) {
		if s.Port, err = freePort(); err != nil {
			return err
		}
	}
	return writeState(s.Dir, s.state())
}

// standbySlot is the primary's replication slot for its standby.
const standbySlot = "dbchat_standby"

// resetSlot drops the standby's slot on the primary, if a standby copied
// earlier left one, so pg_basebackup can create it afresh; and caps the WAL
// a slot may hold back, so a standby deleted by hand cannot fill the disk.
func (c *Cluster) resetSlot(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.SuperuserURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: primary: %w", err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '` + standbySlot + `'`,
		`ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'`,
		`SELECT pg_reload_conf()`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgcluster: primary: %s: %w", sql, err)
		}
	}
	return nil
}

// allowReplication adds the replication line to the primary's pg_hba.conf
// (clusters made before standbys existed lack it) and reloads it.
func (c *Cluster) allowReplication(ctx context.Context) error {
	path := filepath.Join(c.dataDir, "pg_hba.conf")
	hba, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if strings.Contains(string(hba), replicationHBA) {
		return nil
	}
	if err := c.writeServerFile("pg_hba.conf", string(hba)+replicationHBA); err != nil {
		return err
	}
	if out, err := c.srv.run(ctx, c.log, "pg_ctl", "reload", "-D", c.dataDir); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl reload: %v: %s", err, lastLines(out, 5))
	}
	return nil
}

// waitStandby checks that s is a hot standby of c and waits until it has
// replayed the primary's WAL up to now.
func (c *Cluster) waitStandby(ctx context.Context, s *Cluster) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	primary, err := pgx.Connect(ctx, c.SuperuserURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: primary: %w", err)
	}
	defer primary.Close(context.Background())
	var sysID uint64
	var lsn string
	if err := primary.QueryRow(ctx, `SELECT system_identifier, pg_current_wal_insert_lsn()::text FROM pg_control_system()`).Scan(&sysID, &lsn); err != nil {
		return fmt.Errorf("pgcluster: primary: %w", err)
	}
	standby, err := connectRetry(ctx, s.SuperuserURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: standby: %w", err)
	}
	defer standby.Close(context.Background())
	var standbySysID uint64
	var recovery bool
	if err := standby.QueryRow(ctx, `SELECT system_identifier, pg_is_in_recovery() FROM pg_control_system()`).Scan(&standbySysID, &recovery); err != nil {
		return fmt.Errorf("pgcluster: standby: %w", err)
	}
	if standbySysID != sysID {
		return fmt.Errorf("%w (system identifier %d, the primary's %d)", errNotACopy, standbySysID, sysID)
	}
	if !recovery {
		return fmt.Errorf("%w (it is not in recovery: promoted?)", errNotACopy)
	}
	for {
		var done bool
		err := standby.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn).Scan(&done)
		if err != nil {
			return fmt.Errorf("pgcluster: standby: %w", err)
		}
		if done {
			fmt.Fprintf(c.log, "pgcluster: standby streaming on 127.0.0.1:%d\n", s.Port)
			return nil
		}
		if strings.Contains(tailFile(s.logFile, 5), "has already been removed") {
			// Copied before slots, or its slot was invalidated: the WAL it
			// needs is gone, so only a new copy can catch up.
			return fmt.Errorf("%w (it needs WAL the primary has removed)", errNotACopy)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: the standby on port %d did not replay the primary's WAL up to %s; last lines of %s:\n%s",
				s.Port, lsn, s.logFile, tailFile(s.logFile, 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// connectRetry connects, retrying while a just-started standby still says
// "the database system is starting up" (pg_ctl -w may return before it
// accepts read-only connections).
func connectRetry(ctx context.Context, url string) (*pgx.Conn, error) {
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// discard stops s and deletes its data directory and cluster.json, so the
// next EnsureStandby copies the primary afresh.
func (s *Cluster) discard(ctx context.Context) error {
	if running, err := s.running(ctx); err == nil && running {
		if out, err := s.srv.run(ctx, s.log, "pg_ctl", "stop", "-D", s.dataDir, "-m", "immediate", "-w", "-t", "60"); err != nil {
			return fmt.Errorf("pgcluster: pg_ctl stop: %v: %s", err, lastLines(out, 5))
		}
	}
	if err := os.Remove(filepath.Join(s.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return s.emptyDataDir()
}

// emptyDataDir removes what is inside the data directory, keeping the
// directory (owned by the server user) itself.
func (s *Cluster) emptyDataDir() error {
	ents, err := os.ReadDir(s.dataDir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.dataDir, e.Name())); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	return nil
}

// stopStandby stops c's standby, if it has one and it is running.
func (c *Cluster) stopStandby(ctx context.Context) error {
	dir := filepath.Join(c.Dir, standbyDir)
	st, err := readState(dir)
	if err != nil {
		return nil // none (or never finished): nothing runs
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return err
	}
	defer unlock()
	s := &Cluster{Dir: dir, opts: c.opts, log: c.log, srv: c.srv, secrets: c.secretsDir()}
	s.adopt(st)
	running, err := s.running(ctx)
	if err != nil || !running {
		return err
	}
	out, err := s.srv.run(ctx, s.log, "pg_ctl", "stop", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop (standby): %v: %s", err, lastLines(out, 5))
	}
	return nil
}
