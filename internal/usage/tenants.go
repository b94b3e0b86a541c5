package usage

import (
	"cmp"
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TenantFigures is one tenant's line of the operator's view: its figures
// over the whole range, its storage and training rows now.
type TenantFigures struct {
	TenantID     uuid.UUID `json:"tenant_id"`
	Name         string    `json:"name"`
	Slug         string    `json:"slug"`
	IsActive     bool      `json:"is_active"`
	StorageBytes int64     `json:"storage_bytes"`
	TrainingRows int64     `json:"training_rows"`
	Figures
}

// sortKeys are the operator view's orders: the largest first (name: A to
// Z), ties by name. An unknown cost sorts after every known one.
var sortKeys = map[string]func(t TenantFigures) float64{
	"questions":     func(t TenantFigures) float64 { return float64(t.QuestionsAsked) },
	"answered":      func(t TenantFigures) float64 { return float64(t.QuestionsAnswered) },
	"refused":       func(t TenantFigures) float64 { return float64(t.QuestionsRefused) },
	"failed":        func(t TenantFigures) float64 { return float64(t.QuestionsFailed) },
	"sql":           func(t TenantFigures) float64 { return float64(t.SQLStatements) },
	"llm_calls":     func(t TenantFigures) float64 { return float64(t.LLMCalls) },
	"tokens":        func(t TenantFigures) float64 { return float64(t.TokensIn + t.TokensOut) },
	"cost":          func(t TenantFigures) float64 { return costKey(t.EstimatedCost) },
	"rows_returned": func(t TenantFigures) float64 { return float64(t.RowsReturned) },
	"rows_imported": func(t TenantFigures) float64 { return float64(t.RowsImported) },
	"storage":       func(t TenantFigures) float64 { return float64(t.StorageBytes) },
	"training_rows": func(t TenantFigures) float64 { return float64(t.TrainingRows) },
	"name":          func(TenantFigures) float64 { return 0 },
}

func costKey(c *float64) float64 {
	if c == nil {
		return -1
	}
	return *c
}

// CheckSort validates the operator view's sort key (default questions).
func CheckSort(key string) (string, error) {
	if key == "" {
		return "questions", nil
	}
	if _, ok := sortKeys[key]; !ok {
		return "", apperr.Field("sort", "must be one of questions, answered, refused, failed, sql, llm_calls, tokens, cost, rows_returned, rows_imported, storage, training_rows, name")
	}
	return key, nil
}

// AllTenants is the operator's view: every tenant's figures over r,
// sorted by key. It lists the tenants through the operator's one
// cross-tenant read (dbchat_ops.list_tenants), then reads each tenant's
// rollups in a transaction of that tenant, so usage rows are only ever read
// under their tenant_isolation policy, as the tenant's own reads are; one
// short transaction per tenant, each reading at most a year of rollup rows.
func AllTenants(ctx context.Context, db *tenant.DB, r Range, prices Prices, key string) ([]TenantFigures, error) {
	var tenants []dbsqlc.Tenant
	err := db.OnceAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		var err error
		tenants, err = dbsqlc.New().ListTenants(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]TenantFigures, 0, len(tenants))
	for _, t := range tenants {
		rep, err := readAsAdmin(ctx, db, t.ID, r, prices)
		if err != nil {
			return nil, err
		}
		out = append(out, TenantFigures{TenantID: t.ID, Name: t.Name, Slug: t.Slug, IsActive: t.IsActive,
			StorageBytes: rep.StorageBytes, TrainingRows: trainingRows(rep), Figures: rep.Total})
	}
	sortTenants(out, key)
	return out, nil
}

// readAsAdmin reads one tenant's report as its longest-standing admin
// would through GET /v1/analytics: query_history's owner_or_admin policy
// shows feedback to the tenant's admins only. A tenant without an admin
// reads no feedback.
func readAsAdmin(ctx context.Context, db *tenant.DB, id uuid.UUID, r Range, prices Prices) (Report, error) {
	who := tenant.Identity{TenantID: id, Role: tenant.Admin}
	var admins []uuid.UUID
	err := db.OnceAs(ctx, who, func(tx tenant.Conn) error {
		var err error
		admins, err = dbsqlc.New().FirstAdmin(ctx, tx)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	if len(admins) > 0 {
		who.UserID = admins[0]
	}
	var rep Report
	err = db.TxAs(ctx, who, func(tx tenant.Conn) error {
		rep, err = Read(ctx, tx, r, prices)
		return err
	})
	return rep, err
}

func trainingRows(rep Report) int64 {
	var n int64
	for _, m := range rep.TrainingRows {
		n += m.Rows
	}
	return n
}

func sortTenants(ts []TenantFigures, key string) {
	by := sortKeys[key]
	slices.SortStableFunc(ts, func(a, b TenantFigures) int {
		if c := cmp.Compare(by(b), by(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}
