package generate

import (
	"fmt"
	"slices"
	"strings"
)

// A span is a value the question may name: tokens from..to-1, and the
// spellings to look up (a lowercase word is also tried capitalised and in
// capitals, since "status active" may be stored as "Active").
type span struct {
	from, to int
	forms    []string
}

// valueSpans lists the candidate values in order of preference: quoted
// values, runs of capitalised words ("Ada Lovelace") and then their words,
// then the other words left over, in pairs and alone.
func (b *builder) valueSpans() []span {
	q := b.q
	var out []span
	for i, t := range q.toks {
		if t.quoted && q.free(i) {
			out = append(out, span{i, i + 1, []string{t.word}})
		}
	}
	for i := 0; i < len(q.toks); i++ {
		j := i
		for j < len(q.toks) && q.free(j) && q.toks[j].caps && !q.toks[j].quoted {
			j++
		}
		if j-i > 1 {
			out = append(out, span{i, j, []string{q.text(i, j)}})
		}
		i = max(i, j-1)
	}
	for i, t := range q.toks { // capitalised words, even stop words ("US", "IT")
		if t.caps && !t.quoted && q.free(i) {
			out = append(out, span{i, i + 1, []string{t.raw}})
		}
	}
	left := q.leftovers()
	for k, i := range left {
		if k+1 < len(left) && left[k+1] == i+1 && !q.toks[i].quoted && !q.toks[i+1].quoted {
			out = append(out, span{i, i + 2, spellings(q.text(i, i+2), q.toks[i].caps)})
		}
	}
	for _, i := range left {
		if !q.toks[i].quoted && !q.toks[i].caps {
			out = append(out, span{i, i + 1, spellings(q.toks[i].raw, q.toks[i].caps)})
		}
	}
	return out
}

// text is the raw text of tokens from..to-1, space-separated.
func (q *question) text(from, to int) string {
	ws := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		ws = append(ws, q.toks[i].raw)
	}
	return strings.Join(ws, " ")
}

// spellings of a value written in the question: as written, and if not
// capitalised, also Title and UPPER case.
func spellings(raw string, caps bool) []string {
	if caps {
		return []string{raw}
	}
	title := strings.ToUpper(raw[:1]) + raw[1:]
	return slices.Compact([]string{raw, title, strings.ToUpper(raw)})
}

