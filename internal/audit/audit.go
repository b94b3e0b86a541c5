// Package audit reads the isolation audit views of db/migrations/00003_audit.sql
// (audit.findings, audit.rls_coverage, audit.policies, audit.roles,
// audit.grants) and 00021's audit.distribution_key_findings into a Report and renders it as text, JSON, Markdown or one
// self-contained HTML file. The lints themselves are SQL, in the view
// audit.findings, so a DBA in psql and `dbchat audit` see the same thing;
// the per-table coverage comes from audit.rls_coverage_rows(jsonb) given
// the findings already read, which is the view's query without running
// the lints a second time. The policies and grants of the tenant data
// schemas, the same in every tenant's schema, are counted by kind
// (PolicyPattern, GrantPattern), so the report grows with what differs,
// not with the tenants.
// The live cross-tenant probe is in package audit/probe; its result is a
// ProbeResult attached to the Report, which backs every cell of the
// access-control matrix.
package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what Collect reads through: a pgx connection or pool, or a
// tenant transaction (the server's runtime pool).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Levels of a finding.
const (
	LevelError = "ERROR"
	LevelWarn  = "WARN"
)

// Finding is one row of audit.findings.
type Finding struct {
	Lint       string `json:"lint"`
	Level      string `json:"level"`
	ObjectType string `json:"object_type"`
	Object     string `json:"object"`
	Detail     string `json:"detail"`
	Remedy     string `json:"remedy"`
}

// Coverage is one row of audit.rls_coverage.
type Coverage struct {
	Schema                     string   `json:"schema"`
	Table                      string   `json:"table"`
	Kind                       string   `json:"kind"`
	RLSEnabled                 bool     `json:"rls_enabled"`
	RLSForced                  bool     `json:"rls_forced"`
	Policies                   []string `json:"policies"`
	TenantColumn               string   `json:"tenant_column"`
	HasTenantID                bool     `json:"has_tenant_id"`
	KeysIncludeTenantID        bool     `json:"keys_include_tenant_id"`
	ForeignKeysIncludeTenantID bool     `json:"foreign_keys_include_tenant_id"`
	Verdict                    string   `json:"verdict"`
	Reason                     string   `json:"reason"`
}

// Name is the table's qualified name.
func (c Coverage) Name() string { return c.Schema + "." + c.Table }

// Policy is one row of audit.policies.
type Policy struct {
	Schema    string   `json:"schema"`
	Table     string   `json:"table"`
	Policy    string   `json:"policy"`
	Kind      string   `json:"kind"`
	Command   string   `json:"command"`
	Roles     []string `json:"roles"`
	Using     string   `json:"using"`
	WithCheck string   `json:"with_check"`
	Comment   string   `json:"comment"`
}

// PolicyPattern is one kind of policy in the tenant data schemas, counted
// instead of listed like GrantPattern: every tenant table carries the same
// tenant_isolation policy, 50,000 rows of audit.policies at 10,000 tenants.
// A table whose policy differs in anything makes a kind of its own.
type PolicyPattern struct {
	Policy    string   `json:"policy"`
	Kind      string   `json:"kind"`
	Command   string   `json:"command"`
	Roles     []string `json:"roles"`
	Using     string   `json:"using"`
	WithCheck string   `json:"with_check"`
	Comment   string   `json:"comment"`
	Tables    int64    `json:"tables"`
	Example   string   `json:"example"` // the first table, schema.table
}

// Role is one row of audit.roles.
type Role struct {
	Role            string `json:"role"`
	Superuser       bool   `json:"superuser"`
	BypassRLS       bool   `json:"bypassrls"`
	Login           bool   `json:"login"`
	Inherit         bool   `json:"inherit"`
	CreateRole      bool   `json:"createrole"`
	CreateDB        bool   `json:"createdb"`
	ConnectionLimit int    `json:"connection_limit"`
	// MemberOf and Members name the roles other than tenant roles
	// (t_<32 hex>, t_<32 hex>_m), which TenantMemberOf and TenantMembers
	// count: dbchat_sandbox has two tenant roles per tenant as members.
	MemberOf       []string `json:"member_of"`
	Members        []string `json:"members"`
	TenantMemberOf int      `json:"tenant_member_of"`
	TenantMembers  int      `json:"tenant_members"`
	Settings       []string `json:"settings"`
	OwnedRelations int64    `json:"owned_relations"`
	OwnedFunctions int64    `json:"owned_functions"`
	OwnedSchemas   int64    `json:"owned_schemas"`
}

