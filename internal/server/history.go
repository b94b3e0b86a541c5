package server

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// History paging limits.
const (
	historyDefaultLimit = 50
	historyMaxLimit     = 200
)

// historyStatuses are the values query_history.status may take.
var historyStatuses = []string{"pending", "success", "error", "rejected"}

// historyStart is the keyset position before every real entry, the first
// page's "before" bound; historyEpoch is the since bound when there is none.
// Always passing both keeps them index conditions (see ListQueryHistory).
var (
	historyStart = historyCursor{at: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), id: uuid.Max}
	historyEpoch = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

// historyItem is one query history entry as the API shows it.
type historyItem struct {
	ID           uuid.UUID  `json:"id"`
	UserID       *uuid.UUID `json:"user_id"`
	Model        *string    `json:"model"`
	Question     *string    `json:"question"`
	GeneratedSQL *string    `json:"generated_sql"`
	Status       string     `json:"status"`
	Error        *string    `json:"error"`
	RowCount     *int64     `json:"row_count"`
	GenerationMs *float64   `json:"generation_ms"`
	ExecutionMs  *float64   `json:"execution_ms"`
	CreatedAt    time.Time  `json:"created_at"`
}

func historyFromRow(r dbsqlc.ListQueryHistoryRow) historyItem {
	return historyItem{
		ID: r.ID, UserID: r.UserID, Model: r.Model, Question: r.Question, GeneratedSQL: r.GeneratedSql,
		Status: r.Status, Error: r.Error, RowCount: r.RowCount, GenerationMs: r.GenerationMs,
		ExecutionMs: r.ExecutionMs, CreatedAt: r.CreatedAt,
	}
}

type historyPage struct {
	Items      []historyItem `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

// historyCursor is a keyset position: the (created_at, id) of the last entry
// of a page. On the wire it is opaque: base64url of created_at in Unix
// microseconds (PostgreSQL's precision) and the id's 16 bytes.
type historyCursor struct {
	at time.Time
	id uuid.UUID
}

func (k historyCursor) encode() string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(k.at.UnixMicro()))
	copy(b[8:], k.id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeHistoryCursor(s string) (historyCursor, error) {
	malformed := apperr.Field("cursor", "malformed cursor: pass next_cursor from the previous page unchanged")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return historyCursor{}, malformed
	}
	at := time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	if at.Before(historyEpoch) || at.After(historyStart.at) {
		return historyCursor{}, malformed // beyond timestamptz's range
	}
	id, _ := uuid.FromBytes(b[8:])
	return historyCursor{at: at, id: id}, nil
}

// historyFilter reads and checks GET /v1/history's query parameters. Members
// only ever see their own entries: user_id is forced to theirs, and asking
// for another user's is refused (403) rather than answered with an empty
// list, so the caller learns the rule instead of a misleading "nothing".
func historyFilter(c *gin.Context, id tenant.Identity) (dbsqlc.ListQueryHistoryParams, error) {
	p := dbsqlc.ListQueryHistoryParams{BeforeAt: historyStart.at, BeforeID: historyStart.id, Since: historyEpoch}

	limit, err := queryInt(c, "limit", historyDefaultLimit, 1, historyMaxLimit)
	if err != nil {
		return p, err
	}
	// One extra row tells whether another page follows.
	p.MaxRows = int32(limit + 1)

	if v := c.Query("status"); v != "" {
		if !slices.Contains(historyStatuses, v) {
			return p, apperr.Field("status", "must be one of %v", historyStatuses)
		}
		p.Status = &v
	}
	if v := c.Query("model"); v != "" {
		p.Model = &v
	}
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return p, apperr.Field("since", "must be an RFC 3339 timestamp, e.g. 2024-01-02T15:04:05Z")
		}
		p.Since = t
	}
	if v := c.Query("user_id"); v != "" {
		u, err := uuid.Parse(v)
		if err != nil {
			return p, apperr.Field("user_id", "must be a UUID")
		}
		p.UserID = &u
	}
	if id.Role != tenant.Admin {
		if p.UserID != nil && *p.UserID != id.UserID {
			return p, apperr.Errorf(apperr.Forbidden, "members may only list their own history")
		}
		self := id.UserID
		p.UserID = &self
	}
	if v := c.Query("cursor"); v != "" {
		k, err := decodeHistoryCursor(v)
		if err != nil {
			return p, err
		}
		p.BeforeAt, p.BeforeID = k.at, k.id
	}
	return p, nil
}

// listHistory pages through the tenant's query history, newest first, in
// one statement (one round trip).
func (s *Server) listHistory(c *gin.Context) {
	id, _ := tenant.FromContext(c.Request.Context())
	p, err := historyFilter(c, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	var rows []dbsqlc.ListQueryHistoryRow
	filtered := p.Status != nil || p.UserID != nil || p.Model != nil
	if filtered {
		// The optional filters make PostgreSQL's generic plan for this
		// statement scan and sort a tenant's whole history; plan per call.
		c.Request = c.Request.WithContext(tenant.WithCustomPlans(c.Request.Context()))
	}
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		if filtered {
			rows, err = s.q.ListQueryHistory(ctx, tx, p)
			return err
		}
		recent, err := s.q.ListRecentHistory(ctx, tx, dbsqlc.ListRecentHistoryParams{
			BeforeAt: p.BeforeAt, BeforeID: p.BeforeID, Since: p.Since, MaxRows: p.MaxRows})
		for _, r := range recent {
			rows = append(rows, dbsqlc.ListQueryHistoryRow(r))
		}
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	page := historyPage{Items: make([]historyItem, 0, len(rows))}
	limit := int(p.MaxRows) - 1
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		next := historyCursor{at: last.CreatedAt, id: last.ID}.encode()
		page.NextCursor = &next
	}
	for _, r := range rows {
		page.Items = append(page.Items, historyFromRow(r))
	}
	c.JSON(http.StatusOK, page)
}

// getHistory returns one entry. Another tenant's id, a member asking for
// someone else's entry and an id that does not exist all get the same 404.
func (s *Server) getHistory(c *gin.Context) {
	hid, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	id, _ := tenant.FromContext(c.Request.Context())
	p := dbsqlc.GetQueryHistoryParams{ID: hid}
	if id.Role != tenant.Admin {
		self := id.UserID
		p.UserID = &self
	}
	var row dbsqlc.GetQueryHistoryRow
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		row, err = s.q.GetQueryHistory(ctx, tx, p)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, historyFromRow(dbsqlc.ListQueryHistoryRow(row)))
}
