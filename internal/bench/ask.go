package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/evalset"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/vectest"
)

// Part 5: what /v1/ask costs outside the generator, directly and over HTTP,
// one bare query the reference for scale; the first streamed event; a follow-up
// turn; the offline generator on the evaluation schemas; templates/ask.md.tmpl.

var askGoal, sseGoal, turnGoal = goal{10, true, " ms"}, goal{20, true, " ms"}, goal{1.2, true, ""} // on p50s; turnGoal a ratio

// askSample is one answered question: client-side total and the pipeline's
// own stage timings, in ms; over HTTP, the first event of a stream, a
// follow-up turn and its standalone question.
type askSample struct {
	total, embed, retrieve, generate, execute        float64
	httpTotal, httpGenerate, firstEvent, turn, alone float64
}

// askStages are the rows of the stage table.
var askStages = []struct {
	name string
	get  func(askSample) float64
}{
	{"embed (local embedder, in process)", func(s askSample) float64 { return s.embed }},
	{"retrieve (one tenant transaction: model, set sizes, search, catalog)", func(s askSample) float64 { return s.retrieve }},
	{"validate + execute + history write (`sandbox.Run`)", func(s askSample) float64 { return s.execute }},
	{"rest of `Ask` (between stages)", func(s askSample) float64 { return s.total - s.embed - s.retrieve - s.generate - s.execute }},
	stageOverhead: {"**time outside the generator** (total − generate)", func(s askSample) float64 { return s.total - s.generate }},
	{"generate (offline generator; excluded)", func(s askSample) float64 { return s.generate }},
	{"total, `ask.Service.Ask`", func(s askSample) float64 { return s.total }},
	stageHTTPOverhead: {"over HTTP: time outside the generator (round trip − generate_ms)", func(s askSample) float64 { return s.httpTotal - s.httpGenerate }},
	{"over HTTP: round trip (`POST /v1/ask`, key auth, JSON)", func(s askSample) float64 { return s.httpTotal }},
	stageFirst: {"streamed: time to the first event (`status`)", func(s askSample) float64 { return s.firstEvent }},
	stageTurn:  {"follow-up turn (`POST /v1/conversations/{id}/messages`)", func(s askSample) float64 { return s.turn }},
	stageAlone: {"its standalone question (`POST /v1/ask`)", func(s askSample) float64 { return s.alone }},
}

const stageOverhead, stageHTTPOverhead, stageFirst, stageTurn, stageAlone = 4, 7, 9, 10, 11 // indexes in askStages

// askTurns are a conversation's first question, the follow-up timed and the standalone
// question it stands for (as the turn resolves it); a conversation takes askBatch follow-ups.
var askTurns, askBatch = [3]string{"How many orders per customer?", "and only for 2024?", "How many orders per customer — and only for 2024?"}, 4

