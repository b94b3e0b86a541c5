package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// profileSummary is a CPU profile reduced to what the report shows.
type profileSummary struct {
	Path   string
	Total  string        // "Duration: 3s, Total samples = 2.5s (83%)"
	Groups []profileLine // flat share by library
	Flat   []profileLine // top functions by flat share
	Own    []profileLine // dbchat functions by cumulative share
}

type profileLine struct {
	Name  string
	Share float64 // percent of samples
}

// profileGroups attribute a function to what it belongs to, first match wins.
var profileGroups = []struct{ prefix, label string }{
	{"github.com/jackc/", "pgx (driver, protocol, pool)"},
	{"github.com/gin-gonic/", "gin (router, context, render)"},
	{"github.com/dbchat/", "dbchat code"},
	{"github.com/prometheus/", "Prometheus metrics"},
	{"github.com/google/uuid", "uuid"},
	{"encoding/json", "encoding/json"},
	{"log/slog", "log/slog"},
	{"crypto/", "crypto (key hash, request id)"},
	{"net/http", "net/http (server, client)"},
	{"internal/poll", "syscalls and network I/O"},
	{"syscall", "syscalls and network I/O"},
	{"internal/runtime/syscall", "syscalls and network I/O"},
	{"net.", "syscalls and network I/O"},
	{"bufio", "bufio/io"},
	{"io.", "bufio/io"},
	{"runtime", "Go runtime (GC, scheduler, allocation)"},
	{"internal/runtime", "Go runtime (GC, scheduler, allocation)"},
	{"strconv", "strconv/time formatting"},
	{"time", "strconv/time formatting"},
	{"encoding/hex", "crypto (key hash, request id)"},
	{"reflect", "reflect (encoding)"},
	{"internal/abi", "reflect (encoding)"},
	{"sync", "sync/context"},
	{"context", "sync/context"},
	{"bytes", "bytes/strings/fmt"},
	{"strings", "bytes/strings/fmt"},
	{"fmt", "bytes/strings/fmt"},
	{"unicode", "bytes/strings/fmt"},
	{"indexbyte", "bytes/strings/fmt"},
	{"memeqbody", "bytes/strings/fmt"},
	{"os.", "syscalls and network I/O"},
	{"sort", "other"},
	{"slices", "other"},
	{"math", "other"},
	{"aeshash", "Go runtime (GC, scheduler, allocation)"},
	{"gogo", "Go runtime (GC, scheduler, allocation)"},
}

func groupOf(fn string) string {
	for _, g := range profileGroups {
		if strings.HasPrefix(fn, g.prefix) {
			return g.label
		}
	}
	return "other"
}

// goTool finds the go command for `go tool pprof`.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go"), nil
	}
	return "", fmt.Errorf("the go command is not on PATH")
}

// profileSelf runs work with this process under the CPU profiler, writing
// the profile to path, and summarises it.
func profileSelf(ctx context.Context, path string, work func() error) (profileSummary, error) {
	f, err := os.Create(path)
	if err != nil {
		return profileSummary{}, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return profileSummary{}, err
	}
	err = work()
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return profileSummary{Path: path}, err
	}
	return summarizeProfile(ctx, path)
}

// summarizeProfile reads a CPU profile with `go tool pprof -top`.
func summarizeProfile(ctx context.Context, path string) (profileSummary, error) {
	s := profileSummary{Path: path}
	goCmd, err := goTool()
	if err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goCmd, "tool", "pprof", "-top", "-nodecount=100000", path).Output()
	if err != nil {
		return s, fmt.Errorf("go tool pprof: %w", err)
	}
	groups := map[string]float64{}
	var own []profileLine
	inTable := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Duration:") {
			s.Total = strings.TrimSpace(line)
		}
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "flat" && f[1] == "flat%" {
			inTable = true
			continue
		}
		if !inTable || len(f) < 6 {
			continue
		}
		flat, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		groups[groupOf(name)] += flat
		if len(s.Flat) < 12 {
			s.Flat = append(s.Flat, profileLine{shortName(name), flat})
		}
		if strings.HasPrefix(name, "github.com/dbchat/") && !strings.HasPrefix(name, "github.com/dbchat/dbchat/internal/bench.") {
			own = append(own, profileLine{shortName(name), cum})
		}
	}
	for g, v := range groups {
		s.Groups = append(s.Groups, profileLine{g, v})
	}
	byShare := func(a, b profileLine) int {
		if a.Share != b.Share {
			if a.Share > b.Share {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	}
	slices.SortFunc(s.Groups, byShare)
	slices.SortFunc(own, byShare)
	s.Own = own[:min(len(own), 10)]
	return s, nil
}

// shortName drops the module path of a function name.
func shortName(fn string) string {
	fn = strings.TrimPrefix(fn, "github.com/dbchat/dbchat/")
	fn = strings.TrimPrefix(fn, "github.com/")
	return fn
}

// groupTable renders side-by-side group shares of several profiles.
func groupTable(names []string, profs []profileSummary) string {
	seen := map[string]bool{}
	var order []string
	for _, p := range profs {
		for _, g := range p.Groups {
			if !seen[g.Name] {
				seen[g.Name] = true
				order = append(order, g.Name)
			}
		}
	}
	header := append([]string{"CPU of the server process, by library"}, names...)
	var rows [][]string
	for _, g := range order {
		row := []string{g}
		for _, p := range profs {
			v := 0.0
			for _, x := range p.Groups {
				if x.Name == g {
					v = x.Share
				}
			}
			row = append(row, fmt.Sprintf("%.1f %%", v))
		}
		rows = append(rows, row)
	}
	return mdTable(header, rows)
}

func linesBlock(lines []profileLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%6.1f %%  %s\n", l.Share, l.Name)
	}
	return codeBlock(b.String())
}
