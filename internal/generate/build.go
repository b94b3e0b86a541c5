package generate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// builder assembles one SELECT over one table from a question. Each part it
// recognises marks the tokens it accounts for; a token left over that is not
// a stop word refuses the question (unaccounted), so the statement never
// answers a different question than the one asked.
type builder struct {
	q          *question
	t          Table
	tables     []Table
	tableNamed bool

	agg    string // count, sum, avg, min, max; "" for rows
	aggAt  int    // the aggregate word's token
	aggCol Column
	group  *Column
	grain  string       // with group (a date column): group by date_trunc(grain, group)
	sup    *superlative // highest/lowest/most/fewest, resolved in shape
	rank   *ranking     // ORDER BY … LIMIT
	conds  []cond
	cols   []Column // columns named for the select list

	whereSQL string      // set by finish
	loose    []looseDate // see looseDate
}

// looseDate is the word before a date bound whose column was not named.
type looseDate struct {
	at  int
	col string
}

type cond struct {
	at     int // first token, for ordering and "or"
	column string
	sql    string
	eq     bool // an equality on column (several on one column mean any of them)
}

// superlative is "highest", "most" and the like before it is known whether
// it ranks groups, ranks rows or asks for a maximum.
type superlative struct {
	at    int
	desc  bool
	count bool // "most employees": a count per group
	limit int  // "the 3 largest": how many rows (0: not said)
}

type ranking struct {
	col   *Column // nil: by the aggregate
	desc  bool
	limit int
}

// newBuilder picks the table: the one the question names (less if only
// after "per"/"by", where it names a grouping), plus two for each of its
// columns named; ties go to the table named first.
func newBuilder(q *question, tables []Table) (*builder, error) {
	best, bestScore, bestPos := -1, 0, len(q.toks)
	for ti, t := range tables {
		score, pos := 0, len(q.toks)
		for i := range q.toks {
			if _, ok := q.nameAt(i, t.Name); ok {
				score, pos = 3, i
				if w := q.word(i - 1); w == "per" || w == "by" || w == "each" {
					score = 1
				}
				break
			}
		}
		b := &builder{q: q, t: t, tables: tables}
		for i := range q.toks {
			if c, _, ok := b.columnAt(i); ok && !isID(c.Name) {
				score += 2
			}
		}
		if score > bestScore || score == bestScore && score > 0 && pos < bestPos {
			best, bestScore, bestPos = ti, score, pos
		}
	}
	if best < 0 {
		return nil, ErrNoSQL("the question names none of your tables or their columns")
	}
	b := &builder{q: q, t: tables[best], tables: tables}
	for i := range q.toks {
		if n, ok := q.nameAt(i, b.t.Name); ok && !b.isColumnWord(i) {
			q.use(i, i+n)
			b.tableNamed = true
		}
	}
	return b, nil
}

// isColumnWord reports whether token i names one of the table's columns
// rather than the table ("order" in orders.order_no is not the table).
func (b *builder) isColumnWord(i int) bool {
	for _, c := range b.t.Columns {
		if n, ok := b.q.nameAt(i, c.Name); ok && n > 1 {
			return true
		}
	}
	return false
}

// columnAt returns the column the free tokens at i name, by name first and
// then by a content word of its description, and the tokens spanned.
func (b *builder) columnAt(i int) (Column, int, bool) {
	var best Column
	bestN := 0
	for _, c := range b.t.Columns {
		if n, ok := b.q.nameAt(i, c.Name); ok && n > bestN {
			best, bestN = c, n
		}
	}
	if bestN > 0 {
		return best, bestN, true
	}
	if !b.q.free(i) || b.q.toks[i].quoted || b.q.isStop(i) {
		return Column{}, 0, false
	}
	w := stem(b.q.word(i))
	for _, c := range b.t.Columns {
		if isID(c.Name) {
			continue
		}
		for _, d := range tokenRE.FindAllString(strings.ToLower(c.Description), -1) {
			if len(d) > 3 && !stopWords[d] && stem(d) == w && !b.namesTable(d) {
				return c, 1, true
			}
		}
	}
	return Column{}, 0, false
}

