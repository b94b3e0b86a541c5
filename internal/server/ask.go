package server

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/tenant"
)

type askRequest struct {
	Question string `json:"question"`
	Model    string `json:"model"`
	Execute  *bool  `json:"execute"`
	Limit    *int   `json:"limit"`
}

// askQuestion answers a question with SQL (and rows, unless execute is
// false) through the NL→SQL pipeline.
func (s *Server) askQuestion(c *gin.Context) {
	if s.cfg.Ask == nil {
		s.fail(c, apperr.Errorf(apperr.Unavailable, "question answering is not configured (it needs DBCHAT_QUERY_DATABASE_URL)"))
		return
	}
	var req askRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	r := ask.Request{Question: req.Question, Model: req.Model, Execute: req.Execute == nil || *req.Execute}
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > 10000 {
			s.fail(c, apperr.Field("limit", "must be from 1 to 10000"))
			return
		}
		r.Limit = *req.Limit
	}
	a, err := s.cfg.Ask.Ask(c.Request.Context(), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

type feedbackRequest struct {
	Correct *bool   `json:"correct"`
	SQL     *string `json:"sql"`
}

// feedback turns a confirmed (or corrected) answer into a training pair of
// the model that produced it, as Vanna's auto-train does.
func (s *Server) feedback(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var req feedbackRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Correct == nil {
		s.fail(c, apperr.Field("correct", "is required"))
		return
	}
	if s.cfg.Ask == nil {
		s.fail(c, apperr.Errorf(apperr.Unavailable, "question answering is not configured"))
		return
	}
	ctx := c.Request.Context()
	ident, _ := tenant.FromContext(ctx)
	// Like history itself: members reach only their own entries.
	params := dbsqlc.GetQueryHistoryParams{ID: id}
	if ident.Role != tenant.Admin {
		params.UserID = &ident.UserID
	}
	var h dbsqlc.GetQueryHistoryRow
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		h, err = s.q.GetQueryHistory(ctx, tx, params)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	sql := h.GeneratedSql
	if req.SQL != nil {
		sql = req.SQL
	}
	if h.Question == nil || sql == nil || (!*req.Correct && req.SQL == nil) {
		c.JSON(http.StatusOK, gin.H{"trained": false})
		return
	}
	model := "default" // entries whose model was deleted train the default one
	if h.Model != nil {
		model = *h.Model
	}
	var modelID uuid.UUID
	if err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		modelID, err = nlsql.ModelID(ctx, tx, model)
		return err
	}); err != nil {
		s.fail(c, err)
		return
	}
	items, err := s.cfg.Ask.Store.Add(ctx, modelID, []nlsql.NewItem{{Kind: nlsql.KindSQL, Question: *h.Question, Content: *sql}}, "feedback")
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"trained": true, "training_data_id": items[0].ID})
}

type statsJSON struct {
	Model    string `json:"model"`
	Training struct {
		SQL           int64      `json:"sql"`
		DDL           int64      `json:"ddl"`
		Documentation int64      `json:"documentation"`
		LastTrained   *time.Time `json:"last_trained"`
	} `json:"training"`
	Questions   int64    `json:"questions"`
	Succeeded   int64    `json:"succeeded"`
	Failed      int64    `json:"failed"`
	Rejected    int64    `json:"rejected"`
	SuccessRate *float64 `json:"success_rate"`
	Latency     struct {
		GenerationP50 *float64 `json:"generation_p50_ms"`
		GenerationP95 *float64 `json:"generation_p95_ms"`
		ExecutionP50  *float64 `json:"execution_p50_ms"`
		ExecutionP95  *float64 `json:"execution_p95_ms"`
	} `json:"latency"`
}

// modelStats reports a model's training counts and how its questions fared.
func (s *Server) modelStats(c *gin.Context) {
	name := c.Param("name")
	var row dbsqlc.ModelStatsRow
	err := s.tx(c, func(ctx context.Context, tx tenant.Conn) error {
		id, err := nlsql.ModelID(ctx, tx, name)
		if err != nil {
			return err
		}
		row, err = s.q.ModelStats(ctx, tx, &id)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	var out statsJSON
	out.Model = name
	out.Training.SQL, out.Training.DDL, out.Training.Documentation = row.SqlItems, row.DdlItems, row.DocumentationItems
	if row.SqlItems+row.DdlItems+row.DocumentationItems > 0 {
		out.Training.LastTrained = &row.LastTrained
	}
	out.Questions, out.Succeeded, out.Failed, out.Rejected = row.Questions, row.Succeeded, row.Failed, row.Rejected
	if row.Questions > 0 {
		rate := float64(row.Succeeded) / float64(row.Questions)
		out.SuccessRate = &rate
	}
	out.Latency.GenerationP50, out.Latency.GenerationP95 = number(row.GenerationP50Ms), number(row.GenerationP95Ms)
	out.Latency.ExecutionP50, out.Latency.ExecutionP95 = number(row.ExecutionP50Ms), number(row.ExecutionP95Ms)
	c.JSON(http.StatusOK, out)
}

// number maps the query's NaN ("no data") to null.
func number(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}
