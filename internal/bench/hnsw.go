package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// hnswIndex is one of training_data's HNSW indexes.
type hnswIndex struct {
	name, def string
}

// hnswIndexes returns training_data's HNSW indexes with their definitions,
// as the migration created them.
func hnswIndexes(ctx context.Context, conn *pgx.Conn) ([]hnswIndex, error) {
	rows, err := conn.Query(ctx, `SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
		FROM pg_index WHERE indrelid = 'dbchat.training_data'::regclass AND pg_get_indexdef(indexrelid) LIKE '%USING hnsw%'
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (hnswIndex, error) {
		var ix hnswIndex
		err := r.Scan(&ix.name, &ix.def)
		return ix, err
	})
}

// loadWithoutHNSW bulk-loads training data the way
// internal/nlsql/retrieve_scale_test.go does: it drops training_data's HNSW
// indexes, runs load, rebuilds them from their own catalog definitions (so
// exactly what the migration made) and leaves statistics and the visibility
// map as autovacuum would (VACUUM ANALYZE). Inserting 768-dimensional
// vectors into live HNSW graphs costs milliseconds each on a small machine;
// building the graphs afterwards is several times faster. It returns how
// long the index builds took.
func loadWithoutHNSW(ctx context.Context, admin *pgx.Conn, load func() error) (time.Duration, error) {
	indexes, err := hnswIndexes(ctx, admin)
	if err != nil {
		return 0, err
	}
	if len(indexes) == 0 {
		return 0, fmt.Errorf("training_data has no HNSW index (migrations not applied?)")
	}
	for _, ix := range indexes {
		if _, err := admin.Exec(ctx, "DROP INDEX "+ix.name); err != nil {
			return 0, err
		}
	}
	if err := load(); err != nil {
		return 0, err
	}
	// The graph of the largest index should fit in maintenance_work_mem, or
	// the build slows down sharply once it no longer does.
	if _, err := admin.Exec(ctx, "SET maintenance_work_mem = '1GB'"); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, ix := range indexes {
		if _, err := admin.Exec(ctx, ix.def); err != nil {
			return 0, fmt.Errorf("rebuild %s: %w", ix.name, err)
		}
	}
	took := time.Since(start)
	if _, err := admin.Exec(ctx, "RESET maintenance_work_mem"); err != nil {
		return 0, err
	}
	if _, err := admin.Exec(ctx, "VACUUM (ANALYZE) dbchat.training_data, dbchat.models, dbchat.tenants, dbchat.users"); err != nil {
		return 0, err
	}
	return took, nil
}
