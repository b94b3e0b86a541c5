package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// machine describes where the numbers were taken.
type machine struct {
	CPU        string
	Cores      int
	MemGiB     float64
	OS         string
	Kernel     string
	Postgres   string // version()
	PGShort    string // e.g. "PostgreSQL 15.18"
	PGVector   string
	PGSettings [][2]string
	Go         string
	Commit     string
	pgPID      int // postmaster pid when the cluster is local, else 0
}

// pgSettings are the server settings that matter to these numbers.
var pgSettings = []string{"shared_buffers", "work_mem", "temp_buffers", "max_wal_size", "fsync",
	"synchronous_commit", "full_page_writes", "jit", "max_connections"}

func probeMachine(ctx context.Context, adminURL string) (machine, error) {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.CPU = firstField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.Fields(firstField("/proc/meminfo", "MemTotal") + " 0")[0], 64); err == nil {
		m.MemGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OS = strings.Trim(firstFieldSep("/etc/os-release", "PRETTY_NAME", "="), `"`)
	m.Commit = gitCommit()

	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return m, err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT version(), 'PostgreSQL ' || current_setting('server_version'),
		coalesce((SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), 'not installed')`).
		Scan(&m.Postgres, &m.PGShort, &m.PGVector); err != nil {
		return m, err
	}
	for _, s := range pgSettings {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", s).Scan(&v); err == nil {
			m.PGSettings = append(m.PGSettings, [2]string{s, v})
		}
	}
	// The postmaster's pid lets the HTTP part account PostgreSQL's CPU time;
	// only meaningful when the cluster runs on this machine.
	var pidFile string
	if conn.QueryRow(ctx, `SELECT pg_read_file('postmaster.pid')`).Scan(&pidFile) == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(pidFile, "\n", 2)[0])); err == nil {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && isLocal(conn.Config().Host) {
				m.pgPID = pid
			}
		}
	}
	return m, nil
}

func isLocal(host string) bool {
	return host == "127.0.0.1" || host == "localhost" || host == "::1" || strings.HasPrefix(host, "/")
}

func (m machine) oneLine() string {
	return fmt.Sprintf("%d cores (%s), %.0f GiB RAM, %s, %s", m.Cores, m.CPU, m.MemGiB, m.PGShort, m.Go)
}

func firstField(path, key string) string { return firstFieldSep(path, key, ":") }

func firstFieldSep(path, key, sep string) string {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, sep); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat CPU times; it is
// 100 on every mainstream architecture.
const clockTick = 100

// cpuTimes is CPU time (user+system) consumed so far by the processes that
// share the machine during a load run.
type cpuTimes struct {
	self     time.Duration // this process: the servers under test
	postgres time.Duration // the postmaster and its children (backends, walwriter, …)
	at       time.Time
}

func (m machine) cpuNow() cpuTimes {
	t := cpuTimes{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.self = rusageCPU(&ru)
	}
	if m.pgPID == 0 {
		return t
	}
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		ppid, cpu, ok := procStat(pid)
		if ok && (pid == m.pgPID || ppid == m.pgPID) {
			t.postgres += cpu
		}
	}
	return t
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStat reads a process's parent and CPU time from /proc/<pid>/stat.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(0) ppid(1) … utime(11) stime(12).
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(ut+st) * time.Second / clockTick, true
}

// procMem is a process's memory from /proc/<pid>/status, in bytes.
type procMem struct {
	HWM     int64 // VmHWM: peak resident set
	RSS     int64 // VmRSS: resident now
	RssAnon int64 // resident anonymous memory (heap, stacks) now
	RssFile int64 // resident file mappings (the binary's pages) now
}

// procMemory reads /proc/<pid>/status.
func procMemory(pid int) (procMem, error) {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	fields := map[string]*int64{"VmHWM": &m.HWM, "VmRSS": &m.RSS, "RssAnon": &m.RssAnon, "RssFile": &m.RssFile}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if f := strings.Fields(v); fields[k] != nil && len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			*fields[k] = n << 10
		}
	}
	if err == nil && m.HWM == 0 {
		err = fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return m, err
}

// peakAnon samples a process's anonymous RSS every 5 ms until stop, which
// returns the peak (and may be called again): VmHWM also counts the
// binary's file pages, which do not depend on the work done.
func peakAnon(pid int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := procMemory(pid); err == nil {
				peak = max(peak, m.RssAnon)
			}
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return sync.OnceValue(func() int64 {
		close(done)
		return <-result
	})
}
