// Package sandbox runs untrusted SQL (an LLM's, or a user's) for a tenant:
// layer 1 (internal/sqlguard) parses and allowlists it, layer 2
// (tenant.Sandbox) executes it as dbchat_query in a read-only transaction
// under the same RLS policy, with time, row and byte caps. Every call is
// written to query_history as success, error or rejected.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Limits and their defaults.
const (
	DefaultMaxRows  = 1000
	MaxMaxRows      = 10000
	DefaultTimeout  = 5 * time.Second
	MaxTimeout      = 30 * time.Second
	DefaultMaxBytes = 4 << 20
)

// Service is the one path every generated or typed statement takes.
type Service struct {
	db       *tenant.DB
	box      *tenant.Sandbox
	maxBytes int
	// skipParser turns layer 1 off. Only tests set it (SkipParserForTests),
	// to show the database layer alone holds.
	skipParser bool
}

// New builds the service over the runtime DB (catalog, history) and the
// sandbox (execution).
func New(db *tenant.DB, box *tenant.Sandbox) *Service {
	return &Service{db: db, box: box, maxBytes: DefaultMaxBytes}
}

// SkipParserForTests disables the SQL validator. Never call it outside tests.
func (s *Service) SkipParserForTests() { s.skipParser = true }

// Request is one statement to run.
type Request struct {
	SQL       string
	MaxRows   int           // 0: DefaultMaxRows
	Timeout   time.Duration // 0: DefaultTimeout
	Question  *string       // set by the NL→SQL path
	ModelID   *uuid.UUID
	GenTimeMS *float64
	// Policy is layer 1's policy when the caller has read it already, in
	// a tenant transaction of the same request (PolicyBatch), to spare
	// Run the round trip; nil: Run reads it.
	Policy *sqlguard.Policy
}

// Column describes a result column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result is a finished statement.
type Result struct {
	Columns   []Column            `json:"columns"`
	Rows      [][]json.RawMessage `json:"rows"`
	RowCount  int                 `json:"row_count"`
	Truncated bool                `json:"truncated"`
	ElapsedMS float64             `json:"elapsed_ms"`
	HistoryID uuid.UUID           `json:"history_id"`
	// Security is the statement's receipt: who it ran for, as which
	// database role, under which row policies.
	Security Security `json:"security"`
	// Tree is layer 1's parse of the statement (nil when the parser is
	// skipped), for callers that read it too (interpret.DescribeTree);
	// read it, never change it.
	Tree *pg_query.ParseResult `json:"-"`
}

// Run validates and executes req for the tenant in ctx and records it.
func (s *Service) Run(ctx context.Context, req Request) (Result, error) {
	id, ok := tenant.FromContext(ctx)
	if !ok {
		return Result{}, apperr.Errorf(apperr.Internal, "sandbox without identity")
	}
	req = withDefaults(req)
	tree, err := s.validate(ctx, req.SQL, req.Policy)
	if err != nil {
		var rej *sqlguard.Rejection
		if !errors.As(err, &rej) {
			return Result{}, err
		}
		hid, herr := s.record(ctx, req, "rejected", rej.Reason, nil, nil)
		return Result{}, withHistory(apperr.Errorf(apperr.SQLRejected, "%s", rej.Reason), hid, herr)
	}
	start := time.Now()
	res, err := s.execute(ctx, id.TenantID, req)
	res.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		var box *apperr.Error
		if errors.As(err, &box) && (box.Code == apperr.Overloaded || box.Code == apperr.Unavailable) {
			// The box refused or gave up (overloaded, cancelled, the
			// database lost): its message is the client's and the
			// history's. A server error beneath it (a FATAL while
			// connecting) is not the statement's.
			hid, herr := s.record(ctx, req, "error", box.Message, nil, &res.ElapsedMS)
			return Result{}, withHistory(box, hid, herr)
		}
		// Cut after hiding: a cut through another tenant's schema name
		// would leave a prefix the pattern no longer finds.
		msg := cut(hideSchemas(err, dbMessage(err), tenant.Schema(id.TenantID)), MaxMessageBytes)
		hid, herr := s.record(ctx, req, "error", msg, nil, &res.ElapsedMS)
		if msg == "" {
			return Result{}, errors.Join(err, herr)
		}
		return Result{}, withHistory(apperr.Errorf(apperr.SQLFailed, "%s", msg), hid, herr)
	}
	// The receipt's policies are read in the history write's round trip.
	sec, reads := s.security(id, req.SQL, tree)
	n := int64(res.RowCount)
	res.HistoryID, err = s.record(ctx, req, "success", "", &n, &res.ElapsedMS, reads)
	res.Security, res.Tree = *sec, tree
	return res, err
}

