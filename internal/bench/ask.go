package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/vectest"
)

// Part 5: what /v1/ask costs around the generator. A tenant with the demo
// shop's tables and 10,000 training rows asks questions through
// ask.Service.Ask with the offline generator, in this process; the time
// outside the generator (embed, retrieve, validate, execute, history write)
// is the total minus the generator's own time. The same questions also go
// end to end over HTTP (the real server, key auth, JSON). The goal is an
// absolute time; one bare pgx query of the tenant's customers table as the
// superuser is the reference shown for scale (not a floor).

const askP50GoalMS = 10.0

// profileShare is the CPU share in pprof's "Total samples = 490ms (15.90%)".
var profileShare = regexp.MustCompile(`\(([0-9.]+)%\)`)

// askSample is one answered question: client-side total and the pipeline's
// own stage timings, in ms.
type askSample struct {
	total                                 float64
	embed, retrieve, generate, execute    float64
	httpTotal, httpGenerate, httpOverhead float64
}

func (s askSample) overhead() float64 { return s.total - s.generate }
func (s askSample) other() float64 {
	return s.total - s.embed - s.retrieve - s.generate - s.execute
}

// askStages are the rows of the stage table.
var askStages = []struct {
	name string
	get  func(askSample) float64
}{
	{"embed (local embedder, in process)", func(s askSample) float64 { return s.embed }},
	{"retrieve (one tenant transaction: model, count, search, catalog)", func(s askSample) float64 { return s.retrieve }},
	{"validate + execute + history write (`sandbox.Run`)", func(s askSample) float64 { return s.execute }},
	{"rest of `Ask` (between stages)", func(s askSample) float64 { return s.other() }},
	{"**time outside the generator** (total − generate)", func(s askSample) float64 { return s.overhead() }},
	{"generate (offline generator; excluded)", func(s askSample) float64 { return s.generate }},
	{"total, `ask.Service.Ask`", func(s askSample) float64 { return s.total }},
	{"over HTTP: time outside the generator (round trip − generate_ms)", func(s askSample) float64 { return s.httpOverhead }},
	{"over HTTP: round trip (`POST /v1/ask`, key auth, JSON)", func(s askSample) float64 { return s.httpTotal }},
}

const (
	stageOverhead     = 4
	stageHTTPOverhead = 7
)

