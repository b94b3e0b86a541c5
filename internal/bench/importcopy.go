package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 4: POST /v1/tables/{id}/rows with a CSV body against COPY of the same
// file into a table of the same shape without RLS (the physical floor: COPY
// refuses tables with RLS, which is why the importer stages its rows), and
// the server's peak anonymous memory at two sizes.

var importGoal = goal{bound: 0.50}

// memoryFlat bounds the peak anonymous memory's growth for "flat in the row
// count" while the rows grow tenfold.
const memoryFlat = 1.20

const importColumns = "id, customer, amount, ordered_at, paid"

// importSize is one CSV size with its measurements.
type importSize struct {
	rows           int
	path           string
	bytes          int64
	copyS, importS []float64 // seconds per run
	proc           procMem   // after the runs
	anonPeak       int64     // peak anonymous RSS during the runs
	mem            memStats  // Go runtime, after the runs
	allocRow       float64   // bytes allocated by the server per imported row
	phases         map[string][]float64
}

func runImport(ctx context.Context, e *Env) (*Section, error) {
	c, d := e.cfg.Import, e.open(ctx, "import")
	db := tenant.New(e.pool(ctx, d.AppURL, 2, nil))
	res := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Bench import"}))
	spec := catalog.TableSpec{Name: "orders", Description: "Benchmark import target"}
	for i, typ := range []string{"bigint", "text", "numeric", "timestamptz", "boolean"} {
		spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: strings.Split(importColumns, ", ")[i], Type: typ})
	}
	spec.Columns[0].Nullable = new(false)
	var tbl catalog.Table
	must(db.TxAs(ctx, tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}, func(tx tenant.Conn) (err error) {
		tbl, err = catalog.Create(ctx, tx, spec)
		return err
	}))
	dataTable := tbl.Ident().Sanitize()
	// The floor table: create_data_table's DDL without RLS, and the same
	// tenant_id default, fed by this session's setting.
	must1(d.admin.Exec(ctx, `CREATE SCHEMA bench_floor;
		CREATE TABLE bench_floor.orders (
			tenant_id uuid NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid,
			_row_id bigint GENERATED ALWAYS AS IDENTITY,
			id bigint NOT NULL, customer text, amount numeric, ordered_at timestamptz, paid boolean,
			PRIMARY KEY (tenant_id, _row_id))`))
	must1(d.admin.Exec(ctx, `SELECT set_config('app.tenant_id', $1, false)`, res.Tenant.ID.String()))
	sizes := []*importSize{{rows: max(1, c.Rows/10)}, {rows: c.Rows}}
	for _, sz := range sizes {
		sz.path, sz.phases = filepath.Join(e.cfg.WorkDir, fmt.Sprintf("orders-%d.csv", sz.rows)), map[string][]float64{}
		sz.bytes = writeOrdersCSV(sz.path, sz.rows)
		e.atEnd(func() { os.Remove(sz.path) })
	}
	for _, sz := range sizes {
		// A fresh server per size: its peaks cover this size's runs only.
		ch := e.startServer(ctx, d.AppURL)
		importRuns(ctx, e, d.admin, ch, ch.url+"/v1/tables/"+tbl.ID.String()+"/rows", dataTable, res.APIKey, sz)
		if err := ch.stop(); err != nil {
			return nil, fmt.Errorf("server process: %w", err)
		}
	}
	sameRows(ctx, d.admin, dataTable)
	return importSection(sizes), nil
}

