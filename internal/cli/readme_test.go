package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeWalkthroughsRunAsPrinted runs the README's shell walkthroughs,
// in order, in one shell, against `dbchat dev` (what `make run` runs) on a
// fresh private cluster, and checks every output the README prints.
//
// The README's conventions, which this test holds it to:
//   - A ```sh block is run unless it starts a server (a `make` or `docker`
//     line): those are what the reader has running already.
//   - A run of "# " comment lines right after a command (no blank line in
//     between) is that command's output; a comment after a blank line is
//     prose. A ```text block introduced by a paragraph that says only
//     "prints" is the output of the ```sh block before it.
//   - "…" in an output stands for anything within the line; ids, dates,
//     durations (*_ms) and loopback ports may differ from the printed ones.
//   - KEY is the demo tenant's key (a reader sets it from make run's
//     output; "KEY=dbc_…" lines stand for that), and the server runs with
//     DBCHAT_ADMIN_TOKEN=ops-secret, as the limits walkthrough starts it.
//
// Each output must appear, in order, in what the block wrote to stdout, and
// every command must succeed (the shell runs with -e and pipefail).
func TestReadmeWalkthroughsRunAsPrinted(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's walkthroughs need %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := walkthroughs(string(readme))
	outputs := 0
	for _, b := range blocks {
		outputs += len(b.outputs)
	}
	if len(blocks) < 10 || outputs < 40 {
		t.Fatalf("found %d runnable walkthroughs printing %d lines in README.md; the parser lost some", len(blocks), outputs)
	}

	// A checkout-like directory the postgres OS user can reach: bin/dbchat
	// and, once dev runs, .dbchat/.
	dir, err := os.MkdirTemp("", "dbchat-readme-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "dbchat")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dbchat")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	addr, key := startDev(t, dir, bin)
	base := "http://" + addr
	var script strings.Builder
	script.WriteString("set -eo pipefail\nexport DBCHAT_ADMIN_TOKEN=ops-secret\nKEY=" + key + "\n")
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo %s\n%s\n", marker(i), strings.ReplaceAll(b.script, "http://localhost:8080", base))
	}
	fmt.Fprintf(&script, "echo %s\n", marker(len(blocks)))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir = dir
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	runErr := sh.Run()

	out := stdout.String()
	for i, b := range blocks {
		start := strings.Index(out, marker(i)+"\n")
		if start < 0 {
			t.Fatalf("README.md line %d: the walkthroughs stopped before this block: %v\nstderr:\n%s", blocks[i-1].line, runErr, stderr.String())
		}
		start += len(marker(i)) + 1
		end := strings.Index(out, marker(i+1)+"\n")
		if end < 0 {
			t.Fatalf("README.md line %d: a command failed (%v)\nits output:\n%s\nstderr:\n%s", b.line, runErr, out[start:], stderr.String())
		}
		got := out[start:end]
		if missing, ok := printed(b.outputs, got); !ok {
			t.Errorf("README.md line %d: the block does not print\n  %s\nwhere the README says; it printed:\n%s", b.line, missing, got)
		}
	}
	if runErr != nil {
		t.Fatalf("shell: %v\n%s", runErr, stderr.String())
	}
}

// walkthrough is one runnable ```sh block of the README.
type walkthrough struct {
	line    int      // of its opening fence
	script  string   // the block, placeholders replaced
	outputs []string // what it prints, in order
}

func marker(i int) string { return fmt.Sprintf("@@readme-block-%d@@", i) }

// walkthroughs parses the README's runnable blocks (see the test's doc).
func walkthroughs(readme string) []walkthrough {
	lines := strings.Split(readme, "\n")
	var blocks []walkthrough
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		body := lines[i+1 : min(j, len(lines))]
		start := i + 1
		i = j
		if strings.TrimSpace(lang) != "sh" || startsServer(body) {
			continue
		}
		w := walkthrough{line: start, outputs: inlineOutputs(body)}
		for _, l := range body {
			if strings.HasPrefix(l, "KEY=dbc_…") {
				l = ": KEY is the demo tenant key printed by make run"
			}
			w.script += l + "\n"
		}
		// "prints", then a ```text block: this block's output.
		if k := i + 1; k+2 < len(lines) && strings.TrimSpace(lines[k]) == "" && strings.TrimSpace(lines[k+1]) == "prints" &&
			strings.TrimSpace(lines[k+2]) == "" && k+3 < len(lines) && strings.HasPrefix(lines[k+3], "```text") {
			for m := k + 4; m < len(lines) && !strings.HasPrefix(lines[m], "```"); m++ {
				w.outputs = append(w.outputs, lines[m])
			}
		}
		blocks = append(blocks, w)
	}
	return blocks
}

