package generate

import (
	"regexp"
	"slices"
	"strings"
)

// A question is the offline generator's reading of the text: tokens, and
// which of them the statement being built accounts for. Every token must be
// used by something the statement does, or be a stop word, or the question
// is refused (see builder.unaccounted).
type question struct {
	toks []token
	used []bool
}

// token is one word, number, date or quoted value.
type token struct {
	word   string // lowercase; the value itself for a quoted token
	raw    string // as written
	quoted bool
	caps   bool // written with a capital, not at the start of the question
}

var tokenRE = regexp.MustCompile(`'([^']*)'|"([^"]*)"|\d{4}-\d{2}-\d{2}|\d[\d,]*(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*(?:'[A-Za-z]*)?`)

// parseQuestion tokenises s: contractions split ("don't" → do not),
// possessives dropped, thousands separators removed.
func parseQuestion(s string) *question {
	q := &question{}
	for i, m := range tokenRE.FindAllStringSubmatchIndex(s, -1) {
		raw := s[m[0]:m[1]]
		switch {
		case m[2] >= 0 || m[4] >= 0:
			v := strings.Trim(raw, `'"`)
			q.toks = append(q.toks, token{word: v, raw: v, quoted: true})
			continue
		case raw[0] >= '0' && raw[0] <= '9':
			raw = strings.ReplaceAll(raw, ",", "")
			if m[0] > 0 && s[m[0]-1] == '-' && (m[0] == 1 || s[m[0]-2] == ' ') {
				raw = "-" + raw // "below -5", not "below 5"
			}
		}
		word, not := contraction(strings.ToLower(raw))
		raw, _, _ = strings.Cut(raw, "'")
		q.toks = append(q.toks, token{word: word, raw: raw, caps: i > 0 && isUpper(raw[0])})
		if not {
			q.toks = append(q.toks, token{word: "not", raw: "not"})
		}
	}
	q.used = make([]bool, len(q.toks))
	return q
}

// contraction splits "doesn't" into "does" and a negation, and drops a
// possessive ("customer's", "employees'").
func contraction(w string) (string, bool) {
	switch {
	case w == "can't":
		return "can", true
	case w == "won't":
		return "will", true
	case strings.HasSuffix(w, "n't"):
		return strings.TrimSuffix(w, "n't"), true
	}
	w, _, _ = strings.Cut(w, "'")
	return w, false
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// word returns token i's word, or "" past the end.
func (q *question) word(i int) string {
	if i < 0 || i >= len(q.toks) || q.toks[i].quoted {
		return ""
	}
	return q.toks[i].word
}

// free reports whether token i exists and is not yet used.
func (q *question) free(i int) bool { return i >= 0 && i < len(q.toks) && !q.used[i] }

// use marks tokens from..to-1 as accounted for.
func (q *question) use(from, to int) {
	for i := from; i < to && i < len(q.toks); i++ {
		q.used[i] = true
	}
}

// phrase reports whether the free tokens at i spell one of phrases ("how
// many"), and how many tokens it spans.
func (q *question) phrase(i int, phrases ...string) (int, bool) {
	for _, p := range phrases {
		ws := strings.Fields(p)
		ok := true
		for j, w := range ws {
			if !q.free(i+j) || q.word(i+j) != w {
				ok = false
				break
			}
		}
		if ok {
			return len(ws), true
		}
	}
	return 0, false
}

// find returns the first free position where one of phrases starts.
func (q *question) find(phrases ...string) (at, n int, ok bool) {
	for i := range q.toks {
		if n, ok := q.phrase(i, phrases...); ok {
			return i, n, true
		}
	}
	return -1, 0, false
}

// stem is a crude English stemmer, enough to match "customers" with
// "customer", "hired" with "hire" and "signed" with "sign".
func stem(w string) string {
	w = singular(w)
	switch {
	case len(w) > 5 && strings.HasSuffix(w, "ing"):
		w = w[:len(w)-3]
	case len(w) > 4 && strings.HasSuffix(w, "ed"):
		w = w[:len(w)-2]
	}
	if len(w) > 3 && strings.HasSuffix(w, "e") {
		w = w[:len(w)-1]
	}
	return w
}

func singular(w string) string {
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"), strings.HasSuffix(w, "xes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && len(w) > 3:
		return w[:len(w)-1]
	}
	return w
}