// importRuns alternates COPY and the import of one size, sampling the
// server's memory meanwhile; the server's phases name the import's time.
func importRuns(ctx context.Context, e *Env, admin *pgx.Conn, ch *child, url, dataTable, key string, sz *importSize) {
	var mem0 memStats
	ch.get(ctx, "/debug/bench/memstats", &mem0)
	stopSampling := peakAnon(ch.pid)
	defer stopSampling()
	const outside = "outside database calls (HTTP, routing, reply)"
	for run := range e.cfg.Runs {
		for k := range 2 {
			floor := (k+run)%2 == 0
			// Each load starts from an empty table and clean buffers.
			must1(admin.Exec(ctx, "TRUNCATE "+map[bool]string{true: "bench_floor.orders", false: dataTable}[floor]+" RESTART IDENTITY"))
			must1(admin.Exec(ctx, "CHECKPOINT"))
			if floor {
				sz.copyS = append(sz.copyS, copyFloor(ctx, admin, sz))
				continue
			}
			var ph []phase
			ch.get(ctx, "/debug/bench/phases", &ph) // reset
			start := time.Now()
			postCSV(ctx, url, key, sz)
			secs := time.Since(start).Seconds()
			ch.get(ctx, "/debug/bench/phases", &ph)
			sz.importS = append(sz.importS, secs)
			byName := map[string]float64{outside: secs * 1000}
			for _, p := range ph {
				byName[p.Name], byName[outside] = byName[p.Name]+p.Ms, byName[outside]-p.Ms
			}
			for name, ms := range byName {
				sz.phases[name] = append(sz.phases[name], max(0, ms))
			}
		}
		e.logf("import: %d rows, run %d/%d: COPY %.0f rows/s, import %.0f rows/s", sz.rows, run+1, e.cfg.Runs,
			float64(sz.rows)/sz.copyS[run], float64(sz.rows)/sz.importS[run])
	}
	sz.anonPeak = stopSampling()
	sz.proc = must1(procMemory(ch.pid))
	ch.get(ctx, "/debug/bench/memstats", &sz.mem)
	sz.allocRow = float64(sz.mem.TotalAlloc-mem0.TotalAlloc) / float64(e.cfg.Runs*sz.rows)
}

// writeOrdersCSV writes n rows of a 5-column CSV: bigint, text (some quoted
// with a comma), numeric, timestamptz, boolean (some empty, i.e. NULL).
func writeOrdersCSV(path string, n int) int64 {
	f := must1(os.Create(path))
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintln(w, strings.ReplaceAll(importColumns, " ", ""))
	for i := 1; i <= n; i++ {
		customer := fmt.Sprintf("Customer %05d", i%20000)
		if i%10 == 0 {
			customer = fmt.Sprintf(`"Customer %05d, Ltd"`, i%20000)
		}
		paid := map[bool]string{true: "true", false: "false"}[i%3 == 0]
		if i%50 == 0 {
			paid = ""
		}
		fmt.Fprintf(w, "%d,%s,%d.%02d,%s,%s\n", i, customer, (i*37)%100000, i%100, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), paid)
	}
	must(w.Flush())
	return must1(f.Stat()).Size()
}

// copyFloor loads the CSV with COPY as the superuser; it returns seconds.
func copyFloor(ctx context.Context, admin *pgx.Conn, sz *importSize) float64 {
	f := must1(os.Open(sz.path))
	defer f.Close()
	start := time.Now()
	tag := must1(admin.PgConn().CopyFrom(ctx, f, "COPY bench_floor.orders ("+importColumns+") FROM STDIN (FORMAT csv, HEADER true)"))
	if tag.RowsAffected() != int64(sz.rows) {
		must(fmt.Errorf("COPY loaded %d rows, want %d", tag.RowsAffected(), sz.rows))
	}
	return time.Since(start).Seconds()
}

// postCSV streams the CSV to the import endpoint.
func postCSV(ctx context.Context, url, key string, sz *importSize) {
	f := must1(os.Open(sz.path))
	defer f.Close()
	var out struct {
		Inserted int64 `json:"inserted"`
	}
	doJSON(ctx, http.DefaultClient, http.MethodPost, url, "Authorization: Bearer "+key, f, &out)
	if out.Inserted != int64(sz.rows) {
		must(fmt.Errorf("imported %d rows, want %d", out.Inserted, sz.rows))
	}
}

// sameRows checks that the import and COPY stored the same values.
func sameRows(ctx context.Context, admin *pgx.Conn, dataTable string) {
	var a, b string
	q := `SELECT concat_ws(' ', count(*), sum(id), sum(amount), count(paid), sum(length(customer)), max(ordered_at), count(DISTINCT tenant_id)) FROM `
	must(admin.QueryRow(ctx, q+dataTable).Scan(&a))
	must(admin.QueryRow(ctx, q+"bench_floor.orders").Scan(&b))
	if a != b {
		must(fmt.Errorf("the import and COPY stored different data: %s vs %s", a, b))
	}
}

