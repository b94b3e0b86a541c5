// Package conversation is multi-turn chat: a user's conversations with one
// model, each turn answered by the ask pipeline with the earlier turns
// (standalone questions and SQL, never rows) as context, so "and only for
// 2024?" refines the last answer.
//
// Who sees which conversation is PostgreSQL's decision, not this
// package's: tenant_isolation keeps a tenant's conversations to itself and
// the restrictive owner_or_admin policy (db/migrations/00009) keeps a
// member's to that member, an admin seeing all of the tenant's. Nothing here
// filters by user; another member's conversation is simply not found.
package conversation

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/usage"
)

// Limits.
const (
	MaxTitle = 200 // bytes of a title
	// ContextTurns is how many of the latest turns a new turn sees.
	ContextTurns = 5
)

// Service runs conversations for the tenant and user in the context.
type Service struct {
	db  *tenant.DB
	ask *ask.Service
	q   *dbsqlc.Queries
}

// New returns the service; asker answers each turn.
func New(db *tenant.DB, asker *ask.Service) *Service {
	return &Service{db: db, ask: asker, q: dbsqlc.New()}
}

// Conversation is one thread.
type Conversation struct {
	ID             uuid.UUID `json:"id"`
	UserID         uuid.UUID `json:"user_id"`
	Model          string    `json:"model"`
	Title          string    `json:"title"`
	Archived       bool      `json:"archived"`
	CreatedAt      time.Time `json:"created_at"`
	LastActivityAt time.Time `json:"last_activity_at"`
}

// Message is one recorded turn: no rows, only what produced them.
type Message struct {
	ID               uuid.UUID  `json:"id"`
	Position         int32      `json:"position"`
	Question         string     `json:"question"`
	ResolvedQuestion string     `json:"resolved_question"`
	SQL              *string    `json:"sql"`
	HistoryID        *uuid.UUID `json:"history_id"`
	Error            *string    `json:"error"`
	CreatedAt        time.Time  `json:"created_at"`
}

// Detail is a conversation with its turns, oldest first.
type Detail struct {
	Conversation
	Messages []Message `json:"messages"`
}

// Summary is a conversation in a listing, with its number of turns.
type Summary struct {
	Conversation
	Messages int64 `json:"messages"`
}

// Page is one page of a listing, newest activity first.
type Page struct {
	Items      []Summary `json:"items"`
	NextCursor *string   `json:"next_cursor"`
}

// Turn is the answer to a conversation's next question: the ask answer
// (SQL, rows, chart, summary, suggestions, history id…) with the turn's id,
// the question as typed and the standalone question it resolved to.
type Turn struct {
	ID               uuid.UUID `json:"id"`
	Position         int32     `json:"position"`
	Question         string    `json:"question"`
	ResolvedQuestion string    `json:"resolved_question"`
	ask.Answer
}

// Create starts a conversation with model (default "default").
func (s *Service) Create(ctx context.Context, model, title string) (Detail, error) {
	title, err := checkTitle(title)
	if err != nil {
		return Detail{}, err
	}
	if model == "" {
		model = "default"
	}
	var d Detail
	err = s.db.Tx(ctx, func(tx tenant.Conn) error {
		id, err := nlsql.ModelID(ctx, tx, model)
		if err != nil {
			return err
		}
		c, err := s.q.CreateConversation(ctx, tx, dbsqlc.CreateConversationParams{ModelID: id, Title: title})
		d = Detail{Conversation: Conversation{ID: c.ID, UserID: c.UserID, Model: model, Title: c.Title,
			CreatedAt: c.CreatedAt, LastActivityAt: c.LastActivityAt}, Messages: []Message{}}
		return err
	})
	return d, err
}

func checkTitle(title string) (string, error) {
	title = strings.TrimSpace(title)
	if len(title) > MaxTitle {
		return "", apperr.Field("title", "at most %d bytes", MaxTitle)
	}
	return title, nil
}

// Get returns a conversation with its turns.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Detail, error) {
	var d Detail
	err := s.db.Tx(ctx, func(tx tenant.Conn) error {
		var err error
		d, err = s.detail(ctx, tx, id)
		return err
	})
	return d, err
}

