package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/evaluate"
	"github.com/dbchat/dbchat/internal/tenant"
)

// evaluator is the evaluation service over the NL→SQL pipeline (503
// without one). Its canary erases its throwaway tenant on cfg.Privileged;
// without it the canary is skipped, with the reason in the run.
func (s *Server) evaluator() (*evaluate.Service, error) {
	svc, err := s.askService(" (evaluations ask through it; it needs DBCHAT_QUERY_DATABASE_URL)")
	if err != nil {
		return nil, err
	}
	return &evaluate.Service{DB: s.db, Ask: svc, Privileged: s.cfg.Privileged}, nil
}

// createEvaluation runs the model over its verified pairs, leave-one-out,
// with the leakage canary, and records the run (admins only). It runs
// within the request: a client that goes away cancels it.
func (s *Server) createEvaluation(c *gin.Context) (int, any, error) {
	svc, err := s.evaluator()
	if err != nil {
		return 0, nil, err
	}
	run, err := svc.Evaluate(c.Request.Context(), c.Param("name"))
	return reply(http.StatusCreated, run, err)
}

// listEvaluations lists the model's runs, newest first: the trend.
func (s *Server) listEvaluations(c *gin.Context) (int, any, error) {
	runs, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) ([]evaluate.Run, error) {
		return evaluate.List(ctx, tx, c.Param("name"))
	})
	return reply(http.StatusOK, gin.H{"evaluations": runs}, err)
}

// getEvaluation returns one run with its per-question outcomes.
func (s *Server) getEvaluation(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	run, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (evaluate.Run, error) {
		return evaluate.Get(ctx, tx, c.Param("name"), id)
	})
	return reply(http.StatusOK, run, err)
}
