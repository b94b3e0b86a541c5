package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 4: POST /v1/tables/{id}/rows with a CSV body against COPY of the same
// file into a table of the same shape without RLS (the physical floor: COPY
// refuses tables with RLS, which is why the importer stages its rows), and
// the server's peak RSS at two sizes.

var importGoal = goal{bound: 0.50}

// memoryFlat is the bound on peak RSS growth for "flat in the row count"
// while the rows grow tenfold.
const memoryFlat = 1.20

const importColumns = "id, customer, amount, ordered_at, paid"

var importSpec = catalog.TableSpec{
	Name: "orders", Description: "Benchmark import target",
	Columns: []catalog.ColumnSpec{
		{Name: "id", Type: "bigint", Nullable: new(false)},
		{Name: "customer", Type: "text"},
		{Name: "amount", Type: "numeric"},
		{Name: "ordered_at", Type: "timestamptz"},
		{Name: "paid", Type: "boolean"},
	},
}

// importSize is one CSV size with its measurements.
type importSize struct {
	rows     int
	path     string
	bytes    int64
	copyS    []float64 // seconds per run
	importS  []float64
	proc     procMem              // after the runs
	anonPeak int64                // peak anonymous RSS during the runs
	mem      memStats             // Go runtime, after the runs
	allocRow float64              // bytes allocated by the server per imported row
	phases   map[string][]float64 // ms per run
}

