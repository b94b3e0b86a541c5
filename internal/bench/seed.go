package bench

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// seedTenants creates n synthetic tenants, each with users members (the
// first an admin) and a default model, directly as the superuser: the
// provisioning path is not what is measured, and going through it for 1,000
// tenants would only cost time.
func seedTenants(ctx context.Context, conn *pgx.Conn, n, users int) error {
	for _, q := range []struct {
		what, sql string
		args      []any
	}{
		{"tenants", `INSERT INTO dbchat.tenants (id, name, slug)
			SELECT md5('bench-tenant-' || i)::uuid, 'Bench tenant ' || i, 'tenant-' || i FROM generate_series(1, $1::int) i`, []any{n}},
		{"users", `INSERT INTO dbchat.users (tenant_id, id, email, name, role)
			SELECT t.id, md5(t.id::text || '/user/' || u)::uuid, 'user' || u || '@' || t.slug || '.invalid', 'User ' || u,
			       CASE WHEN u = 1 THEN 'admin' ELSE 'member' END
			FROM dbchat.tenants t, generate_series(1, $1::int) u WHERE t.slug LIKE 'tenant-%'`, []any{users}},
		{"models", `INSERT INTO dbchat.models (tenant_id, id, name, description)
			SELECT t.id, md5(t.id::text || '/model')::uuid, 'default', 'Default model'
			FROM dbchat.tenants t WHERE t.slug LIKE 'tenant-%'`, nil},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("seed %s: %w", q.what, err)
		}
	}
	return nil
}

// seedHistory gives every tenant rowsPerTenant query_history rows spread over
// its users and the last 90 days, inserted in created_at order across
// tenants (as a live service would write them, so one tenant's rows are
// scattered over the heap). Status is 70 % success, 15 % error, 10 %
// rejected, 5 % pending. Foreign keys hold by construction; their triggers
// are skipped (session_replication_role) to keep the load fast. Then
// VACUUM ANALYZE leaves fresh statistics and visibility maps, as autovacuum
// would on a table in steady state.
func seedHistory(ctx context.Context, conn *pgx.Conn, rowsPerTenant int) error {
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.Background(), `RESET session_replication_role`) }()
	_, err := conn.Exec(ctx, `
		INSERT INTO dbchat.query_history (tenant_id, id, user_id, model_id, question, generated_sql, status, error,
		                                  row_count, generation_ms, execution_ms, created_at)
		SELECT tenant_id, gen_random_uuid(), users[1 + (g % array_length(users, 1))], model,
		       'How many orders did region ' || g || ' place last month?',
		       'SELECT count(*) FROM orders WHERE region = ' || g || ' AND placed_at >= date_trunc(''month'', now()) - interval ''1 month''',
		       CASE WHEN r < 0.70 THEN 'success' WHEN r < 0.85 THEN 'error' WHEN r < 0.95 THEN 'rejected' ELSE 'pending' END,
		       CASE WHEN r >= 0.70 AND r < 0.85 THEN 'column "region" does not exist' END,
		       CASE WHEN r < 0.70 THEN (g * 7) % 1000 END,
		       50 + 900 * random(), 0.2 + 20 * random(),
		       now() - interval '90 days' * random()
		FROM (SELECT u.tenant_id, array_agg(u.id ORDER BY u.id) AS users,
		             (SELECT m.id FROM dbchat.models m WHERE m.tenant_id = u.tenant_id ORDER BY m.created_at LIMIT 1) AS model
		      FROM dbchat.users u GROUP BY u.tenant_id) t,
		     LATERAL (SELECT g, random() AS r FROM generate_series(1, $1::int) g) s
		ORDER BY 12`, rowsPerTenant)
	if err != nil {
		return fmt.Errorf("seed query_history: %w", err)
	}
	_, err = conn.Exec(ctx, `VACUUM (ANALYZE) dbchat.tenants, dbchat.users, dbchat.api_keys, dbchat.models,
		dbchat.database_tables, dbchat.database_columns, dbchat.query_history`)
	return err
}

// histSample is one existing query_history row.
type histSample struct{ Tenant, ID, User uuid.UUID }

// sampleHistory picks n random rows (with replacement when the table is
// smaller than n).
func sampleHistory(ctx context.Context, conn *pgx.Conn, n int) ([]histSample, error) {
	rows, _ := conn.Query(ctx, `SELECT tenant_id, id, user_id FROM dbchat.query_history ORDER BY random() LIMIT $1`, n)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[histSample])
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no query_history rows to sample")
	}
	for i := len(out); err == nil && i < n; i++ {
		out = append(out, out[i%len(out)])
	}
	return out, err
}
