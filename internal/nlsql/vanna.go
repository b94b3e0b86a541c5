package nlsql

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/tenant"
)

// MaxImportRows caps one Vanna import.
const MaxImportRows = 50_000

// VannaRow is one row of Vanna's get_training_data() DataFrame: columns id,
// question, content and training_data_type (sql, ddl or documentation).
type VannaRow struct {
	ID       string
	Question string // empty when null/NaN (DDL and documentation rows)
	Content  string
	Type     string
}

// ParseVanna reads a get_training_data() export: format "csv" (DataFrame.
// to_csv, with or without the index column) or "json" (DataFrame.to_json in
// the records, split or columns orientation; columns is pandas' default).
// Columns other than the four are ignored. Every problem is an Invalid error
// that names the row (1-based, in file order) and, where it has one, its id.
func ParseVanna(r io.Reader, format string) ([]VannaRow, error) {
	var rows []VannaRow
	var err error
	switch format {
	case "csv":
		rows, err = parseVannaCSV(r)
	case "json":
		rows, err = parseVannaJSON(r)
	default:
		return nil, apperr.Errorf(apperr.UnsupportedMedia, "import takes text/csv or application/json")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case len(rows) == 0:
		return nil, apperr.Errorf(apperr.Invalid, "the import holds no rows")
	case len(rows) > MaxImportRows:
		return nil, apperr.Errorf(apperr.Invalid, "at most %d rows per import, got %d", MaxImportRows, len(rows))
	}
	for i, row := range rows {
		if !validKind(row.Type) {
			return nil, rowErr(i, row, "training_data_type: must be one of sql, ddl, documentation, got %q", row.Type)
		}
	}
	return rows, nil
}

func rowErr(i int, row VannaRow, format string, args ...any) error {
	at := fmt.Sprintf("row %d", i+1)
	if row.ID != "" {
		at += fmt.Sprintf(" (id %q)", row.ID)
	}
	e := apperr.Errorf(apperr.Invalid, "%s: %s", at, fmt.Sprintf(format, args...))
	e.Details = map[string]any{"row": i + 1}
	return e
}

