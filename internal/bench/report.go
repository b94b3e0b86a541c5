package bench

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
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

func (r Row) cells() []string {
	return []string{r.Measure, r.Floor, r.Dbchat, r.Ratio, r.Goal, r.Verdict}
}

func failedSection(err error) *Section {
	return &Section{Summary: []Row{{Measure: "—", Verdict: "did not run: " + err.Error()}},
		Body: "The benchmark did not complete: `" + strings.ReplaceAll(err.Error(), "`", "'") + "`.\n"}
}

// summaryRows are the summary table's lines: the part's title on its first.
func summaryRows(title string, rows []Row) [][]string {
	var out [][]string
	for i, r := range rows {
		out = append(out, append([]string{map[bool]string{true: title}[i == 0]}, r.cells()...))
	}
	return out
}

// printSummary writes the summary table of this run to w.
func printSummary(w io.Writer, sections []*Section) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tMEASURE\tFLOOR OR REFERENCE\tDBCHAT\tRATIO median (min–max)\tGOAL\tVERDICT")
	for _, s := range sections {
		for _, r := range summaryRows(s.Title, s.Summary) {
			fmt.Fprintln(tw, strings.ReplaceAll(strings.Join(r, "\t"), "**", ""))
		}
	}
	tw.Flush()
}

const (
	beginMark   = "<!-- bench:begin "
	endMark     = "<!-- bench:end "
	summaryMark = "<!-- bench:summary "
	markClose   = " -->"
)

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
	b.WriteString(mdTable([]string{"Part", "Measure", "Floor or reference", "dbchat", "Ratio to it: median (min–max)", "Goal", "Verdict"}, rows))
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
	var b strings.Builder
	b.WriteString(beginMark + s.Part + markClose + "\n## " + s.Title + "\n\n")
	if s.Stamp != "" {
		b.WriteString("_" + s.Stamp + "_\n\n")
	}
	rows, _ := json.Marshal(s.Summary) // escapes < and >, so no "-->" inside
	b.WriteString(strings.TrimRight(s.Body, "\n") + "\n" + summaryMark + string(rows) + markClose + "\n")
	b.WriteString(endMark + s.Part + markClose + "\n")
	return b.String()
}

// parseSections finds the sections of an existing report.
func parseSections(text string) map[string]stored {
	out := map[string]stored{}
	for {
		i := strings.Index(text, beginMark)
		if i < 0 {
			return out
		}
		name, _, ok := strings.Cut(text[i+len(beginMark):], markClose)
		end := endMark + name + markClose
		j := strings.Index(text[i:], end)
		if !ok || j < 0 {
			return out
		}
		body := text[i : i+j+len(end)]
		st := stored{text: body + "\n"}
		if k := strings.Index(body, summaryMark); k >= 0 {
			js, _, _ := strings.Cut(body[k+len(summaryMark):], markClose)
			_ = json.Unmarshal([]byte(js), &st.rows)
		}
		out[name] = st
		text = text[i+j+len(end):]
	}
}

// mdTable renders a markdown table, the one renderer of every table.
func mdTable(header []string, rows [][]string) string {
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	line := func(cells []string) string {
		out := make([]string, len(header))
		for i := range out {
			if i < len(cells) {
				out[i] = cell(cells[i])
			}
		}
		return "| " + strings.Join(out, " | ") + " |\n"
	}
	return line(header) + "|" + strings.Repeat("---|", len(header)) + "\n" + func() string {
		var b strings.Builder
		for _, r := range rows {
			b.WriteString(line(r))
		}
		return b.String()
	}()
}
