package dbtest

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/tenant"
)

// WhoRuns runs a statement of tenant id through box and returns its session
// user (the query login it came in as) and current user (the role it ran
// as).
func WhoRuns(ctx context.Context, box *tenant.Sandbox, id uuid.UUID) (session, current string, err error) {
	err = box.Query(ctx, id, `SELECT session_user::text, current_user::text`, tenant.Limits{MaxRows: 1, Timeout: 5 * time.Second},
		func(rows pgx.Rows) error {
			for rows.Next() { // the sandbox hands out raw text values
				raw := rows.RawValues()
				session, current = string(raw[0]), string(raw[1])
			}
			return rows.Err()
		})
	return session, current, err
}
