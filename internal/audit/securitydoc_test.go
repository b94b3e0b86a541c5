package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit/audittest"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// securityDoc is the document whose psql blocks TestSecurityDocPsqlBlocks
// runs, and checkedSections are the sections it runs them from (a "## "
// section ends at the next "## " heading, a "### " one at the next "## " or
// "### ").
const securityDoc = "../../docs/SECURITY.md"

var checkedSections = []string{"## Verify it yourself in psql", "### In psql, for DBAs"}

// TestSecurityDocPsqlBlocks runs every ```sql block of the sections a DBA
// follows in psql ("Verify it yourself in psql", "In psql, for DBAs") against
// a freshly migrated database with two tenants, A and B, that have a table
// `customers` each (A two rows, B three), and fails where the document and
// the database disagree. The document's conventions, which it states for its
// readers too:
//
//   - A block runs as dbchat_auditor and again as a superuser (in read-only
//     transactions: the document says these queries are read-only), unless
//     its first line is a comment "-- as a superuser …" (superuser only) or
//     "-- as dbchat_auditor …" (auditor only). Both must give the same
//     results.
//   - Every statement must succeed, unless the comment line right after it
//     reads "-- ERROR:  <message>": then it must fail with that message.
//   - A comment on the same line as a statement's closing ";" is what the
//     statement returns: "no rows", "N rows", "1 row", or a single value
//     (the text before the first ": "; the rest is explanation).
//   - A ```text block right after a ```sql block (blank lines between at
//     most) is psql's output of the block's other row-returning statements,
//     in order: header, rule, rows and the "(N rows)" footer, compared cell
//     by cell; "…" in a cell stands for any text (ids, names that differ).
//   - The placeholders <a tenant id>, t_<its hex> (that tenant's schema and
//     role) and t_<another tenant's hex> are tenant A's id, A's schema and
//     B's schema.
func TestSecurityDocPsqlBlocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	blocks := docBlocks(t)

	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	a := dbtest.NewTenant(t, db, "Doc A")
	b := dbtest.NewTenant(t, db, "Doc B")
	for _, tn := range []struct {
		dbtest.Tenant
		rows int
	}{{a, 2}, {b, 3}} {
		err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "customers",
				Columns: []catalog.ColumnSpec{{Name: "name", Type: "text"}}})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (name) SELECT 'customer ' || g FROM generate_series(1, $1) g`, tn.rows)
			return err
		})
		require.NoError(t, err)
	}
	placeholders := strings.NewReplacer(
		"<a tenant id>", a.ID.String(),
		"t_<its hex>", tenant.Schema(a.ID),
		"t_<another tenant's hex>", tenant.Schema(b.ID),
	)

	urls := map[string]string{"dbchat_auditor": audittest.AuditorURL(t, d), "superuser": d.AdminURL}
	var super bool
	require.NoError(t, d.AdminPool(t).QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super))

	statements := 0
	for _, blk := range blocks {
		sql := placeholders.Replace(blk.sql)
		require.NotRegexp(t, unknownPlaceholder, sql, "%s: a placeholder the test does not know", blk.where)
		stmts, as := splitStatements(t, blk.where, sql)
		statements += len(stmts)
		var expected []psqlTable
		if blk.expected != "" {
			expected = parsePsqlOutput(t, blk.where, placeholders.Replace(blk.expected))
		}
		roles := []string{"dbchat_auditor", "superuser"}
		switch as {
		case "superuser":
			roles = []string{"superuser"}
		case "dbchat_auditor":
			roles = []string{"dbchat_auditor"}
		}
		for _, role := range roles {
			if role == "superuser" && !super {
				t.Logf("%s: skipped as superuser (TEST_DATABASE_URL is not a superuser)", blk.where)
				continue
			}
			runBlock(t, blk.where+" as "+role, urls[role], role == "superuser" && as == "", stmts, expected)
		}
	}
	t.Logf("%s: %d psql blocks, %d statements checked", securityDoc, len(blocks), statements)
}

// unknownPlaceholder matches a <…> placeholder left after substitution.
var unknownPlaceholder = regexp.MustCompile(`<[a-z][a-z']* [a-z' ]*>`)

type docBlock struct {
	where    string // "docs/SECURITY.md:123" (the ```sql line)
	sql      string
	expected string // the ```text block right after, if any
}

// docBlocks returns the ```sql blocks of the checked sections.
func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	raw, err := os.ReadFile(securityDoc)
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	var (
		blocks  []docBlock
		section string // the checked section we are in, if any
		seen    = map[string]int{}
	)
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if level := headingLevel(line); level > 0 {
			if section != "" && level <= headingLevel(section) {
				section = ""
			}
			for _, s := range checkedSections {
				if strings.TrimSpace(line) == s {
					section = s
				}
			}
			continue
		}
		if !strings.HasPrefix(line, "```") {
			continue
		}
		lang := strings.TrimSpace(strings.TrimPrefix(line, "```"))
		start := i
		body, end := fenced(lines, i)
		i = end
		if section == "" || lang != "sql" {
			continue
		}
		seen[section]++
		blk := docBlock{where: fmt.Sprintf("docs/SECURITY.md:%d", start+1), sql: body}
		// The expected output: a ```text block after blank lines only.
		j := end + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j < len(lines) && strings.TrimSpace(lines[j]) == "```text" {
			blk.expected, i = fenced(lines, j)
		}
		blocks = append(blocks, blk)
	}
	for _, s := range checkedSections {
		require.NotZero(t, seen[s], "%s: section %q has no ```sql block (renamed?)", securityDoc, s)
	}
	return blocks
}