// Grant is one row of audit.grants.
type Grant struct {
	ObjectType string `json:"object_type"`
	Schema     string `json:"schema"`
	Object     string `json:"object"`
	Column     string `json:"column,omitempty"`
	Grantee    string `json:"grantee"`
	Privilege  string `json:"privilege"`
	Grantable  bool   `json:"grantable"`
	IsOwner    bool   `json:"is_owner"`
}

// GrantPattern is one kind of grant in the tenant data schemas (t_<32
// hex>), counted instead of listed: every tenant's schema holds the same
// grants, about a hundred per tenant, a million rows of audit.grants at
// 10,000 tenants. Grantee names a tenant role by what it is to the schema:
// t_<tenant> and t_<tenant>_m are the schema's own tenant's roles,
// t_<other> and t_<other>_m another tenant's (which the lint
// tenant_role_reaches_other_schema reports, object by object).
type GrantPattern struct {
	ObjectType string `json:"object_type"`
	Grantee    string `json:"grantee"`
	Privilege  string `json:"privilege"`
	Grantable  bool   `json:"grantable"`
	IsOwner    bool   `json:"is_owner"`
	Grants     int64  `json:"grants"`
	Example    string `json:"example"` // the first object, "schema.table (column)" for a column
}

// Database identifies the audited database.
type Database struct {
	Name          string    `json:"name"`
	OID           int64     `json:"oid"`
	Host          string    `json:"host"`
	Port          int       `json:"port"`
	ServerVersion string    `json:"server_version"`
	Version       string    `json:"version"`
	User          string    `json:"user"`
	StartedAt     time.Time `json:"server_started_at"`
}

// DistributionKeyFinding is one row of audit.distribution_key_findings: a
// key that keeps a tenant-scoped table from being distributed by tenant_id
// (Citus; docs/SCALING.md).
type DistributionKeyFinding struct {
	Lint       string `json:"lint"`
	Table      string `json:"table"`
	Key        string `json:"key"`
	Definition string `json:"definition"`
	Detail     string `json:"detail"`
}

// Claim is one statement the report makes about the schema, with the
// evidence it rests on: like a matrix cell, it is verified only when the
// evidence was read and says so.
type Claim struct {
	Key      string `json:"key"`
	Claim    string `json:"claim"`
	Evidence string `json:"evidence"`
	Status   string `json:"status"` // StatusVerified or StatusFailed
	Note     string `json:"note"`
}

// ClaimDistributionKeys is the claim that the platform schema can be
// distributed by tenant_id.
const ClaimDistributionKeys = "distribution_keys"

// Report is everything `dbchat audit` and GET /v1/admin/audit show.
type Report struct {
	GeneratedAt time.Time  `json:"generated_at"`
	Database    Database   `json:"database"`
	Migration   int64      `json:"migration"`
	Summary     Summary    `json:"summary"`
	Findings    []Finding  `json:"findings"`
	Coverage    []Coverage `json:"coverage"`
	// Policies lists audit.policies outside the tenant schemas;
	// TenantSchemaPolicies counts the policies inside them by kind.
	Policies             []Policy        `json:"policies"`
	TenantSchemaPolicies []PolicyPattern `json:"tenant_schema_policies"`
	Roles                []Role          `json:"roles"`
	// Grants lists audit.grants outside the tenant data schemas;
	// TenantSchemaGrants counts the grants inside them by kind.
	Grants             []Grant        `json:"grants"`
	TenantSchemaGrants []GrantPattern `json:"tenant_schema_grants"`
	Matrix             []MatrixRow    `json:"access_matrix"`
	Probe              *ProbeResult   `json:"probe"`
	// DistributionKeys and Claims: what stops distribution by tenant_id
	// (none on a clean schema), and the claims the views back.
	DistributionKeys []DistributionKeyFinding `json:"distribution_key_findings"`
	Claims           []Claim                  `json:"claims"`
}

