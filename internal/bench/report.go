package bench

import (
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Section is one part's contribution to the report.
type Section struct {
	Part    string // suite name (rls, http, …)
	Title   string
	Stamp   string // when, with what command, on what machine
	Summary []Row  // lines of the summary table
	Body    string // markdown
}

// Row is one line of the summary table.
type Row struct {
	Measure string `json:"measure"`
	Floor   string `json:"floor"`
	Dbchat  string `json:"dbchat"`
	Ratio   string `json:"ratio"`
	Goal    string `json:"goal"`
	Verdict string `json:"verdict"`
}

// summaryRows are the summary table's lines: the part's title on its first.
func summaryRows(title string, rows []Row) [][]string {
	var out [][]string
	for i, r := range rows {
		out = append(out, []string{map[bool]string{true: title}[i == 0], r.Measure, r.Floor, r.Dbchat, r.Ratio, r.Goal, r.Verdict})
	}
	return out
}

// summaryHeader heads the summary table.
var summaryHeader = []string{"Part", "Measure", "Floor or reference", "dbchat", "Ratio to it: median (min–max)", "Goal", "Verdict"}

// printSummary writes the summary table of this run to w.
func printSummary(w io.Writer, sections []*Section) {
	var rows [][]string
	for _, s := range sections {
		rows = append(rows, summaryRows(s.Title, s.Summary)...)
	}
	fmt.Fprint(w, "\n"+strings.ReplaceAll(mdTable(summaryHeader, rows), "**", ""))
}

// stored is a section as found in an existing report.
type stored struct {
	text string
	rows []Row
}

// writeReport writes the report at path. Sections of parts that did not run
// now are kept from the existing file, so `make bench BENCH=rls` refreshes
// part 1 alone.
func writeReport(path string, m machine, command string, sections []*Section) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	kept := parseSections(string(old))
	for _, s := range sections {
		kept[s.Part] = stored{text: renderSection(s), rows: s.Summary}
	}
	for _, p := range suite {
		if _, ok := kept[p.name]; !ok {
			rows := []Row{{Measure: "—", Verdict: "not run yet (`make bench BENCH=" + p.name + "`)"}}
			kept[p.name] = stored{rows: rows, text: renderSection(&Section{Part: p.name, Title: p.title, Summary: rows,
				Body: "Not run yet: `make bench BENCH=" + p.name + "`.\n"})}
		}
	}
	var b strings.Builder
	b.WriteString(render("header", nil) + "\n## Summary\n\n")
	var rows [][]string
	for _, p := range suite {
		rows = append(rows, summaryRows(p.title, kept[p.name].rows)...)
	}
	b.WriteString(mdTable(summaryHeader, rows))
	b.WriteString("\n" + render("machine", m))
	fmt.Fprintf(&b, "- Last command: `%s`; commit %s\n", command, m.Commit)
	for _, p := range suite {
		b.WriteString("\n" + kept[p.name].text)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"thousands": thousands, "ms": func(d time.Duration) time.Duration { return d.Round(time.Millisecond) },
	"s": func(d time.Duration) time.Duration { return d.Round(time.Second) },
}).ParseFS(templateFS, "templates/*.tmpl"))

// render executes one of the embedded templates.
func render(name string, data any) string {
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Sprintf("(template %s: %v)\n", name, err)
	}
	return b.String()
}

func renderSection(s *Section) string {
	stamp := ""
	if s.Stamp != "" {
		stamp = "_" + s.Stamp + "_\n\n"
	}
	rows, _ := json.Marshal(s.Summary) // escapes < and >, so no "-->" inside
	return fmt.Sprintf("<!-- bench:begin %s -->\n## %s\n\n%s%s\n<!-- bench:summary %s -->\n<!-- bench:end %[1]s -->\n",
		s.Part, s.Title, stamp, strings.TrimRight(s.Body, "\n"), rows)
}

// sectionRE matches a section of an existing report: its part and, in
// the summary mark, its summary rows as JSON.
var sectionRE = regexp.MustCompile(`(?s)<!-- bench:begin (\w+) -->.*?<!-- bench:summary (.*?) -->\n<!-- bench:end \w+ -->\n`)

// parseSections finds the sections of an existing report.
func parseSections(text string) map[string]stored {
	out := map[string]stored{}
	for _, m := range sectionRE.FindAllStringSubmatch(text, -1) {
		st := stored{text: m[0]}
		_ = json.Unmarshal([]byte(m[2]), &st.rows)
		out[m[1]] = st
	}
	return out
}

// mdTable renders a markdown table, the one renderer of every table.
func mdTable(header []string, rows [][]string) string {
	line := func(cells []string) string {
		out := make([]string, len(header))
		for i := range min(len(out), len(cells)) {
			out[i] = strings.NewReplacer("|", `\|`, "\n", " ").Replace(cells[i])
		}
		return "| " + strings.Join(out, " | ") + " |\n"
	}
	table := line(header) + "|" + strings.Repeat("---|", len(header)) + "\n"
	for _, r := range rows {
		table += line(r)
	}
	return table
}

// dist summarises repeated measurements: the median and the full spread.
type dist struct {
	Med, Min, Max float64
	N             int
}

func newDist(xs []float64) dist {
	if len(xs) == 0 {
		return dist{Med: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Sorted(slices.Values(xs))
	return dist{Med: quantile(s, 0.5), Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// quantile of sorted xs, linearly interpolated.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// pq is the q-quantile of unsorted xs.
func pq(xs []float64, q float64) float64 { return quantile(slices.Sorted(slices.Values(xs)), q) }

// f renders the median with the spread: "12.3 (11.9–13.0)".
func (d dist) f(format string) string {
	if d.N <= 1 {
		return d.m(format)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", d.Med, d.Min, d.Max)
}

// m renders the median alone.
func (d dist) m(format string) string {
	if d.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, d.Med)
}

// ratios divides a by b pairwise (the same run's measurements).
func ratios(a, b []float64) []float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = a[i] / b[i]
	}
	return r
}

// collect maps xs.
func collect[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// goal is a bound on a ratio (or, with a unit, on a value).
type goal struct {
	bound  float64
	atMost bool   // r ≤ bound is met; otherwise r ≥ bound
	unit   string // "" for a ratio
}

func (g goal) String() string {
	return fmt.Sprintf("%s %.2f%s", map[bool]string{true: "≤", false: "≥"}[g.atMost], g.bound, cmp.Or(g.unit, "×"))
}

// verdict judges the median ratio and says by how much a miss misses.
func (g goal) verdict(r float64) string {
	off, met := math.Abs(r-g.bound)/g.bound*100, g.atMost == (r <= g.bound) || r == g.bound
	switch {
	case math.IsNaN(r):
		return "not measured"
	case met && g.atMost:
		return fmt.Sprintf("met (%.0f%% headroom)", off)
	case met:
		return fmt.Sprintf("met (%.0f%% above)", off)
	}
	return fmt.Sprintf("**missed** by %.0f%% (%.2f%s vs %s)", off, r, cmp.Or(g.unit, "×"), g)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pass times call(item, variant) once for every item and variant: items in
// a random order, each item's variants back to back in a random order, so
// that other work on the machine hits all variants alike and no variant
// always follows another. It returns ms[variant] over the items.
func pass(rng *rand.Rand, items, variants int, call func(item, variant int)) [][]float64 {
	ms := make([][]float64, variants)
	for _, i := range rng.Perm(items) {
		for _, v := range rng.Perm(variants) {
			start := time.Now()
			call(i, v)
			ms[v] = append(ms[v], millis(time.Since(start)))
		}
	}
	return ms
}
