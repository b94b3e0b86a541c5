package nlsql

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/embed"
)

// Model vector indexes: every tenant's training rows share one table and
// one HNSW graph per kind, which serves a model well while its sets are
// small enough to be ranked exactly (see Retriever). A very large model
// among many others is not: exact ranking costs about 6 us per row (300 ms
// at 50,000 rows), and the global graph's scan passes other tenants'
// neighbours on its way (p95 29 ms for a 50,000-row tenant among 200,000
// rows, measured). So such a model gets partial HNSW indexes of its own, one
// per kind,
//
//	CREATE INDEX training_data_m_<hash>_sql ON dbchat.training_data
//	    USING hnsw (embedding vector_cosine_ops)
//	    WHERE tenant_id = '<tenant>' AND model_id = '<model>' AND (kind || '') = 'sql'
//
// (and _ddl, _doc), made when the model's row count reaches
// VectorIndexTuning.Create and dropped when it falls below Drop (lower, so
// that a model hovering at the threshold does not have them built and
// dropped on every run). A graph per model, not per tenant: a query wants
// one model's rows, and a tenant's graph of all its models makes the walk
// pass the others' and grows past the size where HNSW keeps its recall
// (0.625 for a 437,000-row tenant graph against 0.712 for its largest
// model's 250,000 rows, same ef_search, measured). The kind is compared as
// (kind || ''), not kind, so that the planner can prove it from
// retrieval's filter only for these indexes: the global graphs' predicates
// (kind = 'sql') cannot be proven from it, which leaves the model's graph
// as the only ordered path (sorting is off).
//
// The name carries a hash of (tenant, model) (see ModelIndexName), because
// both ids do not fit in PostgreSQL's 63 bytes and a model id alone is
// unique only within its tenant; the comment on the index names both for a
// DBA. CountRetrievable computes the same name from the transaction's
// tenant, so a tenant can only ever look up its own models' indexes.
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
// one model (all kinds and embedders).
type VectorIndexTuning struct {
	Create int // a model with at least this many rows gets its own indexes
	Drop   int // they are dropped when the model has fewer rows than this
	// BuildMB caps the maintenance_work_mem a build may be given (MB; 0:
	// 2048). Each build gets what its graph needs (HNSWBuildMB) up to this,
	// never less than the connection already had.
	BuildMB int
	// Large is the rows of one kind from which a graph is built denser
	// (0: LargeGraphRows; see graphOptions).
	Large int
}

// DefaultVectorIndexTuning: a model gets its own indexes from 3,000 rows,
// about where its largest set first exceeds Retriever's exact threshold
// (2,000 rows), and loses them below 1,500.
var DefaultVectorIndexTuning = VectorIndexTuning{Create: 3000, Drop: 1500}

// HNSWBuildMB is the maintenance_work_mem, in MB, that holds the HNSW graph
// of rows vectors while it is built: each element keeps its vector (4 bytes
// a dimension) and about a kilobyte of neighbour lists (m = 16; 64 bytes per
// unit of m). A graph that outgrows maintenance_work_mem is finished on
// disk, several times slower (pgvector says so in a notice); PostgreSQL's
// default, 64 MB, holds about 16,000 rows.
func HNSWBuildMB(rows int) int { return graphMB(rows, 16) }

func graphMB(rows, m int) int { return rows*(4*embed.Dim+64*m)>>20 + 1 }

// LargeGraphRows is the default size from which a model's graph of one
// kind is built denser (VectorIndexTuning.Large) and searched wider
// (Retriever.LargeGraph, LargeEfSearch).
const LargeGraphRows = 100_000

// graphOptions are the HNSW build parameters for a graph of rows vectors:
// pgvector's defaults (m 16, ef_construction 64) below t.Large, m 32 and
// ef_construction 200 from there. On the benchmark's clustered
// 768-dimensional vectors, a 250,000-row graph gave recall@10 0.712 at
// ef_search 200 with the defaults; with m 24 / ef_construction 128, 0.877
// at 200, 0.946 at 400 and 0.982 at 800 (p95 30.5 ms); with m 32 /
// ef_construction 200, 0.988 at 400 (p95 20.6 ms), the ef_search such
// graphs are searched at (Retriever.LargeEfSearch), all with the graph in
// shared_buffers, measured alone on 2 cores (NLSQL.md). The build takes
// about 2.2 times as long as m 24's (16 min against 7.5) and 5 times the
// defaults'; below 50,000 rows the defaults already give 0.98. A graph
// built sparser than this (an earlier default) is rebuilt in place by the
// next TuneVectorIndexes.
func (t VectorIndexTuning) graphOptions(rows int) (m, efConstruction int) {
	if rows >= cmp.Or(t.Large, LargeGraphRows) {
		return LargeGraphM, 200
	}
	return 16, 64
}

// LargeGraphM is the m large graphs are built with (graphOptions). A large
// graph built sparser, by a version that built them with m 24, is searched
// at SparseLargeEfSearch until TuneVectorIndexes has rebuilt it.
const LargeGraphM = 32

