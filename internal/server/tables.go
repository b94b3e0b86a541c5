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
func (s *Server) createTable(c *gin.Context) {
	var spec catalog.TableSpec
	if err := s.bindJSON(c, &spec); err != nil {
		s.fail(c, err)
		return
	}
	if err := spec.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	var t catalog.Table
	err := s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		t, err = catalog.Create(ctx, tx, spec)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	zero := int64(0)
	t.RowCount = &zero
	c.JSON(http.StatusCreated, t)
}

// listTables lists the tenant's catalog tables.
func (s *Server) listTables(c *gin.Context) {
	var rows []dbsqlc.ListTablesRow
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		rows, err = s.q.ListTables(ctx, tx)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if rows == nil {
		rows = []dbsqlc.ListTablesRow{}
	}
	c.JSON(http.StatusOK, gin.H{"tables": rows})
}

// getTable returns a table with its columns and row count.
func (s *Server) getTable(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var t catalog.Table
	err = s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		t, err = catalog.Get(ctx, tx, id, true)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

type tablePatch struct {
	Description *string `json:"description"`
	IsActive    *bool   `json:"is_active"`
}

// updateTable changes a table's description or active flag.
func (s *Server) updateTable(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var p tablePatch
	if err := s.bindJSON(c, &p); err != nil {
		s.fail(c, err)
		return
	}
	var t dbsqlc.DatabaseTable
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		t, err = s.q.UpdateTable(ctx, tx, dbsqlc.UpdateTableParams{ID: id, Description: p.Description, IsActive: p.IsActive})
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

// deleteTable drops the data table and its catalog rows.
func (s *Server) deleteTable(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.tx(c, func(ctx context.Context, tx tenant.Conn) error { return catalog.Delete(ctx, tx, id) }); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// addColumn adds a column to the real table and the catalog.
func (s *Server) addColumn(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var spec catalog.ColumnSpec
	if err := s.bindJSON(c, &spec); err != nil {
		s.fail(c, err)
		return
	}
	var col dbsqlc.DatabaseColumn
	err = s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		col, err = catalog.AddColumn(ctx, tx, id, spec)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, col)
}

type columnPatch struct {
	Description string `json:"description"`
}

// updateColumn changes a column's description.
func (s *Server) updateColumn(c *gin.Context) {
	tableID, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	colID, err := pathID(c, "column_id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var p columnPatch
	if err := s.bindJSON(c, &p); err != nil {
		s.fail(c, err)
		return
	}
	var col dbsqlc.DatabaseColumn
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		col, err = s.q.UpdateColumnDescription(ctx, tx, dbsqlc.UpdateColumnDescriptionParams{TableID: tableID, ID: colID, Description: p.Description})
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, col)
}
