package generate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// structure recognises everything but the values the question names: the
// shape (count, sum, average, maximum, minimum, top N, newest, superlatives),
// comparisons, date bounds, empty and boolean columns, and the grouping.
func (b *builder) structure() error {
	b.shape()
	if b.agg == "sum" || b.agg == "avg" {
		if err := b.aggColumn(); err != nil { // before comparisons take the column named
			return err
		}
	}
	for _, step := range []func() error{b.comparisons, b.dates, b.nullTests, b.booleans, b.grouping} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

var numberWords = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}

// shape finds the aggregate, top N and superlative words.
func (b *builder) shape() {
	q := b.q
	for i := 0; i < len(q.toks); i++ {
		if b.namedColumnAt(i) {
			if c, n, ok := b.totalOf(i); ok && b.agg == "" { // "the total of cancelled orders"
				b.agg, b.aggAt, b.aggCol = "sum", i, c
				q.use(i, i+n)
			}
			continue // "first_name", "last_login", "total": a column, not a shape
		}
		if n, ok := q.phrase(i, "how many", "number of", "count of", "count"); ok && b.agg == "" {
			b.agg, b.aggAt = "count", i
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "average", "mean", "avg"); ok && b.agg == "" {
			b.agg, b.aggAt = "avg", i
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "total", "sum of", "sum"); ok && b.agg == "" {
			b.agg, b.aggAt = "sum", i
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "most recently", "most recent", "newest", "latest", "recently", "last"); ok && !b.relative(i) {
			b.top(i, n, true)
		} else if n, ok := q.phrase(i, "oldest", "earliest", "first"); ok {
			b.top(i, n, false)
		} else if n, ok := q.phrase(i, "top"); ok {
			b.rank = &ranking{desc: true, limit: b.count(i+1, 1)}
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "most common", "most frequent", "least common", "least frequent"); ok {
			// "which type is most common": the group with the most rows.
			b.sup = &superlative{at: i, desc: q.word(i) == "most", count: true}
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "most", "fewest", "least"); ok && b.countsTable(i+n) {
			b.sup = &superlative{at: i, desc: q.word(i) == "most", count: true}
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "highest", "largest", "biggest", "maximum", "max", "greatest", "most"); ok {
			b.sup = &superlative{at: i, desc: true, limit: b.count(i-1, 0)}
			q.use(i, i+n)
		} else if n, ok := q.phrase(i, "lowest", "smallest", "minimum", "min", "least", "fewest"); ok {
			b.sup = &superlative{at: i, desc: false, limit: b.count(i-1, 0)}
			q.use(i, i+n)
		}
	}
}

// totalOf reads "total of" at i where total names a number column: the
// sum of that column ("the total of cancelled orders"), not its values.
func (b *builder) totalOf(i int) (Column, int, bool) {
	if b.q.word(i) != "total" && b.q.word(i) != "sum" {
		return Column{}, 0, false
	}
	for _, c := range b.t.Columns {
		if n, ok := b.q.nameAt(i, c.Name); ok && kind(c.Type) == "numeric" && b.q.word(i+n) == "of" {
			return c, n + 1, true
		}
	}
	return Column{}, 0, false
}

// namedColumnAt reports whether token i starts a column's name.
func (b *builder) namedColumnAt(i int) bool {
	for _, c := range b.t.Columns {
		if _, ok := b.q.nameAt(i, c.Name); ok {
			return true
		}
	}
	return false
}

// relative reports whether "last" at i starts a relative period ("last 30
// days"), which dates handles.
func (b *builder) relative(i int) bool {
	_, _, _, ok := b.period(i)
	return ok
}

// top records "the 2 newest", "oldest" (by a date column, resolved later).
func (b *builder) top(i, n int, desc bool) {
	limit := b.count(i-1, 1)
	if limit == 1 {
		limit = b.count(i+n, 1)
	}
	b.rank = &ranking{desc: desc, limit: limit}
	b.q.use(i, i+n)
	b.rank.col = &Column{Type: "date"} // a placeholder: resolved by rankColumn
}

