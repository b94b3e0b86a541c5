package nlsql

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/embed"
)

// Tenant vector indexes: every tenant's training rows share one table and
// one HNSW graph per kind, which serves a tenant well while its sets are
// small enough to be ranked exactly (see Retriever). A very large tenant
// among many others is not: exact ranking costs about 6 us per row (300 ms
// at 50,000 rows), and the global graph's scan passes other tenants'
// neighbours and other models' rows on its way (p95 29 ms for a
// 50,000-row tenant among 200,000 rows, measured). So such a tenant gets
// partial HNSW indexes of its own, one per kind,
//
//	CREATE INDEX training_data_t_<hex>_sql ON dbchat.training_data
//	    USING hnsw (embedding vector_cosine_ops)
//	    WHERE tenant_id = '<id>' AND (kind || '') = 'sql'
//
// (and _ddl, _doc), made when its row count reaches VectorIndexTuning.Create
// and dropped when it falls below Drop (lower, so that a tenant hovering at
// the threshold does not have them built and dropped on every run). The
// kind is compared as (kind || ''), not kind, so that the planner can prove
// it from retrieval's filter only for these indexes: the global graphs'
// predicates (kind = 'sql') cannot be proven from it, which leaves the
// tenant's graph as the only ordered path (sorting is off). Retrieve finds
// the indexes by name in the catalog and uses them.
//
// Who makes them: TuneVectorIndexes, which `dbchat migrate` runs after the
// migrations on its privileged connection (and an operator may run as often
// as tenants grow: migrate is idempotent). Not the runtime: dbchat_app owns
// nothing and cannot create an index, and building one takes seconds to
// minutes, which no request should wait for. The indexes are built and
// dropped CONCURRENTLY, so writes to training_data never wait either. The
// policy is untouched: an index only narrows which rows a scan visits, and
// every row it returns still passes tenant_isolation.

// VectorIndexTuning are TuneVectorIndexes's thresholds, in training rows of
// one tenant (all models, kinds and embedders).
type VectorIndexTuning struct {
	Create int // a tenant with at least this many rows gets its own indexes
	Drop   int // they are dropped when the tenant has fewer rows than this
	// BuildMB caps the maintenance_work_mem a build may be given (MB; 0:
	// 2048). Each build gets what its graph needs (HNSWBuildMB) up to this,
	// never less than the connection already had.
	BuildMB int
}

// DefaultVectorIndexTuning: a tenant gets its own indexes from 3,000 rows,
// about where its largest set first exceeds Retriever's exact threshold
// (2,000 rows), and loses them below 1,500.
var DefaultVectorIndexTuning = VectorIndexTuning{Create: 3000, Drop: 1500}

// HNSWBuildMB is the maintenance_work_mem, in MB, that holds the HNSW graph
// of rows vectors while it is built: each element keeps its vector (4 bytes
// a dimension) and about a kilobyte of neighbour lists (m = 16). A graph
// that outgrows maintenance_work_mem is finished on disk, several times
// slower (pgvector says so in a notice); PostgreSQL's default, 64 MB, holds
// about 16,000 rows.
func HNSWBuildMB(rows int) int { return rows*(4*embed.Dim+1024)>>20 + 1 }

// kindSuffix names a kind's tenant index (a name must stay within 63 bytes).
var kindSuffix = map[string]string{KindSQL: "sql", KindDDL: "ddl", KindDocumentation: "doc"}

// TenantIndexName is the name of the HNSW index of tenant id's rows of kind
// in the dbchat schema (52 bytes).
func TenantIndexName(id uuid.UUID, kind string) string {
	return "training_data_t_" + hex.EncodeToString(id[:]) + "_" + kindSuffix[kind]
}

// tenantIndexOf is TenantIndexName's inverse; ok is false for other names.
func tenantIndexOf(name string) (id uuid.UUID, kind string, ok bool) {
	h, ok := strings.CutPrefix(name, "training_data_t_")
	if !ok || len(h) != 32+4 || h[32] != '_' {
		return uuid.UUID{}, "", false
	}
	for k, suffix := range kindSuffix {
		if h[33:] == suffix {
			kind = k
		}
	}
	b, err := hex.DecodeString(h[:32])
	if err != nil || kind == "" {
		return uuid.UUID{}, "", false
	}
	return uuid.UUID(b), kind, true
}