// kindSuffix names a kind's model index (a name must stay within 63 bytes).
var kindSuffix = map[string]string{KindSQL: "sql", KindDDL: "ddl", KindDocumentation: "doc"}

// ModelIndexName is the name of the HNSW index of a model's rows of kind in
// the dbchat schema (52 bytes): training_data_m_, the first 16 bytes of
// SHA-256 over "<tenant>/<model>" (both as canonical uuid text) in hex, and
// the kind's suffix. queries/nlsql.sql (CountRetrievable) computes the same.
func ModelIndexName(tenantID, modelID uuid.UUID, kind string) string {
	sum := sha256.Sum256([]byte(tenantID.String() + "/" + modelID.String()))
	return "training_data_m_" + hex.EncodeToString(sum[:16]) + "_" + kindSuffix[kind]
}

// modelKey is one model of one tenant.
type modelKey struct{ Tenant, Model uuid.UUID }

func compareKeys(a, b modelKey) int {
	return cmp.Or(bytes.Compare(a.Tenant[:], b.Tenant[:]), bytes.Compare(a.Model[:], b.Model[:]))
}

// VectorIndexChange is one index TuneVectorIndexes created or dropped.
type VectorIndexChange struct {
	Tenant  uuid.UUID
	Model   uuid.UUID
	Kind    string
	Index   string
	Rows    int  // the model's training rows (all kinds) when decided
	Created bool // false: dropped
	Rebuilt bool // an existing graph rebuilt denser (VectorIndexTuning.Large), in place
	Took    time.Duration
}

func (c VectorIndexChange) String() string {
	verb := "dropped"
	switch {
	case c.Rebuilt:
		verb = "rebuilt"
	case c.Created:
		verb = "created"
	}
	return fmt.Sprintf("%s dbchat.%s (tenant %s, model %s, %d training rows) in %s", verb, c.Index, c.Tenant, c.Model, c.Rows, c.Took.Round(time.Millisecond))
}

// ErrCannotCountTenants is returned by TuneVectorIndexes on a connection
// whose role is subject to the policies: it would count no tenant's rows.
var ErrCannotCountTenants = fmt.Errorf("nlsql: tuning the model vector indexes needs a superuser (or BYPASSRLS) connection to count every tenant's training rows")

// ownIndex is a model index found in the catalog.
type ownIndex struct {
	name  string
	key   modelKey // from its predicate
	kind  string
	valid bool
	m     int // its build option (pgvector's default, 16, when not set)
}

