package nlsql

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Tenant vector indexes: every tenant's training rows share one table and
// one HNSW graph per kind, which serves a tenant well while it holds a large
// share of the table or while its sets are small enough to be ranked
// exactly (see Retriever). A very large tenant among many others is
// neither: exact ranking costs about 6 us per row (300 ms at 50,000 rows)
// and the global graph walks past every other tenant's neighbours (p95 29
// ms at 200,000 rows, measured). So such a tenant gets a partial HNSW index
// of its own,
//
//	CREATE INDEX training_data_t_<hex>_hnsw ON dbchat.training_data
//	    USING hnsw (embedding vector_cosine_ops) WHERE tenant_id = '<id>'
//
// made when its row count reaches VectorIndexTuning.Create and dropped when
// it falls below Drop (lower, so that a tenant hovering at the threshold
// does not have its index built and dropped on every run). Retrieve finds
// the index by its name in the catalog and uses it.
//
// Who makes them: TuneVectorIndexes, which `dbchat migrate` runs after the
// migrations on its privileged connection (and an operator may run as often
// as tenants grow: migrate is idempotent). Not the runtime: dbchat_app owns
// nothing and cannot create an index, and building one takes seconds to
// minutes, which no request should wait for. The indexes are built and
// dropped CONCURRENTLY, so writes to training_data never wait either. The
// policy is untouched: the index only narrows which rows a scan visits, and
// every row it returns still passes tenant_isolation.

// VectorIndexTuning are TuneVectorIndexes's thresholds, in training rows of
// one tenant (all models, kinds and embedders).
type VectorIndexTuning struct {
	Create int // a tenant with at least this many rows gets its own index
	Drop   int // an index is dropped when its tenant has fewer rows than this
}

// DefaultVectorIndexTuning: a tenant gets its own index from 3,000 rows,
// about where its largest set first exceeds Retriever's exact threshold
// (2,000 rows; exact ranking of 2,000 rows takes about 5 ms, an HNSW scan
// of the tenant's own graph about 1-2 ms), and loses it below 1,500.
var DefaultVectorIndexTuning = VectorIndexTuning{Create: 3000, Drop: 1500}

// TenantIndexName is the name of tenant id's own HNSW index in the dbchat
// schema (53 characters, under PostgreSQL's 63).
func TenantIndexName(id uuid.UUID) string {
	return "training_data_t_" + hex.EncodeToString(id[:]) + "_hnsw"
}

// tenantOfIndex is TenantIndexName's inverse; ok is false for other names.
func tenantOfIndex(name string) (uuid.UUID, bool) {
	h, ok := strings.CutPrefix(name, "training_data_t_")
	if h, ok = strings.CutSuffix(h, "_hnsw"); !ok || len(h) != 32 {
		return uuid.UUID{}, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return uuid.UUID{}, false
	}
	return uuid.UUID(b), true
}

