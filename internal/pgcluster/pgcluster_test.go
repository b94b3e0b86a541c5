package pgcluster

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testDir makes a directory the postgres OS user can reach (t.TempDir's
// parent is mode 0700) and removes it, stopping any cluster, at the end.
func testDir(t *testing.T, parentMode os.FileMode) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "pgcluster-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, parentMode); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "cluster")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ensure(t *testing.T, dir string, log *bytes.Buffer) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := EnsureWith(ctx, dir, log, Options{Fast: true})
	if err != nil {
		t.Fatalf("Ensure: %v\nlog:\n%s", err, log)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

func stop(t *testing.T, c *Cluster) {
	t.Helper()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))); err == nil {
		conn.Close()
		t.Fatalf("port %d still accepts connections after Stop", c.Port)
	}
}

// psql runs a query through the real client, as the current user.
func psql(c *Cluster, url, query string) (string, error) {
	cmd := exec.Command(filepath.Join(c.srv.bin, "psql"), "-X", "-A", "-t", "-w", "-c", query, url)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustQuery(t *testing.T, c *Cluster, query, want string) {
	t.Helper()
	got, err := psql(c, c.SuperuserURL("postgres"), query)
	if err != nil || got != want {
		t.Fatalf("psql %q: got %q, %v; want %q", query, got, err, want)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	dir := testDir(t, 0o755)
	var log bytes.Buffer

	// Two concurrent first calls: the lock must make one initdb, one reuse.
	var wg sync.WaitGroup
	var logs [2]bytes.Buffer
	var errs [2]error
	cs := make([]*Cluster, 2)
	for i := range cs {
		wg.Go(func() { cs[i], errs[i] = EnsureWith(context.Background(), dir, &logs[i], Options{Fast: true}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure: %v\n%s", err, &logs[i])
		}
	}
	t.Cleanup(func() { cs[0].Stop(context.Background()) })
	if cs[0].Port != cs[1].Port {
		t.Fatalf("concurrent Ensure gave ports %d and %d", cs[0].Port, cs[1].Port)
	}
	if n := strings.Count(logs[0].String()+logs[1].String(), "initialising cluster"); n != 1 {
		t.Fatalf("initdb ran %d times\n%s\n%s", n, &logs[0], &logs[1])
	}

	c := ensure(t, dir, &log)
	if c.Port != cs[0].Port || !strings.Contains(log.String(), "reusing server") {
		t.Fatalf("second Ensure did not reuse the server (port %d vs %d):\n%s", c.Port, cs[0].Port, &log)
	}
	mustQuery(t, c, "select 1", "1")
	mustQuery(t, c, "show fsync", "off")
	t.Logf("Ensure log:\n%s%s%s", &logs[0], &logs[1], &log)
	checkSecrets(t, c)

	u, _ := url.Parse(c.SuperuserURL("postgres"))
	u.User = url.UserPassword("postgres", "wrong")
	if out, err := psql(c, u.String(), "select 1"); err == nil || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("wrong password: err=%v out=%q", err, out)
	}

	stop(t, c)
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	c = ensure(t, dir, &log)
	mustQuery(t, c, "select 1", "1")
	stop(t, c)
}

func checkSecrets(t *testing.T, c *Cluster) {
	t.Helper()
	a, err1 := c.Secret("dbchat_app")
	b, err2 := c.Secret("dbchat_app")
	if err1 != nil || err2 != nil || a != b || len(a) < 20 {
		t.Fatalf("Secret not stable: %q %v, %q %v", a, err1, b, err2)
	}
	if _, err := c.Secret("../x"); err == nil {
		t.Fatal("Secret accepted a path as name")
	}
	fi, err := os.Stat(filepath.Join(c.Dir, "secrets", "dbchat_app"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(filepath.Join(c.Dir, "secrets")); fi.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir mode: %v", fi.Mode())
	}
}

// TestRestartRecovers covers a stale postmaster.pid (as after a crash or a
// reboot) and a recorded port that something else has taken meanwhile.
func TestRestartRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	dir := testDir(t, 0o755)
	var log bytes.Buffer
	c := ensure(t, dir, &log)
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	stop(t, c)

	// A pid file naming a process that has exited and been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(pidData), "\n")
	stale := strconv.Itoa(dead.Process.Pid) + "\n" + rest
	if err := os.WriteFile(pidFile, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.srv.chown(pidFile); err != nil {
		t.Fatal(err)
	}

	// Occupy the recorded port.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	c2 := ensure(t, dir, &log)
	if c2.Port == c.Port {
		t.Fatalf("port %d was taken but the cluster kept it", c.Port)
	}
	if st, err := readState(dir); err != nil || st.Port != c2.Port {
		t.Fatalf("cluster.json not updated: %+v %v", st, err)
	}
	mustQuery(t, c2, "select 1", "1")
	stop(t, c2)
}

// TestUnreachableDir checks the fallback for a Dir the postgres user cannot
// traverse to, which only matters when we run as root.
func TestUnreachableDir(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root and starts a PostgreSQL server")
	}
	dir := testDir(t, 0o700)
	var log bytes.Buffer
	c := ensure(t, dir, &log)
	base := filepath.Dir(c.dataDir)
	t.Cleanup(func() { os.RemoveAll(base) })
	if !strings.HasPrefix(c.dataDir, "/var/tmp/dbchat-") {
		t.Fatalf("data dir %s, want a fallback under /var/tmp", c.dataDir)
	}
	if st, err := readState(dir); err != nil || st.DataDir != c.dataDir {
		t.Fatalf("cluster.json does not record the data dir: %+v %v", st, err)
	}
	mustQuery(t, c, "select 1", "1")
	stop(t, c)
	c = ensure(t, dir, &log)
	mustQuery(t, c, "select 1", "1")
	stop(t, c)
}

func TestSharedBuffers(t *testing.T) {
	for v, want := range map[string]string{"": "128MB", "4GB": "4GB", "512MB": "512MB"} {
		if got, err := sharedBuffers(v); err != nil || got != want {
			t.Errorf("sharedBuffers(%q) = %q, %v; want %q", v, got, err, want)
		}
	}
	quarter, err1 := sharedBuffers("25%")
	half, err2 := sharedBuffers("50%")
	q, _ := strconv.Atoi(strings.TrimSuffix(quarter, "MB"))
	h, _ := strconv.Atoi(strings.TrimSuffix(half, "MB"))
	if err1 != nil || err2 != nil || q <= 0 || h < 2*q-2 || h > 2*q+2 {
		t.Errorf("shares of the machine's memory: 25%% = %q (%v), 50%% = %q (%v)", quarter, err1, half, err2)
	}
	// Anything else is refused rather than written into the configuration
	// (where a newline would add settings, and a typo stop the server).
	for _, bad := range []string{"4G", "lots", "0%", "90%", "1GB\nfsync = off", "-1MB", "0MB"} {
		if got, err := sharedBuffers(bad); err == nil {
			t.Errorf("sharedBuffers(%q) = %q, want an error", bad, got)
		}
	}
}
