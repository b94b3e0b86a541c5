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

// next is k as the next_cursor of a page that ends at k.
func (k historyCursor) next() *string {
	v := k.encode()
	return &v
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

	if err := historyFilters(c, &p); err != nil {
		return p, err
	}
	if p.UserID, err = ownHistoryOnly(id, p.UserID); err != nil {
		return p, err
	}
	start, err := pageCursor(c)
	p.BeforeAt, p.BeforeID = start.at, start.id
	return p, err
}

// historyFilters reads the optional status, model, since and user_id.
func historyFilters(c *gin.Context, p *dbsqlc.ListQueryHistoryParams) error {
	p.Model = optionalQuery(c, "model")
	if p.Status = optionalQuery(c, "status"); p.Status != nil && !slices.Contains(historyStatuses, *p.Status) {
		return apperr.Field("status", "must be one of %v", historyStatuses)
	}
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return apperr.Field("since", "must be an RFC 3339 timestamp, e.g. 2024-01-02T15:04:05Z")
		}
		p.Since = t
	}
	if v := c.Query("user_id"); v != "" {
		u, err := uuid.Parse(v)
		if err != nil {
			return apperr.Field("user_id", "must be a UUID")
		}
		p.UserID = &u
	}
	return nil
}

// ownHistoryOnly is the user_id filter a caller may use: any (or none) for
// admins, always their own for members.
func ownHistoryOnly(id tenant.Identity, asked *uuid.UUID) (*uuid.UUID, error) {
	if id.Role == tenant.Admin {
		return asked, nil
	}
	if asked != nil && *asked != id.UserID {
		return nil, apperr.Errorf(apperr.Forbidden, "members may only list their own history")
	}
	return &id.UserID, nil
}

// pageCursor reads a keyset page's cursor; without one the page starts
// before every entry.
func pageCursor(c *gin.Context) (historyCursor, error) {
	if v := c.Query("cursor"); v != "" {
		return decodeHistoryCursor(v)
	}
	return historyStart, nil
}

// listHistory pages through the tenant's query history, newest first, in
// one statement (one round trip).
func (s *Server) listHistory(c *gin.Context) (int, any, error) {
	p, err := historyFilter(c, callerIdentity(c))
	if err != nil {
		return 0, nil, err
	}
	rows, err := s.historyRows(c, p)
	page := historyPage{Items: make([]historyItem, 0, len(rows))}
	if limit := int(p.MaxRows) - 1; len(rows) > limit {
		rows = rows[:limit]
		page.NextCursor = historyCursor{at: rows[limit-1].CreatedAt, id: rows[limit-1].ID}.next()
	}
	for _, r := range rows {
		page.Items = append(page.Items, toHistoryItem(r))
	}
	return reply(http.StatusOK, page, err)
}

// historyRows runs the history query that fits p in one statement: the
// filtered one only when a filter is set, since its optional filters make
// PostgreSQL's generic plan scan and sort a tenant's whole history (so it
// is planned per call), and the unfiltered one otherwise.
func (s *Server) historyRows(c *gin.Context, p dbsqlc.ListQueryHistoryParams) ([]dbsqlc.ListQueryHistoryRow, error) {
	if p.Status != nil || p.UserID != nil || p.Model != nil {
		c.Request = c.Request.WithContext(tenant.WithCustomPlans(c.Request.Context()))
		return query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) ([]dbsqlc.ListQueryHistoryRow, error) {
			return s.q.ListQueryHistory(ctx, tx, p)
		})
	}
	recent, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) ([]dbsqlc.ListRecentHistoryRow, error) {
		return s.q.ListRecentHistory(ctx, tx, dbsqlc.ListRecentHistoryParams{
			BeforeAt: p.BeforeAt, BeforeID: p.BeforeID, Since: p.Since, MaxRows: p.MaxRows})
	})
	return convert(recent, func(r dbsqlc.ListRecentHistoryRow) dbsqlc.ListQueryHistoryRow { return dbsqlc.ListQueryHistoryRow(r) }), err
}

// getHistory returns one entry. Another tenant's id, a member asking for
// someone else's entry and an id that does not exist all get the same 404.
func (s *Server) getHistory(c *gin.Context) (int, any, error) {
	hid, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	p := dbsqlc.GetQueryHistoryParams{ID: hid}
	if id := callerIdentity(c); id.Role != tenant.Admin {
		p.UserID = &id.UserID
	}
	row, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.GetQueryHistoryRow, error) {
		return s.q.GetQueryHistory(ctx, tx, p)
	})
	return reply(http.StatusOK, toHistoryItem(dbsqlc.ListQueryHistoryRow(row)), err)
}