// count reads a count at token i ("3", "three"), accounting for it, or
// returns def.
func (b *builder) count(i, def int) int {
	if !b.q.free(i) {
		return def
	}
	w := b.q.word(i)
	if v, ok := numberWords[w]; ok {
		b.q.use(i, i+1)
		return v
	}
	if v, err := strconv.Atoi(w); err == nil && v > 0 && v <= 1000 {
		b.q.use(i, i+1)
		return v
	}
	return def
}

// countsTableWord reports whether token i names the table, in the singular
// or the plural ("appointment type": the type of an appointment).
func (b *builder) countsTableWord(i int) bool {
	return i < len(b.q.toks) && !b.q.toks[i].quoted && stem(singular(b.q.word(i))) == stem(singular(b.t.Name))
}

// countsTable reports whether token i names the table's rows ("most
// employees", "fewest orders").
func (b *builder) countsTable(i int) bool {
	return i < len(b.q.toks) && !b.q.toks[i].quoted && stem(b.q.word(i)) == stem(b.t.Name)
}

var comparators = []struct {
	phrases []string
	op      string
}{
	{[]string{"more than", "greater than", "higher than", "larger than", "bigger than", "over", "above", "exceeding"}, ">"},
	{[]string{"at least", "no less than"}, ">="},
	{[]string{"less than", "fewer than", "lower than", "smaller than", "under", "below"}, "<"},
	{[]string{"at most", "no more than"}, "<="},
	{[]string{"exactly", "equal to"}, "="},
}

