package catalog

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Claim policy operators: eq compares a column with a scalar claim, in with
// the elements of an array claim.
const (
	OpEq = "eq"
	OpIn = "in"
)

// Ops are the operators a claim policy may use (the database re-checks).
var Ops = []string{OpEq, OpIn}

var (
	policyName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,56}$`)
	claimName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/-]{0,199}$`)
)

// PolicySpec defines a claim policy on a data table: rows are visible only
// when Column matches the end user's claim Claim (Op eq: equals it; in: is
// one of an array claim's elements), or, with AdminsBypass, to tenant
// admins. The database compiles it into a restrictive PostgreSQL policy
// named claim_<Name> (db/migrations/00012_claim_policies.sql).
type PolicySpec struct {
	Name         string `json:"name"`
	Column       string `json:"column"`
	Claim        string `json:"claim"`
	Op           string `json:"op"`
	AdminsBypass bool   `json:"admins_bypass"`
}

// Validate checks a spec at the edge, naming the offending field. Whether
// the column exists is checked against the table (CreatePolicy).
func (p PolicySpec) Validate() error {
	if !policyName.MatchString(p.Name) {
		return apperr.Field("name", "must be a lowercase identifier: letters, digits, underscores, at most 57, not starting with a digit")
	}
	if err := checkName("column", p.Column); err != nil {
		return err
	}
	if !claimName.MatchString(p.Claim) {
		return apperr.Field("claim", "must be a claim name: a letter or underscore, then letters, digits and _ . : / -, at most 200")
	}
	if !slices.Contains(Ops, p.Op) {
		return apperr.Field("op", "unknown operator %q (allowed: %v)", p.Op, Ops)
	}
	return nil
}

// Policy is a claim policy of a data table (API JSON).
type Policy struct {
	ID           uuid.UUID  `json:"id"`
	TableID      uuid.UUID  `json:"table_id"`
	Name         string     `json:"name"`
	Column       string     `json:"column"`
	Claim        string     `json:"claim"`
	Op           string     `json:"op"`
	AdminsBypass bool       `json:"admins_bypass"`
	UserID       *uuid.UUID `json:"user_id"`
	CreatedAt    time.Time  `json:"created_at"`
}

// CreatePolicy creates a claim policy on the table tableID through the
// SECURITY DEFINER DDL function, which checks every name again and creates
// the PostgreSQL policy and its record together (or neither). The caller's
// transaction must be a tenant admin's: the function reads app.role.
func CreatePolicy(ctx context.Context, tx tenant.Conn, tableID uuid.UUID, spec PolicySpec) (Policy, error) {
	if err := spec.Validate(); err != nil {
		return Policy{}, err
	}
	q := dbsqlc.New()
	row, err := q.GetTable(ctx, tx, tableID)
	if err != nil {
		return Policy{}, err
	}
	cols, err := q.ListColumns(ctx, tx, tableID)
	if err != nil {
		return Policy{}, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	if !slices.Contains(names, spec.Column) {
		return Policy{}, apperr.Field("column", "table %q has no column %q (columns: %v)", row.Name, spec.Column, names)
	}
	id, err := q.CreateClaimPolicy(ctx, tx, dbsqlc.CreateClaimPolicyParams{TableID: tableID, Name: spec.Name,
		ColumnName: spec.Column, Claim: spec.Claim, Op: spec.Op, AdminsBypass: spec.AdminsBypass})
	if err != nil {
		return Policy{}, nameErr(err, "policy", spec.Name)
	}
	p, err := q.GetClaimPolicy(ctx, tx, dbsqlc.GetClaimPolicyParams{TableID: tableID, ID: id})
	return toPolicy(dbsqlc.ListClaimPoliciesRow(p)), err
}

// ListPolicies lists the claim policies of the table tableID, by name.
func ListPolicies(ctx context.Context, tx tenant.Conn, tableID uuid.UUID) ([]Policy, error) {
	q := dbsqlc.New()
	if _, err := q.GetTable(ctx, tx, tableID); err != nil {
		return nil, err
	}
	rows, err := q.ListClaimPolicies(ctx, tx, tableID)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, len(rows))
	for i, r := range rows {
		out[i] = toPolicy(r)
	}
	return out, nil
}

// DeletePolicy drops the claim policy id of the table tableID and its
// record; an unknown id (or another table's) is not found.
func DeletePolicy(ctx context.Context, tx tenant.Conn, tableID, id uuid.UUID) error {
	dropped, err := dbsqlc.New().DropClaimPolicy(ctx, tx, dbsqlc.DropClaimPolicyParams{TableID: tableID, ID: id})
	if err != nil {
		return err
	}
	if !dropped {
		return apperr.Errorf(apperr.NotFound, "not found")
	}
	return nil
}

func toPolicy(r dbsqlc.ListClaimPoliciesRow) Policy {
	return Policy{ID: r.ID, TableID: r.TableID, Name: r.Name, Column: r.ColumnName, Claim: r.Claim, Op: r.Op,
		AdminsBypass: r.AdminsBypass, UserID: r.UserID, CreatedAt: r.CreatedAt}
}
