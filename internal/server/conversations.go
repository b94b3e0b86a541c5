package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
)

// conversationsConfigured guards the conversation routes: turns are
// answered through the NL→SQL pipeline, which may not be configured.
func (s *Server) conversationsConfigured(*gin.Context) error {
	if s.conv == nil {
		return apperr.Errorf(apperr.Unavailable, "conversations need question answering, which is not configured (it needs DBCHAT_QUERY_DATABASE_URL)")
	}
	return nil
}

type createConversationRequest struct {
	Model string `json:"model"`
	Title string `json:"title"`
}

func (s *Server) createConversation(c *gin.Context) (int, any, error) {
	req, err := bind[createConversationRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	d, err := s.conv.Create(c.Request.Context(), req.Model, req.Title)
	return reply(http.StatusCreated, d, err)
}

// listConversations pages through the caller's conversations (an admin's:
// the tenant's), newest activity first; ?archived=true|false filters.
func (s *Server) listConversations(c *gin.Context) (int, any, error) {
	limit, err := queryInt(c, "limit", 50, 1, 200)
	if err != nil {
		return 0, nil, err
	}
	archived, err := queryBool(c, "archived")
	if err != nil {
		return 0, nil, err
	}
	page, err := s.conv.List(c.Request.Context(), c.Query("cursor"), limit, archived)
	return reply(http.StatusOK, page, err)
}

func (s *Server) getConversation(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	d, err := s.conv.Get(c.Request.Context(), id)
	return reply(http.StatusOK, d, err)
}

type updateConversationRequest struct {
	Title    *string `json:"title"`
	Archived *bool   `json:"archived"`
}

func (s *Server) updateConversation(c *gin.Context) (int, any, error) {
	id, req, err := pathIDAndBody[updateConversationRequest](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	d, err := s.conv.Update(c.Request.Context(), id, req.Title, req.Archived)
	return reply(http.StatusOK, d, err)
}

func (s *Server) deleteConversation(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	return reply(http.StatusNoContent, nil, s.conv.Delete(c.Request.Context(), id))
}

type messageRequest struct {
	Question  string `json:"question"`
	ChartType string `json:"chart_type"`
}

// addMessage answers the conversation's next question; a refusal is the
// usual 422, recorded as a turn.
func (s *Server) addMessage(c *gin.Context) (int, any, error) {
	id, req, err := pathIDAndBody[messageRequest](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	r := ask.Request{Question: req.Question, ChartType: req.ChartType}
	if wantsStream(c) {
		return s.stream(c, func(ctx context.Context, progress func(ask.Stage, string)) (ask.Answer, map[string]any, error) {
			r.Progress = progress
			t, err := s.conv.Ask(ctx, id, r)
			return t.Answer, map[string]any{"id": t.ID, "position": t.Position, "resolved_question": t.ResolvedQuestion}, err
		})
	}
	t, err := s.conv.Ask(c.Request.Context(), id, r)
	return reply(http.StatusOK, t, err)
}