// namesTable reports whether word names any table.
func (b *builder) namesTable(word string) bool {
	for _, t := range b.tables {
		if stem(word) == stem(t.Name) {
			return true
		}
	}
	return false
}

// mention finds the free column mention of kind k ("" any) nearest to i:
// before it within back tokens, or else after it within ahead tokens.
func (b *builder) mention(i, back, ahead int, k string) (Column, int, int, bool) {
	for j := i - 1; j >= 0 && j >= i-back; j-- {
		if c, n, ok := b.columnAt(j); ok && (k == "" || kind(c.Type) == k) {
			return c, j, n, true
		}
	}
	for j := i; j < len(b.q.toks) && j <= i+ahead; j++ {
		if c, n, ok := b.columnAt(j); ok && (k == "" || kind(c.Type) == k) {
			return c, j, n, true
		}
	}
	return Column{}, 0, 0, false
}

// sole returns the table's only non-id column of kind k.
func (b *builder) sole(k string) (Column, []string) {
	var found []Column
	var names []string
	for _, c := range b.t.Columns {
		if kind(c.Type) == k && !isID(c.Name) {
			found = append(found, c)
			names = append(names, c.Name)
		}
	}
	if len(found) == 1 {
		return found[0], names
	}
	return Column{}, names
}

// subject is the column a comparison or bound at token i applies to: a
// column of kind k named just before it ("salary over", "hired before"),
// else, when the word before is a verb ("earn more than") or nothing is
// named, the table's only column of that kind.
func (b *builder) subject(i int, k, what string) (Column, error) {
	if c, j, n, ok := b.mention(i, 4, 0, k); ok {
		if isID(c.Name) && !b.namesID(j, j+n) {
			// "customers with more than 3 orders" is no bound on
			// customer_id: an identifier is compared only when named as one.
			return Column{}, ErrNoSQL(fmt.Sprintf("I could not use %q: %s identifies rows and is not a quantity", what, c.Name))
		}
		b.q.use(j, j+n)
		return c, nil
	}
	verb := b.q.nearestFree(i, 1)
	if verb >= 0 && !b.isVerb(verb) {
		verb = -1
	}
	c, names := b.sole(k)
	if c.Name != "" {
		if verb >= 0 {
			b.q.use(verb, verb+1)
		}
		return c, nil
	}
	word := what
	if verb >= 0 {
		word = b.q.toks[verb].raw
	}
	if len(names) == 0 {
		return Column{}, ErrNoSQL(fmt.Sprintf("I could not use %q: %s has no %s column", word, b.t.Name, kindName(k)))
	}
	return Column{}, ErrNoSQL(fmt.Sprintf("I could not tell which column %q is about: name one of %s", word, strings.Join(names, ", ")))
}

// namesID reports whether tokens from..to-1 say "id" ("customer id",
// "customer_id"), not only the thing identified ("customers").
func (b *builder) namesID(from, to int) bool {
	for k := from; k < to; k++ {
		if w := b.q.word(k); w == "id" || strings.HasSuffix(w, "_id") {
			return true
		}
	}
	return false
}

// isVerb reports whether token i can be the verb of a comparison or bound
// ("earn more than", "joined after"): a word that names no column, table or
// time grain, which later steps would want.
func (b *builder) isVerb(i int) bool {
	w := b.q.word(i)
	if _, _, ok := b.columnAt(i); ok {
		return false
	}
	_, grain := grains[singular(w)]
	return !grain && !b.namesTable(w) && !isNumber(w)
}

func kindName(k string) string {
	if k == "numeric" {
		return "number"
	}
	return k
}

func isID(name string) bool { return name == "id" || strings.HasSuffix(name, "_id") }