func parseVannaCSV(r io.Reader) ([]VannaRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, apperr.Errorf(apperr.Invalid, "CSV: no header row (want id, question, content, training_data_type)")
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, need := range []string{"content", "training_data_type"} {
		if _, ok := col[need]; !ok {
			return nil, apperr.Errorf(apperr.Invalid, "CSV: no %s column (want id, question, content, training_data_type)", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	var rows []VannaRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, apperr.Errorf(apperr.Invalid, "row %d (line %d): malformed CSV: %v", len(rows)+1, pe.StartLine, pe.Err)
			}
			return nil, apperr.Wrap(apperr.Invalid, err, "malformed CSV")
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		rows = append(rows, VannaRow{
			ID:       get(rec, "id"),
			Question: nanToEmpty(get(rec, "question")),
			Content:  get(rec, "content"),
			Type:     strings.TrimSpace(get(rec, "training_data_type")),
		})
		if len(rows) > MaxImportRows {
			return rows, nil
		}
	}
}

// nanToEmpty maps pandas' spellings of a missing value to "".
func nanToEmpty(s string) string {
	switch strings.TrimSpace(s) {
	case "NaN", "nan", "None", "null":
		return ""
	}
	return s
}

func parseVannaJSON(r io.Reader) ([]VannaRow, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, apperr.Errorf(apperr.Invalid, "the import holds no rows")
	}
	switch raw[0] {
	case '[': // orient="records"
		var recs []json.RawMessage
		if err := json.Unmarshal(raw, &recs); err != nil {
			return nil, jsonErr(err)
		}
		rows := make([]VannaRow, len(recs))
		for i, rec := range recs {
			var m map[string]any
			if err := json.Unmarshal(rec, &m); err != nil || m == nil {
				return nil, apperr.Errorf(apperr.Invalid, "row %d: not a JSON object", i+1)
			}
			if rows[i], err = vannaRow(i, m); err != nil {
				return nil, err
			}
		}
		return rows, nil
	case '{':
	default:
		return nil, apperr.Errorf(apperr.Invalid, "JSON: want an array of rows or a pandas DataFrame.to_json object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, jsonErr(err)
	}
	if cols, ok := obj["columns"]; ok && obj["data"] != nil { // orient="split"
		var names []string
		var data [][]any
		if err := json.Unmarshal(cols, &names); err != nil {
			return nil, apperr.Errorf(apperr.Invalid, "JSON: columns must be a list of names")
		}
		if err := json.Unmarshal(obj["data"], &data); err != nil {
			return nil, apperr.Errorf(apperr.Invalid, "JSON: data must be a list of rows")
		}
		rows := make([]VannaRow, len(data))
		for i, rec := range data {
			m := map[string]any{}
			for j, name := range names {
				if j < len(rec) {
					m[name] = rec[j]
				}
			}
			if rows[i], err = vannaRow(i, m); err != nil {
				return nil, err
			}
		}
		return rows, nil
	}
	// orient="columns": {"id": {"0": ...}, "question": {"0": ...}, ...}
	columns := map[string]map[string]any{}
	labels := map[string]bool{}
	for name, v := range obj {
		var byIndex map[string]any
		if err := json.Unmarshal(v, &byIndex); err != nil {
			return nil, apperr.Errorf(apperr.Invalid, "JSON: column %q must map row labels to values", name)
		}
		columns[name] = byIndex
		for l := range byIndex {
			labels[l] = true
		}
	}
	order := make([]string, 0, len(labels))
	for l := range labels {
		order = append(order, l)
	}
	sort.Slice(order, func(i, j int) bool {
		a, errA := strconv.Atoi(order[i])
		b, errB := strconv.Atoi(order[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return order[i] < order[j]
	})
	rows := make([]VannaRow, len(order))
	for i, l := range order {
		m := map[string]any{}
		for name, byIndex := range columns {
			if v, ok := byIndex[l]; ok {
				m[name] = v
			}
		}
		if rows[i], err = vannaRow(i, m); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// vannaRow reads one row's fields; each must be a string or null.
func vannaRow(i int, m map[string]any) (VannaRow, error) {
	var row VannaRow
	str := func(name string) (string, error) {
		switch v := m[name].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		case float64: // an id may be numeric
			if name == "id" {
				return strconv.FormatFloat(v, 'f', -1, 64), nil
			}
		}
		return "", rowErr(i, row, "%s: must be a string or null", name)
	}
	var err error
	if row.ID, err = str("id"); err != nil {
		return row, err
	}
	if row.Question, err = str("question"); err != nil {
		return row, err
	}
	if row.Content, err = str("content"); err != nil {
		return row, err
	}
	if row.Type, err = str("training_data_type"); err != nil {
		return row, err
	}
	row.Type = strings.TrimSpace(row.Type)
	return row, nil
}

func jsonErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return apperr.Errorf(apperr.Invalid, "malformed JSON at byte %d", se.Offset)
	}
	return apperr.Wrap(apperr.Invalid, err, "malformed JSON")
}

// ImportResult reports an import.
type ImportResult struct {
	Imported Counts `json:"imported"`
	// Skipped counts rows identical (kind, question, content) to a row the
	// model already has or to an earlier row of the import.
	Skipped int `json:"skipped"`
}

// Import adds Vanna rows to the model as source=import: every row is checked
// first (shape, and a pair's SQL against the sandbox validator), and a bad
// row fails the whole import with a 400 naming it; nothing is written then.
// Rows the model already has are skipped, so importing twice is harmless.
func (s *Store) Import(ctx context.Context, modelID uuid.UUID, rows []VannaRow) (ImportResult, error) {
	items := make([]NewItem, len(rows))
	for i, r := range rows {
		items[i] = NewItem{Kind: r.Type, Question: r.Question, Content: r.Content}
		if r.Type != KindSQL {
			items[i].Question = "" // Vanna leaves it null; ignore it if not
		}
	}
	fields := map[string]string{"kind": "training_data_type", "sql": "content"}
	label := func(i int, field string) string {
		if f, ok := fields[field]; ok {
			field = f
		}
		at := fmt.Sprintf("row %d", i+1)
		if rows[i].ID != "" {
			at += fmt.Sprintf(" (id %q)", rows[i].ID)
		}
		return at + " " + field
	}
	items, err := s.prepare(ctx, items, label)
	if err != nil {
		return ImportResult{}, err
	}

	var have []string
	err = s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		have, err = q.TrainingDigests(ctx, tx, modelID)
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	seen := make(map[string]bool, len(have)+len(items))
	for _, d := range have {
		seen[d] = true
	}
	var res ImportResult
	fresh := items[:0]
	for _, it := range items {
		d := digest(it)
		if seen[d] {
			res.Skipped++
			continue
		}
		seen[d] = true
		fresh = append(fresh, it)
	}
	if len(fresh) == 0 {
		return res, nil
	}
	vecs, err := s.embedItems(ctx, fresh)
	if err != nil {
		return ImportResult{}, err
	}
	err = s.DB.Tx(ctx, func(tx tenant.Conn) error {
		written, err := s.insert(ctx, tx, modelID, fresh, vecs, SourceImport)
		for _, it := range written {
			res.Imported.add(it.Kind, 1)
		}
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}