// TuneVectorIndexes creates the missing model indexes and drops the
// unneeded ones (see VectorIndexTuning), logging each change to log (nil:
// none). conn must count every tenant's rows, so its role must be a
// superuser or bypass RLS (ErrCannotCountTenants otherwise), and must be
// allowed to create indexes on dbchat.training_data (the superuser, or its
// owner); it must not be in a transaction (CREATE INDEX CONCURRENTLY).
// A model that keeps its indexes gets any missing one back, and an invalid
// one (a concurrent build that failed or was cancelled) is dropped and built
// again, as are the per-tenant indexes (training_data_t_*) that earlier
// versions made. Runs are idempotent, and two runs at once at worst race on
// one index (IF NOT EXISTS / IF EXISTS).
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
	// Every model's rows by kind, through the retrieval B-tree (an
	// index-only scan).
	rows, err := conn.Query(ctx, `SELECT tenant_id, model_id, kind, count(*)::int FROM dbchat.training_data GROUP BY tenant_id, model_id, kind`)
	if err != nil {
		return nil, err
	}
	counts, kindRows := map[modelKey]int{}, map[modelKey]map[string]int{}
	var k modelKey
	var kind string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&k.Tenant, &k.Model, &kind, &n}, func() error {
		counts[k] += n
		if kindRows[k] == nil {
			kindRows[k] = map[string]int{}
		}
		kindRows[k][kind] = n
		return nil
	}); err != nil {
		return nil, err
	}
	have, err := ownIndexes(ctx, conn)
	if err != nil {
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
	exec := func(c VectorIndexChange, sql ...string) error {
		start := time.Now()
		for _, s := range sql {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("nlsql: %s: %w", s, err)
			}
		}
		c.Took = time.Since(start)
		changes = append(changes, c)
		fmt.Fprintf(log, "vector index: %s\n", c)
		return nil
	}
	// Drops first (an invalid index makes way for its rebuild), in name
	// order so that a run's log reads the same every time.
	// A graph that has grown past LargeGraphRows is rebuilt denser, after
	// the drops; one that shrinks keeps its options (still right, only
	// slower to build).
	kept := map[modelKey]map[string]bool{} // model -> kinds indexed
	var denser []ownIndex
	for _, ix := range have {
		n := counts[ix.key]
		if ix.valid && n >= t.Drop && ix.name == ModelIndexName(ix.key.Tenant, ix.key.Model, ix.kind) {
			if kept[ix.key] == nil {
				kept[ix.key] = map[string]bool{}
			}
			kept[ix.key][ix.kind] = true
			if m, _ := t.graphOptions(kindRows[ix.key][ix.kind]); ix.m < m {
				denser = append(denser, ix)
			}
			continue
		}
		c := VectorIndexChange{Tenant: ix.key.Tenant, Model: ix.key.Model, Kind: ix.kind, Index: ix.name, Rows: n}
		if err := exec(c, "DROP INDEX CONCURRENTLY IF EXISTS dbchat."+pgx.Identifier{ix.name}.Sanitize()); err != nil {
			return changes, err
		}
	}
	setMem := func(rows, m int) error {
		mb := max(min(graphMB(rows, m), buildMB), connKB/1024)
		_, err := conn.Exec(ctx, `SELECT set_config('maintenance_work_mem', $1, false)`, strconv.Itoa(mb)+"MB")
		return err
	}
	// REINDEX CONCURRENTLY builds the new graph beside the old one, which
	// retrieval goes on using until the swap. Should it fail, the options
	// go back, so that the next run tries again; its leftover (an invalid
	// <name>_ccnew) is dropped by the next run like any invalid index.
	for _, ix := range denser {
		rows := kindRows[ix.key][ix.kind]
		m, efc := t.graphOptions(rows)
		if err := setMem(rows, m); err != nil {
			return changes, err
		}
		c := VectorIndexChange{Tenant: ix.key.Tenant, Model: ix.key.Model, Kind: ix.kind, Index: ix.name, Rows: counts[ix.key], Created: true, Rebuilt: true}
		name := "dbchat." + pgx.Identifier{ix.name}.Sanitize()
		err := exec(c, fmt.Sprintf(`ALTER INDEX %s SET (m = %d, ef_construction = %d)`, name, m, efc), "REINDEX INDEX CONCURRENTLY "+name)
		if err != nil {
			_, _ = conn.Exec(context.WithoutCancel(ctx), fmt.Sprintf(`ALTER INDEX %s SET (m = %d)`, name, ix.m))
			return changes, err
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(counts), compareKeys) {
		n := counts[k]
		if _, ok := kept[k]; !ok && n < t.Create {
			continue
		}
		for _, kind := range Kinds {
			if kept[k][kind] {
				continue
			}
			c := VectorIndexChange{Tenant: k.Tenant, Model: k.Model, Kind: kind, Index: ModelIndexName(k.Tenant, k.Model, kind), Rows: n, Created: true}
			m, efc := t.graphOptions(kindRows[k][kind])
			if err := setMem(kindRows[k][kind], m); err != nil {
				return changes, err
			}
			// The ids are uuid.UUIDs, so their text is hex and dashes only,
			// and kind is one of Kinds: all safe as literals (the predicate
			// must be constant for the planner to match it).
			create := fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON dbchat.training_data
    USING hnsw (embedding %s.vector_cosine_ops) WITH (m = %d, ef_construction = %d)
    WHERE tenant_id = '%s'::uuid AND model_id = '%s'::uuid AND (kind || '') = %s`,
				c.Index, pgx.Identifier{ext}.Sanitize(), m, efc, k.Tenant, k.Model, kindLiteral[kind])
			comment := fmt.Sprintf(`COMMENT ON INDEX dbchat.%s IS 'HNSW graph of tenant %s, model %s, kind %s (nlsql.TuneVectorIndexes)'`,
				c.Index, k.Tenant, k.Model, kind)
			if err := exec(c, create, comment); err != nil {
				return changes, err
			}
		}
	}
	return changes, nil
}

// predicateIDs reads the tenant and model ids from an own index's predicate
// as pg_get_expr prints it; a per-tenant index of earlier versions has no
// model (uuid.Nil).
var predicateIDs = regexp.MustCompile(`(tenant_id|model_id) = '([0-9a-f-]{36})'::uuid`)

// ownIndexes lists the model indexes on training_data (and the per-tenant
// ones of earlier versions), valid or not, in name order.
func ownIndexes(ctx context.Context, conn *pgx.Conn) ([]ownIndex, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname::text, i.indisvalid AND i.indisready, coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), ''),
		coalesce((SELECT o.option_value::int FROM pg_catalog.pg_options_to_table(c.reloptions) o WHERE o.option_name = 'm'), 16)
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'dbchat.training_data'::regclass
		  AND (c.relname LIKE 'training\_data\_m\_%' OR c.relname LIKE 'training\_data\_t\_%')
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	var have []ownIndex
	var ix ownIndex
	var pred string
	_, err = pgx.ForEachRow(rows, []any{&ix.name, &ix.valid, &pred, &ix.m}, func() error {
		ix.key, ix.kind = modelKey{}, ""
		for _, m := range predicateIDs.FindAllStringSubmatch(pred, -1) {
			id, _ := uuid.Parse(m[2]) // malformed: uuid.Nil, so the index is dropped
			if m[1] == "tenant_id" {
				ix.key.Tenant = id
			} else {
				ix.key.Model = id
			}
		}
		for kind, suffix := range kindSuffix {
			if strings.HasSuffix(ix.name, "_"+suffix) {
				ix.kind = kind
			}
		}
		have = append(have, ix)
		return nil
	})
	return have, err
}