func runAsk(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.Ask
	d, admin, err := e.open(ctx, "ask")
	if err != nil {
		return nil, err
	}

	var appWrites atomic.Int64
	tracer := &phaseTracer{name: askPhase}
	tracer.paused.Store(true)
	app, err := openPool(ctx, d.AppURL, 0, &appWrites, tracer)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	db := tenant.New(app)
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 4)
	if err != nil {
		return nil, err
	}
	defer box.Close()
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	svc := ask.New(db, sql, store, generate.NewOffline())

	seed, err := seedAsk(ctx, e, admin, db, store, c)
	if err != nil {
		return nil, err
	}
	tctx := tenant.NewContext(ctx, seed.id)
	questions := askQuestions(seed.trained, c.Questions)

	floorPool, err := openPool(ctx, d.AdminURL, 1, nil, nil)
	if err != nil {
		return nil, err
	}
	defer floorPool.Close()
	floorSQL := "SELECT count(*) FROM " + pgx.Identifier{tenant.Schema(seed.id.TenantID), "customers"}.Sanitize()

	api := server.New(db, devNullLog, server.Config{SQL: sql, Ask: svc})
	apiURL, stopAPI, err := serve(api)
	if err != nil {
		return nil, err
	}
	defer stopAPI()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}, Timeout: time.Minute}

	direct := func(q string) (askSample, ask.Answer, error) {
		start := time.Now()
		a, err := svc.Ask(tctx, ask.Request{Question: q, Execute: true})
		total := float64(time.Since(start)) / float64(time.Millisecond)
		if err != nil {
			return askSample{}, a, fmt.Errorf("ask %q: %w", q, err)
		}
		t := a.Timings
		return askSample{total: total, embed: t.EmbedMS, retrieve: t.RetrieveMS, generate: t.GenerateMS, execute: t.ExecuteMS}, a, nil
	}
	overHTTP := func(q string) (total, generateMS float64, err error) {
		body, _ := json.Marshal(map[string]any{"question": q})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/v1/ask", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+seed.apiKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		total = float64(time.Since(start)) / float64(time.Millisecond)
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("POST /v1/ask %q: %s: %s", q, resp.Status, b)
		}
		var a struct {
			Timings struct {
				GenerateMS float64 `json:"generate_ms"`
			} `json:"timings"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return 0, 0, err
		}
		return total, a.Timings.GenerateMS, nil
	}
	floor := func() (float64, error) {
		var n int64
		start := time.Now()
		err := floorPool.QueryRow(ctx, floorSQL).Scan(&n)
		return float64(time.Since(start)) / float64(time.Millisecond), err
	}

	// Warm-up: every question once each way; note what the generator did.
	var reused, built int
	executed := map[string]bool{}
	for _, q := range questions {
		_, a, err := direct(q.text)
		if err != nil {
			return nil, err
		}
		executed[a.SQL] = true
		if len(a.Context.Similar) > 0 && a.Context.Similar[0].SQL == a.SQL {
			reused++
		} else {
			built++
		}
		if _, _, err := overHTTP(q.text); err != nil {
			return nil, err
		}
		if _, err := floor(); err != nil {
			return nil, err
		}
	}

	// Timed runs: every question once per run in a random order, each
	// directly, over HTTP and followed by the reference query, in a random order.
	samples := make([][]askSample, e.cfg.Runs)
	floors := make([][]float64, e.cfg.Runs)
	rng := rand.New(rand.NewPCG(5, 6))
	for run := range e.cfg.Runs {
		for _, qi := range rng.Perm(len(questions)) {
			q := questions[qi].text
			var s askSample
			var ht, hg, f float64
			for _, v := range rng.Perm(3) {
				var err error
				switch v {
				case 0:
					s, _, err = direct(q)
				case 1:
					ht, hg, err = overHTTP(q)
				case 2:
					f, err = floor()
				}
				if err != nil {
					return nil, err
				}
			}
			s.httpTotal, s.httpGenerate, s.httpOverhead = ht, hg, ht-hg
			samples[run] = append(samples[run], s)
			floors[run] = append(floors[run], f)
		}
		e.logf("ask: run %d/%d: outside the generator p50 %.2f ms (HTTP %.2f ms), total p50 %.2f ms; floor p50 %.3f ms", run+1, e.cfg.Runs,
			medianOf(samples[run], askSample.overhead), medianOf(samples[run], func(s askSample) float64 { return s.httpOverhead }),
			medianOf(samples[run], func(s askSample) float64 { return s.total }), newDist(floors[run]).Med)
	}

	// Diagnostics, untimed: the statements on the runtime pool per question
	// (client-side time each) and round trips, then a CPU profile of this
	// process asking directly.
	diag, err := askDiagnostics(ctx, e, d.AppURL, svc, tctx, questions, tracer, &appWrites)
	if err != nil {
		e.logf("ask: diagnostics: %v", err)
	}
	return askSection(e, c, seed, questions, reused, built, len(executed), samples, floors, diag), nil
}

func medianOf(xs []askSample, f func(askSample) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return newDist(v).Med
}

// askSeeded is the asking tenant.
type askSeeded struct {
	id       tenant.Identity
	apiKey   string
	counts   map[string]int
	trained  []nlsql.NewItem // the pairs
	loadTook time.Duration
	build    time.Duration
	catalog  int
}

// seedAsk provisions the tenant through the real path, creates and fills the
// demo tables, trains the model from the catalog and adds the generated
// training rows through nlsql.Store (validated, embedded with the local
// embedder, batch-inserted), with the HNSW indexes dropped meanwhile.
func seedAsk(ctx context.Context, e *Env, admin *pgx.Conn, db *tenant.DB, store *nlsql.Store, c AskConfig) (*askSeeded, error) {
	res, err := provision.CreateTenant(ctx, db, provision.Request{Name: "Ask bench"})
	if err != nil {
		return nil, err
	}
	s := &askSeeded{id: tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}, apiKey: res.APIKey}
	tctx := tenant.NewContext(ctx, s.id)
	var modelID uuid.UUID
	err = db.TxAs(ctx, s.id, func(tx tenant.Conn) error {
		if err := demo.Seed(ctx, tx); err != nil {
			return err
		}
		var err error
		modelID, err = nlsql.ModelID(ctx, tx, provision.DefaultModel)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.logf("ask: training the tenant's model with %s rows", thousands(c.TrainingRows))
	start := time.Now()
	s.build, err = vectest.LoadWithoutHNSW(ctx, admin, func() error {
		cat, err := store.TrainFromCatalog(tctx, modelID)
		if err != nil {
			return err
		}
		s.catalog = cat.DDL + cat.Documentation
		items := askTrainingItems(max(0, c.TrainingRows-s.catalog))
		if _, err := store.Add(tctx, modelID, items, nlsql.SourceImport); err != nil {
			return err
		}
		for _, it := range items {
			if it.Kind == nlsql.KindSQL {
				s.trained = append(s.trained, it)
			}
		}
		s.loadTook = time.Since(start)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows, err := admin.Query(ctx, `SELECT kind, count(*)::int FROM dbchat.training_data GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	s.counts = map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return nil, err
		}
		s.counts[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	e.logf("ask: %d pairs, %d DDL, %d documentation rows: inserted in %s, HNSW built in %s", s.counts[nlsql.KindSQL],
		s.counts[nlsql.KindDDL], s.counts[nlsql.KindDocumentation], s.loadTook.Round(time.Millisecond), s.build.Round(time.Millisecond))
	return s, nil
}