// nameAt reports whether the free tokens at i name ident (a table or column
// name such as "hired_on"): written as is, as its words ("hired on"), or by
// its head word when the rest is generic ("hired" for hired_on, "customer"
// for customer_id, "remote" for is_remote). It returns the tokens spanned.
func (q *question) nameAt(i int, ident string) (int, bool) {
	if !q.free(i) || q.toks[i].quoted {
		return 0, false
	}
	if stem(q.word(i)) == stem(ident) {
		return 1, true
	}
	parts := strings.Split(ident, "_")
	for len(parts) > 1 && genericPrefix[parts[0]] {
		parts = parts[1:]
	}
	if n := len(parts); n > 1 && q.wordsAt(i, parts) {
		return n, true
	}
	head := len(parts)
	for head > 1 && genericSuffix[parts[head-1]] {
		head--
	}
	if head < len(parts) || len(parts) < len(strings.Split(ident, "_")) {
		if q.wordsAt(i, parts[:head]) {
			return head, true
		}
	}
	return 0, false
}

// wordsAt reports whether the free tokens from i stem-match parts.
func (q *question) wordsAt(i int, parts []string) bool {
	for j, p := range parts {
		if !q.free(i+j) || stem(q.word(i+j)) != stem(p) {
			return false
		}
	}
	return true
}

// Name parts that carry no meaning of their own: "hired_on" is named by
// "hired", "customer_id" by "customer", "is_remote" by "remote".
var (
	genericSuffix = map[string]bool{"on": true, "at": true, "date": true, "dt": true, "time": true, "ts": true, "day": true, "id": true}
	genericPrefix = map[string]bool{"is": true, "has": true}
)

// stopWords carry no condition, column or shape of their own: articles,
// auxiliaries, pronouns, the words that introduce a question, and words that
// refer to the table's rows in general. This is the whole list (docs/NLSQL.md).
var stopWords = set(
	"a", "an", "the", "of", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did",
	"there", "what", "which", "who", "whose", "how", "me", "us", "we", "our", "i", "you", "your",
	"it", "its", "their", "them", "they", "show", "list", "give", "display", "find", "get", "tell",
	"please", "all", "any", "every", "that", "those", "these", "this", "have", "has", "had", "and",
	"from", "in", "on", "at", "for", "to", "with", "whom", "can", "could", "would", "will", "currently",
	"row", "rows", "record", "records", "entry", "entries", "there's", "whats", "so", "far", "ever",
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// isStop reports whether token i is a stop word. A word in capitals is a
// value, not a stop word: "IT employees", "customers in US".
func (q *question) isStop(i int) bool {
	t := q.toks[i]
	return !t.quoted && stopWords[t.word] && (len(t.raw) < 2 || t.raw != strings.ToUpper(t.raw))
}

// nearestFree returns the closest free non-stop token before i (within
// span tokens), or -1.
func (q *question) nearestFree(i, span int) int {
	for j := i - 1; j >= 0 && j >= i-span; j-- {
		if q.free(j) && !q.isStop(j) {
			return j
		}
	}
	return -1
}

// leftovers are the free tokens that are not stop words.
func (q *question) leftovers() []int {
	var out []int
	for i := range q.toks {
		if q.free(i) && !q.isStop(i) {
			out = append(out, i)
		}
	}
	return out
}

// rawWords returns the raw text of tokens.
func (q *question) rawWords(idx []int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		if !slices.Contains(out, q.toks[i].raw) {
			out = append(out, q.toks[i].raw)
		}
	}
	return out
}
