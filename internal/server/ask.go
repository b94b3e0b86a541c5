package server

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

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

// feedback confirms or corrects an answer. An admin's trains the model at
// once (201); a member's waits for an admin's review (202); feedback with
// nothing to train is only recorded (200).
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
	res, err := s.cfg.Ask.Feedback(c.Request.Context(), id, *req.Correct, req.SQL)
	switch {
	case err != nil:
		s.fail(c, err)
	case res.Trained:
		c.JSON(http.StatusCreated, res)
	case res.Review != nil:
		c.JSON(http.StatusAccepted, res)
	default:
		c.JSON(http.StatusOK, res)
	}
}

type feedbackPage struct {
	Items      []ask.Feedback `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

// listFeedback pages through feedback in one review state (default
// pending), newest first: the admins' review queue; members see their own.
func (s *Server) listFeedback(c *gin.Context) {
	if s.cfg.Ask == nil {
		s.fail(c, apperr.Errorf(apperr.Unavailable, "question answering is not configured"))
		return
	}
	f := ask.FeedbackFilter{Status: c.DefaultQuery("status", ask.ReviewPending), BeforeAt: historyStart.at, BeforeID: historyStart.id}
	limit, err := queryInt(c, "limit", historyDefaultLimit, 1, historyMaxLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	f.Limit = limit + 1 // one extra row tells whether another page follows
	if v := c.Query("cursor"); v != "" {
		k, err := decodeHistoryCursor(v)
		if err != nil {
			s.fail(c, err)
			return
		}
		f.BeforeAt, f.BeforeID = k.at, k.id
	}
	items, err := s.cfg.Ask.ListFeedback(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	page := feedbackPage{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		next := historyCursor{at: last.GivenAt, id: last.HistoryID}.encode()
		page.NextCursor = &next
	}
	c.JSON(http.StatusOK, page)
}

type reviewRequest struct {
	Decision string `json:"decision"`
}

// reviewFeedback approves (trains) or rejects a member's pending feedback.
func (s *Server) reviewFeedback(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var req reviewRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Decision != "approve" && req.Decision != "reject" {
		s.fail(c, apperr.Field("decision", "must be approve or reject"))
		return
	}
	if s.cfg.Ask == nil {
		s.fail(c, apperr.Errorf(apperr.Unavailable, "question answering is not configured"))
		return
	}
	f, err := s.cfg.Ask.ReviewFeedback(c.Request.Context(), id, req.Decision == "approve")
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, f)
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