func runAsk(ctx context.Context, e *Env) (*Section, error) {
	c, d := e.cfg.Ask, e.open(ctx, "ask")
	var appWrites atomic.Int64
	tracer := &phaseTracer{}
	tracer.paused.Store(true)
	db := tenant.New(e.pool(ctx, d.AppURL, 0, &appWrites, tracer))
	box := must1(tenant.NewSandbox(ctx, d.QueryURL, 4))
	e.atEnd(box.Close)
	sql, store := sandbox.New(db, box), &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	svc := ask.New(db, sql, store, generate.NewOffline())
	seed := seedAsk(ctx, e, d.admin, db, store, c)
	tctx, questions := tenant.NewContext(ctx, seed.id), askQuestions(seed.trained, c.Questions)
	floorPool, floorSQL := e.pool(ctx, d.AdminURL, 1, nil), "SELECT count(*) FROM "+pgx.Identifier{tenant.Schema(seed.id.TenantID), "customers"}.Sanitize()
	apiURL := e.serve(server.New(db, devNullLog, server.Config{SQL: sql, Ask: svc}))
	client, auth := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}, Timeout: time.Minute}, "Authorization: Bearer "+seed.apiKey
	question := func(q string) io.Reader { return bytes.NewReader(must1(json.Marshal(map[string]any{"question": q}))) }
	// try runs one question one way (0 directly, 1 over HTTP, 2 the
	// reference query, 3 streamed; 4 the follow-up turn in conversation conv
	// and 5 its standalone question) into s (floor: the reference's ms).
	try := func(way int, q string, s *askSample, floor *float64, conv string) {
		start := time.Now()
		var err error
		switch way {
		case 0:
			var a ask.Answer
			a, err = svc.Ask(tctx, ask.Request{Question: q, Execute: true})
			t := a.Timings
			s.total, s.embed, s.retrieve, s.generate, s.execute = millis(time.Since(start)), t.EmbedMS, t.RetrieveMS, t.GenerateMS, t.ExecuteMS
		case 1:
			var out apiclient.Answer // generate_ms is always there
			doJSON(ctx, client, http.MethodPost, apiURL+"/v1/ask", auth, question(q), &out)
			s.httpTotal, s.httpGenerate = millis(time.Since(start)), *out.Timings.GenerateMs
		case 2:
			err = floorPool.QueryRow(ctx, floorSQL).Scan(new(int64))
			*floor = millis(time.Since(start))
		case 3: // until the first complete event: its "event:" line through the blank line
			buf, first := []byte{}, time.Time{}
			status, _ := roundTrip(ctx, client, http.MethodPost, apiURL+"/v1/ask", auth+"\nAccept: text/event-stream", question(q), writerFunc(func(b []byte) (int, error) {
				if buf = append(buf, b...); first.IsZero() && bytes.HasPrefix(buf, []byte("event:")) && bytes.Contains(buf, []byte("\n\n")) {
					first = time.Now()
				}
				return len(b), nil
			}))
			if s.firstEvent = millis(first.Sub(start)); status != http.StatusOK || !bytes.HasPrefix(buf, []byte("event: status\n")) || !bytes.Contains(buf, []byte("event: done\n")) {
				err = fmt.Errorf("streamed: %d %.300s", status, buf)
			}
		default:
			var out apiclient.Answer
			doJSON(ctx, client, http.MethodPost, apiURL+map[int]string{4: "/v1/conversations/" + conv + "/messages", 5: "/v1/ask"}[way], auth, question(askTurns[way-3]), &out)
			if *map[int]*float64{4: &s.turn, 5: &s.alone}[way] = millis(time.Since(start)); out.Sql == "" {
				err = fmt.Errorf("%q: no SQL", askTurns[way-3])
			}
		}
		mustf(err == nil, "ask %q: %w", q, err)
	}
	// After a warm-up pass every run tries every question every way, the
	// follow-up turns in a fresh conversation per askBatch.
	samples, floors := make([][]askSample, e.cfg.Runs), make([][]float64, e.cfg.Runs)
	rng := rand.New(rand.NewPCG(5, 6))
	for run := -1; run < e.cfg.Runs; run++ {
		s, f, convs := make([]askSample, len(questions)), make([]float64, len(questions)), make([]string, (len(questions)+askBatch-1)/askBatch)
		for i := range convs {
			var conv apiclient.ConversationDetail
			doJSON(ctx, client, http.MethodPost, apiURL+"/v1/conversations", auth, strings.NewReader("{}"), &conv)
			convs[i] = conv.Id.String()
			doJSON(ctx, client, http.MethodPost, apiURL+"/v1/conversations/"+convs[i]+"/messages", auth, question(askTurns[0]), nil)
		}
		pass(rng, len(questions), 6, func(qi, way int) { try(way, questions[qi], &s[qi], &f[qi], convs[qi/askBatch]) })
		if p50 := func(st int) float64 { return pq(collect(s, askStages[st].get), 0.5) }; run >= 0 {
			samples[run], floors[run] = s, f
			e.logf("ask: run %d/%d: p50 outside the generator %.2f ms, first event %.2f ms, follow-up %.2f vs standalone %.2f ms", run+1, e.cfg.Runs,
				p50(stageOverhead), p50(stageFirst), p50(stageTurn), p50(stageAlone))
		}
	}
	// The statements on the runtime pool per question (client-side time
	// each) and round trips, in one untimed pass.
	tracer.take()
	w0 := appWrites.Load()
	tracer.paused.Store(false)
	for _, q := range questions {
		try(0, q, &askSample{}, nil, "")
	}
	tracer.paused.Store(true)
	trips := float64(appWrites.Load()-w0) / float64(len(questions))
	// Last, the evaluation schemas, each in a fresh tenant.
	scores := collect(evalset.Schemas, func(sc evalset.Schema) evalset.Score {
		res := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Eval " + sc.Name}))
		id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
		must(db.TxAs(ctx, id, func(tx tenant.Conn) error { return evalset.Load(ctx, tx, sc) }))
		return must1(evalset.Run(tenant.NewContext(ctx, id), generate.NewOffline(), sql, sc))
	})
	return askSection(c, seed, questions, samples, floors, tracer.take(), trips, scores), nil
}

