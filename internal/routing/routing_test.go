package routing_test

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/routing"
)

// crossTenant lists the queries that must cross tenants, with the reason.
// Each calls a dbchat_ops function (SECURITY DEFINER, owned by the
// BYPASSRLS dbchat_operator). docs/SCALING.md lists them too; the test
// checks that it names each one.
var crossTenant = map[string]string{
	"ListTenants":              "operator: GET /v1/tenants lists every tenant, through dbchat_ops.list_tenants(); dbchat.tenants is a reference table",
	"IdentityProviderByIssuer": "sign-in: a token names its issuer, not its tenant; dbchat_ops.identity_provider_by_issuer reads the global issuer registry (a reference table), then one provider by (tenant_id, id)",
}

// catalogReads lists the queries that read pg_catalog, with the reason. On
// Citus the coordinator's catalog holds empty shells of distributed
// tables, so each needs Citus's own function (citus_total_relation_size,
// citus_relation_size) or a worker-side call.
var catalogReads = map[string]string{
	"TenantStorageBytes": "storage limit: the size of the tenant's data tables",
	"TableStorage":       "usage report: the size of each data table",
	"CountRetrievable":   "the planner's row estimate (pg_class.reltuples) of the training data, to choose a search strategy",
}

// policyRouted lists the queries that run under the tenant_isolation
// policy alone: their text names no tenant, the policy (app.tenant_id, set
// per transaction) scopes them. On one server that is the design. On Citus
// each is a multi-shard query that the policy filters on every shard (the
// tenant setting must reach the workers: docs/SCALING.md) until it gains a
// tenant_id = … filter, which takes it off this list.
var policyRouted = map[string]bool{
	// queries/api_keys.sql
	"AuthenticateKey": true,
	"TouchAPIKey":     true,
	"RevokeAPIKey":    true,
	"ListAPIKeys":     true,
	"RevokeKey":       true,
	// queries/ask.sql
	"ModelStats": true,
	// queries/claim_policies.sql
	"GetClaimPolicy":    true,
	"ListClaimPolicies": true,
	// queries/conversations.sql
	"ListConversations":   true,
	"GetConversation":     true,
	"UpdateConversation":  true,
	"DeleteConversation":  true,
	"ConversationForTurn": true,
	"RecordTurn":          true,
	"ListMessages":        true,
	"CreateMessage":       true,
	// queries/evaluations.sql
	"SetTrainingVerified":     true,
	"SetTrainingVerifiedMany": true,
	"TrainingVerification":    true,
	"ListVerifiedPairs":       true,
	"ListEvaluations":         true,
	"GetEvaluation":           true,
	"ListEvaluationResults":   true,
	// queries/feedback.sql
	"GetFeedback":    true,
	"RecordFeedback": true,
	"ReviewFeedback": true,
	"ListFeedback":   true,
	// queries/identity_providers.sql
	"ListIdentityProviders":  true,
	"DeleteIdentityProvider": true,
	"UserBySubject":          true,
	"ProvisionUser":          true,
	"SetUserRole":            true,
	// queries/limits.sql
	"ConsumeQuota":             true,
	"QuotaUsed":                true,
	"TrainingRows":             true,
	"AuthenticateKeyTakeToken": true,
	// queries/models.sql
	"GetModelByName": true,
	// queries/nlsql.sql
	"ListModelsWithCounts":       true,
	"DeleteModelTrainingData":    true,
	"DeleteModel":                true,
	"ListTrainingData":           true,
	"GetTrainingData":            true,
	"DeleteTrainingData":         true,
	"DeleteTrainingDataBySource": true,
	"TrainingDigests":            true,
	"CountRetrievable":           true,
	"ListToReembed":              true,
	"UpdateEmbeddings":           true,
	"ListActiveCatalog":          true,
	// queries/query_history.sql
	"ListQueryHistory":  true,
	"GetQueryHistory":   true,
	"ListRecentHistory": true,
	// queries/sessions.sql
	"AuthenticateSession": true,
	"TouchSession":        true,
	"RevokeSession":       true,
	// queries/tables.sql
	"ListTables":              true,
	"GetTable":                true,
	"ListColumns":             true,
	"UpdateTable":             true,
	"DeleteTable":             true,
	"NextColumnPosition":      true,
	"UpdateColumnDescription": true,
	"GetColumn":               true,
	"MemberReadableColumns":   true,
	"ListTableColumns":        true,
	// queries/usage.sql
	"UsageDays":            true,
	"FeedbackDays":         true,
	"TableStorage":         true,
	"TrainingRowsPerModel": true,
	"FirstAdmin":           true,
	// queries/users.sql
	"GetUser":    true,
	"GetMe":      true,
	"ListUsers":  true,
	"DeleteUser": true,
}

