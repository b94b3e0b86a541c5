package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/tenant"
)

// planRun is one EXPLAIN of a prepared statement: its arguments and, for
// dbchat_app, the tenant context to set first.
type planRun struct {
	id   *tenant.Identity
	args []any
}

// explainAsRun shows the plans PostgreSQL runs for sql the way the service
// sends it: as a prepared statement (pgx caches statements), so that after
// five executions the plan cache may switch to a generic plan. It prepares
// sql, executes it six times with the first run's arguments, then returns
// EXPLAIN (opts) EXECUTE for every run, in one rolled-back transaction on a
// fresh connection. custom forces custom plans (plan_cache_mode) instead.
func explainAsRun(ctx context.Context, connURL, sql string, runs []planRun, opts string, custom bool) ([]string, error) {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "ROLLBACK") }()
	setTenant := func(id *tenant.Identity) error {
		if id == nil {
			return nil
		}
		_, err := conn.Exec(ctx, setContext, id.TenantID.String(), id.UserID.String())
		return err
	}
	if custom {
		if _, err := conn.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan"); err != nil {
			return nil, err
		}
	}
	if _, err := conn.Exec(ctx, "PREPARE bench_stmt AS "+sql); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	execute := func(args []any) (string, error) {
		if len(args) == 0 {
			return "EXECUTE bench_stmt", nil
		}
		lits := make([]string, len(args))
		for i, a := range args {
			l, err := sqlLiteral(a)
			if err != nil {
				return "", err
			}
			lits[i] = l
		}
		return "EXECUTE bench_stmt(" + strings.Join(lits, ", ") + ")", nil
	}
	first, err := execute(runs[0].args)
	if err != nil {
		return nil, err
	}
	if err := setTenant(runs[0].id); err != nil {
		return nil, err
	}
	for range 6 {
		if _, err := conn.Exec(ctx, first, pgx.QueryExecModeSimpleProtocol); err != nil {
			return nil, fmt.Errorf("execute: %w", err)
		}
	}
	var out []string
	for _, r := range runs {
		if err := setTenant(r.id); err != nil {
			return nil, err
		}
		stmt, err := execute(r.args)
		if err != nil {
			return nil, err
		}
		rows, err := conn.Query(ctx, "EXPLAIN ("+opts+") "+stmt, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return out, nil
}

// sqlLiteral renders an argument the way the service binds it, for EXECUTE.
func sqlLiteral(v any) (string, error) {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return q(x), nil
	case *string:
		if x == nil {
			return "NULL", nil
		}
		return q(*x), nil
	case uuid.UUID:
		return q(x.String()), nil
	case *uuid.UUID:
		if x == nil {
			return "NULL", nil
		}
		return q(x.String()), nil
	case time.Time:
		return q(x.UTC().Format("2006-01-02 15:04:05.999999Z07:00")), nil
	case *time.Time:
		if x == nil {
			return "NULL", nil
		}
		return q(x.UTC().Format("2006-01-02 15:04:05.999999Z07:00")), nil
	case []byte:
		return q(`\x` + hex.EncodeToString(x)), nil
	case int:
		return strconv.Itoa(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return "", fmt.Errorf("no SQL literal for %T", v)
}

var (
	planningTime  = regexp.MustCompile(`Planning Time: ([0-9.]+) ms`)
	executionTime = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)
)

// planMicros is a plan's planning + execution time, in µs.
func planMicros(plan string) float64 {
	var total float64
	for _, re := range []*regexp.Regexp{planningTime, executionTime} {
		if m := re.FindStringSubmatch(plan); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			total += v * 1000
		}
	}
	return total
}

// planShape is a plan's node lines without timings, literals or
// properties: two plans with the same shape use the same strategy.
func planShape(plan string) string {
	var nodes []string
	for _, line := range strings.Split(plan, "\n") {
		l := strings.TrimSpace(line)
		l = strings.TrimSpace(strings.TrimPrefix(l, "->"))
		head, _, _ := strings.Cut(l, " (")
		if head == "" || strings.Contains(head, ":") {
			continue
		}
		nodes = append(nodes, head)
	}
	return strings.Join(nodes, "\n")
}

// stmtCapture records the statements a pool runs (a pgx tracer), each with
// the arguments it was first seen with, while on.
type stmtCapture struct {
	on    atomic.Bool
	mu    sync.Mutex
	label string
	seen  map[string]bool
	stmts []capturedStmt
}

type capturedStmt struct {
	label string
	sql   string
	args  []any
}

func (c *stmtCapture) start(label string) {
	c.mu.Lock()
	c.label = label
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.mu.Unlock()
	c.on.Store(true)
}

func (c *stmtCapture) stop() { c.on.Store(false) }

func (c *stmtCapture) record(sql string, args []any) {
	if !c.on.Load() || sql == setContext || sql == "BEGIN" || sql == "COMMIT" || sql == "ROLLBACK" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := c.label + "\x00" + sql
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.stmts = append(c.stmts, capturedStmt{label: c.label, sql: sql, args: append([]any(nil), args...)})
}

func (c *stmtCapture) forLabel(label string) []capturedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []capturedStmt
	for _, s := range c.stmts {
		if s.label == label {
			out = append(out, s)
		}
	}
	return out
}

func (c *stmtCapture) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.record(d.SQL, d.Args)
	return ctx
}

func (c *stmtCapture) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *stmtCapture) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *stmtCapture) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.record(d.SQL, d.Args)
}

func (c *stmtCapture) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// stripSQLCName drops sqlc's "-- name: …" line.
func stripSQLCName(sql string) string {
	s := strings.TrimSpace(sql)
	if strings.HasPrefix(s, "-- name:") {
		if _, rest, ok := strings.Cut(s, "\n"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return s
}