func runImport(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.Import
	d, admin, err := e.open(ctx, "import")
	if err != nil {
		return nil, err
	}
	app, err := openPool(ctx, d.AppURL, 2, nil, nil)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	db := tenant.New(app)

	res, err := provision.CreateTenant(ctx, db, provision.Request{Name: "Bench import"})
	if err != nil {
		return nil, err
	}
	id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
	var tbl catalog.Table
	if err := db.TxAs(ctx, id, func(tx tenant.Conn) error {
		tbl, err = catalog.Create(ctx, tx, importSpec)
		return err
	}); err != nil {
		return nil, err
	}
	dataTable := tbl.Ident().Sanitize()
	// The floor table: create_data_table's DDL without RLS, and the same
	// tenant_id default, fed by this session's setting.
	if _, err := admin.Exec(ctx, `CREATE SCHEMA bench_floor;
		CREATE TABLE bench_floor.orders (
			tenant_id uuid NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid,
			_row_id bigint GENERATED ALWAYS AS IDENTITY,
			id bigint NOT NULL, customer text, amount numeric, ordered_at timestamptz, paid boolean,
			PRIMARY KEY (tenant_id, _row_id))`); err != nil {
		return nil, err
	}
	if _, err := admin.Exec(ctx, `SELECT set_config('app.tenant_id', $1, false)`, res.Tenant.ID.String()); err != nil {
		return nil, err
	}

	sizes := []*importSize{{rows: c.SmallRows}, {rows: c.Rows}}
	for _, sz := range sizes {
		sz.path = e.path(fmt.Sprintf("orders-%d.csv", sz.rows))
		if sz.bytes, err = writeOrdersCSV(sz.path, sz.rows); err != nil {
			return nil, err
		}
		sz.phases = map[string][]float64{}
	}
	url := func(ch *child) string { return ch.url + "/v1/tables/" + tbl.ID.String() + "/rows" }

	var prof profileSummary
	var diag importDiag
	for si, sz := range sizes {
		// A fresh server per size: VmHWM is the peak since the process began.
		ch, err := e.startServer(ctx, d.AppURL)
		if err != nil {
			return nil, err
		}
		err = func() error {
			mem0, err := ch.memStats(ctx)
			if err != nil {
				return err
			}
			stopSampling := peakAnon(ch.pid())
			for run := range e.cfg.Runs {
				for k := range 2 {
					if (k+run)%2 == 0 {
						s, err := copyFloor(ctx, admin, sz)
						if err != nil {
							stopSampling()
							return fmt.Errorf("COPY: %w", err)
						}
						sz.copyS = append(sz.copyS, s)
						continue
					}
					s, ph, err := importOnce(ctx, admin, ch, url(ch), dataTable, res.APIKey, sz)
					if err != nil {
						stopSampling()
						return fmt.Errorf("import: %w", err)
					}
					sz.importS = append(sz.importS, s)
					for name, ms := range ph {
						sz.phases[name] = append(sz.phases[name], ms)
					}
				}
				e.logf("import: %d rows, run %d/%d: COPY %.0f rows/s, import %.0f rows/s", sz.rows, run+1, e.cfg.Runs,
					float64(sz.rows)/sz.copyS[run], float64(sz.rows)/sz.importS[run])
			}
			sz.anonPeak = stopSampling()
			if sz.proc, err = procMemory(ch.pid()); err != nil {
				return err
			}
			if sz.mem, err = ch.memStats(ctx); err != nil {
				return err
			}
			sz.allocRow = float64(sz.mem.TotalAlloc-mem0.TotalAlloc) / float64(e.cfg.Runs*sz.rows)
			if si < len(sizes)-1 {
				return nil
			}
			if err := sameRows(ctx, admin, dataTable); err != nil {
				return err
			}
			// Diagnostics at the large size, outside the measured runs.
			if !e.cfg.Explain {
				return nil
			}
			path := e.path("import-server.pprof")
			if prof, err = profileImport(ctx, admin, ch, url(ch), dataTable, res.APIKey, sz, path); err != nil {
				e.logf("import: profile: %v", err)
			}
			if diag, err = diagnoseImport(ctx, d, admin, dataTable, res.Tenant.ID, sz); err != nil {
				e.logf("import: PostgreSQL-side diagnosis: %v", err)
			}
			return nil
		}()
		if serr := ch.stop(); err == nil && serr != nil {
			err = fmt.Errorf("server process: %w", serr)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, sz := range sizes {
		_ = os.Remove(sz.path)
	}
	return importSection(e, sizes, prof, diag), nil
}

// writeOrdersCSV writes n rows of a 5-column CSV: bigint, text (some quoted
// with a comma), numeric, timestamptz, boolean (some empty, i.e. NULL).
func writeOrdersCSV(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintln(w, "id,customer,amount,ordered_at,paid")
	for i := 1; i <= n; i++ {
		customer := fmt.Sprintf("Customer %05d", i%20000)
		if i%10 == 0 {
			customer = fmt.Sprintf(`"Customer %05d, Ltd"`, i%20000)
		}
		paid := "false"
		switch {
		case i%50 == 0:
			paid = ""
		case i%3 == 0:
			paid = "true"
		}
		fmt.Fprintf(w, "%d,%s,%d.%02d,%s,%s\n", i, customer, (i*37)%100000, i%100,
			base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), paid)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

func truncateAndCheckpoint(ctx context.Context, admin *pgx.Conn, table string) error {
	if _, err := admin.Exec(ctx, "TRUNCATE "+table+" RESTART IDENTITY"); err != nil {
		return err
	}
	return checkpoint(ctx, admin)
}

// copyFloor loads the CSV with COPY as the superuser; it returns seconds.
func copyFloor(ctx context.Context, admin *pgx.Conn, sz *importSize) (float64, error) {
	if err := truncateAndCheckpoint(ctx, admin, "bench_floor.orders"); err != nil {
		return 0, err
	}
	f, err := os.Open(sz.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	tag, err := admin.PgConn().CopyFrom(ctx, f, "COPY bench_floor.orders ("+importColumns+") FROM STDIN (FORMAT csv, HEADER true)")
	secs := time.Since(start).Seconds()
	if err != nil {
		return 0, err
	}
	if tag.RowsAffected() != int64(sz.rows) {
		return 0, fmt.Errorf("COPY loaded %d rows, want %d", tag.RowsAffected(), sz.rows)
	}
	return secs, nil
}

// importOnce POSTs the CSV to the server; it returns seconds and the time
// per phase (ms) from the server's statement tracer.
func importOnce(ctx context.Context, admin *pgx.Conn, ch *child, url, dataTable, key string, sz *importSize) (float64, map[string]float64, error) {
	if err := truncateAndCheckpoint(ctx, admin, dataTable); err != nil {
		return 0, nil, err
	}
	if _, err := ch.phases(ctx); err != nil { // reset
		return 0, nil, err
	}
	start := time.Now()
	if err := postCSV(ctx, url, key, sz); err != nil {
		return 0, nil, err
	}
	secs := time.Since(start).Seconds()
	ph, err := ch.phases(ctx)
	if err != nil {
		return 0, nil, err
	}
	byName := map[string]float64{}
	var sum float64
	for _, p := range ph {
		byName[p.Name] += p.Ms
		sum += p.Ms
	}
	byName["outside database calls (HTTP, routing, reply)"] = max(0, secs*1000-sum)
	return secs, byName, nil
}

func postCSV(ctx context.Context, url, key string, sz *importSize) error {
	f, err := os.Open(sz.path)
	if err != nil {
		return err
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, f)
	if err != nil {
		return err
	}
	req.ContentLength = sz.bytes
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Inserted int64 `json:"inserted"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return err
	}
	if out.Inserted != int64(sz.rows) {
		return fmt.Errorf("imported %d rows, want %d", out.Inserted, sz.rows)
	}
	return nil
}

// sameRows checks that the import and COPY stored the same values.
func sameRows(ctx context.Context, admin *pgx.Conn, dataTable string) error {
	q := func(table string) (string, error) {
		var s string
		err := admin.QueryRow(ctx, `SELECT concat_ws(' ', count(*), sum(id), sum(amount), count(paid), sum(length(customer)),
			max(ordered_at), count(DISTINCT tenant_id)) FROM `+table).Scan(&s)
		return s, err
	}
	a, err := q(dataTable)
	if err != nil {
		return err
	}
	b, err := q("bench_floor.orders")
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("the import and COPY stored different data: %s vs %s", a, b)
	}
	return nil
}

// profileImport runs one more import with the server's CPU profiler on.
func profileImport(ctx context.Context, admin *pgx.Conn, ch *child, url, dataTable, key string, sz *importSize, path string) (profileSummary, error) {
	secs := int(math.Ceil(newDist(sz.importS).Max)) + 1
	if err := truncateAndCheckpoint(ctx, admin, dataTable); err != nil {
		return profileSummary{}, err
	}
	type got struct {
		body []byte
		err  error
	}
	done := make(chan got, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", ch.url, secs), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- got{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- got{b, err}
	}()
	time.Sleep(100 * time.Millisecond) // let the profiler start
	if err := postCSV(ctx, url, key, sz); err != nil {
		return profileSummary{}, err
	}
	g := <-done
	if g.err != nil {
		return profileSummary{}, g.err
	}
	if err := os.WriteFile(path, g.body, 0o644); err != nil {
		return profileSummary{}, err
	}
	return summarizeProfile(ctx, path)
}

// importDiag splits the import's database work, measured directly in SQL.
type importDiag struct {
	copyTemp    float64 // COPY (csv) into a temp table, as dbchat_app
	insertRLS   float64 // INSERT … SELECT from it into the data table, as dbchat_app
	insertFloor float64 // INSERT … SELECT from a temp table into the floor table, superuser
	planRLS     string
	planFloor   string
}

// diagnoseImport replays the importer's two database steps on the large CSV
// in rolled-back transactions: COPY into a temp table, then INSERT … SELECT
// into the data table under the policy, and the same INSERT into the floor
// table without RLS, each with EXPLAIN (ANALYZE, BUFFERS).
func diagnoseImport(ctx context.Context, d *benchDB, admin *pgx.Conn, dataTable string, tenantID uuid.UUID, sz *importSize) (importDiag, error) {
	var diag importDiag
	appConn, err := pgx.Connect(ctx, d.AppURL)
	if err != nil {
		return diag, err
	}
	defer appConn.Close(context.Background())
	step := func(conn *pgx.Conn, setTenant bool, target string) (copyS, insertS float64, plan string, err error) {
		if _, err = conn.Exec(ctx, "BEGIN"); err != nil {
			return
		}
		defer func() { _, _ = conn.Exec(context.Background(), "ROLLBACK") }()
		if setTenant {
			if _, err = conn.Exec(ctx, setContext, tenantID.String(), ""); err != nil {
				return
			}
		}
		if _, err = conn.Exec(ctx, `CREATE TEMPORARY TABLE bench_stage (id bigint, customer text, amount numeric,
			ordered_at timestamptz, paid boolean) ON COMMIT DROP`); err != nil {
			return
		}
		f, err := os.Open(sz.path)
		if err != nil {
			return 0, 0, "", err
		}
		defer f.Close()
		start := time.Now()
		if _, err = conn.PgConn().CopyFrom(ctx, f, "COPY bench_stage FROM STDIN (FORMAT csv, HEADER true)"); err != nil {
			return
		}
		copyS = time.Since(start).Seconds()
		start = time.Now()
		rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) INSERT INTO "+target+" ("+importColumns+") SELECT "+importColumns+" FROM bench_stage")
		if err != nil {
			return
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		insertS = time.Since(start).Seconds()
		return copyS, insertS, strings.Join(lines, "\n"), err
	}
	for _, t := range []string{dataTable, "bench_floor.orders"} {
		if err := truncateAndCheckpoint(ctx, admin, t); err != nil {
			return diag, err
		}
	}
	var copyTemp, insertRLS, insertFloor []float64
	for rep := range diagRepeats {
		for k := range 2 {
			if err := checkpoint(ctx, admin); err != nil {
				return diag, err
			}
			if (k+rep)%2 == 0 {
				c, i, plan, err := step(appConn, true, dataTable)
				if err != nil {
					return diag, fmt.Errorf("as dbchat_app: %w", err)
				}
				copyTemp, insertRLS, diag.planRLS = append(copyTemp, c), append(insertRLS, i), plan
				continue
			}
			_, i, plan, err := step(admin, false, "bench_floor.orders")
			if err != nil {
				return diag, fmt.Errorf("as superuser: %w", err)
			}
			insertFloor, diag.planFloor = append(insertFloor, i), plan
		}
	}
	diag.copyTemp, diag.insertRLS, diag.insertFloor = newDist(copyTemp).Med, newDist(insertRLS).Med, newDist(insertFloor).Med
	return diag, nil
}

// diagRepeats is how often the PostgreSQL-side replay runs (median).
const diagRepeats = 3

func importSection(e *Env, sizes []*importSize, prof profileSummary, diag importDiag) *Section {
	s := &Section{}
	small, large := sizes[0], sizes[len(sizes)-1]
	var rows [][]string
	var ratio dist
	for _, sz := range sizes {
		rate := func(xs []float64) []float64 {
			return collect(xs, func(x float64) float64 { return float64(sz.rows) / x })
		}
		r := newDist(ratios(sz.copyS, sz.importS)) // rows/s ratio = inverse time ratio
		verdict := "(fixed costs weigh more at this size; the goal applies to the large import)"
		if sz == large {
			verdict, ratio = importGoal.verdict(r.Med), r
			s.Summary = append(s.Summary, Row{Measure: fmt.Sprintf("CSV import, %s rows (rows/s)", thousands(sz.rows)),
				Floor: newDist(rate(sz.copyS)).m("%.0f"), Dbchat: newDist(rate(sz.importS)).m("%.0f"),
				Ratio: r.f("%.2f"), Goal: importGoal.String(), Verdict: verdict})
		}
		rows = append(rows, []string{thousands(sz.rows), newDist(rate(sz.copyS)).f("%.0f"), newDist(rate(sz.importS)).f("%.0f"),
			r.f("%.2f"), newDist(sz.copyS).f("%.2f"), newDist(sz.importS).f("%.2f"), verdict})
	}
	growth := float64(large.proc.HWM) / float64(small.proc.HWM)
	anonGrowth := float64(large.anonPeak) / float64(max(1, small.anonPeak))
	times := large.rows / max(1, small.rows)
	memVerdict := fmt.Sprintf("flat (%.2f× for %d× the rows)", anonGrowth, times)
	if anonGrowth > memoryFlat {
		memVerdict = fmt.Sprintf("**not flat**: %.2f× for %d× the rows (bound %.2f×)", anonGrowth, times, memoryFlat)
	}
	s.Summary = append(s.Summary, Row{Measure: fmt.Sprintf("server peak anonymous memory (RssAnon), %s → %s rows", thousands(small.rows), thousands(large.rows)),
		Floor: "—", Dbchat: fmt.Sprintf("%.1f → %.1f MiB", mib(small.anonPeak), mib(large.anonPeak)), Ratio: fmt.Sprintf("%.2f", anonGrowth),
		Goal: fmt.Sprintf("flat (≤ %.2f×)", memoryFlat), Verdict: memVerdict})
	var mem [][]string
	for _, sz := range sizes {
		mem = append(mem, []string{thousands(sz.rows), fmt.Sprintf("%.1f", mib(sz.bytes)), fmt.Sprintf("%.1f", mib(sz.proc.HWM)),
			fmt.Sprintf("%.1f", mib(sz.anonPeak)), fmt.Sprintf("%.1f", mib(sz.proc.RssFile)),
			fmt.Sprintf("%.1f", mib(int64(sz.mem.Sys))), fmt.Sprintf("%.1f", mib(int64(sz.mem.HeapSys))), fmt.Sprintf("%.0f", sz.allocRow), fmt.Sprint(sz.mem.NumGC)})
	}
	names := slices.Collect(maps.Keys(large.phases))
	total := newDist(large.importS).Med * 1000
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(newDist(large.phases[b]).Med, newDist(large.phases[a]).Med), strings.Compare(a, b))
	})
	var phases [][]string
	for _, n := range names {
		m := newDist(large.phases[n]).Med
		phases = append(phases, []string{n, fmt.Sprintf("%.0f", m), fmt.Sprintf("%.0f %%", pct(m, total))})
	}
	diagTable := ""
	if diag.planRLS != "" {
		copyMed := newDist(large.copyS).Med
		step := func(name string, secs float64) []string {
			return []string{name, fmt.Sprintf("%.2f", secs), fmt.Sprintf("%.0f", float64(large.rows)/secs)}
		}
		diagTable = mdTable([]string{"step", "s", "rows/s"}, [][]string{
			step("COPY straight into the floor table (the floor, median of the runs)", copyMed),
			step("COPY into a temporary staging table", diag.copyTemp),
			step("INSERT … SELECT into the data table, dbchat_app under the policy", diag.insertRLS),
			step("INSERT … SELECT into the floor table, superuser, no RLS", diag.insertFloor),
		})
	}
	analysis := ""
	if !importGoal.met(ratio.Med) {
		analysis = importAnalysis(large, ratio.Med, diag)
	}
	s.Body = render("import", map[string]any{"Goal": importGoal.bound, "Columns": importColumns, "LargeRows": large.rows, "SmallRows": small.rows,
		"LargeMiB": mib(large.bytes), "SmallMiB": mib(small.bytes),
		"Table":      mdTable([]string{"rows", "COPY rows/s", "import rows/s", "import / COPY", "COPY s", "import s", "Verdict"}, rows),
		"MemTable":   mdTable([]string{"rows", "CSV MiB", "peak RSS (VmHWM) MiB", "peak anonymous RSS MiB", "file RSS MiB", "Go runtime Sys MiB", "Go heap MiB", "bytes allocated per row", "GC cycles"}, mem),
		"AnonGrowth": anonGrowth, "Growth": growth, "Times": times, "MemVerdict": memVerdict,
		"Phases": mdTable([]string{"phase", "ms", "share of the import"}, phases), "Diag": diagTable, "Repeats": diagRepeats,
		"PlanRLS": diag.planRLS, "PlanFloor": diag.planFloor, "Prof": prof, "ProfNames": []string{"server"}, "Profs": []profileSummary{prof},
		"Analysis": analysis})
	return s
}

// importAnalysis explains a missed import goal from the phases and the
// PostgreSQL-side replay.
func importAnalysis(large *importSize, ratio float64, diag importDiag) string {
	total := newDist(large.importS).Med
	copyMed := newDist(large.copyS).Med
	copyPhase := newDist(large.phases[phaseCopy]).Med / 1000
	insertPhase := newDist(large.phases[phaseInsert]).Med / 1000
	text := fmt.Sprintf("The import reaches %.2f× COPY's rate (%.0f%% short of %.2f×): %.2f s against %.2f s. The COPY into the staging table takes %.2f s (%.0f%%) and the INSERT … SELECT into the data table %.2f s (%.0f%%).",
		ratio, (importGoal.bound-ratio)/importGoal.bound*100, importGoal.bound, total, copyMed,
		copyPhase, pct(copyPhase, total), insertPhase, pct(insertPhase, total))
	if diag.insertRLS > 0 {
		text += fmt.Sprintf(" Replayed in SQL, COPY into a temporary table alone takes %.2f s, %.2f s less than the COPY phase. The INSERT … SELECT takes %.2f s under the policy and %.2f s without RLS into the floor table",
			diag.copyTemp, max(0, copyPhase-diag.copyTemp), diag.insertRLS, diag.insertFloor)
		if d := diag.insertRLS - diag.insertFloor; d > 0.1*diag.insertRLS {
			text += fmt.Sprintf(": %.0f%% of that step is the difference.", pct(d, diag.insertRLS))
		} else {
			text += ": the policy costs little there."
		}
	}
	return text
}
