package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

// FuzzSandbox feeds mutated SQL to the validator; every statement it accepts
// is executed as tenant A and must return no B marker and change nothing.
// `make test` runs it for a bounded time; run it longer with
// go test -run '^$' -fuzz FuzzSandbox -fuzztime 10m ./internal/sandbox/
func FuzzSandbox(f *testing.F) {
	for _, sql := range hostile("00000000-0000-0000-0000-000000000000", "t_x") {
		f.Add(sql)
	}
	for _, sql := range []string{
		`SELECT label, count(*) FROM items GROUP BY label`,
		`WITH x AS (SELECT * FROM items) SELECT * FROM x WHERE id > 1`,
		`SELECT * FROM items i JOIN items j ON i.id = j.id ORDER BY 1 LIMIT 3`,
		`SELECT jsonb_build_object('l', label) FROM items`,
	} {
		f.Add(sql)
	}
	r := newRedTeam(f, false)
	policy := sqlguard.Policy{Schema: tenant.Schema(r.a.ID), Tables: map[string]bool{"items": true}}
	before := r.checksums(f)
	f.Fuzz(func(t *testing.T, sql string) {
		if sqlguard.Check(sql, policy) != nil {
			return // rejected: nothing runs
		}
		ctx := tenant.NewContext(context.Background(), r.a.Identity)
		res, err := r.svc.Run(ctx, sandbox.Request{SQL: sql, Timeout: 500 * time.Millisecond, MaxRows: 100})
		out, _ := json.Marshal(res)
		require.NotContains(t, string(out), bMarker, sql)
		if err != nil {
			require.NotContains(t, err.Error(), bMarker, sql)
		}
		require.Equal(t, before, r.checksums(t), "%q changed data", sql)
	})
}

// Concurrency: 16 goroutines, 8 tenants, 2,000 sandboxed queries through a
// small pool; no query ever returns another tenant's row.
func TestSandboxConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 3)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	svc := sandbox.New(db, box)
	tenants := make([]dbtest.Tenant, 8)
	for i := range tenants {
		tenants[i] = dbtest.NewTenant(t, db, fmt.Sprintf("C%d", i))
		marker := fmt.Sprintf("tenant-%d", i)
		require.NoError(t, db.TxAs(ctx, tenants[i].Identity, func(tx tenant.Conn) error {
			tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "facts", Columns: []catalog.ColumnSpec{{Name: "owner", Type: "text"}}})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (owner) SELECT $1 FROM generate_series(1, 20)`, marker)
			return err
		}))
	}
	queries := []string{
		`SELECT owner FROM facts`,
		`SELECT DISTINCT owner FROM facts`,
		`SELECT owner, count(*) FROM facts GROUP BY owner`,
		`SELECT f.owner FROM facts f JOIN facts g ON f.owner = g.owner LIMIT 50`,
	}
	const workers, total = 16, 2000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				n := (w + i) % len(tenants)
				tctx := tenant.NewContext(ctx, tenants[n].Identity)
				res, err := svc.Run(tctx, sandbox.Request{SQL: queries[i%len(queries)]})
				if err != nil {
					errs <- err
					return
				}
				want := fmt.Sprintf(`"tenant-%d"`, n)
				for _, row := range res.Rows {
					if string(row[0]) != want {
						errs <- fmt.Errorf("tenant %d saw %s", n, row[0])
						return
					}
				}
				if res.RowCount == 0 {
					errs <- fmt.Errorf("tenant %d saw nothing", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
