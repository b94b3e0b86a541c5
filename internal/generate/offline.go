package generate

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Offline answers without a network. It reuses a trained pair when the
// question is a near-duplicate, and otherwise recognises a few common
// question shapes over one catalog table: counts, lists, sums, averages,
// minimum and maximum, top-N, groupings ("per country"), equality filters on
// values named in the question, numeric comparisons and years. It never
// guesses: when it cannot tell the table or the shape it returns ErrNoSQL.
type Offline struct {
	// ReuseDistance is how close (cosine distance) a trained question must
	// be for its SQL to be reused as is.
	ReuseDistance float64
	// Probes is the question's budget for looking up the values it names:
	// at most MaxProbes sandbox statements (one per text column, each
	// checking all candidate values at once) taking at most ProbeTime in
	// all, for at most MaxValues candidate values. Values still unplaced
	// when the budget is spent become no filter.
	MaxProbes, MaxValues int
	ProbeTime            time.Duration
}

// Probe budget defaults.
const (
	DefaultMaxProbes = 50
	DefaultMaxValues = 32
	DefaultProbeTime = 5 * time.Second
)

// NewOffline returns the offline generator with its defaults.
func NewOffline() *Offline {
	return &Offline{ReuseDistance: 0.12, MaxProbes: DefaultMaxProbes, MaxValues: DefaultMaxValues, ProbeTime: DefaultProbeTime}
}

// Name implements Generator.
func (o *Offline) Name() string { return "offline" }

// Generate implements Generator.
func (o *Offline) Generate(ctx context.Context, in Input) (Output, error) {
	if len(in.Examples) > 0 && in.Examples[0].Distance <= o.ReuseDistance && in.PriorSQL == "" {
		return Output{SQL: in.Examples[0].SQL}, nil
	}
	q := parseQuestion(in.Question)
	t, ok := q.table(in.Tables)
	if !ok {
		return Output{}, ErrNoSQL("the question names none of your tables")
	}
	sql, err := q.build(t, o.placeValues(ctx, q, t, in.FindValues))
	if err != nil {
		return Output{}, err
	}
	return Output{SQL: sql}, nil
}

// Question implements Generator: the offline generator cannot describe SQL
// in words, so training pairs need a question.
func (o *Offline) Question(context.Context, string, Input) (string, error) {
	return "", ErrNoSQL("the offline generator cannot write a question for SQL; provide one")
}

// question is a tokenised question.
type question struct {
	raw    string
	words  []string // lowercase, punctuation stripped
	quoted []string // 'values' and "values" named in the question
}

var (
	wordRE   = regexp.MustCompile(`[A-Za-z0-9_.]+`)
	quotedRE = regexp.MustCompile(`'([^']+)'|"([^"]+)"`)
)

func parseQuestion(s string) question {
	q := question{raw: s}
	for _, m := range quotedRE.FindAllStringSubmatch(s, -1) {
		q.quoted = append(q.quoted, m[1]+m[2])
	}
	for _, w := range wordRE.FindAllString(s, -1) {
		q.words = append(q.words, strings.ToLower(strings.Trim(w, ".")))
	}
	return q
}

func (q question) has(words ...string) bool {
	for _, w := range words {
		if strings.Contains(w, " ") {
			if strings.Contains(" "+strings.Join(q.words, " ")+" ", " "+w+" ") {
				return true
			}
		} else if slices.Contains(q.words, w) {
			return true
		}
	}
	return false
}

// singular is a crude English stemmer, enough to match "customers" with
// "customer" and "countries" with "country".
func singular(w string) string {
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"), strings.HasSuffix(w, "xes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && len(w) > 3:
		return w[:len(w)-1]
	}
	return w
}