func importSection(sizes []*importSize) *Section {
	s := &Section{}
	small, large := sizes[0], sizes[len(sizes)-1]
	var rows, mem [][]string
	for _, sz := range sizes {
		rate := func(xs []float64) dist {
			return newDist(collect(xs, func(x float64) float64 { return float64(sz.rows) / x }))
		}
		r := newDist(ratios(sz.copyS, sz.importS)) // rows/s ratio = inverse time ratio
		verdict := "(fixed costs weigh more at this size; the goal applies to the large import)"
		if sz == large {
			verdict = importGoal.verdict(r.Med)
			s.Summary = append(s.Summary, Row{fmt.Sprintf("CSV import, %s rows (rows/s)", thousands(sz.rows)), rate(sz.copyS).m("%.0f"),
				rate(sz.importS).m("%.0f"), r.f("%.2f"), importGoal.String(), verdict})
		}
		rows = append(rows, []string{thousands(sz.rows), rate(sz.copyS).f("%.0f"), rate(sz.importS).f("%.0f"), r.f("%.2f"),
			newDist(sz.copyS).f("%.2f"), newDist(sz.importS).f("%.2f"), verdict})
		mem = append(mem, []string{thousands(sz.rows), fmt.Sprintf("%.1f", mib(sz.bytes)), fmt.Sprintf("%.1f", mib(sz.proc.HWM)),
			fmt.Sprintf("%.1f", mib(sz.anonPeak)), fmt.Sprintf("%.1f", mib(sz.proc.RssFile)), fmt.Sprintf("%.1f", mib(int64(sz.mem.Sys))),
			fmt.Sprintf("%.1f", mib(int64(sz.mem.HeapSys))), fmt.Sprintf("%.0f", sz.allocRow), fmt.Sprint(sz.mem.NumGC)})
	}
	anonGrowth := float64(large.anonPeak) / float64(max(1, small.anonPeak))
	times := large.rows / max(1, small.rows)
	memVerdict := fmt.Sprintf("flat (%.2f× for %d× the rows)", anonGrowth, times)
	if anonGrowth > memoryFlat {
		memVerdict = fmt.Sprintf("**not flat**: %.2f× for %d× the rows (bound %.2f×)", anonGrowth, times, memoryFlat)
	}
	s.Summary = append(s.Summary, Row{fmt.Sprintf("server peak anonymous memory (RssAnon), %s → %s rows", thousands(small.rows), thousands(large.rows)),
		"—", fmt.Sprintf("%.1f → %.1f MiB", mib(small.anonPeak), mib(large.anonPeak)), fmt.Sprintf("%.2f", anonGrowth),
		fmt.Sprintf("flat (≤ %.2f×)", memoryFlat), memVerdict})
	// Where the large import's time goes, costliest phase first.
	total, phaseMed := newDist(large.importS).Med*1000, func(n string) float64 { return newDist(large.phases[n]).Med }
	names := slices.SortedFunc(maps.Keys(large.phases), func(a, b string) int {
		return cmp.Or(cmp.Compare(phaseMed(b), phaseMed(a)), strings.Compare(a, b))
	})
	var phases [][]string
	for _, n := range names {
		phases = append(phases, []string{n, fmt.Sprintf("%.0f", phaseMed(n)), fmt.Sprintf("%.0f %%", phaseMed(n)/total*100)})
	}
	s.Body = render("import", map[string]any{"Goal": importGoal.bound, "Columns": importColumns, "LargeRows": large.rows, "SmallRows": small.rows,
		"LargeMiB": mib(large.bytes), "SmallMiB": mib(small.bytes),
		"Table": mdTable([]string{"rows", "COPY rows/s", "import rows/s", "import / COPY", "COPY s", "import s", "Verdict"}, rows),
		"MemTable": mdTable([]string{"rows", "CSV MiB", "peak RSS (VmHWM) MiB", "peak anonymous RSS MiB", "file RSS MiB", "Go runtime Sys MiB",
			"Go heap MiB", "bytes allocated per row", "GC cycles"}, mem),
		"AnonGrowth": anonGrowth, "Growth": float64(large.proc.HWM) / float64(max(1, small.proc.HWM)), "Times": times, "MemVerdict": memVerdict,
		"Phases": mdTable([]string{"phase", "ms", "share of the import"}, phases)})
	return s
}