var (
	askCountries = []string{"AR", "AT", "AU", "BE", "BR", "CA", "CH", "CL", "CN", "CZ", "DE", "DK", "EG", "ES", "FI", "FR",
		"GB", "GR", "HU", "IE", "IL", "IN", "IT", "JP", "KR", "MX", "NL", "NO", "NZ", "PL", "PT", "RO", "SE", "SG", "TR", "UA",
		"US", "VN", "ZA", "CO"}
	askMonths = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September",
		"October", "November", "December"}
	askAmounts = []int{10, 20, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 5000}
	askNouns   = []string{"invoice", "shipment", "refund", "coupon", "warehouse", "supplier", "product", "category", "review",
		"payment", "subscription", "campaign", "visit", "basket", "return", "ticket", "store", "region", "courier", "discount"}
	askAttrs = []string{"status", "region", "channel", "currency", "weight", "price", "quantity", "rating", "score", "priority",
		"opened_at", "closed_at", "notes", "owner", "code", "label", "source", "tier", "vat_rate", "margin"}
)

// askTrainingItems generates n training rows: 85 % question→SQL pairs over
// the demo tables (distinct questions from a dozen shapes with countries,
// years, months, amounts and ids), 7.5 % DDL of other tables and 7.5 %
// documentation.
func askTrainingItems(n int) []nlsql.NewItem {
	rng := rand.New(rand.NewPCG(11, 12))
	year := func() int { return 2015 + rng.IntN(12) }
	span := func(col string, y int) string {
		return fmt.Sprintf("%s >= '%d-01-01' AND %s < '%d-01-01'", col, y, col, y+1)
	}
	shapes := []func() (string, string){
		func() (string, string) {
			c, y := askCountries[rng.IntN(len(askCountries))], year()
			return fmt.Sprintf("How many customers from %s signed up in %d?", c, y),
				fmt.Sprintf("SELECT count(*) FROM customers WHERE country = '%s' AND %s", c, span("signed_up", y))
		},
		func() (string, string) {
			a, y := askAmounts[rng.IntN(len(askAmounts))], year()
			return fmt.Sprintf("How many orders over %d euros were placed in %d?", a, y),
				fmt.Sprintf("SELECT count(*) FROM orders WHERE amount > %d AND %s", a, span("ordered_at", y))
		},
		func() (string, string) {
			m, y := rng.IntN(12), year()
			next := fmt.Sprintf("%d-%02d-01", y, m+2)
			if m == 11 {
				next = fmt.Sprintf("%d-01-01", y+1)
			}
			return fmt.Sprintf("What was the total order amount in %s %d?", askMonths[m], y),
				fmt.Sprintf("SELECT sum(amount) FROM orders WHERE ordered_at >= '%d-%02d-01' AND ordered_at < '%s'", y, m+1, next)
		},
		func() (string, string) {
			c, y := askCountries[rng.IntN(len(askCountries))], year()
			return fmt.Sprintf("What is the average order amount of customers in %s during %d?", c, y),
				fmt.Sprintf("SELECT avg(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.country = '%s' AND %s", c, span("o.ordered_at", y))
		},
		func() (string, string) {
			k, y := 2+rng.IntN(49), year()
			return fmt.Sprintf("List the %d largest orders of %d", k, y),
				fmt.Sprintf("SELECT * FROM orders WHERE %s ORDER BY amount DESC LIMIT %d", span("ordered_at", y), k)
		},
		func() (string, string) {
			c, a := askCountries[rng.IntN(len(askCountries))], askAmounts[rng.IntN(len(askAmounts))]
			return fmt.Sprintf("Which customers from %s spent more than %d euros in total?", c, a),
				fmt.Sprintf("SELECT c.id, c.name, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.country = '%s' GROUP BY c.id, c.name HAVING sum(o.amount) > %d ORDER BY total DESC", c, a)
		},
		func() (string, string) {
			y := year()
			return fmt.Sprintf("Revenue per country in %d", y),
				fmt.Sprintf("SELECT c.country, sum(o.amount) AS revenue FROM orders o JOIN customers c ON c.id = o.customer_id WHERE %s GROUP BY c.country ORDER BY revenue DESC", span("o.ordered_at", y))
		},
		func() (string, string) {
			id := 1 + rng.IntN(5000)
			return fmt.Sprintf("How many orders has customer %d placed?", id),
				fmt.Sprintf("SELECT count(*) FROM orders WHERE customer_id = %d", id)
		},
		func() (string, string) {
			day := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(12*365))
			return fmt.Sprintf("Which customers signed up on %s?", day.Format("2 January 2006")),
				fmt.Sprintf("SELECT * FROM customers WHERE signed_up = '%s'", day.Format("2006-01-02"))
		},
		func() (string, string) {
			y := year()
			return fmt.Sprintf("How many orders were placed each month of %d?", y),
				fmt.Sprintf("SELECT date_trunc('month', ordered_at) AS month, count(*) FROM orders WHERE %s GROUP BY 1 ORDER BY 1", span("ordered_at", y))
		},
		func() (string, string) {
			k, id := 1+rng.IntN(20), 1+rng.IntN(5000)
			return fmt.Sprintf("Show the last %d orders of customer %d", k, id),
				fmt.Sprintf("SELECT * FROM orders WHERE customer_id = %d ORDER BY ordered_at DESC LIMIT %d", id, k)
		},
		func() (string, string) {
			id, y := 1+rng.IntN(5000), year()
			return fmt.Sprintf("How much did customer %d spend in %d?", id, y),
				fmt.Sprintf("SELECT sum(amount) FROM orders WHERE customer_id = %d AND %s", id, span("ordered_at", y))
		},
	}
	nDDL := n * 3 / 40
	nDoc := n * 3 / 40
	nSQL := n - nDDL - nDoc
	items := make([]nlsql.NewItem, 0, n)
	seen := map[string]bool{}
	for len(items) < nSQL {
		q, sql := shapes[rng.IntN(len(shapes))]()
		if seen[q] {
			continue
		}
		seen[q] = true
		items = append(items, nlsql.NewItem{Kind: nlsql.KindSQL, Question: q, Content: sql})
	}
	for i := range nDDL {
		noun := askNouns[rng.IntN(len(askNouns))]
		cols := []string{"id bigint PRIMARY KEY"}
		for _, a := range rng.Perm(len(askAttrs))[:3+rng.IntN(5)] {
			cols = append(cols, askAttrs[a]+" text")
		}
		items = append(items, nlsql.NewItem{Kind: nlsql.KindDDL,
			Content: fmt.Sprintf("CREATE TABLE %ss_%d (%s, customer_id bigint REFERENCES customers (id))", noun, i, strings.Join(cols, ", "))})
	}
	for i := range nDoc {
		noun, attr := askNouns[rng.IntN(len(askNouns))], askAttrs[rng.IntN(len(askAttrs))]
		items = append(items, nlsql.NewItem{Kind: nlsql.KindDocumentation,
			Content: fmt.Sprintf("Note %d: a %s's %s is set when the %s is created and only finance may change it; orders refer to customers by customer_id, amounts are in EUR.", i, noun, attr, noun)})
	}
	return items
}