func uuidCompare(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// VectorIndexChange is one index TuneVectorIndexes created or dropped.
type VectorIndexChange struct {
	Tenant  uuid.UUID
	Kind    string
	Index   string
	Rows    int  // the tenant's training rows (all kinds) when decided
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
// A tenant that keeps its indexes gets any missing one back, and an invalid
// one (a concurrent build that failed or was cancelled) is dropped and built
// again. Runs are idempotent, and two runs at once at worst race on one
// index (IF NOT EXISTS / IF EXISTS).
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
	// (an index-only scan).
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
		WHERE i.indrelid = 'dbchat.training_data'::regclass AND c.relname LIKE 'training\_data\_t\_%'`)
	if err != nil {
		return nil, err
	}
	have := map[uuid.UUID]map[string]bool{} // tenant -> kind -> valid
	var name string
	var valid bool
	if _, err := pgx.ForEachRow(rows, []any{&name, &valid}, func() error {
		if id, kind, ok := tenantIndexOf(name); ok {
			if have[id] == nil {
				have[id] = map[string]bool{}
			}
			have[id][kind] = valid
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// Builds get the memory their graph needs (see BuildMB); the session's
	// setting is put back at the end.
	var prevMem string
	var connKB int
	if err := conn.QueryRow(ctx, `SELECT current_setting('maintenance_work_mem'), setting::int FROM pg_catalog.pg_settings WHERE name = 'maintenance_work_mem'`).Scan(&prevMem, &connKB); err != nil {
		return nil, err
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT set_config('maintenance_work_mem', $1, false)`, prevMem)
	}()
	buildMB := cmp.Or(t.BuildMB, 2048)
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
	// Drops first (an invalid index makes way for its rebuild), tenants and
	// kinds in a fixed order so that a run's log reads the same every time.
	for _, id := range slices.SortedFunc(maps.Keys(have), uuidCompare) {
		n, keep := counts[id] // counts holds only tenants >= Drop
		if !keep {
			if err := conn.QueryRow(ctx, `SELECT count(*)::int FROM dbchat.training_data WHERE tenant_id = $1`, id).Scan(&n); err != nil {
				return changes, err
			}
		}
		for _, kind := range Kinds {
			if valid, ok := have[id][kind]; ok && (!keep || !valid) {
				c := VectorIndexChange{Tenant: id, Kind: kind, Index: TenantIndexName(id, kind), Rows: n}
				if err := exec(c, "DROP INDEX CONCURRENTLY IF EXISTS dbchat."+c.Index); err != nil {
					return changes, err
				}
				delete(have[id], kind)
			}
		}
		if !keep {
			delete(have, id)
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(counts), uuidCompare) {
		n := counts[id]
		if _, kept := have[id]; !kept && n < t.Create {
			continue
		}
		for _, kind := range Kinds {
			if _, ok := have[id][kind]; ok {
				continue
			}
			c := VectorIndexChange{Tenant: id, Kind: kind, Index: TenantIndexName(id, kind), Rows: n, Created: true}
			mb := max(min(HNSWBuildMB(n), buildMB), connKB/1024)
			if _, err := conn.Exec(ctx, `SELECT set_config('maintenance_work_mem', $1, false)`, strconv.Itoa(mb)+"MB"); err != nil {
				return changes, err
			}
			// id is a uuid.UUID, so its text is hex and dashes only, and kind
			// is one of Kinds: both safe as literals (the predicate must be
			// constant for the planner to match it).
			sql := fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON dbchat.training_data
    USING hnsw (embedding %s.vector_cosine_ops) WHERE tenant_id = '%s'::uuid AND (kind || '') = %s`,
				c.Index, pgx.Identifier{ext}.Sanitize(), id, kindLiteral[kind])
			if err := exec(c, sql); err != nil {
				return changes, err
			}
		}
	}
	return changes, nil
}