// askSeeded is the asking tenant.
type askSeeded struct {
	id              tenant.Identity
	apiKey          string
	counts          map[string]int
	trained         []nlsql.NewItem // the pairs
	loadTook, build time.Duration
	catalog         int
}

// seedAsk provisions the asking tenant with the demo tables and trains its
// model through nlsql.Store, the HNSW indexes dropped meanwhile.
func seedAsk(ctx context.Context, e *Env, admin *pgx.Conn, db *tenant.DB, store *nlsql.Store, c AskConfig) *askSeeded {
	res := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Ask bench"}))
	s := &askSeeded{id: tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}, apiKey: res.APIKey, counts: map[string]int{}}
	tctx := tenant.NewContext(ctx, s.id)
	var modelID uuid.UUID
	must(db.TxAs(ctx, s.id, func(tx tenant.Conn) (err error) {
		if err = demo.Seed(ctx, tx); err == nil {
			modelID, err = nlsql.ModelID(ctx, tx, provision.DefaultModel)
		}
		return err
	}))
	e.logf("ask: training the tenant's model with %s rows", thousands(c.TrainingRows))
	start := time.Now()
	s.build = must1(vectest.LoadWithoutHNSW(ctx, admin, func() error {
		cat := must1(store.TrainFromCatalog(tctx, modelID))
		s.catalog = cat.DDL + cat.Documentation
		items := askTrainingItems(max(0, c.TrainingRows-s.catalog))
		must1(store.Add(tctx, modelID, items, nlsql.SourceImport))
		s.trained = slices.DeleteFunc(items, func(it nlsql.NewItem) bool { return it.Kind != nlsql.KindSQL })
		s.loadTook = time.Since(start)
		return nil
	}))
	rows, _ := admin.Query(ctx, `SELECT kind, count(*)::int FROM dbchat.training_data GROUP BY kind`)
	k, n := "", 0
	must1(pgx.ForEachRow(rows, []any{&k, &n}, func() error { s.counts[k] = n; return nil }))
	e.logf("ask: %d pairs, %d DDL, %d documentation rows: inserted in %s, HNSW built in %s", s.counts[nlsql.KindSQL],
		s.counts[nlsql.KindDDL], s.counts[nlsql.KindDocumentation], s.loadTook.Round(time.Millisecond), s.build.Round(time.Millisecond))
	return s
}

// askShapes are the training questions' shapes and SQL over the demo tables
// (templates/data.tmpl: their arguments are askTrainingItems' draw); askWords
// the countries, nouns and column names drawn from.
var askShapes, askWords = dataLines("ask-shapes"), collect(dataLines("ask-words"), func(f []string) []string { return strings.Fields(f[0]) })
var askCountries, askNouns, askAttrs, askAmounts = askWords[0], askWords[1], askWords[2], []int{10, 20, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 5000}

