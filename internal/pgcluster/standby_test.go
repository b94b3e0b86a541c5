package pgcluster

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStandby: a hot standby streams the primary's writes, refuses its
// own, is reused by a second EnsureStandby, stops with the primary and
// catches up after both restart; one that is not a copy of the primary is
// copied again.
func TestStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers")
	}
	dir := testDir(t, 0o755)
	var log bytes.Buffer
	c := ensure(t, dir, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := c.EnsureStandby(ctx)
	if err != nil {
		t.Fatalf("EnsureStandby: %v\nlog:\n%s", err, &log)
	}
	if s.Port == c.Port {
		t.Fatalf("standby on the primary's port %d", s.Port)
	}
	standbyQuery := func(query, want string) {
		t.Helper()
		got, err := psql(c, s.SuperuserURL("postgres"), query)
		if err != nil || got != want {
			t.Fatalf("standby: psql %q: got %q, %v; want %q", query, got, err, want)
		}
	}
	standbyQuery("select pg_is_in_recovery()", "t")
	standbyQuery("show fsync", "off")

	// A write on the primary appears on the standby once replayed
	// (EnsureStandby waits for the primary's WAL as of its call).
	mustQuery(t, c, "create table t (v text)", "CREATE TABLE")
	mustQuery(t, c, "insert into t values ('streamed')", "INSERT 0 1")
	if _, err := c.EnsureStandby(ctx); err != nil {
		t.Fatalf("second EnsureStandby: %v", err)
	}
	standbyQuery("select v from t", "streamed")
	if out, err := psql(c, s.SuperuserURL("postgres"), "insert into t values ('x')"); err == nil || !strings.Contains(out, "read-only transaction") {
		t.Fatalf("a write on the standby: err=%v out=%q", err, out)
	}
	if n := strings.Count(log.String(), "copying the primary on port"); n != 1 {
		t.Fatalf("pg_basebackup ran %d times, want once (reuse):\n%s", n, &log)
	}

	// Stop stops both; EnsureStandby after a restart catches up.
	stop(t, c)
	if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))); err == nil {
		conn.Close()
		t.Fatalf("the standby's port %d still accepts connections after Stop", s.Port)
	}
	c = ensure(t, dir, &log)
	mustQuery(t, c, "insert into t values ('after restart')", "INSERT 0 1")
	s2, err := c.EnsureStandby(ctx)
	if err != nil {
		t.Fatalf("EnsureStandby after restart: %v\nlog:\n%s", err, &log)
	}
	if s2.Port != s.Port {
		t.Fatalf("the restarted standby moved from port %d to %d", s.Port, s2.Port)
	}
	standbyQuery("select count(*) from t", "2")

	// A standby promoted on its own is no longer this primary's copy: it
	// is thrown away and copied again.
	if out, err := psql(c, s.SuperuserURL("postgres"), "select pg_promote()"); err != nil {
		t.Fatalf("promote: %v %s", err, out)
	}
	if _, err := c.EnsureStandby(ctx); err != nil {
		t.Fatalf("EnsureStandby after a promotion: %v\nlog:\n%s", err, &log)
	}
	standbyQuery("select pg_is_in_recovery()", "t")
	if n := strings.Count(log.String(), "copying the primary again"); n != 1 {
		t.Fatalf("the promoted standby was not copied again:\n%s", &log)
	}
	stop(t, c)
}