func headingLevel(line string) int {
	n := len(line) - len(strings.TrimLeft(line, "#"))
	if n == 0 || n >= len(line) || line[n] != ' ' {
		return 0
	}
	return n
}

// fenced returns the body of the fenced block opening at lines[open] and the
// index of its closing fence.
func fenced(lines []string, open int) (string, int) {
	for k := open + 1; k < len(lines); k++ {
		if strings.TrimSpace(lines[k]) == "```" {
			return strings.Join(lines[open+1:k], "\n"), k
		}
	}
	return strings.Join(lines[open+1:], "\n"), len(lines) - 1
}

// docStatement is one statement of a block and what the document says it
// does.
type docStatement struct {
	sql     string
	line    int    // within the block, 1-based
	errMsg  string // "-- ERROR:  …" on the next line: it must fail so
	returns string // "-- …" after its ";": "no rows", "N rows", "1 row" or a value
}

// splitStatements cuts a block into statements with PostgreSQL's scanner
// and reads the comments that carry expectations; as is the role named by a
// leading "-- as …" comment.
func splitStatements(t *testing.T, where, sql string) (stmts []docStatement, as string) {
	t.Helper()
	scan, err := pg_query.Scan(sql)
	require.NoError(t, err, where)
	lineOf := func(pos int32) int { return strings.Count(sql[:pos], "\n") + 1 }
	start, lastEnd := int32(-1), int32(-1) // current statement; end of the previous one
	for k, tok := range scan.GetTokens() {
		text := sql[tok.GetStart():tok.GetEnd()]
		isComment := tok.GetToken() == pg_query.Token_SQL_COMMENT || tok.GetToken() == pg_query.Token_C_COMMENT
		switch {
		case isComment && start < 0:
			comment := strings.TrimSpace(strings.TrimPrefix(text, "--"))
			switch {
			case k == 0 && strings.HasPrefix(comment, "as a superuser"):
				as = "superuser"
			case k == 0 && strings.HasPrefix(comment, "as dbchat_auditor"):
				as = "dbchat_auditor"
			case len(stmts) > 0 && lastEnd >= 0 && lineOf(tok.GetStart()) == lineOf(lastEnd):
				prev := &stmts[len(stmts)-1]
				prev.returns, _, _ = strings.Cut(comment, ": ")
			case len(stmts) > 0 && strings.HasPrefix(comment, "ERROR:"):
				prev := &stmts[len(stmts)-1]
				require.Empty(t, prev.errMsg, "%s line %d: one ERROR line per statement", where, lineOf(tok.GetStart()))
				prev.errMsg = strings.TrimSpace(strings.TrimPrefix(comment, "ERROR:"))
			}
		case isComment:
			// inside a statement: part of its text
		case tok.GetToken() == pg_query.Token_ASCII_59: // ";"
			if start >= 0 {
				stmts = append(stmts, docStatement{sql: sql[start:tok.GetEnd()], line: lineOf(start)})
			}
			start, lastEnd = -1, tok.GetEnd()-1
		default:
			if start < 0 {
				start = tok.GetStart()
			}
		}
	}
	if start >= 0 {
		stmts = append(stmts, docStatement{sql: sql[start:], line: lineOf(start)})
	}
	require.NotEmpty(t, stmts, "%s: no statement", where)
	return stmts, as
}

// runBlock runs stmts on a new connection to url and checks each against
// the document; expected holds the tables of the statements that return
// rows and carry no expectation of their own.
func runBlock(t *testing.T, where, url string, readOnly bool, stmts []docStatement, expected []psqlTable) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err, where)
	defer conn.Close(ctx)
	if readOnly {
		_, err := conn.Exec(ctx, `SET default_transaction_read_only = on`)
		require.NoError(t, err)
	}
	var tables []*result
	for _, st := range stmts {
		at := fmt.Sprintf("%s, statement at line %d of the block (%s)", where, st.line, firstLine(st.sql))
		res, err := execOne(ctx, conn.PgConn(), st.sql)
		if st.errMsg != "" {
			var pg *pgconn.PgError
			require.True(t, errors.As(err, &pg), "%s: the document says it fails with %q; got %v", at, st.errMsg, err)
			require.Regexp(t, wildcard(st.errMsg), pg.Message, "%s: the error the document shows", at)
			continue
		}
		require.NoError(t, err, at)
		switch {
		case st.returns != "":
			require.NotEmpty(t, res.fields, "%s: a trailing comment says what a statement returns, and this one returns no rows at all", at)
			checkReturns(t, at, st.returns, res)
		case len(res.fields) > 0:
			tables = append(tables, res)
		}
	}
	if expected == nil {
		return
	}
	require.Len(t, tables, len(expected), "%s: the ```text block after it shows %d results, the block returns %d", where, len(expected), len(tables))
	for k, want := range expected {
		got := tables[k]
		at := fmt.Sprintf("%s, result %d", where, k+1)
		names, rows := got.fields, got.rows
		require.Equal(t, want.header, names, "%s: columns", at)
		require.Len(t, rows, len(want.rows), "%s: rows\n%s", at, formatRows(rows))
		for r := range want.rows {
			require.Len(t, rows[r], len(want.rows[r]), "%s, row %d: cells", at, r+1)
			for c, cell := range want.rows[r] {
				require.Regexp(t, wildcard(cell), rows[r][c], "%s, row %d, column %s\ngot rows:\n%s", at, r+1, names[c], formatRows(rows))
			}
		}
	}
}

