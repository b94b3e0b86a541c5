// Package vectest synthesises clustered 768-dimensional vectors and
// bulk-loads them into dbchat.training_data. The retrieval scale test
// (internal/nlsql) and the benchmarks (internal/bench) share it.
package vectest

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgvector/pgvector-go"

	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
)

// Per-dimension noise at 768 dimensions: DataNoise puts a row about as far
// from its topic centre as the centre's own length (the clusters overlap),
// QueryNoise a query about half that from the row it paraphrases.
const (
	DataNoise  = 0.035
	QueryNoise = 0.02
)

// Synth draws unit vectors around shared topic centres, so that every
// tenant's rows lie in the same regions, as questions about customers and
// orders do for every tenant: the nearest rows to any question belong
// mostly to other tenants. Uniform random vectors would have no
// neighbourhoods for an ANN index to exploit.
type Synth struct {
	Rng     *rand.Rand
	Centres [][]float32
}

// New returns a Synth with topics random unit centres, deterministic in seed.
func New(seed uint64, topics int) *Synth {
	s := &Synth{Rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for range topics {
		c := make([]float32, embed.Dim)
		for i := range c {
			c[i] = float32(s.Rng.NormFloat64())
		}
		embed.Normalize(c)
		s.Centres = append(s.Centres, c)
	}
	return s
}

// Near returns base plus Gaussian noise (σ per dimension), normalised.
func (s *Synth) Near(base []float32, noise float64) []float32 {
	v := make([]float32, embed.Dim)
	for i := range v {
		v[i] = base[i] + float32(noise*s.Rng.NormFloat64())
	}
	embed.Normalize(v)
	return v
}

// Draw returns a row around a random centre.
func (s *Synth) Draw() []float32 { return s.Near(s.Centres[s.Rng.IntN(len(s.Centres))], DataNoise) }

// Conn is what the bulk load needs of a connection (*pgx.Conn, *pgxpool.Conn).
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Index is one of training_data's HNSW indexes with its definition.
type Index struct{ Name, Def string }

// HNSWIndexes returns training_data's HNSW indexes, as the migration made them.
func HNSWIndexes(ctx context.Context, conn Conn) ([]Index, error) {
	rows, err := conn.Query(ctx, `SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
		FROM pg_index WHERE indrelid = 'dbchat.training_data'::regclass AND pg_get_indexdef(indexrelid) LIKE '%USING hnsw%'
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Index])
}

// LoadWithoutHNSW drops training_data's HNSW indexes, runs load, rebuilds
// them from their own catalog definitions (exactly what the migration made)
// and leaves statistics and the visibility map as autovacuum would (VACUUM
// ANALYZE). Inserting 768-dimensional vectors into live HNSW graphs costs
// milliseconds each on a small machine; building the graphs afterwards is
// several times faster. It returns how long the index builds took.
func LoadWithoutHNSW(ctx context.Context, conn Conn, load func() error) (time.Duration, error) {
	indexes, err := HNSWIndexes(ctx, conn)
	if err != nil {
		return 0, err
	}
	if len(indexes) == 0 {
		return 0, errors.New("training_data has no HNSW index (migrations not applied?)")
	}
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, "DROP INDEX "+ix.Name); err != nil {
			return 0, err
		}
	}
	if err := load(); err != nil {
		return 0, err
	}
	// The largest graph should fit in maintenance_work_mem, or the build
	// goes on on disk and slows down sharply (at 2,000,000 rows, hours).
	rows, err := conn.Query(ctx, `SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM dbchat.training_data GROUP BY kind) k`)
	if err != nil {
		return 0, err
	}
	largest, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('maintenance_work_mem', $1, false)", fmt.Sprintf("%dMB", graphMB(largest))); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, ix.Def); err != nil {
			return 0, fmt.Errorf("rebuild %s: %w", ix.Name, err)
		}
	}
	took := time.Since(start)
	if _, err := conn.Exec(ctx, "RESET maintenance_work_mem"); err != nil {
		return 0, err
	}
	_, err = conn.Exec(ctx, "VACUUM (ANALYZE) dbchat.training_data, dbchat.models, dbchat.tenants, dbchat.users")
	return took, err
}

// graphMB is the maintenance_work_mem, in MB, for the HNSW graph of rows
// vectors: at least 1 GB; at most 12 GB, half this machine kind's memory (a
// parallel build keeps the graph in shared memory).
func graphMB(rows int64) int {
	return min(max(nlsql.HNSWBuildMB(int(rows)), 1024), 12*1024)
}

// RegisterCopy teaches conn pgvector's binary format, which COPY (always
// binary in pgx) needs for pgvector.Vector values. Encoding only.
// (pgvector-go's own pgx package would bring in another module.)
func RegisterCopy(ctx context.Context, conn *pgx.Conn) error {
	var oid uint32
	if err := conn.QueryRow(ctx, `SELECT oid FROM pg_type WHERE typname = 'vector' AND typtype = 'b'`).Scan(&oid); err != nil {
		return err
	}
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "vector", OID: oid, Codec: copyCodec{}})
	return nil
}

type copyCodec struct{}

func (copyCodec) FormatSupported(format int16) bool { return format == pgtype.BinaryFormatCode }
func (copyCodec) PreferredFormat() int16            { return pgtype.BinaryFormatCode }

func (copyCodec) PlanEncode(_ *pgtype.Map, _ uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(pgvector.Vector); !ok || format != pgtype.BinaryFormatCode {
		return nil
	}
	return binaryPlan{}
}

func (copyCodec) PlanScan(*pgtype.Map, uint32, int16, any) pgtype.ScanPlan { return nil }

func (copyCodec) DecodeDatabaseSQLValue(*pgtype.Map, uint32, int16, []byte) (driver.Value, error) {
	return nil, errors.New("vectest: the COPY codec encodes only")
}

func (copyCodec) DecodeValue(*pgtype.Map, uint32, int16, []byte) (any, error) {
	return nil, errors.New("vectest: the COPY codec encodes only")
}

type binaryPlan struct{}

func (binaryPlan) Encode(value any, buf []byte) ([]byte, error) {
	return value.(pgvector.Vector).EncodeBinary(buf)
}