// askTrainingItems generates n training rows, deterministically: 85 % pairs
// of askShapes (distinct questions), 7.5 % DDL of other tables, 7.5 % docs.
func askTrainingItems(n int) []nlsql.NewItem {
	rng := rand.New(rand.NewPCG(11, 12))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	draw := func() []any {
		y := 2015 + rng.IntN(12)
		month := time.Date(y, time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
		day := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(12*365))
		return []any{pick(askCountries), askAmounts[rng.IntN(len(askAmounts))], y, y + 1, month.Format("January"), month.Format(time.DateOnly),
			month.AddDate(0, 1, 0).Format(time.DateOnly), 2 + rng.IntN(49), 1 + rng.IntN(5000), day.Format("2 January 2006"), day.Format(time.DateOnly), 1 + rng.IntN(20)}
	}
	nDDL, nDoc := n*3/40, n*3/40
	items := make([]nlsql.NewItem, 0, n)
	for seen := map[string]bool{}; len(items) < n-nDDL-nDoc; {
		shape, args := askShapes[rng.IntN(len(askShapes))], draw()
		if q := fmt.Sprintf(shape[0], args...); !seen[q] {
			seen[q] = true
			items = append(items, nlsql.NewItem{Kind: nlsql.KindSQL, Question: q, Content: fmt.Sprintf(shape[1], args...)})
		}
	}
	for i := range nDDL {
		cols := []string{"id bigint PRIMARY KEY"}
		for _, a := range rng.Perm(len(askAttrs))[:3+rng.IntN(5)] {
			cols = append(cols, askAttrs[a]+" text")
		}
		items = append(items, nlsql.NewItem{Kind: nlsql.KindDDL,
			Content: fmt.Sprintf("CREATE TABLE %ss_%d (%s, customer_id bigint REFERENCES customers (id))", pick(askNouns), i, strings.Join(cols, ", "))})
	}
	for i := range nDoc {
		noun, attr := pick(askNouns), pick(askAttrs)
		items = append(items, nlsql.NewItem{Kind: nlsql.KindDocumentation,
			Content: fmt.Sprintf("Note %d: a %s's %s is set when the %s is created and only finance may change it; orders refer to customers by customer_id, amounts are in EUR.", i, noun, attr, noun)})
	}
	return items
}

// askNovel the offline generator answers from the catalog (no trained one is
// close enough); none names a value in capitals (looked up in the data).
var askNovel = collect(dataLines("ask-novel"), func(f []string) string { return f[0] })

// askQuestions picks n questions: half trained ones with the first word
// lower-cased and no question mark (the same vector: the offline generator
// reuses the pair's SQL), half from askNovel.
func askQuestions(trained []nlsql.NewItem, n int) []string {
	rng, out := rand.New(rand.NewPCG(13, 14)), []string{}
	for i := range n {
		if i%2 == 0 && len(trained) > 0 {
			q := trained[rng.IntN(len(trained))].Question
			out = append(out, strings.ToLower(q[:1])+strings.TrimSuffix(q[1:], "?"))
		} else {
			out = append(out, askNovel[(i/2)%len(askNovel)])
		}
	}
	return out
}

