package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// createTable creates the catalog rows and the real table.
func (s *Server) createTable(c *gin.Context) (int, any, error) {
	spec, err := bind[catalog.TableSpec](s, c)
	if err != nil {
		return 0, nil, err
	}
	t, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (catalog.Table, error) {
		return catalog.Create(ctx, tx, spec)
	})
	zero := int64(0) // a new table is empty
	t.RowCount = &zero
	return reply(http.StatusCreated, toTableDetailJSON(t), err)
}

// listTables lists the tenant's catalog tables.
func (s *Server) listTables(c *gin.Context) (int, any, error) {
	rows, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) ([]dbsqlc.ListTablesRow, error) {
		return s.q.ListTables(ctx, tx)
	})
	return reply(http.StatusOK, gin.H{"tables": convert(rows, toTableSummaryJSON)}, err)
}

// getTable returns a table with its columns and row count.
func (s *Server) getTable(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	t, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (catalog.Table, error) {
		return catalog.Get(ctx, tx, id, true)
	})
	return reply(http.StatusOK, toTableDetailJSON(t), err)
}

type tablePatch struct {
	Description *string `json:"description"`
	IsActive    *bool   `json:"is_active"`
}

// updateTable changes a table's description or active flag.
func (s *Server) updateTable(c *gin.Context) (int, any, error) {
	id, p, err := pathIDAndBody[tablePatch](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	t, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.DatabaseTable, error) {
		return s.q.UpdateTable(ctx, tx, dbsqlc.UpdateTableParams{ID: id, Description: p.Description, IsActive: p.IsActive})
	})
	return reply(http.StatusOK, toTableJSON(t), err)
}

// deleteTable drops the data table and its catalog rows.
func (s *Server) deleteTable(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	err = exec(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) error { return catalog.Delete(ctx, tx, id) })
	return reply(http.StatusNoContent, nil, err)
}

// addColumn adds a column to the real table and the catalog.
func (s *Server) addColumn(c *gin.Context) (int, any, error) {
	id, spec, err := pathIDAndBody[catalog.ColumnSpec](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	col, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (dbsqlc.DatabaseColumn, error) {
		return catalog.AddColumn(ctx, tx, id, spec)
	})
	return reply(http.StatusCreated, toColumnJSON(col), err)
}

// updateColumn changes a column's description or restricts it to tenant
// admins (catalog.UpdateColumn).
func (s *Server) updateColumn(c *gin.Context) (int, any, error) {
	tableID, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	colID, p, err := pathIDAndBody[catalog.ColumnPatch](s, c, "column_id")
	if err != nil {
		return 0, nil, err
	}
	col, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (dbsqlc.DatabaseColumn, error) {
		return catalog.UpdateColumn(ctx, tx, tableID, colID, p)
	})
	return reply(http.StatusOK, toColumnJSON(col), err)
}