// candidates flattens the spans' spellings, without repeats.
func candidates(spans []span) []string {
	var out []string
	for _, s := range spans {
		for _, f := range s.forms {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// applyValues turns each span whose spelling the data holds into an
// equality on its column ("not in Engineering": IS DISTINCT FROM), taking
// with it a mention of that column next to it ("status active",
// "Engineering department", "named 'Ada'") and the words that introduce a
// value ("called", "mentioning").
func (b *builder) applyValues(spans []span, placed map[string]string) {
	q := b.q
	for _, s := range spans {
		if !q.free(s.from) || !q.free(s.to-1) {
			continue
		}
		for _, f := range s.forms {
			col, ok := placed[f]
			if !ok {
				continue
			}
			q.use(s.from, s.to)
			at := b.valueContext(s, col)
			op := " = "
			if b.negated(at) {
				op = " IS DISTINCT FROM "
			}
			b.conds = append(b.conds, cond{at: at, column: col, sql: ident(col) + op + literal(f), eq: op == " = "})
			break
		}
	}
}

// valueWords introduce a value without meaning anything else.
var valueWords = set("by", "called", "mention", "mentions", "mentioning", "containing", "equal", "equals", "labelled", "labeled", "whose")

// valueContext accounts for the words around a value that belong to it and
// returns the condition's first token.
func (b *builder) valueContext(s span, col string) int {
	q := b.q
	at := s.from
	for j := s.from - 1; j >= 0 && j >= s.from-3; j-- {
		if c, n, ok := b.columnAt(j); ok && c.Name == col && j+n <= at {
			q.use(j, j+n)
			at = j
			continue
		}
		if valueWords[q.word(j)] && q.free(j) {
			q.use(j, j+1)
			at = j
			continue
		}
		if !q.isStop(j) && q.word(j) != "not" {
			break
		}
	}
	if c, n, ok := b.columnAt(s.to); ok && c.Name == col {
		q.use(s.to, s.to+n)
	}
	return at
}

// negated reports (and accounts for) a "not", "except", "other than" or
// "excluding" just before token at, across stop words.
func (b *builder) negated(at int) bool {
	q := b.q
	for j := at - 1; j >= 0 && j >= at-3; j-- {
		if n, ok := q.phrase(j, "not", "except", "excluding", "other than"); ok {
			q.use(j, j+n)
			return true
		}
		if !q.isStop(j) {
			return false
		}
	}
	return false
}

// finish resolves what needed the whole question (superlatives, the
// ranking and aggregate columns, the select list, "or"), then refuses if a
// word is left unaccounted for.
func (b *builder) finish() error {
	for _, step := range []func() error{b.datedValue, b.resolveSuperlative, b.rankColumn, b.aggColumn, b.coherent} {
		if err := step(); err != nil {
			return err
		}
	}
	b.selectList()
	b.whereSQL = b.whereClause()
	return b.unaccounted()
}

// resolveSuperlative: with a grouping, "highest"/"most" ranks the groups
// (by count, or by the aggregate, max by default); asking for rows ("which
// employee has the highest salary") ranks the rows; otherwise it is the
// maximum or minimum.
func (b *builder) resolveSuperlative() error {
	s := b.sup
	if s == nil {
		return nil
	}
	switch {
	case s.count:
		if b.group == nil {
			return ErrNoSQL(fmt.Sprintf("I could not use %q: most %s per what? Name a column to group by", b.q.toks[s.at].raw, b.t.Name))
		}
		b.agg, b.rank = "count", &ranking{desc: s.desc, limit: b.limitOr(1)}
	case b.group != nil:
		if b.agg == "" {
			b.agg, b.aggAt = map[bool]string{true: "max", false: "min"}[s.desc], s.at
		}
		b.rank = &ranking{desc: s.desc, limit: b.limitOr(1)}
	case b.agg == "" && b.tableNamed && b.wantsRows():
		b.rank = &ranking{desc: s.desc, limit: b.limitOr(1), col: &Column{Type: "numeric"}}
	case s.limit > 1:
		// "the 3 largest amounts" is three rows, not one maximum.
		return ErrNoSQL(fmt.Sprintf("I could not tell which %d rows %q asks for: name the table and the column to rank by", s.limit, b.q.toks[s.at].raw))
	case b.agg == "":
		b.agg, b.aggAt = map[bool]string{true: "max", false: "min"}[s.desc], s.at
	}
	return nil
}

func (b *builder) limitOr(def int) int {
	if b.rank != nil {
		return b.rank.limit
	}
	if b.sup != nil && b.sup.limit > 0 {
		return b.sup.limit
	}
	return def
}

// wantsRows reports whether the question asks for rows, not a number:
// "which …", "who …", "show …", "the order with the highest amount".
func (b *builder) wantsRows() bool {
	for i := range b.q.toks {
		switch b.q.word(i) {
		case "which", "who", "list", "show", "display", "give", "find", "with":
			return true
		}
	}
	return false
}

// rankColumn resolves the column a ranking orders by: "by amount", a column
// of the right kind named in the question, or the table's only one.
func (b *builder) rankColumn() error {
	r := b.rank
	if r == nil || b.agg != "" {
		return nil
	}
	k := "numeric"
	if r.col != nil {
		k = kind(r.col.Type)
	}
	if i, n, ok := b.q.find("by"); ok {
		if c, m, ok := b.columnAt(i + n); ok && (kind(c.Type) == "numeric" || kind(c.Type) == "date") {
			b.q.use(i, i+n+m)
			r.col = &c
			return nil
		}
	}
	if c, j, n, ok := b.mention(len(b.q.toks), len(b.q.toks), 0, k); ok {
		b.q.use(j, j+n)
		r.col = &c
		return nil
	}
	c, names := b.sole(k)
	if c.Name == "" {
		what := "a ranking"
		if len(names) == 0 {
			return ErrNoSQL(fmt.Sprintf("I could not rank %s: it has no %s column", b.t.Name, kindName(k)))
		}
		return ErrNoSQL(fmt.Sprintf("I could not tell which column %s is by: name one of %s", what, strings.Join(names, ", ")))
	}
	r.col = &c
	return nil
}

// aggColumn resolves what a sum, average, maximum or minimum is of: a
// number column the question names (nearest after the aggregate word).
func (b *builder) aggColumn() error {
	if b.agg == "" || b.agg == "count" || b.aggCol.Name != "" {
		return nil
	}
	if c, j, n, ok := b.mention(b.aggAt, 0, len(b.q.toks), "numeric"); ok {
		b.q.use(j, j+n)
		b.aggCol = c
		return nil
	}
	if c, j, n, ok := b.mention(b.aggAt, len(b.q.toks), 0, "numeric"); ok {
		b.q.use(j, j+n)
		b.aggCol = c
		return nil
	}
	_, names := b.sole("numeric")
	if len(names) == 0 {
		return ErrNoSQL(fmt.Sprintf("I could not compute %s: %s has no number column", b.agg, b.t.Name))
	}
	return ErrNoSQL(fmt.Sprintf("I could not tell what to take the %s of: name one of %s", b.agg, strings.Join(names, ", ")))
}

// coherent refuses combinations a single SELECT here would silently drop:
// a grouping without anything to compute per group ("list employees per
// department"), or a ranking of one aggregate ("the top total").
func (b *builder) coherent() error {
	switch {
	case b.group != nil && b.agg == "":
		return ErrNoSQL(fmt.Sprintf("I could not use the grouping by %s without a count, sum, average, maximum or minimum", b.group.Name))
	case b.agg != "" && b.group == nil && (b.rank != nil || b.sup != nil && !b.sup.count && b.agg != "max" && b.agg != "min"):
		return ErrNoSQL(fmt.Sprintf("I could not rank a single %s; add a grouping (\"per …\")", b.agg))
	}
	return nil
}

// selectList: columns still named become the select list ("customer names").
func (b *builder) selectList() {
	if b.agg != "" {
		return
	}
	for i := range b.q.toks {
		if c, n, ok := b.columnAt(i); ok {
			b.q.use(i, i+n)
			if !slices.ContainsFunc(b.cols, func(x Column) bool { return x.Name == c.Name }) {
				b.cols = append(b.cols, c)
			}
		}
	}
}

// unaccounted refuses a question with words the statement does not use,
// saying which and what might have been meant.
func (b *builder) unaccounted() error {
	left := b.q.leftovers()
	if len(left) == 0 {
		return nil
	}
	words := b.q.rawWords(left)
	quoted := make([]string, 0, 3)
	for _, w := range words[:min(3, len(words))] {
		quoted = append(quoted, "'"+w+"'")
	}
	msg := "I could not use " + strings.Join(quoted, ", ")
	if len(words) > 3 {
		msg += fmt.Sprintf(" (and %d more)", len(words)-3)
	}
	return ErrNoSQL(msg + ": " + b.hint(left[0]))
}

// hint says what a word the statement could not use might have meant.
func (b *builder) hint(i int) string {
	w := stem(b.q.word(i))
	for _, t := range b.tables {
		if t.Name != b.t.Name && stem(t.Name) == w {
			return fmt.Sprintf("it names the table %s, and I answer about one table at a time (%s here)", t.Name, b.t.Name)
		}
	}
	for _, t := range b.tables {
		for _, c := range t.Columns {
			if t.Name != b.t.Name && !isID(c.Name) && stem(c.Name) == w {
				return fmt.Sprintf("it is a column of %s, and I answer about one table at a time (%s here)", t.Name, b.t.Name)
			}
		}
	}
	for _, c := range b.t.Columns {
		if len(w) >= 3 && (strings.HasPrefix(c.Name, w) || strings.HasPrefix(w, stem(c.Name))) {
			return fmt.Sprintf("did you mean the column %s?", c.Name)
		}
	}
	names := make([]string, 0, len(b.t.Columns))
	for _, c := range b.t.Columns {
		names = append(names, c.Name)
	}
	return fmt.Sprintf("it is neither a column of %s (%s) nor a value found in its text columns; rephrase with those, or teach the question with SQL", b.t.Name, strings.Join(names, ", "))
}
