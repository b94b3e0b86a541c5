package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Read replicas. The sandbox may read on a hot standby (UseStandby): the
// statements run there exactly as on the primary (the same dbchat_query
// login, the same prelude, role, settings and READ ONLY transaction; a
// physical standby has the primary's roles, grants, policies and restricted
// catalogs, since they are all in the WAL it replays), and the primary's
// pool stays as the fallback.
//
// Read-your-writes: a change to a tenant's tables (an import, a new table or
// column, a policy) is noted (NoteWrite) with the primary's WAL insert
// position once it has committed and before its response is sent. A
// statement of that tenant runs on the standby only once the standby has
// replayed that far (pg_last_wal_replay_lsn), waiting at most MaxWait;
// past the bound, or with the standby down, it runs on the primary. The
// positions live in this process: a write through another server instance
// is not waited for (docs/OPERATIONS.md, Read replicas).
//
// dbchat_query may execute no function but the reviewed list, and the
// replay position is not one of them: it is read on a connection of its own
// to the standby as the runtime login (a platform role, which may), never
// on the sandbox's, whose rights stay as they are.

// LSN is a WAL position (PostgreSQL's pg_lsn) as a number.
type LSN uint64

// ParseLSN reads pg_lsn's text form, two hexadecimal halves ("16/B374D848").
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("not a WAL position: %q", s)
	}
	return LSN(h<<32 | l), nil
}

// String is pg_lsn's text form.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xffffffff) }

// Standby defaults.
const (
	// DefaultReplicaMaxWait is how long a statement waits for the standby
	// to replay its tenant's last write before it runs on the primary
	// (DBCHAT_REPLICA_MAX_WAIT).
	DefaultReplicaMaxWait = time.Second
	// DefaultStandbyRetry is how long a standby that failed (refused a
	// connection, lost one, is not in recovery) is left alone before it is
	// tried again; meanwhile every statement runs on the primary.
	DefaultStandbyRetry = 5 * time.Second
	// noteFailedFor is how long a tenant whose write position could not be
	// read reads on the primary: its write is surely replayed by then.
	noteFailedFor = time.Minute
)

// StandbyConfig configures UseStandby.
type StandbyConfig struct {
	// URL logs in on the hot standby as dbchat_query, like the sandbox's
	// own URL on the primary.
	URL string
	// MonitorURL logs in on the standby as a role that may execute
	// pg_last_wal_replay_lsn() (the runtime login, dbchat_app); it reads
	// nothing else.
	MonitorURL string
	// MaxWait bounds the wait for the standby to replay a tenant's last
	// write; zero means DefaultReplicaMaxWait.
	MaxWait time.Duration
	// Retry is how long a failed standby is left alone; zero means
	// DefaultStandbyRetry.
	Retry time.Duration
}

// standby is the sandbox's hot standby and what it knows of its progress.
type standby struct {
	pools   atomic.Pointer[queryPools] // the query logins on the standby
	base    *pgxpool.Config            // their configuration, for reshard
	monitor *pgxpool.Pool              // the runtime login on the standby: replay position only
	primary *DB                        // the runtime DB on the primary: write positions only
	maxWait time.Duration
	retry   time.Duration

	replayed  atomic.Uint64 // the highest replay position seen
	downUntil atomic.Int64  // unix nanoseconds; before it, the standby is not tried
	floor     LSN           // the primary's position when the standby was attached

	mu     sync.Mutex
	writes map[uuid.UUID]noted

	ran, fellBack, waited atomic.Int64
}

// noted is a tenant's last write: its position, or (position 0) a time
// until which its statements read on the primary.
type noted struct {
	lsn   LSN
	until time.Time
}