// askQuestion is one question asked in every run.
type askQuestion struct {
	text    string
	trained bool // a near-duplicate of a trained question
}

// askNovel are questions the offline generator answers from the catalog
// (no trained question is close enough to reuse). None names a value in
// capitals, which would make the generator look values up in the data.
var askNovel = []string{
	"How many customers do we have?",
	"How many orders are there?",
	"What is the total amount of all orders?",
	"What is the average order amount?",
	"List all customers",
	"Show the top 3 orders by amount",
	"How many customers per country?",
	"What is the largest order amount?",
	"How many orders over 100?",
	"Show the 2 newest orders",
	"How many customers signed up in 2024?",
	"What is the smallest order amount?",
	"List the orders placed in 2024",
	"Count the orders per customer",
	"Which customer signed up most recently?",
	"What is the total order amount per customer?",
	"List customer names and countries",
	"How many orders under 50?",
	"Show the oldest order",
	"What is the average amount of orders over 20?",
}

// askQuestions picks n questions: half near-duplicates of trained pairs
// (the first word lower-cased, the question mark dropped: the same vector,
// so the offline generator reuses the pair's SQL), half from askNovel.
func askQuestions(trained []nlsql.NewItem, n int) []askQuestion {
	rng := rand.New(rand.NewPCG(13, 14))
	var out []askQuestion
	for i := range n {
		if i%2 == 0 && len(trained) > 0 {
			q := trained[rng.IntN(len(trained))].Question
			q = strings.ToLower(q[:1]) + strings.TrimSuffix(q[1:], "?")
			out = append(out, askQuestion{text: q, trained: true})
			continue
		}
		out = append(out, askQuestion{text: askNovel[(i/2)%len(askNovel)]})
	}
	return out
}

