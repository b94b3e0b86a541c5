package tenantio_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/tenantio"
)

// countingWriter counts what the export writes and keeps nothing.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// TestExportMemoryIsFlat exports a tenant whose data table holds ~40 MB of
// CSV and samples the heap meanwhile: COPY streams through the zip writer,
// so the heap stays a small fraction of the data.
func TestExportMemoryIsFlat(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	tn := dbtest.NewTenant(t, db, "Big")
	require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		if _, err := tx.Exec(ctx, `SELECT dbchat.create_data_table('big', '[{"name":"v","type":"text"},{"name":"n","type":"bigint"}]')`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+tenantio.SchemaOf(tn.ID)+`.big (v, n) SELECT repeat(md5(g::text), 6), g FROM generate_series(1, 200000) g`)
		return err
	}))
	conn, err := pgx.Connect(ctx, d.AdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	var w countingWriter
	m, err := tenantio.Export(ctx, conn, tn.Slug, &w)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.Len(t, m.Data, 1)
	require.EqualValues(t, 200000, m.Data[0].Rows)
	csvBytes := int64(200000 * (192 + 8))
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("exported %d rows (~%d MB of CSV) into %d bytes of zip; heap grew by at most %d KB", m.Data[0].Rows, csvBytes>>20, w.n.Load(), growth>>10)
	require.Less(t, growth, csvBytes/4, "the export's heap must not grow with the data")
}

// TestImportRefusesForeignFiles: a file that is not an export, or whose
// manifest names another format, creates nothing.
func TestImportRefusesForeignFiles(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t)
	conn, err := pgx.Connect(ctx, d.AdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create("manifest.json")
	require.NoError(t, err)
	_, err = io.WriteString(f, `{"format":"something-else/1"}`)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	_, err = tenantio.Import(ctx, conn, zr, "Nope", "")
	require.ErrorContains(t, err, `not a dbchat tenant export: format "something-else/1"`)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM dbchat.tenants`).Scan(&n))
	require.Zero(t, n)
}