func (s *Service) detail(ctx context.Context, tx tenant.Conn, id uuid.UUID) (Detail, error) {
	c, err := s.q.GetConversation(ctx, tx, id)
	if err != nil {
		return Detail{}, notFound(err)
	}
	rows, err := s.q.ListMessages(ctx, tx, id)
	d := Detail{Conversation: Conversation{ID: c.ID, UserID: c.UserID, Model: c.Model, Title: c.Title, Archived: c.Archived,
		CreatedAt: c.CreatedAt, LastActivityAt: c.LastActivityAt}, Messages: make([]Message, len(rows))}
	for i, r := range rows {
		d.Messages[i] = Message{ID: r.ID, Position: r.Position, Question: r.Question, ResolvedQuestion: r.ResolvedQuestion,
			SQL: r.Sql, HistoryID: r.HistoryID, Error: r.Error, CreatedAt: r.CreatedAt}
	}
	return d, err
}

// notFound words a missing (or invisible) conversation; anything else is
// translated as usual.
func notFound(err error) error {
	if err = tenant.Translate(err); apperr.CodeOf(err) == apperr.NotFound {
		return apperr.Errorf(apperr.NotFound, "no such conversation")
	}
	return err
}

// Update changes the title or the archived flag (nil: unchanged).
func (s *Service) Update(ctx context.Context, id uuid.UUID, title *string, archived *bool) (Detail, error) {
	if title != nil {
		t, err := checkTitle(*title)
		if err != nil {
			return Detail{}, err
		}
		title = &t
	}
	var d Detail
	err := s.db.Tx(ctx, func(tx tenant.Conn) error {
		if _, err := s.q.UpdateConversation(ctx, tx, dbsqlc.UpdateConversationParams{ID: id, Title: title, Archived: archived}); err != nil {
			return notFound(err)
		}
		var err error
		d, err = s.detail(ctx, tx, id)
		return err
	})
	return d, err
}

// Delete removes a conversation and its turns (their history entries stay).
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	return s.db.Tx(ctx, func(tx tenant.Conn) error {
		n, err := s.q.DeleteConversation(ctx, tx, id)
		if err == nil && n == 0 {
			return apperr.Errorf(apperr.NotFound, "no such conversation")
		}
		return err
	})
}

// List returns one page of the conversations the caller may see.
func (s *Service) List(ctx context.Context, cursor string, limit int, archived *bool) (Page, error) {
	at, id, err := decodeCursor(cursor)
	if err != nil {
		return Page{}, err
	}
	var rows []dbsqlc.ListConversationsRow
	err = s.db.Tx(ctx, func(tx tenant.Conn) error {
		rows, err = s.q.ListConversations(ctx, tx, dbsqlc.ListConversationsParams{BeforeAt: at, BeforeID: id, Archived: archived, MaxRows: int32(limit + 1)})
		return err
	})
	page := Page{Items: []Summary{}}
	for i, r := range rows {
		if i == limit {
			next := encodeCursor(rows[i-1].LastActivityAt, rows[i-1].ID)
			page.NextCursor = &next
			break
		}
		page.Items = append(page.Items, Summary{Conversation: Conversation{ID: r.ID, UserID: r.UserID, Model: r.Model, Title: r.Title,
			Archived: r.Archived, CreatedAt: r.CreatedAt, LastActivityAt: r.LastActivityAt}, Messages: r.Messages})
	}
	return page, err
}

// farFuture is the first page's keyset position.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func encodeCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeCursor(s string) (time.Time, uuid.UUID, error) {
	if s == "" {
		return farFuture, uuid.Max, nil
	}
	bad := apperr.Field("cursor", "is not a cursor this endpoint returned")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	ts, idText, ok := strings.Cut(string(raw), "|")
	at, terr := time.Parse(time.RFC3339Nano, ts)
	id, ierr := uuid.Parse(idText)
	if !ok || terr != nil || ierr != nil {
		return time.Time{}, uuid.Nil, bad
	}
	return at, id, nil
}