// startsServer reports whether a block starts a server (make run, docker).
func startsServer(body []string) bool {
	for _, l := range body {
		f := strings.Fields(l)
		for len(f) > 0 && strings.Contains(f[0], "=") { // VAR=value make run
			f = f[1:]
		}
		if len(f) > 0 && (f[0] == "make" || f[0] == "docker") {
			return true
		}
	}
	return false
}

// inlineOutputs are the "# " lines that follow a command directly.
func inlineOutputs(body []string) []string {
	var outs []string
	after := false // the previous line was a command or an output
	for _, l := range body {
		switch {
		case strings.TrimSpace(l) == "":
			after = false
		case strings.HasPrefix(l, "# "):
			if after {
				outs = append(outs, strings.TrimPrefix(l, "# "))
			}
		default:
			after = true
		}
	}
	return outs
}

// Values that differ from run to run, replaced by a token in both the
// printed and the actual output.
var (
	idRE       = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	roleRE     = regexp.MustCompile(`\bt_[0-9a-f]{32}`) // a tenant's role and schema
	shortIDRE  = regexp.MustCompile(`[0-9a-f]{8}-…`)    // a printed id cut short
	dateRE     = regexp.MustCompile(`\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?`)
	durationRE = regexp.MustCompile(`"(\w+_ms)":[0-9.eE+-]+`)
	portRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

func normalise(s string) string {
	s = idRE.ReplaceAllString(s, "<id>")
	s = roleRE.ReplaceAllString(s, "t_<hex>")
	s = dateRE.ReplaceAllString(s, "<date>")
	s = durationRE.ReplaceAllString(s, `"$1":<ms>`)
	return portRE.ReplaceAllString(s, "127.0.0.1:<port>")
}

// printed reports whether every want line appears in got, in order: each
// at the start of a line, or right where the previous one ended (curl
// prints no newline after a body), with "…" matching anything on its line.
// It returns the first line it did not find.
func printed(want []string, got string) (string, bool) {
	got = normalise(got)
	at := 0
	for _, w := range want {
		parts := strings.Split(normalise(shortIDRE.ReplaceAllString(w, "<id>")), "…")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile(`(?m)(^|\A)` + strings.Join(parts, ".*?"))
		loc := re.FindStringIndex(got[at:])
		if loc == nil {
			return w, false
		}
		at += loc[1]
	}
	return "", true
}

// startDev runs `dbchat dev` in dir on a free loopback port and returns
// its address and the demo tenant's key; the test's cleanup stops it (and
// with it the private cluster).
func startDev(t *testing.T, dir, bin string) (addr, key string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	dev := exec.Command(bin, "dev")
	dev.Dir = dir
	dev.Env = append(os.Environ(), "DBCHAT_ADDR="+addr, "DBCHAT_ADMIN_TOKEN=ops-secret",
		"DATABASE_URL=", "DBCHAT_ADMIN_DATABASE_URL=", "DBCHAT_QUERY_DATABASE_URL=", "GEMINI_API_KEY=", "DBCHAT_LLM=")
	log := &syncBuffer{}
	dev.Stderr = log
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	keys := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "demo tenant API key: "); ok {
				keys <- k
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		done <- dev.Wait()
	}()
	t.Cleanup(func() {
		_ = dev.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = dev.Process.Kill()
			t.Errorf("dbchat dev did not stop within a minute of SIGTERM")
		}
	})
	select {
	case key = <-keys:
		return addr, key
	case err := <-done:
		t.Fatalf("dbchat dev exited: %v\n%s", err, log.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("dbchat dev printed no demo key within 3 minutes\n%s", log.String())
	}
	return "", ""
}
