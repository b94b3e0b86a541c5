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

// trainer is the training-data store: the NL→SQL pipeline's when configured
// (its generator writes the question of a pair posted without one, as Vanna
// does), else one with the configured embedder (the local one by default)
// and no question writer, so such pairs answer 400.
func trainer(db *tenant.DB, cfg Config) *nlsql.Store {
	if cfg.Ask != nil && cfg.Ask.Store != nil {
		return cfg.Ask.Store
	}
	if cfg.Embedder == nil {
		cfg.Embedder = embed.NewLocal()
	}
	return &nlsql.Store{DB: db, Embedder: cfg.Embedder}
}

// createModel creates a named model (admins only).
func (s *Server) createModel(c *gin.Context) (int, any, error) {
	req, err := bind[nlsql.NewModel](s, c)
	if err != nil {
		return 0, nil, err
	}
	m, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (nlsql.Model, error) {
		return nlsql.CreateModel(ctx, tx, req)
	})
	return reply(http.StatusCreated, m, err)
}

// listModels lists the tenant's models with their training counts.
func (s *Server) listModels(c *gin.Context) (int, any, error) {
	ms, err := query(c, s.db.Once, nlsql.ListModels)
	return reply(http.StatusOK, gin.H{"models": ms}, err)
}

// getModel returns one model by name.
func (s *Server) getModel(c *gin.Context) (int, any, error) {
	m, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (nlsql.Model, error) {
		return nlsql.GetModel(ctx, tx, c.Param("name"))
	})
	return reply(http.StatusOK, m, err)
}

// deleteModel deletes a model and its training data (the seed's cleanup),
// reporting how many training rows went (admins only).
func (s *Server) deleteModel(c *gin.Context) (int, any, error) {
	name := c.Param("name")
	deleted, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (nlsql.Counts, error) {
		return nlsql.DeleteModel(ctx, tx, name)
	})
	return reply(http.StatusOK, gin.H{"model": name, "deleted": deleted}, err)
}

// modelID resolves the :name path parameter (404 for an unknown name or
// another tenant's).
func (s *Server) modelID(c *gin.Context) (uuid.UUID, error) {
	return query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (uuid.UUID, error) {
		return nlsql.ModelID(ctx, tx, c.Param("name"))
	})
}

// trainingRequest is one training item: {kind:"ddl"|"documentation",
// content} or {kind:"sql", question, sql}.
type trainingRequest struct {
	Kind     string  `json:"kind"`
	Question *string `json:"question"`
	Content  *string `json:"content"`
	SQL      *string `json:"sql"`
	// Verified marks a pair as verified as it is written (admins vouch for
	// its SQL; evaluations use verified pairs as gold).
	Verified bool `json:"verified"`

	item nlsql.NewItem // set by Validate
}