func kind(typ string) string {
	switch typ {
	case "integer", "bigint", "numeric", "double precision":
		return "numeric"
	case "date", "timestamptz":
		return "date"
	}
	return typ
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// where adds a condition (once: "work from home" may name one column twice).
func (b *builder) where(at int, column, sql string) {
	for _, c := range b.conds {
		if c.sql == sql {
			return
		}
	}
	b.conds = append(b.conds, cond{at: at, column: column, sql: sql})
}

// sql writes the statement.
func (b *builder) sql() string {
	from := " FROM " + ident(b.t.Name) + b.whereSQL
	if b.agg != "" {
		expr, alias := "count(*)", "count"
		if b.agg != "count" {
			expr, alias = b.agg+"("+ident(b.aggCol.Name)+")", ident(b.agg+"_"+b.aggCol.Name)
		}
		if b.group == nil {
			return "SELECT " + expr + " AS " + alias + from
		}
		g := ident(b.group.Name)
		dir, limit := " DESC", ""
		if b.rank != nil {
			dir, limit = direction(b.rank.desc), " LIMIT "+strconv.Itoa(b.rank.limit)
		}
		if b.grain != "" { // periods in time order, unless ranked
			period := "date_trunc(" + literal(b.grain) + ", " + g + ")"
			order := " ORDER BY 1"
			if b.rank != nil {
				order = " ORDER BY " + alias + dir + ", 1" + limit
			}
			return "SELECT " + period + " AS " + ident(b.grain) + ", " + expr + " AS " + alias + from + " GROUP BY 1" + order
		}
		return "SELECT " + g + ", " + expr + " AS " + alias + from + " GROUP BY " + g + " ORDER BY " + alias + dir + ", " + g + limit
	}
	sel := "*"
	if len(b.cols) > 0 {
		names := make([]string, len(b.cols))
		for i, c := range b.cols {
			names[i] = ident(c.Name)
		}
		sel = strings.Join(names, ", ")
		if !b.tableNamed {
			sel = "DISTINCT " + sel
		}
	}
	if b.rank != nil {
		return "SELECT " + sel + from + " ORDER BY " + ident(b.rank.col.Name) + direction(b.rank.desc) + " NULLS LAST LIMIT " + strconv.Itoa(b.rank.limit)
	}
	if strings.HasPrefix(sel, "DISTINCT") {
		return "SELECT " + sel + from + " ORDER BY " + strings.TrimPrefix(sel, "DISTINCT ")
	}
	for _, c := range b.t.Columns {
		if c.Name == "id" {
			return "SELECT " + sel + from + " ORDER BY " + ident("id")
		}
	}
	return "SELECT " + sel + from
}

func direction(desc bool) string {
	if desc {
		return " DESC"
	}
	return " ASC"
}

// whereClause joins the conditions in question order: with OR where the
// question says "or" between two of them, and equalities on one column
// always with OR ("customers in US and GB" means either), else AND.
func (b *builder) whereClause() string {
	if len(b.conds) == 0 {
		return ""
	}
	cs := slices.Clone(b.conds)
	slices.SortStableFunc(cs, func(x, y cond) int { return x.at - y.at })
	var groups [][]string
	for i, c := range cs {
		if i > 0 && (b.orBetween(cs[i-1].at, c.at) || c.eq && cs[i-1].eq && c.column == cs[i-1].column) {
			groups[len(groups)-1] = append(groups[len(groups)-1], c.sql)
			continue
		}
		groups = append(groups, []string{c.sql})
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, " OR ")
		if len(g) > 1 && len(groups) > 1 {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return " WHERE " + strings.Join(parts, " AND ")
}

// orBetween reports (and accounts for) an "or" between tokens from and to.
func (b *builder) orBetween(from, to int) bool {
	for i := from + 1; i < to; i++ {
		if b.q.word(i) == "or" {
			b.q.use(i, i+1)
			return true
		}
	}
	return false
}
