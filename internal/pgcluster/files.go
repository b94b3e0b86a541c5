package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

const stateFile = "cluster.json"

// state is what cluster.json records, so later runs reuse the same port
// and find a data directory that had to live outside Dir.
type state struct {
	Port    int    `json:"port"`
	DataDir string `json:"data_dir,omitempty"` // empty: Dir/data
	LogFile string `json:"log_file,omitempty"` // empty: Dir/postgres.log
}

// state records paths only when they are outside Dir, so Dir can be moved.
func (c *Cluster) state() state {
	st := state{Port: c.Port}
	if c.dataDir != filepath.Join(c.Dir, "data") {
		st.DataDir = c.dataDir
	}
	if c.logFile != filepath.Join(c.Dir, "postgres.log") {
		st.LogFile = c.logFile
	}
	return st
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Port <= 0 {
		return st, fmt.Errorf("pgcluster: %s is corrupt (%v); fix or remove it", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

// writeState replaces cluster.json atomically so a crash never leaves half
// a file (which would make the next run think initdb never finished).
func writeState(dir string, st state) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := writeAtomic(filepath.Join(dir, stateFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

// lockDir takes an exclusive flock on Dir/.lock, so two processes never
// both run initdb or pg_ctl start on the same cluster. It polls so that ctx
// can cancel the wait.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("pgcluster: locking %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("pgcluster: waiting for %s: %w", f.Name(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// secretName keeps names usable as plain file names inside Dir/secrets.
var secretName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Secret returns a stable random password for name (generated once, stored under Dir with mode 0600).
// Keeping passwords in files means nobody has to choose or remember them,
// and every process using the cluster agrees on them.
func (c *Cluster) Secret(name string) (string, error) {
	if !secretName.MatchString(name) {
		return "", fmt.Errorf("pgcluster: bad secret name %q", name)
	}
	dir := c.secretsDir()
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := createSecret(path); err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// secretsDir is where Secret keeps passwords: Dir/secrets, or the
// primary's for a standby, whose roles are the primary's.
func (c *Cluster) secretsDir() string {
	if c.secrets != "" {
		return c.secrets
	}
	return filepath.Join(c.Dir, "secrets")
}

// createSecret writes a new password to a temp file and hard-links it into
// place: the link fails if another process got there first, and readers
// never see a half-written file. URL-safe base64 needs no escaping in URLs.
func createSecret(path string) error {
	raw := make([]byte, 24)
	rand.Read(raw)
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.RawURLEncoding.EncodeToString(raw) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func ownedByRoot(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}

// tailFile returns the last n lines of a (possibly large) log file.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		f.Seek(-64<<10, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return lastLines(b, n)
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