// Summary condenses a Report.
type Summary struct {
	// Clean: no finding and, when probed, every attempt as expected and
	// nothing left behind.
	Clean      bool `json:"clean"`
	Findings   int  `json:"findings"`
	Errors     int  `json:"errors"`
	Warnings   int  `json:"warnings"`
	Tables     int  `json:"tables"`
	TablesOK   int  `json:"tables_ok"`
	TablesWarn int  `json:"tables_warn"`
	TablesFail int  `json:"tables_fail"`
	Probed     bool `json:"probed"`
	Attempts   int  `json:"probe_attempts"`
	Passed     int  `json:"probe_passed"`
	Failed     int  `json:"probe_failed"`
	Residue    int  `json:"probe_residue"`
	// DistributionFindings counts audit.distribution_key_findings; any
	// makes the report not clean.
	DistributionFindings int `json:"distribution_findings"`
}

// Collect reads the audit views. It needs SELECT on them (dbchat_auditor,
// dbchat_app, or a superuser) and on the migration table.
func Collect(ctx context.Context, q Querier) (*Report, error) {
	r := &Report{}
	err := q.QueryRow(ctx, `SELECT now(), current_database(),
			(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())::bigint,
			coalesce(host(inet_server_addr()), 'local socket'), coalesce(inet_server_port(), 0),
			current_setting('server_version'), version(), current_user::text, pg_postmaster_start_time(),
			(SELECT coalesce(max(version_id), 0) FROM dbchat_migrations.goose_db_version WHERE is_applied)`).
		Scan(&r.GeneratedAt, &r.Database.Name, &r.Database.OID, &r.Database.Host, &r.Database.Port,
			&r.Database.ServerVersion, &r.Database.Version, &r.Database.User, &r.Database.StartedAt, &r.Migration)
	if err != nil {
		return nil, fmt.Errorf("audit: database identity and migration version: %w", err)
	}
	r.GeneratedAt = r.GeneratedAt.UTC()

	if r.Findings, err = collect(ctx, q, `SELECT lint, level, object_type, object, detail, remedy FROM audit.findings`,
		func(row pgx.Rows) (f Finding, err error) {
			err = row.Scan(&f.Lint, &f.Level, &f.ObjectType, &f.Object, &f.Detail, &f.Remedy)
			return f, err
		}); err != nil {
		return nil, err
	}
	// audit.rls_coverage's rows from the findings just read: the view would
	// run every lint again to find each table's verdict (migration 00033).
	found, err := json.Marshal(r.Findings)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if r.Coverage, err = collect(ctx, q, `SELECT schema, table_name, kind, rls_enabled, rls_forced, policies,
			coalesce(tenant_column, ''), has_tenant_id, keys_include_tenant_id, foreign_keys_include_tenant_id, verdict, coalesce(reason, '')
			FROM audit.rls_coverage_rows($1::jsonb)
			ORDER BY CASE WHEN schema = 'dbchat' THEN 0 ELSE 1 END, schema COLLATE "C", table_name COLLATE "C"`,
		func(row pgx.Rows) (c Coverage, err error) {
			err = row.Scan(&c.Schema, &c.Table, &c.Kind, &c.RLSEnabled, &c.RLSForced, &c.Policies, &c.TenantColumn,
				&c.HasTenantID, &c.KeysIncludeTenantID, &c.ForeignKeysIncludeTenantID, &c.Verdict, &c.Reason)
			return c, err
		}, found); err != nil {
		return nil, err
	}
	if r.Policies, r.TenantSchemaPolicies, err = collectPolicies(ctx, q); err != nil {
		return nil, err
	}
	if r.Roles, err = collect(ctx, q, `SELECT role, superuser, bypassrls, login, inherit, createrole, createdb,
			connection_limit, member_of, members, settings, owned_relations, owned_functions, owned_schemas FROM audit.roles`,
		func(row pgx.Rows) (x Role, err error) {
			err = row.Scan(&x.Role, &x.Superuser, &x.BypassRLS, &x.Login, &x.Inherit, &x.CreateRole, &x.CreateDB,
				&x.ConnectionLimit, &x.MemberOf, &x.Members, &x.Settings, &x.OwnedRelations, &x.OwnedFunctions, &x.OwnedSchemas)
			x.MemberOf, x.TenantMemberOf = withoutTenantRoles(x.MemberOf)
			x.Members, x.TenantMembers = withoutTenantRoles(x.Members)
			return x, err
		}); err != nil {
		return nil, err
	}
	if r.Grants, r.TenantSchemaGrants, err = collectGrants(ctx, q); err != nil {
		return nil, err
	}
	if r.DistributionKeys, err = collect(ctx, q, `SELECT lint, table_name, key_name, definition, detail FROM audit.distribution_key_findings`,
		func(row pgx.Rows) (f DistributionKeyFinding, err error) {
			err = row.Scan(&f.Lint, &f.Table, &f.Key, &f.Definition, &f.Detail)
			return f, err
		}); err != nil {
		return nil, err
	}
	r.Finalize()
	return r, nil
}

