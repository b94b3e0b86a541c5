package nlsql

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// CatalogResult reports a train-from-catalog run.
type CatalogResult struct {
	Tables        int `json:"tables"`
	DDL           int `json:"ddl"`
	Documentation int `json:"documentation"`
	// Replaced is how many rows the previous run had written (now deleted).
	Replaced int `json:"replaced"`
}

// TrainFromCatalog writes, for every active table of the tenant's catalog,
// its DDL (unqualified name, column descriptions as comments, no tenant_id
// or _row_id) and its table and column descriptions as documentation. The
// rows are marked source=catalog and a re-run replaces them, in one
// transaction, so the model never holds two generations.
func (s *Store) TrainFromCatalog(ctx context.Context, modelID uuid.UUID) (CatalogResult, error) {
	var rows []dbsqlc.ListActiveCatalogRow
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		rows, err = q.ListActiveCatalog(ctx, tx)
		return err
	})
	if err != nil {
		return CatalogResult{}, err
	}
	items, tables := CatalogItems(rows)
	res := CatalogResult{Tables: tables}
	var vecs [][]float32
	if len(items) > 0 {
		if vecs, err = s.embedItems(ctx, items); err != nil {
			return CatalogResult{}, err
		}
	}
	err = s.DB.Tx(ctx, func(tx tenant.Conn) error {
		n, err := q.DeleteTrainingDataBySource(ctx, tx, dbsqlc.DeleteTrainingDataBySourceParams{ModelID: modelID, Source: SourceCatalog})
		if err != nil {
			return err
		}
		res.Replaced = int(n)
		if len(items) == 0 {
			return nil
		}
		written, err := s.insert(ctx, tx, modelID, items, vecs, SourceCatalog)
		for _, it := range written {
			switch it.Kind {
			case KindDDL:
				res.DDL++
			case KindDocumentation:
				res.Documentation++
			}
		}
		return err
	})
	return res, err
}

// CatalogItems turns catalog rows (tables with their columns, ordered by
// table and position) into DDL and documentation items; it also returns
// the number of tables.
func CatalogItems(rows []dbsqlc.ListActiveCatalogRow) ([]NewItem, int) {
	var items []NewItem
	tables := 0
	for start := 0; start < len(rows); {
		end := start
		for end < len(rows) && rows[end].TableID == rows[start].TableID {
			end++
		}
		cols := rows[start:end]
		start = end
		tables++
		items = append(items, NewItem{Kind: KindDDL, Content: tableDDL(cols)})
		if doc := tableDoc(cols); doc != "" {
			items = append(items, NewItem{Kind: KindDocumentation, Content: doc})
		}
	}
	return items, tables
}

// reservedColumn reports the columns dbchat adds to every data table; they
// are never part of what a model learns.
func reservedColumn(name string) bool { return name == "tenant_id" || name == "_row_id" }

func tableDDL(cols []dbsqlc.ListActiveCatalogRow) string {
	var b strings.Builder
	t := cols[0]
	if d := oneLine(t.TableDescription); d != "" {
		fmt.Fprintf(&b, "-- %s\n", d)
	}
	fmt.Fprintf(&b, "CREATE TABLE %s (", t.TableName)
	var kept []dbsqlc.ListActiveCatalogRow
	for _, c := range cols {
		if !reservedColumn(c.ColumnName) {
			kept = append(kept, c)
		}
	}
	for i, c := range kept {
		b.WriteString("\n    ")
		b.WriteString(c.ColumnName)
		b.WriteString(" ")
		b.WriteString(c.DataType)
		if !c.IsNullable {
			b.WriteString(" NOT NULL")
		}
		if i < len(kept)-1 {
			b.WriteString(",")
		}
		if d := oneLine(c.ColumnDescription); d != "" {
			b.WriteString(" -- ")
			b.WriteString(d)
		}
	}
	b.WriteString("\n);")
	return b.String()
}

func tableDoc(cols []dbsqlc.ListActiveCatalogRow) string {
	t := cols[0]
	var lines []string
	for _, c := range cols {
		if d := oneLine(c.ColumnDescription); d != "" && !reservedColumn(c.ColumnName) {
			lines = append(lines, fmt.Sprintf("- %s.%s: %s", t.TableName, c.ColumnName, d))
		}
	}
	d := oneLine(t.TableDescription)
	if d == "" && len(lines) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Table %s", t.TableName)
	if d != "" {
		fmt.Fprintf(&b, ": %s", d)
	}
	if len(lines) > 0 {
		b.WriteString("\nColumns:\n")
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

// oneLine folds a description onto one line, so it cannot end a SQL comment
// early.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