func withDefaults(req Request) Request {
	if req.MaxRows <= 0 {
		req.MaxRows = DefaultMaxRows
	}
	req.MaxRows = min(req.MaxRows, MaxMaxRows)
	if req.Timeout <= 0 {
		req.Timeout = DefaultTimeout
	}
	req.Timeout = min(req.Timeout, MaxTimeout)
	return req
}

// validate runs layer 1 against the tenant's current tables (p, or read
// now when nil) and returns the accepted statement's parse tree (nil when
// the parser is skipped).
func (s *Service) validate(ctx context.Context, sql string, p *sqlguard.Policy) (*pg_query.ParseResult, error) {
	if s.skipParser {
		return nil, nil
	}
	if p == nil {
		id, _ := tenant.FromContext(ctx)
		var read sqlguard.Policy
		err := s.db.Once(ctx, func(tx tenant.Conn) error {
			var err error
			read, err = TenantPolicy(ctx, tx, id.TenantID)
			return err
		})
		if err != nil {
			return nil, err
		}
		p = &read
	}
	return sqlguard.Inspect(sql, *p)
}

// TenantPolicy is layer 1's policy for a tenant: its data schema and the
// tables and columns of its catalog, read with one statement in tx (the
// caller's tenant transaction). Code that stores SQL for later runs (NL->SQL
// training pairs) checks it with sqlguard.Check and this policy, exactly as
// Run does.
func TenantPolicy(ctx context.Context, tx dbsqlc.DBTX, tenantID uuid.UUID) (sqlguard.Policy, error) {
	tables, err := dbsqlc.New().ListTableColumns(ctx, tx)
	if err != nil {
		return sqlguard.Policy{}, err
	}
	return policyOf(tenantID, tables), nil
}

// PolicyBatch is a batch that reads TenantPolicy's policy into p, for a
// caller that sends it along with its own statements (tenant.Conn.Defer)
// and hands p to Run (Request.Policy).
func PolicyBatch(tenantID uuid.UUID, p *sqlguard.Policy) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(dbsqlc.ListTableColumns).Query(func(rows pgx.Rows) error {
		tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dbsqlc.ListTableColumnsRow])
		*p = policyOf(tenantID, tables)
		return err
	})
	return b
}

func policyOf(tenantID uuid.UUID, tables []dbsqlc.ListTableColumnsRow) sqlguard.Policy {
	p := sqlguard.Policy{
		Schema:  tenant.Schema(tenantID),
		Tables:  make(map[string]bool, len(tables)),
		Columns: make(map[string]map[string]bool, len(tables)),
	}
	for _, t := range tables {
		p.Tables[t.Name] = true
		cols := map[string]bool{"tenant_id": true, "_row_id": true}
		for _, c := range t.Columns {
			cols[c] = true
		}
		p.Columns[t.Name] = cols
	}
	return p
}

// execute runs layer 2 and encodes rows as they stream in, within the row
// and byte caps.
func (s *Service) execute(ctx context.Context, tenantID uuid.UUID, req Request) (Result, error) {
	res := Result{Columns: []Column{}, Rows: [][]json.RawMessage{}}
	lim := tenant.Limits{MaxRows: req.MaxRows, Timeout: req.Timeout}
	err := s.box.Query(ctx, tenantID, req.SQL, lim, func(rows pgx.Rows) error {
		fields := rows.FieldDescriptions()
		for _, f := range fields {
			res.Columns = append(res.Columns, Column{Name: f.Name, Type: typeName(f.DataTypeOID)})
		}
		size := 0
		for rows.Next() {
			if len(res.Rows) == req.MaxRows {
				res.Truncated = true
				break
			}
			raw := rows.RawValues()
			row := make([]json.RawMessage, len(raw))
			for i, v := range raw {
				row[i] = encode(fields[i].DataTypeOID, v)
				size += len(row[i]) + 1
			}
			if size > s.maxBytes {
				res.Truncated = true
				break
			}
			res.Rows = append(res.Rows, row)
		}
		return rows.Err()
	})
	if errors.Is(err, tenant.ErrRowTooLarge) {
		// A row larger than the sandbox's message cap could never fit in
		// the response: it ends the result as the byte cap would, without
		// having been read into memory.
		res.Truncated, err = true, nil
	}
	res.RowCount = len(res.Rows)
	return res, err
}