// Ask answers the conversation's next question (req's Question, ChartType
// and Progress; the model and turns are the conversation's) and records the
// turn, a refused or failed one too, with its error. The turn sees the
// latest ContextTurns answered turns. Reading the conversation and recording
// the turn are one statement each; nothing is locked while the turn is
// answered.
func (s *Service) Ask(ctx context.Context, id uuid.UUID, req ask.Request) (Turn, error) {
	c, prior, err := s.forTurn(ctx, id)
	if err != nil {
		return Turn{}, err
	}
	turn := Turn{Question: strings.TrimSpace(req.Question)}
	req.Model, req.ModelID, req.Execute, req.Limit, req.Turns, req.Kind = c.Model, c.ModelID, true, 0, prior, usage.Conversation
	a, askErr := s.ask.Ask(ctx, req)
	switch {
	case askErr == nil:
		turn.Answer, turn.ResolvedQuestion = a, a.ResolvedQuestion
	case apperr.CodeOf(askErr) == apperr.Invalid: // a bad request: nothing was asked
		return Turn{}, askErr
	default: // refused, failed, or the generator down: the turn keeps its error
		turn.ResolvedQuestion = generate.Resolve(prior, turn.Question)
	}
	if err := s.record(ctx, id, &turn, askErr); err != nil {
		if askErr != nil {
			return Turn{}, askErr // the database is likely down too: the first error says why
		}
		return Turn{}, err
	}
	return turn, askErr
}

var errArchived = apperr.Errorf(apperr.Conflict, "the conversation is archived; unarchive it to continue")

// forTurn reads the conversation and its latest answered turns, oldest
// first, in one statement.
func (s *Service) forTurn(ctx context.Context, id uuid.UUID) (dbsqlc.ConversationForTurnRow, []generate.Turn, error) {
	var rows []dbsqlc.ConversationForTurnRow
	err := s.db.Once(ctx, func(tx tenant.Conn) error {
		var err error
		rows, err = s.q.ConversationForTurn(ctx, tx, dbsqlc.ConversationForTurnParams{ID: id, Turns: ContextTurns})
		return err
	})
	switch {
	case err != nil:
		return dbsqlc.ConversationForTurnRow{}, nil, err
	case len(rows) == 0:
		return dbsqlc.ConversationForTurnRow{}, nil, apperr.Errorf(apperr.NotFound, "no such conversation")
	case rows[0].Archived:
		return dbsqlc.ConversationForTurnRow{}, nil, errArchived
	}
	var prior []generate.Turn
	for _, r := range rows {
		if r.Sql != nil {
			prior = append(prior, generate.Turn{Question: r.ResolvedQuestion, SQL: *r.Sql})
		}
	}
	return rows[0], prior, nil
}

// record writes the turn at the conversation's next position, in one
// statement; a turn recorded at the same moment can take that position
// first, so a unique violation is retried. No row means the conversation
// was archived (409) or deleted (404) meanwhile.
func (s *Service) record(ctx context.Context, id uuid.UUID, t *Turn, askErr error) error {
	p := dbsqlc.RecordTurnParams{ConversationID: id, Question: t.Question, ResolvedQuestion: t.ResolvedQuestion}
	if askErr == nil {
		p.Sql, p.HistoryID = &t.SQL, &t.HistoryID
	} else {
		e := apperr.As(askErr)
		p.Error = &e.Message
		if h, ok := e.Details["history_id"].(uuid.UUID); ok {
			p.HistoryID = &h
		}
	}
	for attempt := 0; ; attempt++ {
		var m dbsqlc.RecordTurnRow
		err := s.db.Once(ctx, func(tx tenant.Conn) error {
			var err error
			m, err = s.q.RecordTurn(ctx, tx, p)
			return err
		})
		if apperr.CodeOf(err) == apperr.Conflict && attempt < 5 {
			continue // another turn took the position
		}
		if apperr.CodeOf(err) == apperr.NotFound {
			if _, err := s.Get(ctx, id); err != nil {
				return err
			}
			return errArchived
		}
		t.ID, t.Position = m.ID, m.Position
		return err
	}
}
