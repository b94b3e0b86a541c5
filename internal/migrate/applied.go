package migrate

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Applied returns the highest migration version applied to the database q
// reaches (0 before the first): readiness and startup compare it with
// Latest. q is a pool, a connection or a transaction; VersionTable is
// readable by the runtime role.
func Applied(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (int64, error) {
	var have int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+VersionTable+` WHERE is_applied`).Scan(&have)
	return have, err
}