// collectGrants reads audit.grants: the grants outside the tenant schemas
// row by row, those inside counted by kind as they stream past, so a
// report at 10,000 tenants holds a few hundred rows, not a million.
func collectGrants(ctx context.Context, q Querier) (grants []Grant, patterns []GrantPattern, err error) {
	rows, err := q.Query(ctx, `SELECT object_type, coalesce(schema, ''), object, coalesce(column_name, ''),
			grantee, privilege, grantable, is_owner FROM audit.grants`)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	grants, patterns = []Grant{}, []GrantPattern{}
	index := map[GrantPattern]int{} // a pattern, without count and example → its place in patterns
	for rows.Next() {
		var g Grant
		if err := rows.Scan(&g.ObjectType, &g.Schema, &g.Object, &g.Column, &g.Grantee, &g.Privilege, &g.Grantable, &g.IsOwner); err != nil {
			return nil, nil, fmt.Errorf("audit: %w", err)
		}
		if !isTenantName(g.Schema) {
			grants = append(grants, g)
			continue
		}
		key := GrantPattern{ObjectType: g.ObjectType, Grantee: tenantGrantee(g.Grantee, g.Schema), Privilege: g.Privilege,
			Grantable: g.Grantable, IsOwner: g.IsOwner}
		i, ok := index[key]
		if !ok {
			i, index[key] = len(patterns), len(patterns)
			key.Example = g.Object
			if g.Column != "" {
				key.Example += " (" + g.Column + ")"
			}
			patterns = append(patterns, key)
		}
		patterns[i].Grants++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	slices.SortStableFunc(patterns, func(a, b GrantPattern) int { // ties keep the view's order
		return cmp.Or(cmp.Compare(a.ObjectType, b.ObjectType), cmp.Compare(a.Grantee, b.Grantee), cmp.Compare(a.Privilege, b.Privilege))
	})
	return grants, patterns, nil
}

// collectPolicies reads audit.policies: outside the tenant schemas row by
// row, inside them counted by kind as they stream past.
func collectPolicies(ctx context.Context, q Querier) (policies []Policy, patterns []PolicyPattern, err error) {
	rows, err := q.Query(ctx, `SELECT schema, table_name, policy, kind, command, roles,
			coalesce(using_expr, ''), coalesce(with_check_expr, ''), coalesce(comment, '') FROM audit.policies`)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	type kind struct{ policy, kind, command, roles, using, check, comment string }
	policies, patterns = []Policy{}, []PolicyPattern{}
	index := map[kind]int{}
	for rows.Next() {
		var p Policy
		if err := rows.Scan(&p.Schema, &p.Table, &p.Policy, &p.Kind, &p.Command, &p.Roles, &p.Using, &p.WithCheck, &p.Comment); err != nil {
			return nil, nil, fmt.Errorf("audit: %w", err)
		}
		if !isTenantName(p.Schema) {
			policies = append(policies, p)
			continue
		}
		k := kind{p.Policy, p.Kind, p.Command, strings.Join(p.Roles, "\x00"), p.Using, p.WithCheck, p.Comment}
		i, ok := index[k]
		if !ok {
			i, index[k] = len(patterns), len(patterns)
			patterns = append(patterns, PolicyPattern{Policy: p.Policy, Kind: p.Kind, Command: p.Command, Roles: p.Roles,
				Using: p.Using, WithCheck: p.WithCheck, Comment: p.Comment, Example: p.Schema + "." + p.Table})
		}
		patterns[i].Tables++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	return policies, patterns, nil
}

// isTenantName says whether name is a tenant's role or data schema,
// t_<32 lowercase hex>, not its members' role.
func isTenantName(name string) bool {
	if len(name) != 34 || !strings.HasPrefix(name, "t_") {
		return false
	}
	for _, c := range name[2:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// withoutTenantRoles returns names without the tenant roles, and how many
// there were.
func withoutTenantRoles(names []string) ([]string, int) {
	kept := names[:0:0]
	for _, n := range names {
		if !isTenantName(strings.TrimSuffix(n, "_m")) {
			kept = append(kept, n)
		}
	}
	return kept, len(names) - len(kept)
}

// tenantGrantee names a grantee in a tenant schema by what it is to the
// schema: its own tenant's roles, another tenant's, or its own name.
func tenantGrantee(grantee, schema string) string {
	switch {
	case grantee == schema:
		return "t_<tenant>"
	case grantee == schema+"_m":
		return "t_<tenant>_m"
	case isTenantName(grantee):
		return "t_<other>"
	case strings.HasSuffix(grantee, "_m") && isTenantName(strings.TrimSuffix(grantee, "_m")):
		return "t_<other>_m"
	}
	return grantee
}

func collect[T any](ctx context.Context, q Querier, sql string, scan func(pgx.Rows) (T, error), args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// Finalize recomputes the summary and the access-control matrix; call it
// after attaching a probe result.
func (r *Report) Finalize() {
	s := Summary{Findings: len(r.Findings), Tables: len(r.Coverage)}
	for _, f := range r.Findings {
		switch f.Level {
		case LevelError:
			s.Errors++
		case LevelWarn:
			s.Warnings++
		}
	}
	for _, c := range r.Coverage {
		switch c.Verdict {
		case "ok":
			s.TablesOK++
		case "warn":
			s.TablesWarn++
		default:
			s.TablesFail++
		}
	}
	if p := r.Probe; p != nil {
		s.Probed = true
		s.Attempts = len(p.Attempts)
		for _, a := range p.Attempts {
			if a.Passed {
				s.Passed++
			} else {
				s.Failed++
			}
		}
		s.Residue = len(p.Cleanup.Residue)
		if !p.Cleanup.Done {
			s.Residue = max(s.Residue, 1)
		}
	}
	s.DistributionFindings = len(r.DistributionKeys)
	s.Clean = s.Findings == 0 && s.Failed == 0 && s.Residue == 0 && s.DistributionFindings == 0
	r.Summary = s
	r.Matrix = buildMatrix(r.Probe)
	r.Claims = r.buildClaims()
}

// buildClaims states the schema claims and the evidence read for each.
func (r *Report) buildClaims() []Claim {
	c := Claim{Key: ClaimDistributionKeys,
		Claim:    "every primary key, unique key and foreign key of every tenant-scoped table includes tenant_id, so the table can be distributed by tenant_id",
		Evidence: "audit.distribution_key_findings is empty"}
	if n := len(r.DistributionKeys); n > 0 {
		c.Status = StatusFailed
		keys := make([]string, 0, n)
		for _, f := range r.DistributionKeys {
			keys = append(keys, f.Table+" "+f.Key)
		}
		c.Note = fmt.Sprintf("%d keys do not: %s", n, strings.Join(keys, ", "))
	} else {
		c.Status = StatusVerified
		c.Note = "0 rows"
	}
	return []Claim{c}
}

// FindingsFor returns the findings of one lint.
func (r *Report) FindingsFor(lint string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Lint == lint {
			out = append(out, f)
		}
	}
	return out
}