// UseStandby makes the sandbox run statements on a hot standby, its own
// pool (same size) staying as the fallback; primary is the runtime DB, on
// which write positions are read (NoteWrite). The standby need not be up:
// until it is, statements run on the primary. Call it before the first
// Query.
func (s *Sandbox) UseStandby(ctx context.Context, primary *DB, cfg StandbyConfig) error {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultReplicaMaxWait
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultStandbyRetry
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return fmt.Errorf("standby URL: %w", err)
	}
	mcfg, err := pgxpool.ParseConfig(cfg.MonitorURL)
	if err != nil {
		return fmt.Errorf("standby monitor URL: %w", err)
	}
	// The primary pool's settings (message cap, exec mode, DISCARD ALL on
	// release); every connection is checked, from what the server reports
	// at login, to be dbchat_query, no superuser, on a hot standby.
	if pcfg.ConnConfig.User != QueryRole {
		return fmt.Errorf("the standby pool must log in as %s, not %q", QueryRole, pcfg.ConnConfig.User)
	}
	pcfg.MaxConns = s.pools.Load().max
	pcfg.ConnConfig.MaxProtocolMessageBodyLen = MaxMessageBytes
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pcfg.AfterRelease = resetSession
	// A standby that does not answer holds a statement about as long as a
	// lagging one would (a second at least: a login takes a few round trips).
	for _, c := range []*pgxpool.Config{pcfg, mcfg} {
		if limit := max(cfg.MaxWait, time.Second); c.ConnConfig.ConnectTimeout == 0 || c.ConnConfig.ConnectTimeout > limit {
			c.ConnConfig.ConnectTimeout = limit
		}
	}
	mcfg.MaxConns = 2
	floor, err := WriteLSN(ctx, primary)
	if err != nil {
		return fmt.Errorf("the primary's WAL position: %w", err)
	}
	pools, err := newQueryPools(pcfg, len(s.pools.Load().pools), checkStandbyLogin)
	if err != nil {
		return fmt.Errorf("standby URL: %w", err)
	}
	monitor, err := pgxpool.NewWithConfig(ctx, mcfg)
	if err != nil {
		pools.close()
		return fmt.Errorf("standby monitor URL: %w", err)
	}
	s.standby = &standby{base: pcfg, monitor: monitor, primary: primary, maxWait: cfg.MaxWait, retry: cfg.Retry,
		floor: floor, writes: map[uuid.UUID]noted{}}
	s.standby.pools.Store(pools)
	return nil
}

// checkStandbyLogin refuses a standby connection that is not login
// without superuser on a server in hot standby, from the parameters the
// server reports at login (a query login may read no catalog).
func checkStandbyLogin(c *pgx.Conn, login string) error {
	if err := checkLogin(c, login); err != nil {
		return err
	}
	if c.PgConn().ParameterStatus("in_hot_standby") != "on" {
		return errors.New("the standby URL names a server that is not in hot standby")
	}
	return nil
}

// InHotStandby reports whether the server at connURL is a hot standby,
// from what it reports at login (PostgreSQL 14 and later).
func InHotStandby(ctx context.Context, connURL string) (bool, error) {
	conn, err := pgconn.Connect(ctx, connURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	return conn.ParameterStatus("in_hot_standby") == "on", nil
}

// WriteLSN is the primary's WAL insert position, read on db (the runtime
// login may execute pg_current_wal_insert_lsn()). Read after a commit, it
// is at or past the commit's record.
func WriteLSN(ctx context.Context, db *DB) (LSN, error) {
	var text string
	err := db.OnceAs(ctx, Identity{}, func(tx Conn) error {
		return tx.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&text)
	})
	if err != nil {
		return 0, err
	}
	return ParseLSN(text)
}

// HasStandby reports whether the sandbox reads on a hot standby.
func (s *Sandbox) HasStandby() bool { return s.standby != nil }

// OnStandby is the number of statements that ran on the standby,
// OnPrimaryInstead the number that had one but ran on the primary (the
// standby lagged past the bound, was down, or failed under the statement
// before it returned rows).
func (s *Sandbox) OnStandby() int64 {
	if s.standby == nil {
		return 0
	}
	return s.standby.ran.Load()
}

// OnPrimaryInstead: see OnStandby.
func (s *Sandbox) OnPrimaryInstead() int64 {
	if s.standby == nil {
		return 0
	}
	return s.standby.fellBack.Load()
}