// comparisons: "salary over 50000", "earn more than 60000", "between 10 and 20".
func (b *builder) comparisons() error {
	q := b.q
	for i := range q.toks {
		if n, ok := q.phrase(i, "between"); ok && isNumber(q.word(i+1)) && q.word(i+2) == "and" && isNumber(q.word(i+3)) {
			col, err := b.subject(i, "numeric", "between")
			if err != nil {
				return err
			}
			q.use(i, i+n+3)
			b.where(i, col.Name, ident(col.Name)+" BETWEEN "+q.word(i+1)+" AND "+q.word(i+3))
			continue
		}
		for _, cmp := range comparators {
			n, ok := q.phrase(i, cmp.phrases...)
			if !ok || !isNumber(q.word(i+n)) || !q.free(i+n) {
				continue
			}
			if w := q.word(i + n + 1); b.namesTable(w) || b.countsTable(i+n+1) {
				// "authors with more than 2 books": a count of rows per
				// something, which is a grouping with a HAVING, not a
				// comparison of a column.
				return ErrNoSQL(fmt.Sprintf("I could not compare with %q %s: counting %s per %s needs a grouping I cannot write", q.toks[i].raw+" "+q.word(i+n), w, w, "row"))
			}
			col, err := b.subject(i, "numeric", q.toks[i].raw)
			if err != nil {
				return err
			}
			op := cmp.op
			if q.word(i-1) == "not" && q.free(i-1) {
				op = map[string]string{">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "<>"}[op]
				q.use(i-1, i)
			}
			q.use(i, i+n+1)
			b.where(i, col.Name, ident(col.Name)+" "+op+" "+q.word(i+n))
			break
		}
	}
	return nil
}

func isNumber(w string) bool {
	_, err := strconv.ParseFloat(w, 64)
	return err == nil && w != "" && !strings.ContainsAny(w, "eE")
}

var months = map[string]time.Month{"january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6,
	"july": 7, "august": 8, "september": 9, "october": 10, "november": 11, "december": 12}

// dateRange reads a date expression at token i: a year, a day
// (2024-03-01) or a month and year; lo is its first day and hi the day
// after its last, with the tokens it spans.
func (b *builder) dateRange(i int) (lo, hi time.Time, n int, ok bool) {
	q := b.q
	w := q.word(i)
	if !q.free(i) {
		return lo, hi, 0, false
	}
	if y, err := strconv.Atoi(w); err == nil && len(w) == 4 && y >= 1900 && y <= 2200 {
		lo = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		return lo, lo.AddDate(1, 0, 0), 1, true
	}
	if d, err := time.Parse("2006-01-02", w); err == nil {
		return d, d.AddDate(0, 0, 1), 1, true
	}
	if m, found := months[w]; found && q.free(i+1) {
		if y, err := strconv.Atoi(q.word(i + 1)); err == nil && y >= 1900 && y <= 2200 {
			lo = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
			return lo, lo.AddDate(0, 1, 0), 2, true
		}
	}
	return lo, hi, 0, false
}

// period reads "last 30 days", "past 2 weeks", "the last month" at i: a
// span that ends at the latest date. "last month" and "last year" with
// neither a number nor "the" name the calendar period before the latest
// date's instead (calendar is its unit), as people mean them: orders
// placed last year are last calendar year's, not those of the past twelve
// months.
func (b *builder) period(i int) (interval string, n int, calendar string, ok bool) {
	q := b.q
	w := q.word(i)
	if (w != "last" && w != "past") || !q.free(i) {
		return "", 0, "", false
	}
	num, unitAt := 1, i+1
	if v, err := strconv.Atoi(q.word(i + 1)); err == nil && v > 0 && v <= 10000 {
		num, unitAt = v, i+2
	} else if v, found := numberWords[q.word(i+1)]; found {
		num, unitAt = v, i+2
	}
	unit := singular(q.word(unitAt))
	if unit != "day" && unit != "week" && unit != "month" && unit != "year" {
		return "", 0, "", false
	}
	if w == "last" && unitAt == i+1 && q.word(i-1) != "the" {
		calendar = unit
	}
	return fmt.Sprintf("%d %ss", num, unit), unitAt + 1 - i, calendar, true
}

// looseDate notes the word before a date bound at i ("shipped in
// January") when the bound's column was not named and no verb accounted for
// the word: if that word turns out to be a value ("shipped" as a status),
// the date is some event's other than the column's (datedValue).
func (b *builder) looseDate(i int, col Column) {
	if j := i - 1; j >= 0 && b.q.free(j) && !b.q.isStop(j) {
		b.loose = append(b.loose, looseDate{at: j, col: col.Name})
	}
}

// datedValue refuses a date bound on a value's word: "orders shipped in
// January" with a status 'shipped' and one date column, the order's, asks
// when they were shipped, which that column does not say.
func (b *builder) datedValue() error {
	for _, l := range b.loose {
		for _, c := range b.conds {
			if c.eq && c.at == l.at {
				return ErrNoSQL(fmt.Sprintf("I could not tell which date %q refers to: %s is %s's only date, which need not be when it was %s", b.q.toks[l.at].raw, l.col, b.t.Name, b.q.toks[l.at].raw))
			}
		}
	}
	return nil
}

// dates: "hired before 2020", "in March 2026", "after 2024-03-01", "since
// 2021", "in the last 30 days" (relative to the latest date in the data,
// not to today: the data may be old).
func (b *builder) dates() error {
	q := b.q
	for i := range q.toks {
		if interval, n, calendar, ok := b.period(i); ok {
			col, err := b.subject(i, "date", q.toks[i].raw)
			if err != nil {
				return err
			}
			q.use(i, i+n)
			b.looseDate(i, col)
			c := ident(col.Name)
			latest := "(SELECT max(" + c + ") FROM " + ident(b.t.Name) + ")"
			if calendar != "" {
				start := "date_trunc(" + literal(calendar) + ", " + latest + ")"
				b.where(i, col.Name, c+" >= "+start+" - interval '1 "+calendar+"' AND "+c+" < "+start)
				continue
			}
			b.where(i, col.Name, c+" > "+latest+" - interval '"+interval+"'")
			continue
		}
		w := q.word(i)
		op, ok := map[string]string{"before": "<", "after": ">=", "since": ">=", "until": "<", "in": "in", "during": "in", "on": "in", "for": "in", "of": "in", "by": "<"}[w]
		if !ok || !q.free(i) {
			continue
		}
		lo, hi, n, ok := b.dateRange(i + 1)
		if !ok {
			continue
		}
		if b.yearBound(i, w, n, lo, hi) {
			continue
		}
		col, err := b.subject(i, "date", q.toks[i].raw)
		if err != nil {
			return err
		}
		q.use(i, i+1+n)
		b.looseDate(i, col)
		c, l, h := ident(col.Name), literal(lo.Format(time.DateOnly)), literal(hi.Format(time.DateOnly))
		switch {
		case op == "in":
			b.where(i, col.Name, c+" >= "+l+" AND "+c+" < "+h)
		case w == "before":
			b.where(i, col.Name, c+" < "+l)
		case w == "since":
			b.where(i, col.Name, c+" >= "+l)
		default: // after, until, by: past the end of the period named
			b.where(i, col.Name, c+" "+op+" "+h)
		}
	}
	return nil
}

// yearBound: "published in 2020", "books after 2018" on a table with no date
// column but one number column of years (its name ends in "year": a
// books.published_year), as a comparison with the year. Only a whole year
// qualifies (a month or a day is not a year's number), and only when the
// word before names that column ("published"): "books lost in 2020" is no
// bound on the year they were published.
func (b *builder) yearBound(i int, w string, n int, lo, hi time.Time) bool {
	if n != 1 || !hi.Equal(lo.AddDate(1, 0, 0)) || lo.Month() != time.January || lo.Day() != 1 {
		return false
	}
	if _, dates := b.sole("date"); len(dates) > 0 {
		return false // a date column says when; a year number may not
	}
	var year Column
	for _, c := range b.t.Columns {
		if kind(c.Type) == "numeric" && !isID(c.Name) && (c.Name == "year" || strings.HasSuffix(c.Name, "_year")) {
			if year.Name != "" {
				return false // two year columns: which one?
			}
			year = c
		}
	}
	if year.Name == "" {
		return false
	}
	op, ok := map[string]string{"in": "=", "during": "=", "of": "=", "for": "=", "before": "<", "after": ">", "since": ">=", "until": "<=", "by": "<="}[w]
	if !ok {
		return false
	}
	j := i - 1
	if j < 0 || !b.q.free(j) {
		return false
	}
	if c, m, ok := b.columnAt(j); ok && c.Name == year.Name {
		b.q.use(j, j+m)
	} else if prefix, ok := strings.CutSuffix(year.Name, "_year"); ok && stem(b.q.word(j)) == stem(prefix) {
		b.q.use(j, j+1) // "published" of published_year
	} else {
		return false
	}
	b.q.use(i, i+1+n)
	b.where(i, year.Name, ident(year.Name)+" "+op+" "+strconv.Itoa(lo.Year()))
	return true
}

var emptyWords = []string{"empty", "missing", "unknown", "null", "blank", "not set"}

// nullTests: "without a department", "do not have a manager", "no email",
// "department is empty" (IS NULL); "with a manager", "has an email", "department is
// not empty" (IS NOT NULL).
func (b *builder) nullTests() error {
	q := b.q
	for i := range q.toks {
		neg, n := false, 0
		if m, ok := q.phrase(i, "without", "do not have", "does not have", "did not have", "have no", "has no", "with no", "no", "lacking", "missing"); ok {
			neg, n = true, m
		} else if m, ok := q.phrase(i, "with a", "with an", "have a", "has a", "have an", "has an", "having a", "having an"); ok {
			n = m
		}
		if n > 0 {
			j := i + n
			if w := q.word(j); w == "a" || w == "an" || w == "any" {
				j++
			}
			if c, m, ok := b.columnAt(j); ok && kind(c.Type) != "boolean" && !b.compared(j+m) {
				q.use(i, j+m)
				b.where(i, c.Name, ident(c.Name)+nullOp(neg))
			}
			continue
		}
		if c, m, ok := b.columnAt(i); ok {
			j := i + m
			if w := q.word(j); w == "is" || w == "are" {
				j++
			}
			not := q.word(j) == "not"
			if not {
				j++
			}
			if k, ok := q.phrase(j, emptyWords...); ok {
				q.use(i, j+k)
				b.where(i, c.Name, ident(c.Name)+nullOp(!not))
			}
		}
	}
	return nil
}

func nullOp(isNull bool) string {
	if isNull {
		return " IS NULL"
	}
	return " IS NOT NULL"
}

// compared reports whether a comparison follows token i (so "with an
// amount under 50" is not a test for a missing amount).
func (b *builder) compared(i int) bool {
	for _, cmp := range comparators {
		if _, ok := b.q.phrase(i, cmp.phrases...); ok {
			return true
		}
	}
	return false
}

// booleans: "remote employees" (remote), "not remote", "non-remote"
// (remote IS NOT TRUE, so unknown counts as not).
func (b *builder) booleans() error {
	q := b.q
	for i := range q.toks {
		c, n, ok := b.columnAt(i)
		if !ok || kind(c.Type) != "boolean" {
			continue
		}
		at, sql := i, ident(c.Name)
		for j := i - 1; j >= 0 && j >= i-2; j-- {
			if w := q.word(j); q.free(j) && (w == "not" || w == "non" || w == "no") {
				at, sql = j, sql+" IS NOT TRUE"
				break
			}
			if !q.isStop(j) {
				break
			}
		}
		q.use(at, i+n)
		b.where(at, c.Name, sql)
	}
	return nil
}

// grouping: "per country", "by customer", "for each department", and
// "which department has the most employees".
func (b *builder) grouping() error {
	q := b.q
	for i := range q.toks {
		n, ok := q.phrase(i, "for each", "in each", "for every", "per", "each", "by")
		if !ok || q.word(i) == "by" && b.agg == "" && b.sup == nil {
			continue
		}
		if g, found := grains[singular(q.word(i+n))]; found && q.free(i+n) {
			col, err := b.subject(len(q.toks), "date", q.toks[i+n].raw)
			if err != nil {
				return err
			}
			b.group, b.grain = &col, g
			q.use(i, i+n+1)
			return nil
		}
		if c, m, ok := b.columnAt(i + n); ok {
			b.group = &c
			q.use(i, i+n+m)
			return nil
		}
		if c, m, ok := b.foreignKeyAt(i + n); ok {
			b.group = &c
			q.use(i, i+n+m)
			return nil
		}
	}
	if b.sup == nil {
		return nil
	}
	for i := range q.toks {
		if w := q.word(i); w != "which" && w != "what" {
			continue
		}
		if g, found := grains[singular(q.word(i+1))]; found && q.free(i+1) {
			col, err := b.subject(len(q.toks), "date", q.toks[i+1].raw)
			if err != nil {
				return err
			}
			b.group, b.grain = &col, g
			q.use(i, i+2)
			return nil
		}
		if c, m, ok := b.columnAt(i + 1); ok && kind(c.Type) != "numeric" {
			b.group = &c
			q.use(i, i+1+m)
			return nil
		}
		// "which appointment type": the table's word, then its column.
		if b.countsTableWord(i + 1) {
			if c, m, ok := b.columnAt(i + 2); ok && kind(c.Type) != "numeric" {
				b.group = &c
				q.use(i, i+2+m)
				return nil
			}
		}
	}
	return nil
}

// foreignKeyAt: "orders per customer" groups by customer_id.
func (b *builder) foreignKeyAt(i int) (Column, int, bool) {
	if !b.q.free(i) {
		return Column{}, 0, false
	}
	for _, c := range b.t.Columns {
		if strings.HasSuffix(c.Name, "_id") && stem(b.q.word(i)) == stem(strings.TrimSuffix(c.Name, "_id")) {
			return c, 1, true
		}
	}
	return Column{}, 0, false
}