// facts reads from a migrated database what routing.Classify needs, and the
// tenant-scoped tables that have the tenant_isolation policy.
func facts(t *testing.T) (routing.Schema, map[string]bool) {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t)
	conn, err := pgx.Connect(ctx, d.AdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT format('%s.%s', n.nspname, c.relname),
		       coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') LIKE '%app.tenant_id%',
		       EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
		WHERE n.nspname = 'dbchat' AND c.relkind IN ('r', 'p')`)
	require.NoError(t, err)
	s := routing.Schema{Scoped: map[string]bool{}, TenantDefault: map[string]bool{}}
	policy := map[string]bool{}
	for rows.Next() {
		var name string
		var def, pol bool
		require.NoError(t, rows.Scan(&name, &def, &pol))
		s.Scoped[name], s.TenantDefault[name], policy[name] = true, def, pol
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, len(s.Scoped), 18, "tenant-scoped tables in dbchat")
	return s, policy
}

// TestQueriesRoutableByOneTenant: every query of queries/*.sql that touches
// a tenant-scoped table is routable by one tenant: its text pins every
// such reference to one tenant (a tenant_id equality with a value, a
// tenant_id join to a pinned reference, an INSERT's tenant_id from its
// default), or it is in policyRouted and every table it touches has the
// tenant_isolation policy, or it is in crossTenant with its reason. A query
// reading pg_catalog is in catalogReads. A new query that is none of these
// fails here, named, with what to do.
func TestQueriesRoutableByOneTenant(t *testing.T) {
	t.Parallel()
	schema, policy := facts(t)
	queries, err := routing.Load("../../queries")
	require.NoError(t, err)
	require.Greater(t, len(queries), 50)

	const fix = "filter or join on tenant_id (tenant_id = <value> pins a reference, a.tenant_id = b.tenant_id carries it), " +
		"or add the query to policyRouted in internal/routing/routing_test.go if the tenant_isolation policy alone is to scope it, " +
		"or to crossTenant with the reason (and to docs/SCALING.md) if it must cross tenants"
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, q := range queries {
		seen[q.Name] = true
		r, err := routing.Classify(q.SQL, schema)
		if err != nil {
			t.Errorf("%s: %s: parse: %v", q.File, q.Name, err)
			continue
		}
		crossFn := false
		for _, f := range r.Functions {
			if strings.HasPrefix(f, "dbchat_ops.") {
				crossFn = true
				if _, ok := crossTenant[q.Name]; !ok {
					t.Errorf("%s: %s calls %s, which crosses tenants: add it to crossTenant with the reason and to docs/SCALING.md", q.File, q.Name, f)
				}
			}
		}
		if reason, ok := crossTenant[q.Name]; ok {
			require.NotEmpty(t, reason)
			if !crossFn {
				t.Errorf("%s: %s is in crossTenant but calls no dbchat_ops function: %s", q.File, q.Name, r.Describe())
			}
			counts["cross-tenant"]++
			continue
		}
		if len(r.Catalogs) > 0 {
			if _, ok := catalogReads[q.Name]; !ok {
				t.Errorf("%s: %s reads %s: add it to catalogReads with the reason (the coordinator's catalog does not see shards)", q.File, q.Name, strings.Join(r.Catalogs, ", "))
			}
		} else if _, ok := catalogReads[q.Name]; ok {
			t.Errorf("%s: %s is in catalogReads but reads no pg_catalog relation", q.File, q.Name)
		}
		switch {
		case len(r.Tables) == 0:
			counts["no tenant-scoped table"]++
			if policyRouted[q.Name] {
				t.Errorf("%s: %s is in policyRouted but touches no tenant-scoped table", q.File, q.Name)
			}
		case r.Routable():
			counts["filter"]++
			if policyRouted[q.Name] {
				t.Errorf("%s: %s is routable by its text (%s): take it off policyRouted", q.File, q.Name, r.Describe())
			}
		case policyRouted[q.Name]:
			counts["policy"]++
			for _, tbl := range r.Tables {
				if !policy[tbl] {
					t.Errorf("%s: %s runs under the policy alone but %s has no tenant_isolation policy", q.File, q.Name, tbl)
				}
			}
		default:
			t.Errorf("%s: %s is not routable by one tenant: %s. To fix: %s", q.File, q.Name, r.Describe(), fix)
		}
	}
	for _, list := range []map[string]bool{policyRouted, keys(crossTenant), keys(catalogReads)} {
		for name := range list {
			if !seen[name] {
				t.Errorf("%s is listed in routing_test.go but no query in queries/ has that name", name)
			}
		}
	}
	doc, err := os.ReadFile("../../docs/SCALING.md")
	require.NoError(t, err)
	for name := range crossTenant {
		require.Contains(t, string(doc), "`"+name+"`", "docs/SCALING.md lists the cross-tenant queries")
	}
	t.Logf("%d queries: %v", len(queries), counts)
}

func keys(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// TestClassify shows what the check calls routable, on the real schema.
func TestClassify(t *testing.T) {
	t.Parallel()
	schema, _ := facts(t)
	for _, c := range []struct {
		sql      string
		unpinned []string
	}{
		{`SELECT * FROM dbchat.models WHERE id = $1`, []string{"models (dbchat.models)"}},
		{`SELECT * FROM dbchat.models WHERE tenant_id = $1 AND id = $2`, nil},
		{`SELECT * FROM dbchat.models m WHERE m.tenant_id = sqlc.arg(tenant)::uuid`, nil},
		{`SELECT * FROM dbchat.models WHERE tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)`, nil},
		// A co-located join carries the pin; without the pin it carries nothing.
		{`SELECT * FROM dbchat.models m JOIN dbchat.training_data d ON d.tenant_id = m.tenant_id AND d.model_id = m.id WHERE m.tenant_id = $1`, nil},
		{`SELECT * FROM dbchat.models m JOIN dbchat.training_data d ON d.tenant_id = m.tenant_id AND d.model_id = m.id`,
			[]string{"m (dbchat.models)", "d (dbchat.training_data)"}},
		// A join on another column does not carry it.
		{`SELECT * FROM dbchat.models m JOIN dbchat.training_data d ON d.model_id = m.id WHERE m.tenant_id = $1`, []string{"d (dbchat.training_data)"}},
		// tenant_id = another column is not a value.
		{`SELECT * FROM dbchat.models m, dbchat.users u WHERE m.tenant_id = u.tenant_id`, []string{"m (dbchat.models)", "u (dbchat.users)"}},
		// An INSERT takes tenant_id from its default (app.tenant_id)...
		{`INSERT INTO dbchat.models (name) VALUES ($1)`, nil},
		// ...but what it reads must be pinned on its own.
		{`INSERT INTO dbchat.models (name) SELECT name FROM dbchat.models WHERE id = $1`, []string{"models (dbchat.models)"}},
		// dbchat.tenants is a reference table: it needs no pin.
		{`SELECT * FROM dbchat.tenants`, nil},
	} {
		r, err := routing.Classify(c.sql, schema)
		require.NoError(t, err, c.sql)
		got := append([]string(nil), r.Unpinned...)
		sort.Strings(got)
		want := append([]string(nil), c.unpinned...)
		sort.Strings(want)
		if len(want) == 0 {
			want = nil
		}
		if len(got) == 0 {
			got = nil
		}
		require.Equal(t, want, got, c.sql)
	}
	r, err := routing.Classify(`SELECT * FROM dbchat_ops.list_tenants()`, schema)
	require.NoError(t, err)
	require.Equal(t, []string{"dbchat_ops.list_tenants"}, r.Functions)
}