func uuidCompare(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// VectorIndexChange is one index TuneVectorIndexes created or dropped.
type VectorIndexChange struct {
	Tenant  uuid.UUID
	Index   string
	Rows    int  // the tenant's training rows when decided
	Created bool // false: dropped
	Took    time.Duration
}

func (c VectorIndexChange) String() string {
	verb := "dropped"
	if c.Created {
		verb = "created"
	}
	return fmt.Sprintf("%s dbchat.%s (tenant %s, %d training rows) in %s", verb, c.Index, c.Tenant, c.Rows, c.Took.Round(time.Millisecond))
}

// ErrCannotCountTenants is returned by TuneVectorIndexes on a connection
// whose role is subject to the policies: it would count no tenant's rows.
var ErrCannotCountTenants = fmt.Errorf("nlsql: tuning the tenant vector indexes needs a superuser (or BYPASSRLS) connection to count every tenant's training rows")

// TuneVectorIndexes creates the missing tenant indexes and drops the
// unneeded ones (see VectorIndexTuning), logging each change to log (nil:
// none). conn must count every tenant's rows, so its role must be a
// superuser or bypass RLS (ErrCannotCountTenants otherwise), and must be
// allowed to create indexes on dbchat.training_data (the superuser, or its
// owner); it must not be in a transaction (CREATE INDEX CONCURRENTLY).
// An invalid index (a concurrent build that failed or was cancelled) is
// dropped and, if still wanted, built again. Runs are idempotent, and two
// runs at once at worst race on one index (IF NOT EXISTS / IF EXISTS).
func TuneVectorIndexes(ctx context.Context, conn *pgx.Conn, t VectorIndexTuning, log io.Writer) ([]VectorIndexChange, error) {
	if log == nil {
		log = io.Discard
	}
	if t.Create <= 0 || t.Drop < 0 || t.Drop > t.Create {
		return nil, fmt.Errorf("nlsql: vector index thresholds must satisfy 0 <= drop <= create, 0 < create (got create %d, drop %d)", t.Create, t.Drop)
	}
	// The operator class lives in the vector extension's schema, which need
	// not be on conn's search_path.
	var sees bool
	var ext string
	if err := conn.QueryRow(ctx, `SELECT r.rolsuper OR r.rolbypassrls, n.nspname::text
		FROM pg_catalog.pg_roles r, pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
		WHERE r.rolname = current_user AND e.extname = 'vector'`).Scan(&sees, &ext); err != nil {
		return nil, err
	}
	if !sees {
		return nil, ErrCannotCountTenants
	}
	// Tenants at or above the lower threshold, through the retrieval B-tree
	// (an index-only scan; tens of milliseconds per million rows).
	rows, err := conn.Query(ctx, `SELECT tenant_id, count(*)::int FROM dbchat.training_data GROUP BY tenant_id HAVING count(*) >= $1`, t.Drop)
	if err != nil {
		return nil, err
	}
	counts := map[uuid.UUID]int{}
	var id uuid.UUID
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { counts[id] = n; return nil }); err != nil {
		return nil, err
	}
	// The tenant indexes there are, valid or not.
	rows, err = conn.Query(ctx, `SELECT c.relname::text, i.indisvalid AND i.indisready
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'dbchat.training_data'::regclass AND c.relname LIKE 'training\_data\_t\_%\_hnsw'`)
	if err != nil {
		return nil, err
	}
	have := map[uuid.UUID]bool{} // tenant -> its index is valid
	var name string
	var valid bool
	if _, err := pgx.ForEachRow(rows, []any{&name, &valid}, func() error {
		if id, ok := tenantOfIndex(name); ok {
			have[id] = valid
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var changes []VectorIndexChange
	exec := func(c VectorIndexChange, sql string) error {
		start := time.Now()
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("nlsql: %s: %w", sql, err)
		}
		c.Took = time.Since(start)
		changes = append(changes, c)
		fmt.Fprintf(log, "vector index: %s\n", c)
		return nil
	}
	// Drops first (an invalid index makes way for its rebuild), each list in
	// tenant order so that a run's log reads the same every time.
	for _, id := range slices.SortedFunc(maps.Keys(have), uuidCompare) {
		valid := have[id]
		if n, ok := counts[id]; !ok || !valid { // counts holds only tenants >= Drop
			if !ok { // for the log
				if err := conn.QueryRow(ctx, `SELECT count(*)::int FROM dbchat.training_data WHERE tenant_id = $1`, id).Scan(&n); err != nil {
					return changes, err
				}
			}
			c := VectorIndexChange{Tenant: id, Index: TenantIndexName(id), Rows: n}
			if err := exec(c, "DROP INDEX CONCURRENTLY IF EXISTS dbchat."+c.Index); err != nil {
				return changes, err
			}
			delete(have, id)
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(counts), uuidCompare) {
		n := counts[id]
		if _, ok := have[id]; ok || n < t.Create {
			continue
		}
		c := VectorIndexChange{Tenant: id, Index: TenantIndexName(id), Rows: n, Created: true}
		// id is a uuid.UUID, so its text is hex and dashes only: safe as a
		// literal (the predicate must be a constant for the planner to match).
		sql := fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON dbchat.training_data
    USING hnsw (embedding %s.vector_cosine_ops) WHERE tenant_id = '%s'::uuid`, c.Index, pgx.Identifier{ext}.Sanitize(), id)
		if err := exec(c, sql); err != nil {
			return changes, err
		}
	}
	return changes, nil
}