// WaitedForStandby is the number of statements that waited for the
// standby to replay their tenant's writes (whichever server they then ran
// on).
func (s *Sandbox) WaitedForStandby() int64 {
	if s.standby == nil {
		return 0
	}
	return s.standby.waited.Load()
}

// NoteWrite records that the tenant's tables have changed and the change
// has committed: the tenant's next statements run on the standby only once
// it has replayed this far. Call it before the change's response is sent.
// It does nothing without a standby. If the position cannot be read, the
// tenant reads on the primary for a minute and the error is returned.
func (s *Sandbox) NoteWrite(ctx context.Context, tenantID uuid.UUID) error {
	st := s.standby
	if st == nil {
		return nil
	}
	lsn, err := WriteLSN(ctx, st.primary)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.writes[tenantID] = noted{until: time.Now().Add(noteFailedFor)}
		return err
	}
	if prev := st.writes[tenantID]; prev.lsn < lsn {
		st.writes[tenantID] = noted{lsn: lsn}
	}
	return nil
}

// ready reports whether the tenant's statement may run on the standby:
// it is not known to be down and has replayed the tenant's last write
// (waiting for that at most maxWait).
func (st *standby) ready(ctx context.Context, tenantID uuid.UUID) bool {
	if time.Now().UnixNano() < st.downUntil.Load() {
		return false
	}
	want := st.floor
	st.mu.Lock()
	w, ok := st.writes[tenantID]
	st.mu.Unlock()
	if ok && w.lsn == 0 {
		if time.Now().Before(w.until) {
			return false
		}
		st.forget(tenantID, w)
	}
	want = max(want, w.lsn)
	if want <= LSN(st.replayed.Load()) {
		if ok {
			st.forget(tenantID, w) // replayed: the floor is all it needs now
		}
		return true
	}
	st.waited.Add(1)
	wctx, cancel := context.WithTimeout(ctx, st.maxWait)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 16*time.Millisecond) {
		lsn, err := st.replay(wctx)
		if err != nil {
			if ctx.Err() == nil && wctx.Err() == nil {
				st.down()
			}
			return false
		}
		if lsn >= want {
			return true
		}
		select {
		case <-wctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// forget drops a tenant's entry if it is still w.
func (st *standby) forget(tenantID uuid.UUID, w noted) {
	st.mu.Lock()
	if st.writes[tenantID] == w {
		delete(st.writes, tenantID)
	}
	st.mu.Unlock()
}

// replay reads the standby's replay position and raises the highest seen.
// A server that is not in recovery (promoted, or not a standby) is an error.
func (st *standby) replay(ctx context.Context) (LSN, error) {
	var text *string
	if err := st.monitor.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn()::text`).Scan(&text); err != nil {
		return 0, err
	}
	if text == nil {
		return 0, errors.New("the standby is not in recovery")
	}
	lsn, err := ParseLSN(*text)
	if err != nil {
		return 0, err
	}
	for {
		seen := st.replayed.Load()
		if uint64(lsn) <= seen || st.replayed.CompareAndSwap(seen, uint64(lsn)) {
			return lsn, nil
		}
	}
}

// down leaves the standby alone for the retry period.
func (st *standby) down() {
	st.downUntil.Store(time.Now().Add(st.retry).UnixNano())
}

// failed reports whether a statement that failed on the standby with err,
// before returning any row, runs again on the primary: when the standby
// is gone (the connection was lost or refused, the server is shutting
// down; it is then left alone for a while), cancelled the statement for
// a conflict with recovery (40001: a read-only transaction has no other
// serialization failure), or lacks the tenant's role or schema (42704,
// 3F000: a tenant created where no write was noted, say by the operator,
// whose creation the standby has not replayed yet; a statement's own
// 42704, an unknown type, fails the same way on the primary). Any other
// error of the statement's is its answer.
func (st *standby) failed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var lost lostConnection
	if errors.As(err, &lost) || ConnectionLost(err) {
		st.down()
		return true
	}
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "42704" || pg.Code == "3F000")
}

func (st *standby) close() {
	st.pools.Load().close()
	st.monitor.Close()
}
