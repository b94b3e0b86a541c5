package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Training data paging and import limits.
const (
	trainingDefaultLimit  = 50
	trainingMaxLimit      = 500
	trainingMaxOffset     = 1_000_000
	maxTrainingImportSize = 64 << 20
)

var defaultEmbedder = embed.NewLocal()

// embedder is the configured embedder, the local one by default.
func (s *Server) embedder() embed.Embedder {
	if s.cfg.Embedder != nil {
		return s.cfg.Embedder
	}
	return defaultEmbedder
}

// trainer writes training data with the configured embedder.
//
// trainer is the training-data store: the NL→SQL pipeline's when configured
// (its generator writes the question of a pair posted without one, as Vanna
// does), else one without a question writer (such pairs answer 400).
func (s *Server) trainer() *nlsql.Store {
	if s.cfg.Ask != nil && s.cfg.Ask.Store != nil {
		return s.cfg.Ask.Store
	}
	return &nlsql.Store{DB: s.db, Embedder: s.embedder()}
}

// createModel creates a named model (admins only).
func (s *Server) createModel(c *gin.Context) {
	var req nlsql.NewModel
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	var m nlsql.Model
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		m, err = nlsql.CreateModel(ctx, tx, req)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, m)
}

// listModels lists the tenant's models with their training counts.
func (s *Server) listModels(c *gin.Context) {
	var ms []nlsql.Model
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		ms, err = nlsql.ListModels(ctx, tx)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"models": ms})
}

// getModel returns one model by name.
func (s *Server) getModel(c *gin.Context) {
	var m nlsql.Model
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		m, err = nlsql.GetModel(ctx, tx, c.Param("name"))
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, m)
}

// deleteModel deletes a model and its training data (the seed's cleanup),
// reporting how many training rows went (admins only).
func (s *Server) deleteModel(c *gin.Context) {
	name := c.Param("name")
	var deleted nlsql.Counts
	err := s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		deleted, err = nlsql.DeleteModel(ctx, tx, name)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"model": name, "deleted": deleted})
}

// modelID resolves the :name path parameter (404 for an unknown name or
// another tenant's).
func (s *Server) modelID(c *gin.Context) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		id, err = nlsql.ModelID(ctx, tx, c.Param("name"))
		return err
	})
	return id, err
}

// trainingRequest is one training item: {kind:"ddl"|"documentation",
// content} or {kind:"sql", question, sql}.
type trainingRequest struct {
	Kind     string  `json:"kind"`
	Question *string `json:"question"`
	Content  *string `json:"content"`
	SQL      *string `json:"sql"`
}

func (r trainingRequest) item() (nlsql.NewItem, error) {
	it := nlsql.NewItem{Kind: r.Kind}
	if r.Question != nil {
		it.Question = *r.Question
	}
	switch r.Kind {
	case nlsql.KindSQL:
		switch {
		case r.SQL != nil && r.Content != nil:
			return it, apperr.Field("content", "give a pair's SQL as sql only")
		case r.SQL != nil:
			it.Content = *r.SQL
		case r.Content != nil:
			it.Content = *r.Content // Vanna's name for it
		}
	case nlsql.KindDDL, nlsql.KindDocumentation:
		if r.SQL != nil {
			return it, apperr.Field("sql", "only sql pairs have sql; give %s as content", r.Kind)
		}
		if r.Question != nil {
			return it, apperr.Field("question", "only sql pairs have a question")
		}
		if r.Content != nil {
			it.Content = *r.Content
		}
	}
	return it, nil
}

// addTrainingData adds one training item to a model, embedded on write
// (admins only). A pair's SQL must pass the sandbox validator.
func (s *Server) addTrainingData(c *gin.Context) {
	var req trainingRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	it, err := req.item()
	if err != nil {
		s.fail(c, err)
		return
	}
	modelID, err := s.modelID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	items, err := s.trainer().Add(c.Request.Context(), modelID, []nlsql.NewItem{it}, nlsql.SourceUser)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, items[0])
}

type trainingPage struct {
	Items      []nlsql.Item `json:"items"`
	Limit      int          `json:"limit"`
	Offset     int          `json:"offset"`
	NextOffset *int         `json:"next_offset"`
}

// listTrainingData pages through a model's training data, newest first,
// optionally of one kind or source.
func (s *Server) listTrainingData(c *gin.Context) {
	f := nlsql.ListFilter{Kind: c.Query("kind"), Source: c.Query("source")}
	var err error
	if f.Limit, err = queryInt(c, "limit", trainingDefaultLimit, 1, trainingMaxLimit); err != nil {
		s.fail(c, err)
		return
	}
	if f.Offset, err = queryInt(c, "offset", 0, 0, trainingMaxOffset); err != nil {
		s.fail(c, err)
		return
	}
	name := c.Param("name")
	page := trainingPage{Limit: f.Limit, Offset: f.Offset}
	err = s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		modelID, err := nlsql.ModelID(ctx, tx, name)
		if err != nil {
			return err
		}
		var more bool
		page.Items, more, err = nlsql.ListTrainingData(ctx, tx, modelID, f)
		if more {
			next := f.Offset + f.Limit
			page.NextOffset = &next
		}
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// deleteTrainingData deletes one item of a model (admins only). Another
// model's or tenant's id answers like an unknown one.
func (s *Server) deleteTrainingData(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		s.fail(c, apperr.Errorf(apperr.NotFound, "training data not found"))
		return
	}
	name := c.Param("name")
	err = s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		modelID, err := nlsql.ModelID(ctx, tx, name)
		if err != nil {
			return err
		}
		return nlsql.DeleteTrainingData(ctx, tx, modelID, id)
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// importTrainingData imports a Vanna get_training_data() export, CSV or
// JSON (admins only): all rows or none; a bad row is a 400 naming it.
func (s *Server) importTrainingData(c *gin.Context) {
	format := c.Query("format")
	if format == "" {
		mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
		switch mt {
		case "text/csv", "application/csv":
			format = "csv"
		case "application/json":
			format = "json"
		}
	}
	if format != "csv" && format != "json" {
		s.fail(c, apperr.Errorf(apperr.UnsupportedMedia, "send the export as text/csv or application/json (or set format=csv|json)"))
		return
	}
	limit := min(s.cfg.MaxImportBytes, maxTrainingImportSize)
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(c, apperr.Errorf(apperr.TooLarge, "the import exceeds %d bytes", tooLarge.Limit))
			return
		}
		s.fail(c, apperr.Wrap(apperr.Invalid, err, "could not read the request body"))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		s.fail(c, apperr.Errorf(apperr.Invalid, "request body is empty"))
		return
	}
	rows, err := nlsql.ParseVanna(bytes.NewReader(body), strings.ToLower(format))
	if err != nil {
		s.fail(c, err)
		return
	}
	modelID, err := s.modelID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.trainer().Import(c.Request.Context(), modelID, rows)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// trainFromCatalog writes DDL and documentation for every active table of
// the tenant's catalog, replacing what the previous run wrote (admins only).
func (s *Server) trainFromCatalog(c *gin.Context) {
	modelID, err := s.modelID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.trainer().TrainFromCatalog(c.Request.Context(), modelID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
