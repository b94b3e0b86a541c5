package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/conversation"
)

// conversations is the conversation service, or why there is none (it
// answers turns through the NL→SQL pipeline).
func (s *Server) conversations() (*conversation.Service, error) {
	if s.conv == nil {
		return nil, apperr.Errorf(apperr.Unavailable, "conversations need question answering, which is not configured (it needs DBCHAT_QUERY_DATABASE_URL)")
	}
	return s.conv, nil
}

type createConversationRequest struct {
	Model string `json:"model"`
	Title string `json:"title"`
}

func (s *Server) createConversation(c *gin.Context) (int, any, error) {
	svc, err := s.conversations()
	if err != nil {
		return 0, nil, err
	}
	req, err := bind[createConversationRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	d, err := svc.Create(c.Request.Context(), req.Model, req.Title)
	return reply(http.StatusCreated, d, err)
}

// listConversations pages through the caller's conversations (an admin's:
// the tenant's), newest activity first; ?archived=true|false filters.
func (s *Server) listConversations(c *gin.Context) (int, any, error) {
	svc, err := s.conversations()
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(c, "limit", 50, 1, 200)
	if err != nil {
		return 0, nil, err
	}
	archived, err := queryBool(c, "archived")
	if err != nil {
		return 0, nil, err
	}
	page, err := svc.List(c.Request.Context(), c.Query("cursor"), limit, archived)
	return reply(http.StatusOK, page, err)
}

func (s *Server) getConversation(c *gin.Context) (int, any, error) {
	svc, err := s.conversations()
	if err != nil {
		return 0, nil, err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	d, err := svc.Get(c.Request.Context(), id)
	return reply(http.StatusOK, d, err)
}

type updateConversationRequest struct {
	Title    *string `json:"title"`
	Archived *bool   `json:"archived"`
}

func (s *Server) updateConversation(c *gin.Context) (int, any, error) {
	svc, err := s.conversations()
	if err != nil {
		return 0, nil, err
	}
	id, req, err := pathIDAndBody[updateConversationRequest](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	d, err := svc.Update(c.Request.Context(), id, req.Title, req.Archived)
	return reply(http.StatusOK, d, err)
}

func (s *Server) deleteConversation(c *gin.Context) (int, any, error) {
	svc, err := s.conversations()
	if err != nil {
		return 0, nil, err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	return reply(http.StatusNoContent, nil, svc.Delete(c.Request.Context(), id))
}

type messageRequest struct {
	Question  string `json:"question"`
	ChartType string `json:"chart_type"`
}

// addMessage answers the conversation's next question; a refusal is the
// usual 422, recorded as a turn.
func (s *Server) addMessage(c *gin.Context) (int, any, error) {
	svc, err := s.conversations()
	if err != nil {
		return 0, nil, err
	}
	id, req, err := pathIDAndBody[messageRequest](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	r := ask.Request{Question: req.Question, ChartType: req.ChartType}
	if wantsStream(c) {
		return s.stream(c, func(ctx context.Context, progress func(ask.Stage, string)) (ask.Answer, map[string]any, error) {
			r.Progress = progress
			t, err := svc.Ask(ctx, id, r)
			return t.Answer, map[string]any{"id": t.ID, "position": t.Position, "resolved_question": t.ResolvedQuestion}, err
		})
	}
	t, err := svc.Ask(c.Request.Context(), id, r)
	return reply(http.StatusOK, t, err)
}
