// Package usage records what each tenant's requests did and reports it
// (issue 17 §1). A request that matters (a question, a conversation turn, a
// /v1/sql statement, a row import, a training write) leaves one event in
// dbchat.usage_events, and the statement that writes it also adds it to the
// tenant's daily rollup row (dbchat.usage_daily, see migration 00018), so a
// report over months reads rollups, never events.
//
// Everything runs in tenant transactions under the tenant_isolation policy;
// the per-tenant figures live in the database and never become Prometheus
// labels (metrics stay low-cardinality).
package usage

import (
	"context"
	"math"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Kind is what a request was.
type Kind string

// The kinds of requests recorded.
const (
	Ask          Kind = "ask"
	Conversation Kind = "conversation"
	SQL          Kind = "sql"
	Import       Kind = "import"
	Training     Kind = "training"
)

// Outcome is how a request ended.
type Outcome string

// The outcomes: refused is a question the generator would not answer (422
// no_sql_generated); failed is any other error.
const (
	Answered Outcome = "answered"
	Refused  Outcome = "refused"
	Failed   Outcome = "failed"
)

// OutcomeOf classifies a request's error.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Answered
	case apperr.CodeOf(err) == apperr.NoSQL:
		return Refused
	}
	return Failed
}

// Record is one request's usage. Stage timings are nil for stages the
// request did not run.
type Record struct {
	Kind    Kind
	Outcome Outcome
	// FirstTry: a question's generated SQL ran without a correction round;
	// a /v1/sql statement ran. Nil for other kinds.
	FirstTry  *bool
	HistoryID *uuid.UUID
	// Generator is the generator's name ("offline", "gemini:<model>");
	// LLMModel the model priced by DBCHAT_LLM_PRICES ("" for none).
	Generator, LLMModel                        string
	LLMCalls                                   int
	TokensIn, TokensOut                        int64
	RetrieveMS, GenerateMS, ValidateMS, ExecMS *float64
	RowsReturned, RowsImported                 int64
	Empty                                      bool
}

// Add records r in the caller's tenant transaction, so it commits or rolls
// back with the work it describes.
func Add(ctx context.Context, tx tenant.Conn, r Record) error {
	return dbsqlc.New().RecordUsage(ctx, tx, r.params())
}

// Save records r in a one-statement transaction of its own: for work that
// ran in transactions of its own (the ask pipeline, the sandbox) or whose
// transaction rolled back (a failed import still counts). It runs even if
// ctx was cancelled (the client left after the work was done). Work refused
// for want of a connection (503 overloaded) is not recorded: recording it
// would wait for a connection in turn and add to the overload.
//
// The transaction commits asynchronously (tenant.WithAsyncCommit): the
// request does not wait for a disk flush to count itself, and the lock on
// the day's rollup row, which the tenant's concurrent requests queue on,
// ends at commit, not at the flush. A server crash may lose the last
// fraction of a second of records; none is ever half-written.
func Save(ctx context.Context, db *tenant.DB, r Record, cause error) error {
	if apperr.CodeOf(cause) == apperr.Overloaded {
		return nil
	}
	ctx = tenant.WithAsyncCommit(context.WithoutCancel(ctx))
	return db.Once(ctx, func(tx tenant.Conn) error { return Add(ctx, tx, r) })
}

func (r Record) params() dbsqlc.RecordUsageParams {
	return dbsqlc.RecordUsageParams{
		Kind: string(r.Kind), Outcome: string(r.Outcome), FirstTry: r.FirstTry, HistoryID: r.HistoryID,
		Generator: r.Generator, LlmModel: r.LLMModel, LlmCalls: int32(r.LLMCalls),
		TokensIn: r.TokensIn, TokensOut: r.TokensOut,
		RetrieveMs: r.RetrieveMS, GenerateMs: r.GenerateMS, ValidateMs: r.ValidateMS, ExecuteMs: r.ExecMS,
		RowsReturned: r.RowsReturned, RowsImported: r.RowsImported, EmptyResult: r.Empty,
		RetrieveHist: oneHot(r.RetrieveMS), GenerateHist: oneHot(r.GenerateMS),
		ValidateHist: oneHot(r.ValidateMS), ExecuteHist: oneHot(r.ExecMS),
	}
}

// ModelOf splits a generator's name ("gemini:gemini-2.5-flash") into the
// LLM model it prices by; the offline generator has none.
func ModelOf(generator string) string {
	for i := 0; i < len(generator); i++ {
		if generator[i] == ':' {
			return generator[i+1:]
		}
	}
	return ""
}

// Latency histograms: fixed log-spaced buckets, the same for every tenant
// and day, so they add up exactly. Bucket 1 holds durations under 1 ms,
// bucket k (2..Buckets-1) [2^((k-2)/4), 2^((k-1)/4)) ms, and the last one
// everything from 2^((Buckets-2)/4) ms (2^20 ms, about 17 minutes) on.
// Arrays are 1-based like PostgreSQL's: index 0 of a Go slice is bucket 1.
const Buckets = 82

// bucketsPerDoubling sets the precision: a bucket's upper bound is at most
// 2^(1/4) (19%) above any duration in it.
const bucketsPerDoubling = 4

// Bucket is the histogram bucket (1-based) of a duration in milliseconds.
func Bucket(ms float64) int {
	if ms < 1 {
		return 1
	}
	k := 2 + int(math.Floor(bucketsPerDoubling*math.Log2(ms)))
	// Log2 may land a hair off at exact powers of two: trust the bounds.
	for k > 2 && ms < UpperBound(k-1) {
		k--
	}
	for k < Buckets && ms >= UpperBound(k) {
		k++
	}
	return min(k, Buckets)
}

// UpperBound is the exclusive upper bound of bucket k in milliseconds
// (+Inf for the last).
func UpperBound(k int) float64 {
	if k >= Buckets {
		return math.Inf(1)
	}
	return math.Pow(2, float64(k-1)/bucketsPerDoubling)
}

// oneHot is the histogram of one duration; empty for none.
func oneHot(ms *float64) []int32 {
	if ms == nil {
		return []int32{}
	}
	h := make([]int32, Bucket(*ms))
	h[len(h)-1] = 1
	return h
}
