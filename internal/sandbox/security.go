package sandbox

import (
	"context"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

// QueryRole is the login role of the sandbox's pool (of shard 0 when the
// tenants are split across query logins): it has no rights of its own and
// becomes the tenant's role for each statement.
const QueryRole = "dbchat_query"

// Security is the receipt of one statement: who it ran for, as which
// database role, and the row policies PostgreSQL applied to each table it
// read, as the catalog (pg_policies) holds them right after the statement.
// The service builds it (Run); handlers only pass it on.
type Security struct {
	TenantID uuid.UUID `json:"tenant_id"`
	// UserID is the request's user (app.user_id); nil without one.
	UserID *uuid.UUID `json:"user_id"`
	// Role is the user's role in its tenant (app.role): admin or member.
	Role string `json:"role"`
	// Claims are the names (never the values) of the end user's claims in
	// force (app.claims), sorted; empty for an API key.
	Claims []string `json:"claims"`
	// DatabaseRole is the role the statement ran as: the tenant's t_<hex>
	// for its admins, t_<hex>_m (no restricted columns) for its members,
	// set by SessionRole (dbchat_query, or the tenant's query login when
	// the tenants are split across several: tenant.QueryLogin) for the
	// statement's transaction.
	DatabaseRole string `json:"database_role"`
	SessionRole  string `json:"session_role"`
	// Tables are the tenant's tables the statement read, by name, each with
	// the policies that applied to the read.
	Tables []TableSecurity `json:"tables"`
}

// TableSecurity is one table a statement read and its row security.
type TableSecurity struct {
	Table string `json:"table"`
	// RLSEnabled and RLSForced are pg_class.relrowsecurity and
	// relforcerowsecurity.
	RLSEnabled bool `json:"rls_enabled"`
	RLSForced  bool `json:"rls_forced"`
	// Policies are the policies for SELECT (FOR ALL or FOR SELECT) to
	// PUBLIC or the tenant's role, by name.
	Policies []PolicyInfo `json:"policies"`
}

// PolicyInfo is one row policy as pg_policies shows it.
type PolicyInfo struct {
	Name string `json:"name"`
	// Kind is permissive or restrictive: a row must pass every restrictive
	// policy and at least one permissive one.
	Kind    string   `json:"kind"`
	Command string   `json:"command"`
	Roles   []string `json:"roles"`
	// Using is the policy's USING expression as PostgreSQL prints it.
	Using string `json:"using"`
}

// readRelations are the names of the relations tree (sql's parse tree;
// nil: sql is parsed here) names in the tenant's schema (unqualified, or
// qualified with it), sorted and distinct: the candidates for the tables it
// read. A statement that does not parse names none.
func readRelations(sql string, tree *pg_query.ParseResult, schema string) []string {
	if tree == nil {
		var err error
		if tree, err = sqlguard.Parse(sql); err != nil {
			return nil
		}
	}
	var names []string
	visitMessages(tree.ProtoReflect(), func(m protoreflect.Message) {
		r, ok := m.Interface().(*pg_query.RangeVar)
		if !ok || r.GetCatalogname() != "" || (r.GetSchemaname() != "" && r.GetSchemaname() != schema) {
			return
		}
		names = append(names, r.GetRelname())
	})
	slices.Sort(names)
	return slices.Compact(names)
}

func visitMessages(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visitMessages(l.Get(i).Message(), fn)
			}
			return true
		}
		visitMessages(v.Message(), fn)
		return true
	})
}

// securityPolicies reads, as the runtime role (the sandbox's roles read no
// catalog), the tables among names in the tenant's schema and the policies
// on them that a SELECT as the tenant's role is subject to.
const securityPolicies = `
SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
       p.policyname::text, p.permissive, p.cmd, p.roles::text[], p.qual
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_policies p
       ON p.schemaname = n.nspname AND p.tablename = c.relname
      AND p.cmd IN ('ALL', 'SELECT')
      AND p.roles && ARRAY['public', $1]::name[]
WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname, p.policyname`

// security builds the receipt of sql (parsed as tree, or nil), run for id:
// what the identity says, and a batch that reads the policies of the
// tables sql reads into it (nil when it reads none). The batch must run in
// a tenant transaction, alone or deferred, before the receipt is used.
func (s *Service) security(id tenant.Identity, sql string, tree *pg_query.ParseResult) (*Security, *pgx.Batch) {
	schema := tenant.Schema(id.TenantID)
	sec := &Security{TenantID: id.TenantID, Role: string(id.Role), Claims: []string{},
		DatabaseRole: tenant.ReadRole(id.TenantID, id), SessionRole: QueryRole, Tables: []TableSecurity{}}
	if s.box != nil {
		sec.SessionRole = s.box.Login(id.TenantID)
	}
	if id.UserID != uuid.Nil {
		u := id.UserID
		sec.UserID = &u
	}
	for name := range id.Claims {
		sec.Claims = append(sec.Claims, name)
	}
	slices.Sort(sec.Claims)
	names := readRelations(sql, tree, schema)
	if len(names) == 0 {
		return sec, nil
	}
	b := &pgx.Batch{}
	b.Queue(securityPolicies, schema, names).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var table string
			var enabled, forced bool
			var name, kind, cmd, using *string
			var roles []string
			if err := rows.Scan(&table, &enabled, &forced, &name, &kind, &cmd, &roles, &using); err != nil {
				return err
			}
			if n := len(sec.Tables); n == 0 || sec.Tables[n-1].Table != table {
				sec.Tables = append(sec.Tables, TableSecurity{Table: table, RLSEnabled: enabled, RLSForced: forced, Policies: []PolicyInfo{}})
			}
			if name == nil {
				continue
			}
			p := PolicyInfo{Name: *name, Kind: lower(kind), Command: deref(cmd), Roles: roles}
			if p.Roles == nil {
				p.Roles = []string{}
			}
			p.Using = deref(using)
			t := &sec.Tables[len(sec.Tables)-1]
			t.Policies = append(t.Policies, p)
		}
		return rows.Err()
	})
	return sec, b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// lower turns pg_policies' PERMISSIVE/RESTRICTIVE into permissive/restrictive.
func lower(s *string) string {
	switch deref(s) {
	case "PERMISSIVE":
		return "permissive"
	case "RESTRICTIVE":
		return "restrictive"
	}
	return deref(s)
}

// Receipt is the receipt sql would get from Run for the identity in ctx,
// without running it: the NL→SQL path gives it to a statement it only
// validated (execute false).
func (s *Service) Receipt(ctx context.Context, sql string) (Security, error) {
	id, ok := tenant.FromContext(ctx)
	if !ok {
		return Security{}, apperr.Errorf(apperr.Internal, "sandbox without identity")
	}
	sec, reads := s.security(id, sql, nil)
	if reads == nil {
		return *sec, nil
	}
	err := s.db.Once(ctx, func(tx tenant.Conn) error { return tx.RunBatch(ctx, reads) })
	return *sec, err
}
