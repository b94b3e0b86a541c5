package server

import (
	"context"
	"net/http"

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
	// ChartType is checked by the pipeline (chart.ParseType).
	ChartType string `json:"chart_type"`
}

// Validate bounds the row limit.
func (r *askRequest) Validate() error {
	if r.Limit != nil && (*r.Limit < 1 || *r.Limit > 10000) {
		return apperr.Field("limit", "must be from 1 to 10000")
	}
	return nil
}

// askService is the NL→SQL pipeline, or why there is none.
func (s *Server) askService(why string) (*ask.Service, error) {
	if s.cfg.Ask == nil {
		return nil, apperr.Errorf(apperr.Unavailable, "question answering is not configured%s", why)
	}
	return s.cfg.Ask, nil
}

// askQuestion answers a question with SQL (and rows, unless execute is
// false) through the NL→SQL pipeline.
func (s *Server) askQuestion(c *gin.Context) (int, any, error) {
	svc, err := s.askService(" (it needs DBCHAT_QUERY_DATABASE_URL)")
	if err != nil {
		return 0, nil, err
	}
	req, err := bind[askRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	r := ask.Request{Question: req.Question, Model: req.Model, Execute: req.Execute == nil || *req.Execute, ChartType: req.ChartType}
	if req.Limit != nil {
		r.Limit = *req.Limit
	}
	if wantsStream(c) {
		return s.stream(c, func(ctx context.Context, progress func(ask.Stage, string)) (ask.Answer, map[string]any, error) {
			r.Progress = progress
			a, err := svc.Ask(ctx, r)
			return a, nil, err
		})
	}
	a, err := svc.Ask(c.Request.Context(), r)
	return reply(http.StatusOK, a, err)
}

type feedbackRequest struct {
	Correct *bool   `json:"correct"`
	SQL     *string `json:"sql"`
}

// Validate requires the verdict.
func (r *feedbackRequest) Validate() error {
	if r.Correct == nil {
		return apperr.Field("correct", "is required")
	}
	return nil
}

// feedback confirms or corrects an answer. An admin's trains the model at
// once (201); a member's waits for an admin's review (202); feedback with
// nothing to train is only recorded (200).
func (s *Server) feedback(c *gin.Context) (int, any, error) {
	id, req, err := pathIDAndBody[feedbackRequest](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	svc, err := s.askService("")
	if err != nil {
		return 0, nil, err
	}
	res, err := svc.Feedback(c.Request.Context(), id, *req.Correct, req.SQL)
	switch {
	case res.Trained:
		return reply(http.StatusCreated, res, err)
	case res.Review != nil:
		return reply(http.StatusAccepted, res, err)
	}
	return reply(http.StatusOK, res, err)
}

// listFeedback pages through feedback in one review state (default
// pending), newest first: the admins' review queue; members see their own.
func (s *Server) listFeedback(c *gin.Context) (int, any, error) {
	svc, err := s.askService("")
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(c, "limit", historyDefaultLimit, 1, historyMaxLimit)
	if err != nil {
		return 0, nil, err
	}
	start, err := pageCursor(c)
	if err != nil {
		return 0, nil, err
	}
	items, err := svc.ListFeedback(c.Request.Context(), ask.FeedbackFilter{
		Status: c.DefaultQuery("status", ask.ReviewPending), BeforeAt: start.at, BeforeID: start.id, Limit: limit + 1})
	page := feedbackPage{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = historyCursor{at: last.GivenAt, id: last.HistoryID}.next()
	}
	return reply(http.StatusOK, page, err)
}

type reviewRequest struct {
	Decision string `json:"decision"`
}

// Validate accepts the two decisions.
func (r *reviewRequest) Validate() error {
	if r.Decision != "approve" && r.Decision != "reject" {
		return apperr.Field("decision", "must be approve or reject")
	}
	return nil
}

// reviewFeedback approves (trains) or rejects a member's pending feedback.
func (s *Server) reviewFeedback(c *gin.Context) (int, any, error) {
	id, req, err := pathIDAndBody[reviewRequest](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	svc, err := s.askService("")
	if err != nil {
		return 0, nil, err
	}
	f, err := svc.ReviewFeedback(c.Request.Context(), id, req.Decision == "approve")
	return reply(http.StatusOK, f, err)
}

// modelStats reports a model's training counts and how its questions fared.
func (s *Server) modelStats(c *gin.Context) (int, any, error) {
	name := c.Param("name")
	row, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (dbsqlc.ModelStatsRow, error) {
		id, err := nlsql.ModelID(ctx, tx, name)
		if err != nil {
			return dbsqlc.ModelStatsRow{}, err
		}
		return s.q.ModelStats(ctx, tx, &id)
	})
	return reply(http.StatusOK, toStatsJSON(name, row), err)
}