// askPhase names a statement of the ask pipeline.
func askPhase(sql string) string {
	s := strings.TrimSpace(sql)
	switch {
	case strings.Contains(s, "set_config('hnsw.iterative_scan'"):
		return "HNSW settings (iterative scan, ef_search, enable_sort off)"
	case strings.Contains(s, "set_config('enable_sort', $1"):
		return "restore enable_sort, jit"
	case isSearch(s):
		return "retrieval search (one UNION ALL branch per kind)"
	case s == "COMMIT" || s == "ROLLBACK":
		return s
	case strings.HasPrefix(s, "-- name: "):
		name, _, _ := strings.Cut(strings.TrimPrefix(s, "-- name: "), " ")
		return name
	}
	return statementPhase(s)
}

// askDiag is what the diagnostic pass found.
type askDiag struct {
	asks       int
	roundTrips float64 // to PostgreSQL on the runtime pool, per question
	phases     []phaseStat
	prof       profileSummary
	question   string // the question whose retrieval is explained
	plan       string // EXPLAIN (ANALYZE, BUFFERS) of its search
}

type phaseStat struct {
	name  string
	calls float64 // per question
	ms    float64 // per question
}

func askDiagnostics(ctx context.Context, e *Env, appURL string, svc *ask.Service, tctx context.Context, questions []askQuestion, tracer *phaseTracer, writes *atomic.Int64) (askDiag, error) {
	var d askDiag
	tracer.take()
	w0 := writes.Load()
	tracer.paused.Store(false)
	for _, q := range questions {
		if _, err := svc.Ask(tctx, ask.Request{Question: q.text, Execute: true}); err != nil {
			tracer.paused.Store(true)
			return d, err
		}
	}
	tracer.paused.Store(true)
	d.asks = len(questions)
	d.roundTrips = float64(writes.Load()-w0) / float64(d.asks)
	byName := map[string]*phaseStat{}
	var order []string
	for _, p := range tracer.take() {
		st, ok := byName[p.Name]
		if !ok {
			st = &phaseStat{name: p.Name}
			byName[p.Name] = st
			order = append(order, p.Name)
		}
		st.calls++
		st.ms += p.Ms
	}
	for _, n := range order {
		st := byName[n]
		st.calls /= float64(d.asks)
		st.ms /= float64(d.asks)
		d.phases = append(d.phases, *st)
	}

	if !e.cfg.Explain {
		return d, nil
	}
	id, _ := tenant.FromContext(tctx)
	// The plan of the first question's retrieval: its statements captured on
	// a connection of their own, then replayed with the search explained.
	capture := &stmtCapture{}
	pool, err := openPool(ctx, appURL, 1, nil, capture)
	if err != nil {
		return d, err
	}
	d.question = questions[0].text
	vecs, err := svc.Embedder.Embed(ctx, []string{d.question})
	if err != nil {
		pool.Close()
		return d, err
	}
	capture.start("ask")
	err = tenant.New(pool).TxAs(ctx, id, func(tx tenant.Conn) error {
		modelID, err := nlsql.ModelID(ctx, tx, provision.DefaultModel)
		if err != nil {
			return err
		}
		_, err = nlsql.Retrieve(ctx, tx, modelID, svc.Embedder.Name(), vecs[0], svc.Ks)
		return err
	})
	capture.stop()
	pool.Close()
	if err != nil {
		return d, err
	}
	if d.plan, err = explainCaptured(ctx, appURL, id, capture.forLabel("ask")); err != nil {
		e.logf("ask: explain: %v", err)
	}

	d.prof, err = profileSelf(ctx, e.path("ask.pprof"), func() error {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			for _, q := range questions {
				if _, err := svc.Ask(tctx, ask.Request{Question: q.text, Execute: true}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return d, err
}

func askSection(e *Env, c AskConfig, seed *askSeeded, questions []askQuestion, reused, built, distinctSQL int, samples [][]askSample, floors [][]float64, diag askDiag) *Section {
	s := &Section{}
	nTrained := 0
	for _, q := range questions {
		if q.trained {
			nTrained++
		}
	}
	p50p95 := func(runs [][]float64) (p50s, p95s []float64) {
		for _, run := range runs {
			v := slices.Clone(run)
			slices.Sort(v)
			p50s, p95s = append(p50s, quantile(v, 0.5)), append(p95s, quantile(v, 0.95))
		}
		return p50s, p95s
	}
	var rows [][]string
	stageP50 := make([][]float64, len(askStages))
	for si, st := range askStages {
		runs := make([][]float64, len(samples))
		for ri, run := range samples {
			runs[ri] = collect(run, st.get)
		}
		p50s, p95s := p50p95(runs)
		stageP50[si] = p50s
		rows = append(rows, []string{st.name, newDist(p50s).f("%.2f"), newDist(p95s).f("%.2f")})
	}
	fp50, fp95 := p50p95(floors)
	rows = append(rows, []string{"reference: `SELECT count(*) FROM customers`, one pgx query", newDist(fp50).f("%.3f"), newDist(fp95).f("%.3f")})
	over, httpOver := newDist(stageP50[stageOverhead]), newDist(stageP50[stageHTTPOverhead])
	ratio := newDist(ratios(stageP50[stageOverhead], fp50))
	httpRatio := newDist(ratios(stageP50[stageHTTPOverhead], fp50))
	verdict := askVerdict(over.Med)
	s.Summary = []Row{
		{Measure: "time outside the generator, p50 (`ask.Service.Ask`)", Floor: "one query " + newDist(fp50).m("%.2f ms"), Dbchat: over.m("%.2f ms"),
			Ratio: ratio.f("%.1f") + " (scale only)", Goal: fmt.Sprintf("p50 ≤ %.0f ms", askP50GoalMS), Verdict: verdict},
		{Measure: "the same over HTTP (`POST /v1/ask`)", Floor: "one query " + newDist(fp50).m("%.2f ms"), Dbchat: httpOver.m("%.2f ms"),
			Ratio: httpRatio.f("%.1f") + " (scale only)", Goal: fmt.Sprintf("p50 ≤ %.0f ms", askP50GoalMS), Verdict: askVerdict(httpOver.Med)},
	}
	var phases [][]string
	var sum float64
	for _, p := range diag.phases {
		phases = append(phases, []string{p.name, fmt.Sprintf("%.2f", p.calls), fmt.Sprintf("%.3f", p.ms)})
		sum += p.ms
	}
	phaseTable := ""
	if diag.asks > 0 {
		phaseTable = mdTable([]string{"Statement (sqlc query name, or what it does)", "calls / question", "ms / question"},
			append(phases, []string{"all statements on the runtime pool", "", fmt.Sprintf("%.3f", sum)}))
	}
	onCPU := ""
	if m := profileShare.FindStringSubmatch(diag.prof.Total); m != nil {
		onCPU = m[1]
	}
	analysis := ""
	if over.Med > askP50GoalMS {
		analysis = askAnalysis(over.Med, stageP50, diag)
	}
	counts := seed.counts
	s.Body = render("ask", map[string]any{"Goal": askP50GoalMS, "C": c, "Rows": counts[nlsql.KindSQL] + counts[nlsql.KindDDL] + counts[nlsql.KindDocumentation],
		"Pairs": counts[nlsql.KindSQL], "DDL": counts[nlsql.KindDDL], "Docs": counts[nlsql.KindDocumentation], "Catalog": seed.catalog,
		"LoadTook": seed.loadTook, "Build": seed.build, "Questions": len(questions), "Trained": nTrained, "Novel": len(questions) - nTrained,
		"Reused": reused, "Built": built, "Distinct": distinctSQL, "Table": mdTable([]string{"Stage", "p50 ms", "p95 ms"}, rows),
		"Over": over.f("%.2f"), "OverMed": over.Med, "Verdict": strings.ReplaceAll(verdict, "**", ""), "HTTPOver": httpOver.f("%.2f"),
		"HTTPVerdict": strings.ReplaceAll(askVerdict(httpOver.Med), "**", ""), "Ratio": ratio.m("%.0f"), "HTTPRatio": httpRatio.m("%.0f"),
		"Phases": phaseTable, "RoundTrips": diag.roundTrips, "Sum": sum, "Plan": diag.plan, "Question": diag.question,
		"Prof": diag.prof, "ProfNames": []string{"share of samples"}, "Profs": []profileSummary{diag.prof}, "OnCPU": onCPU, "Analysis": analysis})
	return s
}

func askVerdict(p50 float64) string {
	if p50 <= askP50GoalMS {
		return fmt.Sprintf("met (%.0f%% headroom)", (askP50GoalMS-p50)/askP50GoalMS*100)
	}
	return fmt.Sprintf("**missed** by %.0f%% (%.2f ms vs ≤ %.0f ms)", (p50-askP50GoalMS)/askP50GoalMS*100, p50, askP50GoalMS)
}

// askAnalysis names the stage and the statements behind a miss.
func askAnalysis(p50 float64, stageP50 [][]float64, diag askDiag) string {
	best, bestV := "", 0.0
	for si := range stageOverhead {
		if v := newDist(stageP50[si]).Med; v > bestV {
			best, bestV = askStages[si].name, v
		}
	}
	text := fmt.Sprintf("At p50 %.2f ms the largest stage is %s (p50 %.2f ms).", p50, best, bestV)
	if len(diag.phases) > 0 {
		ph := slices.Clone(diag.phases)
		slices.SortFunc(ph, func(a, b phaseStat) int {
			switch {
			case a.ms > b.ms:
				return -1
			case a.ms < b.ms:
				return 1
			}
			return 0
		})
		var top []string
		for _, p := range ph[:min(3, len(ph))] {
			top = append(top, fmt.Sprintf("%s %.2f ms", p.name, p.ms))
		}
		text += fmt.Sprintf(" The costliest statements per question: %s; %.1f round trips on the runtime pool per question.", strings.Join(top, ", "), diag.roundTrips)
	}
	if len(diag.prof.Own) > 0 {
		text += fmt.Sprintf(" In the process, the heaviest dbchat function is %s (%.0f%% of samples, cumulative).", diag.prof.Own[0].Name, diag.prof.Own[0].Share)
	}
	return text
}
