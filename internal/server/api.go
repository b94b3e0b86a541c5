package server

// The API's response types.
//
// The rule: sqlc row types never reach the wire. A response body is either
// a type declared in this file, converted from sqlc rows at the boundary by
// the to… functions below, or a domain package's own result type (ask.Answer,
// nlsql.Model, sandbox.Result, audit.Report, catalog.Rows…), whose JSON tags
// that package documents as API. Envelopes ({"tables": […]}) are gin.H.
// Renaming a column or a generated Go field therefore never changes the API,
// and openapi.yaml describes exactly these types.

import (
	"encoding/json"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/nlsql"
)

type tenantJSON struct {
	ID            uuid.UUID `json:"id"`
	Name          string    `json:"name"`
	Slug          string    `json:"slug"`
	IsActive      bool      `json:"is_active"`
	LLMDataAccess bool      `json:"llm_data_access"`
	CreatedAt     time.Time `json:"created_at"`
}

func toTenantJSON(t dbsqlc.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, Slug: t.Slug, IsActive: t.IsActive, LLMDataAccess: t.LlmDataAccess, CreatedAt: t.CreatedAt}
}

type userJSON struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Name  string    `json:"name"`
	Role  string    `json:"role"`
}

func toUserJSON(u dbsqlc.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role}
}

type apiKeyJSON struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	UserID     uuid.UUID  `json:"user_id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func toAPIKeyJSON(r dbsqlc.ListAPIKeysRow) apiKeyJSON {
	return apiKeyJSON{ID: r.ID, Name: r.Name, Prefix: r.Prefix, UserID: r.UserID,
		CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
}

// newAPIKeyJSON is a key just minted: the only response that carries the
// key itself.
type newAPIKeyJSON struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	UserID    uuid.UUID `json:"user_id"`
	APIKey    string    `json:"api_key"`
}

// tableJSON is a catalog table without its columns.
type tableJSON struct {
	TenantID    uuid.UUID  `json:"tenant_id"`
	ID          uuid.UUID  `json:"id"`
	UserID      *uuid.UUID `json:"user_id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	IsActive    bool       `json:"is_active"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func toTableJSON(t dbsqlc.DatabaseTable) tableJSON {
	return tableJSON{TenantID: t.TenantID, ID: t.ID, UserID: t.UserID, Name: t.Name, Description: t.Description,
		IsActive: t.IsActive, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// tableDetailJSON is a table with its columns and, when counted, its rows.
type tableDetailJSON struct {
	tableJSON
	Columns  []columnJSON `json:"columns"`
	RowCount *int64       `json:"row_count,omitempty"`
}

func toTableDetailJSON(t catalog.Table) tableDetailJSON {
	out := tableDetailJSON{tableJSON: toTableJSON(t.DatabaseTable), RowCount: t.RowCount}
	if t.Columns != nil {
		out.Columns = make([]columnJSON, len(t.Columns))
		for i, c := range t.Columns {
			out.Columns[i] = toColumnJSON(c)
		}
	}
	return out
}

// tableSummaryJSON is a table in the list: its column count, not columns.
type tableSummaryJSON struct {
	ID          uuid.UUID  `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	IsActive    bool       `json:"is_active"`
	UserID      *uuid.UUID `json:"user_id"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ColumnCount int32      `json:"column_count"`
}

func toTableSummaryJSON(r dbsqlc.ListTablesRow) tableSummaryJSON {
	return tableSummaryJSON{ID: r.ID, Name: r.Name, Description: r.Description, IsActive: r.IsActive,
		UserID: r.UserID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, ColumnCount: r.ColumnCount}
}

type columnJSON struct {
	TenantID    uuid.UUID `json:"tenant_id"`
	ID          uuid.UUID `json:"id"`
	TableID     uuid.UUID `json:"table_id"`
	Name        string    `json:"name"`
	DataType    string    `json:"data_type"`
	Description string    `json:"description"`
	IsNullable  bool      `json:"is_nullable"`
	Position    int32     `json:"position"`
	Restricted  bool      `json:"restricted"`
	CreatedAt   time.Time `json:"created_at"`
}

func toColumnJSON(c dbsqlc.DatabaseColumn) columnJSON {
	return columnJSON{TenantID: c.TenantID, ID: c.ID, TableID: c.TableID, Name: c.Name, DataType: c.DataType,
		Description: c.Description, IsNullable: c.IsNullable, Position: c.Position, Restricted: c.Restricted, CreatedAt: c.CreatedAt}
}

// rowsPage is a page of a table's rows (catalog.Preview) with its bounds.
type rowsPage struct {
	Columns []catalog.RowsColumn `json:"columns"`
	Limit   int                  `json:"limit"`
	Offset  int                  `json:"offset"`
	Rows    [][]json.RawMessage  `json:"rows"`
	// Truncated: the byte cap ended the page before limit rows.
	Truncated bool `json:"truncated"`
}

// historyItem is one query history entry.
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

func toHistoryItem(r dbsqlc.ListQueryHistoryRow) historyItem {
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

type feedbackPage struct {
	Items      []ask.Feedback `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

type trainingPage struct {
	Items      []nlsql.Item `json:"items"`
	Limit      int          `json:"limit"`
	Offset     int          `json:"offset"`
	NextOffset *int         `json:"next_offset"`
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

func toStatsJSON(name string, row dbsqlc.ModelStatsRow) statsJSON {
	out := statsJSON{Model: name, Questions: row.Questions, Succeeded: row.Succeeded, Failed: row.Failed, Rejected: row.Rejected}
	out.Training.SQL, out.Training.DDL, out.Training.Documentation = row.SqlItems, row.DdlItems, row.DocumentationItems
	if row.SqlItems+row.DdlItems+row.DocumentationItems > 0 {
		out.Training.LastTrained = &row.LastTrained
	}
	if row.Questions > 0 {
		rate := float64(row.Succeeded) / float64(row.Questions)
		out.SuccessRate = &rate
	}
	out.Latency.GenerationP50, out.Latency.GenerationP95 = number(row.GenerationP50Ms), number(row.GenerationP95Ms)
	out.Latency.ExecutionP50, out.Latency.ExecutionP95 = number(row.ExecutionP50Ms), number(row.ExecutionP95Ms)
	return out
}

// number maps the stats query's NaN ("no data") to null.
func number(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

// convert maps rows to API types; never nil, so an empty list is [].
func convert[R, T any](rows []R, to func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = to(r)
	}
	return out
}