// record writes the statement's outcome to query_history (runtime role, the
// caller's tenant transaction), after the reads in also (nil: none) in the
// same round trip.
func (s *Service) record(ctx context.Context, req Request, status, msg string, rows *int64, execMS *float64, also ...*pgx.Batch) (uuid.UUID, error) {
	var errText *string
	if msg != "" {
		errText = &msg
	}
	var sql *string
	if req.SQL != "" {
		sql = &req.SQL
	}
	var h dbsqlc.QueryHistory
	err := s.db.Once(ctx, func(tx tenant.Conn) error {
		for _, b := range also {
			if b != nil {
				tx.Defer(b)
			}
		}
		var err error
		h, err = dbsqlc.New().CreateQueryHistory(ctx, tx, dbsqlc.CreateQueryHistoryParams{
			ModelID: req.ModelID, Question: req.Question, GeneratedSql: sql, Status: status,
			Error: errText, RowCount: rows, GenerationMs: req.GenTimeMS, ExecutionMs: execMS})
		return err
	})
	return h.ID, err
}

// MaxMessageBytes bounds a database message the sandbox passes on: in the
// error answered, and in the history entry, conversation turn and
// evaluation result that keep it. A message may quote a value ("invalid
// input syntax for type integer: "…""), and a value may be megabytes: a
// member's statement casting a 2 MB text made a 2 MB answer and a 2 MB
// history entry, 800 MB for a page of 200.
const MaxMessageBytes = 2048

// dbMessage is the database's message for a failed statement ("" if the
// failure was not the statement's, e.g. a lost connection).
func dbMessage(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if pg.Code == "57014" {
			return "canceling statement due to statement timeout"
		}
		return pg.Message
	}
	return ""
}

// cut shortens s to at most max bytes, at a character boundary, marking the
// cut with an ellipsis.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	end := max - len(mark)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + mark
}

// tenantSchema matches the name of any tenant's data schema.
var tenantSchema = regexp.MustCompile(`t_[0-9a-f]{32}`)

// notYourSchema is the one answer for every schema but the caller's, so that
// errors do not tell whether another tenant's schema exists ("permission
// denied for schema t_…" against "schema t_… does not exist").
const notYourSchema = "only your own tables and the built-in functions and types can be used"

// hideSchemas replaces a database message that names another tenant's
// schema, or says a schema does not exist, with notYourSchema.
func hideSchemas(err error, msg, own string) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "3F000" { // invalid_schema_name
		return notYourSchema
	}
	for _, name := range tenantSchema.FindAllString(msg, -1) {
		if name != own {
			return notYourSchema
		}
	}
	return msg
}

func withHistory(e *apperr.Error, historyID uuid.UUID, herr error) error {
	if herr != nil {
		return errors.Join(e, herr)
	}
	e.Details = map[string]any{"history_id": historyID}
	return e
}

// Validate runs layer 1 only: a *sqlguard.Rejection wrapped as an
// apperr.SQLRejected error, or nil.
func (s *Service) Validate(ctx context.Context, sql string) error {
	_, err := s.validate(ctx, sql, nil)
	var rej *sqlguard.Rejection
	if errors.As(err, &rej) {
		return apperr.Errorf(apperr.SQLRejected, "%s", rej.Reason)
	}
	return err
}

// Record writes a history entry for a statement that was not executed
// (generated but refused, or validated only): status rejected or pending.
func (s *Service) Record(ctx context.Context, req Request, status, msg string) (uuid.UUID, error) {
	return s.record(ctx, req, status, msg, nil, nil)
}

// FindValues reports which of values table.column of the tenant in ctx
// holds, with one statement (SELECT EXISTS (… WHERE column = 'v1'),
// EXISTS (… = 'v2'), …: each stops at its first match, and uses only the
// column's equality operator): the offline generator uses it to turn names
// in a question into filters. It runs in the same box as any statement,
// counts toward the tenant's share of the sandbox, and is not recorded in
// history.
func (s *Service) FindValues(ctx context.Context, table, column string, values []string) ([]string, error) {
	id, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, apperr.Errorf(apperr.Internal, "sandbox without identity")
	}
	if len(values) == 0 {
		return nil, nil
	}
	from := ` FROM ` + pgx.Identifier{table}.Sanitize() + ` WHERE ` + pgx.Identifier{column}.Sanitize() + ` = `
	var sql strings.Builder
	sql.WriteString(`SELECT `)
	for i, v := range values {
		if i > 0 {
			sql.WriteString(`, `)
		}
		sql.WriteString(`EXISTS (SELECT 1` + from + `'` + strings.ReplaceAll(v, "'", "''") + `')`)
	}
	var found []string
	err := s.box.Query(ctx, id.TenantID, sql.String(), tenant.Limits{MaxRows: 1, Timeout: time.Second}, func(rows pgx.Rows) error {
		if rows.Next() {
			for i, v := range rows.RawValues() {
				if string(v) == "t" {
					found = append(found, values[i])
				}
			}
		}
		return rows.Err()
	})
	return found, err
}