func askSection(c AskConfig, seed *askSeeded, questions []string, samples [][]askSample, floors [][]float64, phases []phase, trips float64, scores []evalset.Score) *Section {
	nTrained := (len(questions) + 1) / 2 // the even ones
	p50p95 := func(runs [][]float64) (p50s, p95s []float64) {
		return collect(runs, func(r []float64) float64 { return pq(r, 0.5) }), collect(runs, func(r []float64) float64 { return pq(r, 0.95) })
	}
	rows, stageP50 := [][]string{}, make([][]float64, len(askStages))
	for si, st := range askStages {
		p50s, p95s := p50p95(collect(samples, func(r []askSample) []float64 { return collect(r, st.get) }))
		stageP50[si] = p50s
		rows = append(rows, []string{st.name, newDist(p50s).f("%.2f"), newDist(p95s).f("%.2f")})
	}
	fp50, fp95 := p50p95(floors)
	rows = append(rows, []string{"reference: `SELECT count(*) FROM customers`, one pgx query", newDist(fp50).f("%.3f"), newDist(fp95).f("%.3f")})
	over, httpOver := newDist(stageP50[stageOverhead]), newDist(stageP50[stageHTTPOverhead])
	first, turn, alone, turnRatio := newDist(stageP50[stageFirst]), newDist(stageP50[stageTurn]), newDist(stageP50[stageAlone]), newDist(ratios(stageP50[stageTurn], stageP50[stageAlone]))
	ratio, httpRatio := newDist(ratios(stageP50[stageOverhead], fp50)), newDist(ratios(stageP50[stageHTTPOverhead], fp50))
	goal, ref := fmt.Sprintf("p50 ≤ %.0f ms", askGoal.bound), "one query "+newDist(fp50).m("%.2f ms")
	s := &Section{Summary: []Row{
		{"time outside the generator, p50 (`ask.Service.Ask`)", ref, over.m("%.2f ms"), ratio.f("%.1f") + " (scale only)", goal, askGoal.verdict(over.Med)},
		{"the same over HTTP (`POST /v1/ask`)", ref, httpOver.m("%.2f ms"), httpRatio.f("%.1f") + " (scale only)", goal, askGoal.verdict(httpOver.Med)},
		{"time to the first streamed event, p50 (`Accept: text/event-stream`)", "—", first.f("%.2f") + " ms", "—", fmt.Sprintf("p50 ≤ %.0f ms", sseGoal.bound), sseGoal.verdict(first.Med)},
		{"follow-up turn vs its standalone question, p50 (HTTP)", "standalone " + alone.m("%.2f ms"), turn.m("%.2f ms"), turnRatio.f("%.2f"), turnGoal.String(), turnGoal.verdict(turnRatio.Med)},
	}}
	for _, sc := range scores {
		s.Summary = append(s.Summary, Row{"offline generator, evaluation schema " + sc.Schema + ": correct / refused / wrong", "—",
			fmt.Sprintf("%d / %d / %d", sc.Correct, sc.Refused, sc.Wrong), "—", "wrong = 0", map[bool]string{true: "met", false: "**missed**"}[sc.Wrong == 0]})
	}
	// The statements of the traced pass, per question, in order of appearance.
	n, sum, calls, ms := float64(len(questions)), 0.0, map[string]float64{}, map[string]float64{}
	var names []string
	for _, p := range phases {
		if calls[p.Name] == 0 {
			names = append(names, p.Name)
		}
		calls[p.Name], ms[p.Name], sum = calls[p.Name]+1/n, ms[p.Name]+p.Ms/n, sum+p.Ms/n
	}
	prows := collect(names, func(k string) []string { return []string{k, fmt.Sprintf("%.2f", calls[k]), fmt.Sprintf("%.3f", ms[k])} })
	counts := seed.counts
	s.Body = render("ask", map[string]any{"Goal": askGoal.bound, "C": c, "Rows": counts[nlsql.KindSQL] + counts[nlsql.KindDDL] + counts[nlsql.KindDocumentation],
		"Pairs": counts[nlsql.KindSQL], "DDL": counts[nlsql.KindDDL], "Docs": counts[nlsql.KindDocumentation], "Catalog": seed.catalog,
		"LoadTook": seed.loadTook, "Build": seed.build, "Questions": len(questions), "Trained": nTrained, "Novel": len(questions) - nTrained, "Table": rows,
		"Over": over.f("%.2f"), "OverMed": over.Med, "Verdict": strings.ReplaceAll(askGoal.verdict(over.Med), "**", ""), "HTTPOver": httpOver.f("%.2f"),
		"HTTPVerdict": strings.ReplaceAll(askGoal.verdict(httpOver.Med), "**", ""), "Ratio": ratio.m("%.0f"), "HTTPRatio": httpRatio.m("%.0f"),
		"First": first.f("%.2f"), "SSEVerdict": sseGoal.verdict(first.Med), "Turn": turn.f("%.2f"), "Alone": alone.f("%.2f"), "TurnRatio": turnRatio.f("%.2f"),
		"TurnVerdict": turnGoal.verdict(turnRatio.Med), "Turns": askTurns, "Batch": askBatch, "Scores": scores, "SSEGoal": sseGoal.bound, "TurnGoal": turnGoal.bound,
		"Phases": map[bool][][]string{true: append(prows, []string{"all statements on the runtime pool", "", fmt.Sprintf("%.3f", sum)})}[len(names) > 0], "RoundTrips": trips, "Sum": sum})
	return s
}