// mentions reports whether the question names an identifier such as
// "customer_id" or "signed_up" (as words, singular or plural).
func (q question) mentions(ident string) bool {
	for _, w := range q.words { // written as the identifier itself: "orders_2024"
		if singular(w) == singular(ident) {
			return true
		}
	}
	parts := strings.Split(ident, "_")
	for i := 0; i+len(parts) <= len(q.words); i++ {
		match := true
		for j, p := range parts {
			if singular(q.words[i+j]) != singular(p) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// table picks the table the question is about. A table scores for being
// named (less if only after "per"/"by", where it names a grouping) and for
// each of its columns the question names; the best score wins, ties go to
// the table named first.
func (q question) table(tables []Table) (Table, bool) {
	best, bestScore, bestPos := Table{}, 0, len(q.words)
	for _, t := range tables {
		score, pos := 0, q.position(t.Name)
		if pos >= 0 {
			score += 3
			if pos > 0 && (q.words[pos-1] == "per" || q.words[pos-1] == "by" || q.words[pos-1] == "each") {
				score -= 2
			}
		} else {
			pos = len(q.words)
		}
		for _, c := range t.Columns {
			if !isID(c.Name) && q.mentions(c.Name) {
				score += 2
			}
		}
		if score > bestScore || score == bestScore && score > 0 && pos < bestPos {
			best, bestScore, bestPos = t, score, pos
		}
	}
	return best, bestScore > 0
}

// position is the index of the first word naming ident, or -1.
func (q question) position(ident string) int {
	for i, w := range q.words {
		if singular(w) == singular(ident) {
			return i
		}
	}
	return -1
}

// column finds a column of t the question names, preferring kinds in want
// ("numeric", "date", "text", "" = any); id-like columns last.
func (q question) column(t Table, want string, skip ...string) (Column, bool) {
	var found []Column
	for _, c := range t.Columns {
		if slices.Contains(skip, c.Name) || (want != "" && kind(c.Type) != want) {
			continue
		}
		if q.mentions(c.Name) || c.Description != "" && q.mentionsDescription(c.Description) {
			found = append(found, c)
		}
	}
	slices.SortStableFunc(found, func(a, b Column) int { return boolInt(isID(a.Name)) - boolInt(isID(b.Name)) })
	if len(found) == 0 {
		return Column{}, false
	}
	return found[0], true
}

// mentionsDescription matches a description's content words ("Order total
// in EUR" is named by "total").
func (q question) mentionsDescription(desc string) bool {
	for _, w := range wordRE.FindAllString(strings.ToLower(desc), -1) {
		if len(w) > 3 && !stop[w] && q.mentions(w) {
			return true
		}
	}
	return false
}

var stop = map[string]bool{"with": true, "from": true, "when": true, "what": true, "which": true, "that": true, "this": true, "were": true, "each": true, "does": true, "have": true, "into": true, "only": true, "people": true}

func isID(name string) bool { return name == "id" || strings.HasSuffix(name, "_id") }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func kind(typ string) string {
	switch typ {
	case "integer", "bigint", "numeric", "double precision":
		return "numeric"
	case "date", "timestamptz":
		return "date"
	case "text":
		return "text"
	}
	return typ
}

// firstOf returns t's first column of kind k that is not an id.
func firstOf(t Table, k string) (Column, bool) {
	for _, c := range t.Columns {
		if kind(c.Type) == k && !isID(c.Name) {
			return c, true
		}
	}
	return Column{}, false
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// placeValues finds, within the probe budget, the text column of t that
// holds each value the question names (the first one in catalog order), with
// one statement per column for all values still unplaced.
func (o *Offline) placeValues(ctx context.Context, q question, t Table, find func(context.Context, string, string, []string) ([]string, error)) map[string]string {
	placed := map[string]string{}
	if find == nil {
		return placed
	}
	var open []string
	for _, v := range q.values() {
		if !slices.Contains(open, v) && len(open) < o.MaxValues {
			open = append(open, v)
		}
	}
	if len(open) == 0 {
		return placed
	}
	ctx, cancel := context.WithTimeout(ctx, o.ProbeTime)
	defer cancel()
	probes := 0
	for _, c := range t.Columns {
		if len(open) == 0 || probes >= o.MaxProbes || ctx.Err() != nil {
			break
		}
		if kind(c.Type) != "text" {
			continue
		}
		probes++
		found, err := find(ctx, t.Name, c.Name, open)
		if err != nil {
			continue // a failed probe places nothing
		}
		open = slices.DeleteFunc(open, func(v string) bool {
			if slices.Contains(found, v) {
				placed[v] = c.Name
				return true
			}
			return false
		})
	}
	return placed
}

// build writes the SQL for q over t; placed maps values the question names
// to the column holding them.
func (q question) build(t Table, placed map[string]string) (string, error) {
	where, err := q.filters(t, placed)
	if err != nil {
		return "", err
	}
	group, grouped := q.groupBy(t)
	from := " FROM " + ident(t.Name) + where
	switch agg := q.aggregate(); {
	case agg == "count":
		if grouped {
			g := ident(group.Name)
			return "SELECT " + g + ", count(*) AS count" + from + " GROUP BY " + g + " ORDER BY count DESC, " + g, nil
		}
		return "SELECT count(*) AS count" + from, nil
	case agg != "":
		col, ok := q.column(t, "numeric")
		if !ok {
			if col, ok = firstOf(t, "numeric"); !ok {
				return "", ErrNoSQL(fmt.Sprintf("%s has no numeric column to %s", t.Name, agg))
			}
		}
		expr := agg + "(" + ident(col.Name) + ")"
		alias := agg + "_" + col.Name
		if grouped && group.Name != col.Name {
			g := ident(group.Name)
			return "SELECT " + g + ", " + expr + " AS " + ident(alias) + from + " GROUP BY " + g + " ORDER BY " + ident(alias) + " DESC, " + g, nil
		}
		return "SELECT " + expr + " AS " + ident(alias) + from, nil
	}
	if n, col, desc, ok := q.topN(t); ok {
		dir := " DESC"
		if !desc {
			dir = " ASC"
		}
		return "SELECT *" + from + " ORDER BY " + ident(col.Name) + dir + " NULLS LAST LIMIT " + strconv.Itoa(n), nil
	}
	if q.has("list", "show", "all", "which", "what", "give", "display", "find", "get") {
		cols := "*"
		var named []string
		for _, c := range t.Columns {
			if q.mentions(c.Name) && !isID(c.Name) {
				named = append(named, ident(c.Name))
			}
		}
		if len(named) > 0 && len(named) < len(t.Columns) && where == "" {
			cols = strings.Join(named, ", ")
		}
		order := ""
		if id, ok := idColumn(t); ok {
			order = " ORDER BY " + ident(id.Name)
		}
		return "SELECT " + cols + from + order, nil
	}
	return "", ErrNoSQL("the question's shape is not one the offline generator knows (count, list, sum, average, minimum, maximum, top N)")
}

func idColumn(t Table) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == "id" {
			return c, true
		}
	}
	return Column{}, false
}

// aggregate returns count, sum, avg, max or min, or "" for none.
func (q question) aggregate() string {
	switch {
	case q.has("how many", "number of", "count"):
		return "count"
	case q.has("average", "mean", "avg"):
		return "avg"
	case q.has("total", "sum", "revenue"):
		return "sum"
	case q.topWord() != "":
		return ""
	case q.has("highest", "maximum", "max", "largest", "biggest"):
		return "max"
	case q.has("lowest", "minimum", "min", "smallest"):
		return "min"
	}
	return ""
}

// groupBy finds "per X", "by X", "for each X", "in each X".
func (q question) groupBy(t Table) (Column, bool) {
	for i, w := range q.words {
		if w != "per" && w != "by" && w != "each" {
			continue
		}
		rest := question{words: q.words[i+1:]}
		if len(rest.words) > 3 {
			rest.words = rest.words[:3]
		}
		if c, ok := rest.column(t, ""); ok {
			return c, true
		}
		// "orders per customer": the other table's name means its key.
		for _, c := range t.Columns {
			if strings.HasSuffix(c.Name, "_id") && rest.mentions(strings.TrimSuffix(c.Name, "_id")) {
				return c, true
			}
		}
	}
	return Column{}, false
}

// topWord is the word that asks for a ranking, if any.
func (q question) topWord() string {
	for _, w := range []string{"top", "newest", "latest", "most recent", "recently", "oldest", "earliest", "first", "last"} {
		if q.has(w) {
			return w
		}
	}
	return ""
}

var numberWords = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}

// topN recognises "top 3 orders by amount", "the 2 newest orders", "the
// most recent customer".
func (q question) topN(t Table) (n int, col Column, desc bool, ok bool) {
	w := q.topWord()
	if w == "" {
		return 0, Column{}, false, false
	}
	n = 1
	for _, word := range q.words {
		if v, err := strconv.Atoi(word); err == nil && v > 0 && v <= 1000 {
			n = v
			break
		}
		if v, found := numberWords[word]; found {
			n = v
			break
		}
	}
	switch w {
	case "newest", "latest", "most recent", "recently", "last":
		col, ok = q.column(t, "date")
		if !ok {
			col, ok = firstOf(t, "date")
		}
		return n, col, true, ok
	case "oldest", "earliest", "first":
		col, ok = q.column(t, "date")
		if !ok {
			col, ok = firstOf(t, "date")
		}
		return n, col, false, ok
	}
	col, ok = q.column(t, "numeric")
	if !ok {
		col, ok = firstOf(t, "numeric")
	}
	return n, col, !q.has("lowest", "smallest", "cheapest", "bottom"), ok
}

var comparisons = []struct {
	words []string
	op    string
}{
	{[]string{"more than", "greater than", "over", "above", "at least"}, ">"},
	{[]string{"less than", "fewer than", "under", "below", "at most"}, "<"},
}

// filters builds the WHERE clause: named values, numeric comparisons and a
// year ("in 2024").
func (q question) filters(t Table, placed map[string]string) (string, error) {
	var conds []string
	seen := map[string]bool{}
	for _, v := range q.values() {
		if c, ok := placed[v]; ok && !seen[v] {
			seen[v] = true
			conds = append(conds, ident(c)+" = "+literal(v))
		}
	}
	joined := " " + strings.Join(q.words, " ") + " "
	for _, cmp := range comparisons {
		for _, w := range cmp.words {
			i := strings.Index(joined, " "+w+" ")
			if i < 0 {
				continue
			}
			rest := strings.Fields(joined[i+len(w)+2:])
			if len(rest) == 0 {
				continue
			}
			num, err := strconv.ParseFloat(rest[0], 64)
			if err != nil {
				continue
			}
			col, ok := q.column(t, "numeric")
			if !ok {
				col, ok = firstOf(t, "numeric")
			}
			if !ok {
				return "", ErrNoSQL("no numeric column to compare with " + rest[0])
			}
			op := cmp.op
			if w == "at least" {
				op = ">="
			} else if w == "at most" {
				op = "<="
			}
			conds = append(conds, ident(col.Name)+" "+op+" "+strconv.FormatFloat(num, 'f', -1, 64))
		}
	}
	for i, w := range q.words {
		if (w == "in" || w == "during") && i+1 < len(q.words) {
			if y, err := strconv.Atoi(q.words[i+1]); err == nil && y >= 1900 && y <= 2200 {
				col, ok := q.column(t, "date")
				if !ok {
					col, ok = firstOf(t, "date")
				}
				if ok {
					conds = append(conds, fmt.Sprintf("%s >= '%d-01-01' AND %s < '%d-01-01'", ident(col.Name), y, ident(col.Name), y+1))
				}
			}
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), nil
}

// values are the literal values a question names: quoted strings, and words
// written in capitals or capitalised mid-sentence ("customers in US",
// "orders of Ada Lovelace").
func (q question) values() []string {
	vals := slices.Clone(q.quoted)
	words := strings.Fields(quotedRE.ReplaceAllString(q.raw, " "))
	for i := 0; i < len(words); i++ {
		w := strings.Trim(words[i], "?.,!;:")
		if w == "" || i == 0 || !isUpper(w[0]) {
			continue
		}
		// Join a run of capitalised words: "Ada Lovelace".
		run := w
		for i+1 < len(words) {
			next := strings.Trim(words[i+1], "?.,!;:")
			if next == "" || !isUpper(next[0]) {
				break
			}
			run += " " + next
			i++
		}
		vals = append(vals, run)
		if strings.Contains(run, " ") {
			vals = append(vals, strings.Fields(run)...)
		}
	}
	return vals
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
