// Package catalog manages a tenant's tables: the catalog rows the seed calls
// database_tables/database_columns and the real PostgreSQL tables behind
// them, created through the SECURITY DEFINER DDL functions so that the
// runtime role itself never holds DDL rights. Every function runs inside the
// caller's tenant transaction.
package catalog

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Types are the column types a tenant may use (the DB re-checks the list).
var Types = []string{"text", "integer", "bigint", "numeric", "double precision", "boolean", "date", "timestamptz", "uuid", "jsonb"}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ColumnSpec describes a column to create.
type ColumnSpec struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
	Nullable    *bool  `json:"nullable"`
	// Restricted keeps the column from the tenant's members: their
	// statements run as a role without SELECT on it (migration 00015).
	Restricted bool `json:"restricted"`
}

// TableSpec describes a table to create.
type TableSpec struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Columns     []ColumnSpec `json:"columns"`
}

// Table is a catalog table with its columns.
type Table struct {
	dbsqlc.DatabaseTable
	Schema   string                  `json:"-"`
	Columns  []dbsqlc.DatabaseColumn `json:"columns"`
	RowCount *int64                  `json:"row_count,omitempty"`
}

// Ident is the table's quoted, schema-qualified name for dynamic SQL.
func (t Table) Ident() pgx.Identifier { return pgx.Identifier{t.Schema, t.Name} }

