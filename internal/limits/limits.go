// Package limits is what a tenant may use (issue 17 §2): a request rate
// (requests_per_second with a burst) and quotas (questions_per_day,
// llm_tokens_per_month, storage_bytes, rows_per_import, training_rows). The
// operator sets them per tenant; configuration gives the defaults.
//
// The state behind them lives in PostgreSQL (db/migrations/00017), so a
// limit holds across every `dbchat serve` instance on one database with no
// other service: the rate is a token bucket row per tenant taken by one
// statement on the request path, the periodic quotas are counters per
// tenant and UTC period, and the size quotas are checked inside the writing
// transaction, which rolls back when it would pass them.
//
// A tenant's stored limits (dbchat.tenants.limits, a JSON object) tell three
// cases apart by the key: absent takes the default from configuration,
// null is unlimited, a number is the limit.
package limits

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The limits' names, as the API, the stored object and the quota_exceeded
// error's details spell them.
const (
	RequestsPerSecond = "requests_per_second"
	Burst             = "burst"
	QuestionsPerDay   = "questions_per_day"
	LLMTokensPerMonth = "llm_tokens_per_month"
	StorageBytes      = "storage_bytes"
	RowsPerImport     = "rows_per_import"
	TrainingRows      = "training_rows"
)

// Names lists every limit, in the order the API shows them.
var Names = []string{RequestsPerSecond, Burst, QuestionsPerDay, LLMTokensPerMonth, StorageBytes, RowsPerImport, TrainingRows}

// Limits maps each limit's name to its value; a nil value (or a missing
// name) is unlimited.
type Limits map[string]*float64

// int64Of is a limit as a count for the queries: nil stays nil (unlimited).
func (l Limits) int64Of(name string) *int64 {
	v := l[name]
	if v == nil {
		return nil
	}
	n := int64(*v)
	return &n
}

// Service checks a tenant's limits against the shared state.
type Service struct {
	db       *tenant.DB
	defaults Limits
	q        *dbsqlc.Queries
	leases   sync.Map // tenant id → *lease (see Tokens)
}

// New is a Service over db whose tenants without a value of their own take
// defaults (nil: everything unlimited).
func New(db *tenant.DB, defaults Limits) *Service {
	if defaults == nil {
		defaults = Limits{}
	}
	return &Service{db: db, defaults: defaults, q: dbsqlc.New()}
}

// Defaults are the configured defaults.
func (s *Service) Defaults() Limits { return s.defaults }

// Effective resolves a tenant's stored limits against the defaults: every
// name, with its value or nil for unlimited.
func (s *Service) Effective(stored []byte) (Limits, error) {
	explicit, err := decodeStored(stored)
	if err != nil {
		return nil, err
	}
	out := make(Limits, len(Names))
	for _, name := range Names {
		v, ok := explicit[name]
		if !ok {
			v = s.defaults[name]
		}
		out[name] = v
	}
	return out, nil
}

// Stored is a tenant's stored limits as the API shows them: the names set
// explicitly (null for unlimited); the others take the defaults.
func Stored(stored []byte) (map[string]*float64, error) {
	explicit, err := decodeStored(stored)
	return map[string]*float64(explicit), err
}

func decodeStored(stored []byte) (Limits, error) {
	out := Limits{}
	if len(bytes.TrimSpace(stored)) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(stored, &out); err != nil {
		return nil, fmt.Errorf("tenants.limits: %w", err)
	}
	return out, nil
}

// Patch is an operator's change to a tenant's limits: Set holds numbers and
// nulls (unlimited) as JSON, Unset the names going back to the default.
type Patch struct {
	Set   json.RawMessage
	Unset []string
}

// ParsePatch reads {"name": number | null | "default", ...}. Every mistake
// is a 400 naming the field (limits.<name>).
func ParsePatch(raw json.RawMessage) (Patch, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var in map[string]any
	if err := dec.Decode(&in); err != nil || in == nil {
		return Patch{}, apperr.Field("limits", "must be an object of limits (%s)", strings.Join(Names, ", "))
	}
	set, p := map[string]any{}, Patch{Unset: []string{}}
	for name, v := range in {
		value, unset, err := parseValue(name, v)
		if err != nil {
			return Patch{}, err
		}
		if unset {
			p.Unset = append(p.Unset, name)
		} else {
			set[name] = value
		}
	}
	slices.Sort(p.Unset)
	b, err := json.Marshal(set)
	p.Set = b
	return p, err
}

// parseValue checks one limit: a number in its range, null (unlimited) or
// "default" (unset).
func parseValue(name string, v any) (value any, unset bool, err error) {
	field := "limits." + name
	if !slices.Contains(Names, name) {
		return nil, false, apperr.Field(field, "is not a limit (known: %s)", strings.Join(Names, ", "))
	}
	switch v := v.(type) {
	case nil:
		return nil, false, nil
	case string:
		if v == "default" {
			return nil, true, nil
		}
	case json.Number:
		f, err := checkNumber(name, v.String())
		return f, false, err
	}
	return nil, false, apperr.Field(field, `must be a number, null (unlimited) or "default" (the configured default)`)
}

// checkNumber parses a limit's number: requests_per_second is a positive
// rate (fractions allowed), burst a whole number of at least 1, the
// quotas whole numbers of at least 0.
func checkNumber(name, text string) (float64, error) {
	field := "limits." + name
	f, err := strconv.ParseFloat(text, 64)
	switch {
	case err != nil || math.IsInf(f, 0) || math.IsNaN(f):
		return 0, apperr.Field(field, "must be a number")
	case name == RequestsPerSecond && f <= 0:
		return 0, apperr.Field(field, "must be greater than 0 (null for unlimited)")
	case name != RequestsPerSecond && f != math.Trunc(f):
		return 0, apperr.Field(field, "must be a whole number")
	case name == Burst && f < 1:
		return 0, apperr.Field(field, "must be at least 1")
	case f < 0 || f > 1<<53:
		return 0, apperr.Field(field, "must be between 0 and 2^53")
	}
	return f, nil
}

// FromEnv reads the defaults from DBCHAT_DEFAULT_<NAME> (upper case, e.g.
// DBCHAT_DEFAULT_REQUESTS_PER_SECOND): unset, empty or "unlimited" is
// unlimited, anything else must be a valid value for its limit.
func FromEnv(getenv func(string) string) (Limits, error) {
	out := Limits{}
	for _, name := range Names {
		env := EnvName(name)
		v := strings.TrimSpace(getenv(env))
		if v == "" || v == "unlimited" {
			continue
		}
		f, err := checkNumber(name, v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %s", env, v, apperr.As(err).Message)
		}
		out[name] = &f
	}
	return out, nil
}

// EnvName is the environment variable of a limit's default.
func EnvName(name string) string { return "DBCHAT_DEFAULT_" + strings.ToUpper(name) }