// Validate maps the request onto an item, refusing fields its kind has not.
func (r *trainingRequest) Validate() error {
	r.item = nlsql.NewItem{Kind: r.Kind, Question: deref(r.Question), Content: deref(r.Content)}
	isSQL := r.Kind == nlsql.KindSQL
	switch {
	case isSQL && r.SQL != nil && r.Content != nil:
		return apperr.Field("content", "give a pair's SQL as sql only")
	case isSQL && r.SQL != nil:
		r.item.Content = *r.SQL // content is Vanna's name for it
	case r.Kind != nlsql.KindDDL && r.Kind != nlsql.KindDocumentation:
		// a pair, or a kind the store refuses by name
	case r.SQL != nil:
		return apperr.Field("sql", "only sql pairs have sql; give %s as content", r.Kind)
	case r.Verified:
		return apperr.Field("verified", "only sql pairs can be verified")
	case r.Question != nil:
		return apperr.Field("question", "only sql pairs have a question")
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// addTrainingData adds one training item to a model, embedded on write
// (admins only). A pair's SQL must pass the sandbox validator.
func (s *Server) addTrainingData(c *gin.Context) (int, any, error) {
	req, err := bind[trainingRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	modelID, err := s.modelID(c)
	if err != nil {
		return 0, nil, err
	}
	var then func(ctx context.Context, tx tenant.Conn, added []nlsql.Item) error
	if req.Verified {
		then = func(ctx context.Context, tx tenant.Conn, added []nlsql.Item) error {
			return nlsql.MarkVerified(ctx, tx, modelID, added)
		}
	}
	items, err := s.store.AddWith(c.Request.Context(), modelID, []nlsql.NewItem{req.item}, nlsql.SourceUser, then)
	s.trained(c, err)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, items[0], nil
}

// verificationPatch is PATCH .../training-data/{id}'s body.
type verificationPatch struct {
	Verified *bool `json:"verified"`
}

// Validate requires the one field.
func (p *verificationPatch) Validate() error {
	if p.Verified == nil {
		return apperr.Field("verified", "is required (true or false)")
	}
	return nil
}

// verifyTrainingData verifies or unverifies one pair of a model (admins
// only): a verified pair is gold for the model's evaluations.
func (s *Server) verifyTrainingData(c *gin.Context) (int, any, error) {
	id, p, err := pathIDAndBody[verificationPatch](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	item, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (nlsql.Item, error) {
		modelID, err := nlsql.ModelID(ctx, tx, c.Param("name"))
		if err != nil {
			return nlsql.Item{}, err
		}
		return nlsql.SetVerified(ctx, tx, modelID, id, *p.Verified)
	})
	return reply(http.StatusOK, item, err)
}

// listTrainingData pages through a model's training data, newest first,
// optionally of one kind or source.
func (s *Server) listTrainingData(c *gin.Context) (int, any, error) {
	f := nlsql.ListFilter{Kind: c.Query("kind"), Source: c.Query("source")}
	var err error
	if f.Limit, err = queryInt(c, "limit", trainingDefaultLimit, 1, trainingMaxLimit); err != nil {
		return 0, nil, err
	}
	if f.Offset, err = queryInt(c, "offset", 0, 0, trainingMaxOffset); err != nil {
		return 0, nil, err
	}
	page, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (trainingPage, error) {
		return listTrainingPage(ctx, tx, c.Param("name"), f)
	})
	return reply(http.StatusOK, page, err)
}

// listTrainingPage reads one page of the named model's training data.
func listTrainingPage(ctx context.Context, tx tenant.Conn, model string, f nlsql.ListFilter) (trainingPage, error) {
	page := trainingPage{Limit: f.Limit, Offset: f.Offset}
	modelID, err := nlsql.ModelID(ctx, tx, model)
	if err != nil {
		return page, err
	}
	var more bool
	page.Items, more, err = nlsql.ListTrainingData(ctx, tx, modelID, f)
	if more {
		next := f.Offset + f.Limit
		page.NextOffset = &next
	}
	return page, err
}

// deleteTrainingData deletes one item of a model (admins only). Another
// model's or tenant's id answers like an unknown one.
func (s *Server) deleteTrainingData(c *gin.Context) (int, any, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return 0, nil, apperr.Errorf(apperr.NotFound, "training data not found")
	}
	err = exec(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) error {
		modelID, err := nlsql.ModelID(ctx, tx, c.Param("name"))
		if err != nil {
			return err
		}
		return nlsql.DeleteTrainingData(ctx, tx, modelID, id)
	})
	return reply(http.StatusNoContent, nil, err)
}

// importTrainingData imports a Vanna get_training_data() export, CSV or
// JSON (admins only): all rows or none; a bad row is a 400 naming it.
func (s *Server) importTrainingData(c *gin.Context) (int, any, error) {
	rows, err := s.vannaRows(c)
	if err != nil {
		return 0, nil, err
	}
	modelID, err := s.modelID(c)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.store.Import(c.Request.Context(), modelID, rows)
	s.trained(c, err)
	return reply(http.StatusOK, res, err)
}

// vannaRows reads and parses an import body: its format from ?format= or
// the Content-Type, its size capped.
func (s *Server) vannaRows(c *gin.Context) ([]nlsql.VannaRow, error) {
	format, err := vannaFormat(c)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, min(s.cfg.MaxImportBytes, maxTrainingImportSize)))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, apperr.Errorf(apperr.TooLarge, "the import exceeds %d bytes", tooLarge.Limit)
	case err != nil:
		return nil, apperr.Wrap(apperr.Invalid, err, "could not read the request body")
	case len(bytes.TrimSpace(body)) == 0:
		return nil, apperr.Errorf(apperr.Invalid, "request body is empty")
	}
	return nlsql.ParseVanna(bytes.NewReader(body), strings.ToLower(format))
}

// vannaFormat is an import's format: ?format=, else from the Content-Type.
func vannaFormat(c *gin.Context) (string, error) {
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
		return "", apperr.Errorf(apperr.UnsupportedMedia, "send the export as text/csv or application/json (or set format=csv|json)")
	}
	return format, nil
}

// trainFromCatalog writes DDL and documentation for every active table of
// the tenant's catalog, replacing what the previous run wrote (admins only).
func (s *Server) trainFromCatalog(c *gin.Context) (int, any, error) {
	modelID, err := s.modelID(c)
	if err != nil {
		return 0, nil, err
	}
	res, err := s.store.TrainFromCatalog(c.Request.Context(), modelID)
	s.trained(c, err)
	return reply(http.StatusOK, res, err)
}
