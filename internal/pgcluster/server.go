package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server knows where the PostgreSQL binaries are and which OS user runs
// them: initdb and postgres refuse to run as root, so root hands them to
// the "postgres" user.
type server struct {
	bin  string
	cred *syscall.Credential // nil: run as the current user
}

func findServer() (server, error) {
	bin, err := findBinDir()
	if err != nil {
		return server{}, err
	}
	s := server{bin: bin}
	if os.Geteuid() == 0 {
		s.cred, err = postgresCredential()
	}
	return s, err
}

// findBinDir honours PG_BINDIR, then prefers the newest Debian-style
// /usr/lib/postgresql/N/bin, then asks pg_config; the server binaries are
// usually not on PATH, which is why we look beyond it.
func findBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		if !hasInitdb(d) {
			return "", fmt.Errorf("pgcluster: PG_BINDIR=%s has no initdb", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if hasInitdb(d) {
			return d, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); hasInitdb(d) {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: no PostgreSQL server binaries found (install postgresql-15 or set PG_BINDIR)")
}

// pgVersion extracts N from /usr/lib/postgresql/N/bin so that 15 sorts
// after 9.6 (a string sort would not).
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func hasInitdb(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "initdb"))
	return err == nil && fi.Mode().IsRegular()
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root but cannot find the \"postgres\" OS user to run the server as: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	// Give the server its own supplementary groups rather than none, so
	// group-readable files (e.g. ssl-cert) behave as with a packaged server.
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred, nil
}

// command builds an exec.Cmd that runs as the server's OS user, from "/"
// (our own working directory may be unreadable to that user) and without
// PG* variables, which would otherwise override the cluster's settings.
func (s server) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	// pg_ctl leaves a daemon behind; never hang if it keeps our pipes open.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a server binary, copying its output to log and also returning
// it so that failures can quote it.
func (s server) run(ctx context.Context, log io.Writer, prog string, args ...string) ([]byte, error) {
	var buf bytes.Buffer
	cmd := s.command(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Stdout = io.MultiWriter(log, &buf)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	return buf.Bytes(), err
}

// chown gives path to the server's OS user, which must own PGDATA and be
// able to write the log; it does nothing when we are that user already.
func (s server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// canReach reports whether the server's OS user can traverse to dir. We ask
// the kernel (test -x as that user) instead of reading mode bits, so ACLs
// and group membership are taken into account.
func (s server) canReach(ctx context.Context, dir string) bool {
	if s.cred == nil {
		return true
	}
	return s.command(ctx, "/bin/sh", "-c", `test -x "$1"`, "sh", dir).Run() == nil
}