// result is one statement's outcome as psql shows it: column names (none
// for a statement that returns no rows at all) and values in text format,
// NULL as blank.
type result struct {
	fields []string
	rows   [][]string
}

// execOne runs one statement with the simple protocol, as psql does.
func execOne(ctx context.Context, conn *pgconn.PgConn, sql string) (*result, error) {
	mrr := conn.Exec(ctx, sql)
	res := &result{}
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		for _, f := range rr.FieldDescriptions() {
			res.fields = append(res.fields, f.Name)
		}
		for rr.NextRow() {
			var row []string
			for _, v := range rr.Values() {
				row = append(row, string(v))
			}
			res.rows = append(res.rows, row)
		}
		if _, err := rr.Close(); err != nil {
			_ = mrr.Close()
			return nil, err
		}
	}
	return res, mrr.Close()
}

// checkReturns checks a statement against its trailing comment.
func checkReturns(t *testing.T, at, want string, res *result) {
	t.Helper()
	if n, ok := rowCount(want); ok {
		require.Len(t, res.rows, n, "%s: the document says %q", at, want)
		return
	}
	require.Len(t, res.rows, 1, "%s: the document says it returns %q", at, want)
	require.Len(t, res.rows[0], 1, "%s: the document says it returns %q", at, want)
	require.Regexp(t, wildcard(want), res.rows[0][0], "%s: the value the document says", at)
}

// rowCount reads "no rows", "1 row", "N rows".
func rowCount(s string) (int, bool) {
	if s == "no rows" {
		return 0, true
	}
	num, unit, ok := strings.Cut(s, " ")
	if !ok || (unit != "rows" && unit != "row") {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil && (n == 1) == (unit == "row")
}

// wildcard turns a cell or message with "…" into an anchored regexp.
func wildcard(s string) string {
	parts := strings.Split(s, "…")
	for k := range parts {
		parts[k] = regexp.QuoteMeta(parts[k])
	}
	return `^` + strings.Join(parts, `.*`) + `$`
}

// psqlTable is one result as psql prints it in aligned format.
type psqlTable struct {
	header []string
	rows   [][]string
}

var footer = regexp.MustCompile(`^\((\d+) rows?\)$`)

// parsePsqlOutput reads one or more psql results: a header line, a rule of
// dashes and plus signs, the rows, and "(N rows)", separated by blank lines.
func parsePsqlOutput(t *testing.T, where, text string) []psqlTable {
	t.Helper()
	var (
		tables []psqlTable
		cur    *psqlTable
		state  int // 0: expect header, 1: expect rule, 2: rows
	)
	for n, line := range strings.Split(text, "\n") {
		at := fmt.Sprintf("%s: expected output, line %d", where, n+1)
		trimmed := strings.TrimSpace(line)
		switch {
		case state == 0 && trimmed == "":
		case state == 0:
			cur = &psqlTable{header: cells(line)}
			state = 1
		case state == 1:
			require.Regexp(t, `^-[-+]*$`, trimmed, "%s: the rule under the header", at)
			state = 2
		case footer.MatchString(trimmed):
			m := footer.FindStringSubmatch(trimmed)
			require.Equal(t, m[1], strconv.Itoa(len(cur.rows)), "%s: the footer counts the rows above it", at)
			tables = append(tables, *cur)
			state = 0
		default:
			row := cells(line)
			require.Len(t, row, len(cur.header), "%s: cells", at)
			cur.rows = append(cur.rows, row)
		}
	}
	require.Zero(t, state, "%s: expected output ends without a (N rows) footer", where)
	require.NotEmpty(t, tables, "%s: empty expected output", where)
	return tables
}

func cells(line string) []string {
	parts := strings.Split(line, "|")
	for k := range parts {
		parts[k] = strings.TrimSpace(parts[k])
	}
	return parts
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) > 60 {
		line = line[:60] + "…"
	}
	return line
}

func formatRows(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(" " + strings.Join(r, " | ") + "\n")
	}
	return b.String()
}
