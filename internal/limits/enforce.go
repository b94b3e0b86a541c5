package limits

import (
	"context"
	"math"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Rate is the outcome of taking a request's token: whether the tenant has a
// rate limit at all, whether the request may go on, and what the
// RateLimit-* and Retry-After headers say.
type Rate struct {
	Limited bool
	Allowed bool
	// Limit is the bucket's size (burst), Remaining the whole tokens left.
	Limit, Remaining int64
	// Reset is the seconds until the bucket is full again, RetryAfter the
	// seconds until the next token (0 when allowed).
	Reset, RetryAfter int64
}

// TakeRequest takes one request's token from the tenant's bucket in tx's
// tenant, in one statement (one round trip in a tenant.DB.Once): for
// requests not signed in with an API key (see KeyLookup).
func (s *Service) TakeRequest(ctx context.Context, tx tenant.Conn) (Rate, error) {
	row, err := s.q.TakeRequestToken(ctx, tx, dbsqlc.TakeRequestTokenParams{
		DefaultRate: s.defaults[RequestsPerSecond], DefaultBurst: s.defaults[Burst]})
	return rateOf(row.Rate, row.Burst, row.Tokens, row.Allowed), err
}

// rateOf reads a bucket as taken; rate 0 means the tenant has no rate limit.
func rateOf(rate, burst, tokens float64, allowed bool) Rate {
	if rate <= 0 {
		return Rate{Allowed: true}
	}
	r := Rate{Limited: true, Allowed: allowed, Limit: int64(burst), Remaining: int64(math.Floor(tokens)),
		Reset: int64(math.Ceil((burst - tokens) / rate))}
	if !r.Allowed {
		r.RetryAfter = max(1, int64(math.Ceil((1-tokens)/rate)))
	}
	return r
}

// KeyLookup is an API key's lookup (auth.Lookup) that takes the request's
// token in the same statement and leaves the outcome in r: the rate check
// then costs a key's request no round trip of its own. A key that matches
// nothing takes no token.
func (s *Service) KeyLookup(r *Rate) func(ctx context.Context, tx tenant.Conn, hash []byte) (dbsqlc.AuthenticateKeyRow, error) {
	return func(ctx context.Context, tx tenant.Conn, hash []byte) (dbsqlc.AuthenticateKeyRow, error) {
		row, err := s.q.AuthenticateKeyTakeToken(ctx, tx, dbsqlc.AuthenticateKeyTakeTokenParams{
			KeyHash: hash, DefaultRate: s.defaults[RequestsPerSecond], DefaultBurst: s.defaults[Burst]})
		*r = rateOf(row.Rate, row.Burst, row.Tokens, row.Allowed)
		return dbsqlc.AuthenticateKeyRow{KeyID: row.KeyID, UserID: row.UserID, Role: row.Role, Stale: row.Stale, Epoch: row.Epoch}, err
	}
}

// Tokens has a remembered credential's confirmation (auth.Cache,
// identity.Verifier) take tenantID's request token in the same call, with
// the outcome left in r; a refusal is r.Err(), raised before the request's
// statement runs. The bucket is one row per tenant, and a request holds it
// locked until its transaction ends, so a server leases tokens ahead when
// the tenant's limit is large (see lease): most requests then write nothing
// and lock nothing.
func (s *Service) Tokens(r *Rate) auth.TokensFor {
	return func(tenantID uuid.UUID) *auth.Tokens { return s.tokens(tenantID, r) }
}

func (s *Service) tokens(tenantID uuid.UUID, r *Rate) *auth.Tokens {
	l := s.lease(tenantID)
	snap, spent, renew := l.spend()
	if spent {
		*r = snap
	}
	switch {
	case renew:
		return s.take(l, r, l.size(), spent, true)
	case spent:
		return nil
	default: // dry while another request takes the next lease
		return s.take(l, r, 1, false, false)
	}
}

// take asks a confirmation for n tokens into l. A request that spent a
// leased token (spent) is admitted whatever the take gets; renew marks the
// take of the next lease, which ends when the tokens land.
func (s *Service) take(l *lease, r *Rate, n int, spent, renew bool) *auth.Tokens {
	return &auth.Tokens{Take: n, DefaultRate: s.defaults[RequestsPerSecond], DefaultBurst: s.defaults[Burst],
		Taken: func(rate, burst, tokens float64, allowed bool, taken int) error {
			l.fill(rate, burst, tokens, taken, spent)
			if renew {
				l.renewed()
			}
			if spent {
				return nil
			}
			*r = rateOf(rate, burst, tokens+float64(max(0, taken-1)), allowed)
			if !r.Allowed {
				return r.Err()
			}
			return nil
		}}
}

// Err is the 429 for a refused request.
func (r Rate) Err() error {
	e := apperr.Errorf(apperr.RateLimited, "too many requests for this tenant; retry in %d s", r.RetryAfter)
	e.Details = map[string]any{"limit": r.Limit, "retry_after": r.RetryAfter}
	return e
}

// Exceeded is the error of a quota that a request would pass: 403
// quota_exceeded naming the quota, its limit and the use.
func Exceeded(quota string, limit, used int64, what string) error {
	e := apperr.Errorf(apperr.QuotaExceeded, "quota %s exceeded (limit %d, %s %d)", quota, limit, what, used)
	e.Details = map[string]any{"quota": quota, "limit": limit, "used": used}
	return e
}

// Question counts a question (POST /v1/ask or a conversation turn) against
// questions_per_day, in a statement of its own that commits whatever
// becomes of the question, and refuses it when the day's questions are
// spent or the month's LLM tokens are. The month's tokens are read in the
// same round trip (tenant.Conn.Defer).
func (s *Service) Question(ctx context.Context) error {
	var row dbsqlc.ConsumeQuotaRow
	var tokens dbsqlc.QuotaUsedRow
	err := s.db.Once(ctx, func(tx tenant.Conn) error {
		b := &pgx.Batch{}
		b.Queue(dbsqlc.QuotaUsed, LLMTokensPerMonth, s.defaults.int64Of(LLMTokensPerMonth), "month").QueryRow(func(r pgx.Row) error {
			return r.Scan(&tokens.QuotaLimit, &tokens.Used)
		})
		tx.Defer(b)
		var err error
		row, err = s.q.ConsumeQuota(ctx, tx, dbsqlc.ConsumeQuotaParams{
			Quota: QuestionsPerDay, DefaultLimit: s.defaults.int64Of(QuestionsPerDay), Period: "day", N: 1})
		return err
	})
	switch {
	case err != nil:
		return err
	case !row.Ok:
		return Exceeded(QuestionsPerDay, row.QuotaLimit, row.Used, "asked today")
	case tokens.QuotaLimit >= 0 && tokens.Used >= tokens.QuotaLimit:
		return Exceeded(LLMTokensPerMonth, tokens.QuotaLimit, tokens.Used, "used this month")
	}
	return nil
}

// AddLLMTokens records n tokens an LLM generator reported for the tenant
// in ctx (the offline generator reports none). The call that spends them
// has happened, so it is never refused; the next question is.
func (s *Service) AddLLMTokens(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	return s.db.Once(ctx, func(tx tenant.Conn) error {
		return s.q.AddQuotaUsage(ctx, tx, dbsqlc.AddQuotaUsageParams{Quota: LLMTokensPerMonth, Period: "month", N: n})
	})
}

// CheckImport runs in an import's transaction after its rows are in: more
// rows than rows_per_import, or data tables now larger than storage_bytes,
// fail it, and the caller's rollback leaves nothing imported.
func (s *Service) CheckImport(ctx context.Context, tx tenant.Conn, rows int64) error {
	lim, err := s.tenantLimits(ctx, tx)
	if err != nil {
		return err
	}
	if max := lim.int64Of(RowsPerImport); max != nil && rows > *max {
		return Exceeded(RowsPerImport, *max, rows, "rows in this import")
	}
	max := lim.int64Of(StorageBytes)
	if max == nil {
		return nil
	}
	bytes, err := s.q.TenantStorageBytes(ctx, tx)
	if err == nil && bytes > *max {
		return Exceeded(StorageBytes, *max, bytes, "bytes with this import")
	}
	return err
}

// CheckTraining runs in a training-data write's transaction after its rows
// are in: more training rows than training_rows fail it (rolled back).
func (s *Service) CheckTraining(ctx context.Context, tx tenant.Conn) error {
	lim, err := s.tenantLimits(ctx, tx)
	if err != nil {
		return err
	}
	max := lim.int64Of(TrainingRows)
	if max == nil {
		return nil
	}
	n, err := s.q.TrainingRows(ctx, tx)
	if err == nil && n > *max {
		return Exceeded(TrainingRows, *max, n, "rows with this write")
	}
	return err
}

// tenantLimits reads tx's tenant's effective limits.
func (s *Service) tenantLimits(ctx context.Context, tx tenant.Conn) (Limits, error) {
	stored, err := s.q.TenantLimits(ctx, tx)
	if err != nil {
		return nil, err
	}
	return s.Effective(stored)
}
