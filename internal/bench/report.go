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

func failedSection(err error) *Section {
	return &Section{
		Summary: []Row{{Measure: "—", Verdict: "did not run: " + err.Error()}},
		Body:    "The benchmark did not complete: `" + strings.ReplaceAll(err.Error(), "`", "'") + "`.\n",
	}
}

// printSummary writes the summary table of this run to w.
func printSummary(w io.Writer, sections []*Section) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tMEASURE\tFLOOR OR REFERENCE\tDBCHAT\tRATIO median (min–max)\tGOAL\tVERDICT")
	for _, s := range sections {
		for i, r := range s.Summary {
			title := s.Title
			if i > 0 {
				title = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", title, r.Measure, r.Floor, r.Dbchat, r.Ratio, r.Goal,
				strings.ReplaceAll(r.Verdict, "**", ""))
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
	var b strings.Builder
	b.WriteString(render("header", nil))
	b.WriteString("\n## Summary\n\n")
	var rows [][]string
	for _, p := range suite {
		st, ok := kept[p.name]
		if !ok {
			rows = append(rows, []string{p.title, "—", "", "", "", "", "not run yet (`make bench BENCH=" + p.name + "`)"})
			continue
		}
		for i, r := range st.rows {
			title := p.title
			if i > 0 {
				title = ""
			}
			rows = append(rows, []string{title, r.Measure, r.Floor, r.Dbchat, r.Ratio, r.Goal, r.Verdict})
		}
	}
	b.WriteString(mdTable([]string{"Part", "Measure", "Floor or reference", "dbchat", "Ratio to it: median (min–max)", "Goal", "Verdict"}, rows))
	b.WriteString("\n")
	b.WriteString(render("machine", m))
	fmt.Fprintf(&b, "- Last command: `%s`; commit %s\n", command, m.Commit)
	for _, p := range suite {
		b.WriteString("\n")
		if st, ok := kept[p.name]; ok {
			b.WriteString(st.text)
			continue
		}
		b.WriteString(renderSection(&Section{Part: p.name, Title: p.title,
			Summary: []Row{{Measure: "—", Verdict: "not run yet"}},
			Body:    "Not run yet: `make bench BENCH=" + p.name + "`.\n"}))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"thousands": thousands, "table": mdTable, "code": codeBlock, "facts": planFacts, "html": htmlEscape,
	"lines": linesBlock, "groups": groupTable, "ms": func(d time.Duration) time.Duration { return d.Round(time.Millisecond) },
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
	b.WriteString(beginMark + s.Part + markClose + "\n")
	b.WriteString("## " + s.Title + "\n\n")
	if s.Stamp != "" {
		b.WriteString("_" + s.Stamp + "_\n\n")
	}
	b.WriteString(strings.TrimRight(s.Body, "\n") + "\n")
	rows, _ := json.Marshal(s.Summary) // escapes < and >, so no "-->" inside
	b.WriteString(summaryMark + string(rows) + markClose + "\n")
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
		rest := text[i+len(beginMark):]
		name, _, ok := strings.Cut(rest, markClose)
		if !ok {
			return out
		}
		end := endMark + name + markClose
		j := strings.Index(text[i:], end)
		if j < 0 {
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

// mdTable renders a markdown table.
func mdTable(header []string, rows [][]string) string {
	var b strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	b.WriteString("|")
	for _, h := range header {
		b.WriteString(" " + cell(h) + " |")
	}
	b.WriteString("\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("|")
		for i := range header {
			v := ""
			if i < len(r) {
				v = r[i]
			}
			b.WriteString(" " + cell(v) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// codeBlock fences text.
func codeBlock(text string) string {
	return "```\n" + strings.TrimRight(text, "\n") + "\n```\n"
}
