package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/tenant"
)

// CSV imports r, a CSV document whose header row names any subset of t's
// columns in any order, into t within tx, all or nothing. It returns the
// number of rows inserted. Errors are *apperr.Error; a bad record is Invalid
// with Details {"line": physical line of the record (1-based, the header is
// line 1), "column": name}. Errors reading r keep the reader's error as
// their cause.
func CSV(ctx context.Context, tx tenant.Conn, t catalog.Table, r io.Reader) (int64, error) {
	all, byName, err := tableColumns(t)
	if err != nil {
		return 0, err
	}
	cr := newCSVReader(r, MaxRecordBytes)
	header, _, err := cr.Read()
	if err == io.EOF {
		return 0, apperr.Errorf(apperr.Invalid, "the CSV body is empty: a header row naming the columns is required")
	}
	if err != nil {
		return 0, csvError(err)
	}

	// The header picks the staging columns, in its order.
	hl := cr.Line()
	cols := make([]column, 0, len(header))
	var unknown []string
	seen := map[string]bool{}
	for _, h := range header {
		name := strings.TrimSpace(h)
		i, ok := byName[name]
		switch {
		case !ok:
			unknown = append(unknown, name)
		case seen[name]:
			e := apperr.Errorf(apperr.Invalid, "line %d: column %q appears twice in the CSV header", hl, name)
			e.Details = map[string]any{"line": hl, "column": name}
			return 0, e
		default:
			cols = append(cols, all[i])
		}
		seen[name] = true
	}
	if len(unknown) > 0 {
		// A header can name any number of columns; the error shows a few,
		// so a hostile or mistaken header cannot make it megabytes long.
		e := apperr.Errorf(apperr.Invalid, "line %d: unknown columns in the CSV header: %s (table %q has: %s)",
			hl, quoteList(unknown), t.Name, quoteList(columnNames(all)))
		e.Details = map[string]any{"line": hl, "columns": unknown[:min(len(unknown), maxListed)]}
		if len(unknown) > maxListed {
			e.Details["unknown_count"] = len(unknown)
		}
		return 0, e
	}
	// A NOT NULL column missing from the header is NULL on every record.
	var required string
	for _, c := range all {
		if !c.nullable && !seen[c.name] {
			required = c.name
			break
		}
	}

	next := func(vals []any) (bool, error) {
		fields, quoted, err := cr.Read()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, csvError(err)
		}
		line := cr.Line()
		if len(fields) != len(cols) {
			e := apperr.Errorf(apperr.Invalid, "line %d: %d fields, but the header has %d", line, len(fields), len(cols))
			e.Details = map[string]any{"line": line}
			return false, e
		}
		if required != "" {
			return false, valueError("line", line, required, errNotNull)
		}
		for i, f := range fields {
			c := &cols[i]
			if f == "" && !(quoted[i] && c.text) {
				if !c.nullable {
					return false, valueError("line", line, c.name, errNotNull)
				}
				vals[i] = nil
				continue
			}
			v, err := c.conv(f)
			if err != nil {
				return false, valueError("line", line, c.name, err)
			}
			vals[i] = v
		}
		return true, nil
	}
	return load(ctx, tx, t, cols, next)
}

// csvError turns a reader error into a client error.
func csvError(err error) error {
	var syn *errSyntax
	if errors.As(err, &syn) {
		e := apperr.Errorf(apperr.Invalid, "invalid CSV: %s", syn.Error())
		e.Details = map[string]any{"line": syn.line}
		return e
	}
	return readError(err)
}

// maxListed is how many names an error message lists before "and N more".
const maxListed = 10

// quoteList quotes the first maxListed names and counts the rest.
func quoteList(names []string) string {
	q := make([]string, 0, min(len(names), maxListed)+1)
	for _, n := range names[:min(len(names), maxListed)] {
		q = append(q, quote(n))
	}
	if len(names) > maxListed {
		q = append(q, fmt.Sprintf("and %d more", len(names)-maxListed))
	}
	return strings.Join(q, ", ")
}

func columnNames(cols []column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return names
}