// Validate checks a spec at the edge, naming the offending field.
func (s TableSpec) Validate() error {
	if err := checkName("name", s.Name); err != nil {
		return err
	}
	if len(s.Columns) == 0 {
		return apperr.Field("columns", "a table needs at least one column")
	}
	if len(s.Columns) > 200 {
		return apperr.Field("columns", "at most 200 columns")
	}
	seen := map[string]bool{}
	for i, c := range s.Columns {
		field := fmt.Sprintf("columns[%d]", i)
		if err := c.validate(field); err != nil {
			return err
		}
		if seen[c.Name] {
			return apperr.Field(field+".name", "duplicate column %q", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// SystemColumns are PostgreSQL's system column names. Every table has them,
// so CREATE TABLE or ADD COLUMN with one fails with the same SQLSTATE as a
// duplicate column (42701); refusing them here names the real reason.
var SystemColumns = []string{"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"}

func (c ColumnSpec) validate(field string) error {
	if err := checkName(field+".name", c.Name); err != nil {
		return err
	}
	if slices.Contains(SystemColumns, c.Name) {
		return apperr.Field(field+".name", "%q is a PostgreSQL system column name and cannot be a column (reserved: %s)",
			c.Name, strings.Join(SystemColumns, ", "))
	}
	for _, t := range Types {
		if c.Type == t {
			return nil
		}
	}
	return apperr.Field(field+".type", "unsupported type %q (allowed: %v)", c.Type, Types)
}

func checkName(field, name string) error {
	switch {
	case !identifier.MatchString(name):
		return apperr.Field(field, "must be a lowercase identifier: letters, digits, underscores, at most 63, not starting with a digit")
	case name == "tenant_id" || name == "_row_id" || len(name) > 3 && name[:3] == "pg_":
		return apperr.Field(field, "%q is reserved by dbchat", name)
	}
	return nil
}

func (c ColumnSpec) nullable() bool { return c.Nullable == nil || *c.Nullable }

// Create writes the catalog rows and creates the real table, atomically
// within the caller's transaction. A duplicate name is a Conflict.
func Create(ctx context.Context, tx tenant.Conn, spec TableSpec) (Table, error) {
	if err := spec.Validate(); err != nil {
		return Table{}, err
	}
	q := dbsqlc.New()
	row, err := q.CreateTable(ctx, tx, dbsqlc.CreateTableParams{Name: spec.Name, Description: spec.Description})
	if err != nil {
		return Table{}, nameErr(err, "table", spec.Name)
	}
	t := Table{DatabaseTable: row}
	type ddlColumn struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Nullable bool   `json:"nullable"`
	}
	ddl := make([]ddlColumn, len(spec.Columns))
	for i, c := range spec.Columns {
		col, err := q.CreateColumn(ctx, tx, dbsqlc.CreateColumnParams{
			TableID: row.ID, Name: c.Name, DataType: c.Type, Description: c.Description,
			IsNullable: c.nullable(), Position: int32(i + 1), Restricted: c.Restricted})
		if err != nil {
			return Table{}, err
		}
		t.Columns = append(t.Columns, col)
		ddl[i] = ddlColumn{c.Name, c.Type, c.nullable()}
	}
	cols, _ := json.Marshal(ddl)
	if t.Schema, err = q.CreateDataTable(ctx, tx, dbsqlc.CreateDataTableParams{Name: spec.Name, Columns: string(cols)}); err != nil {
		return Table{}, nameErr(err, "table", spec.Name)
	}
	return t, q.GrantMemberColumns(ctx, tx, row.ID)
}

// Get returns a table with its columns; withCount adds its row count.
func Get(ctx context.Context, tx tenant.Conn, id uuid.UUID, withCount bool) (Table, error) {
	q := dbsqlc.New()
	row, err := q.GetTable(ctx, tx, id)
	if err != nil {
		return Table{}, err
	}
	t := Table{DatabaseTable: row, Schema: tenant.Schema(row.TenantID)}
	if t.Columns, err = q.ListColumns(ctx, tx, id); err != nil {
		return Table{}, err
	}
	if withCount {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t.Ident().Sanitize()).Scan(&n); err != nil {
			return Table{}, err
		}
		t.RowCount = &n
	}
	return t, nil
}

// Delete drops the real table and its catalog rows.
func Delete(ctx context.Context, tx tenant.Conn, id uuid.UUID) error {
	q := dbsqlc.New()
	row, err := q.GetTable(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := q.DropDataTable(ctx, tx, row.Name); err != nil {
		return err
	}
	_, err = q.DeleteTable(ctx, tx, id)
	return err
}

// AddColumn adds a column to the real table and the catalog.
func AddColumn(ctx context.Context, tx tenant.Conn, tableID uuid.UUID, spec ColumnSpec) (dbsqlc.DatabaseColumn, error) {
	if err := spec.validate("column"); err != nil {
		return dbsqlc.DatabaseColumn{}, err
	}
	q := dbsqlc.New()
	row, err := q.GetTable(ctx, tx, tableID)
	if err != nil {
		return dbsqlc.DatabaseColumn{}, err
	}
	pos, err := q.NextColumnPosition(ctx, tx, tableID)
	if err != nil {
		return dbsqlc.DatabaseColumn{}, err
	}
	col, err := q.CreateColumn(ctx, tx, dbsqlc.CreateColumnParams{
		TableID: tableID, Name: spec.Name, DataType: spec.Type, Description: spec.Description,
		IsNullable: spec.nullable(), Position: pos, Restricted: spec.Restricted})
	if err != nil {
		return dbsqlc.DatabaseColumn{}, nameErr(err, "column", spec.Name)
	}
	err = q.AddDataColumn(ctx, tx, dbsqlc.AddDataColumnParams{TableName: row.Name, ColumnName: spec.Name, DataType: spec.Type, Nullable: spec.nullable()})
	if err != nil {
		return dbsqlc.DatabaseColumn{}, nameErr(err, "column", spec.Name)
	}
	return col, q.GrantMemberColumns(ctx, tx, tableID)
}

// ColumnPatch changes a column's description, whether it is restricted,
// or both; a nil field is left as it is.
type ColumnPatch struct {
	Description *string `json:"description"`
	Restricted  *bool   `json:"restricted"`
}

// UpdateColumn applies p to a column. Restricting it revokes the members'
// role's SELECT on it in the same transaction (dbchat.set_column_restricted,
// which also refuses anyone but a tenant admin).
func UpdateColumn(ctx context.Context, tx tenant.Conn, tableID, id uuid.UUID, p ColumnPatch) (dbsqlc.DatabaseColumn, error) {
	q := dbsqlc.New()
	if p.Description != nil {
		if _, err := q.UpdateColumnDescription(ctx, tx, dbsqlc.UpdateColumnDescriptionParams{TableID: tableID, ID: id, Description: *p.Description}); err != nil {
			return dbsqlc.DatabaseColumn{}, err
		}
	}
	if p.Restricted != nil {
		found, err := q.SetColumnRestricted(ctx, tx, dbsqlc.SetColumnRestrictedParams{TableID: tableID, ColumnID: id, Restricted: *p.Restricted})
		if err != nil || !found {
			return dbsqlc.DatabaseColumn{}, cmp.Or(err, error(pgx.ErrNoRows))
		}
	}
	return q.GetColumn(ctx, tx, dbsqlc.GetColumnParams{TableID: tableID, ID: id})
}

// nameErr words a conflict so the client learns which name clashed.
func nameErr(err error, kind, name string) error {
	err = tenant.Translate(err)
	if apperr.CodeOf(err) == apperr.Conflict {
		return apperr.Errorf(apperr.Conflict, "a %s named %q already exists", kind, name)
	}
	return err
}
