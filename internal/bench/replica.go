package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/pgcluster"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 8: the SQL sandbox's throughput with its statements on the primary
// and on a hot standby of the same cluster (DBCHAT_QUERY_DATABASE_URL naming
// a standby); templates/replica.md.tmpl.

// replicaConcurrency is the load's connections: the sandbox pool's size, as
// `dbchat serve` opens it.
const replicaConcurrency = 8

// replicaRows are the measured tenant's rows; the statement aggregates them.
const replicaRows = 20_000

const replicaSQL = `SELECT region, count(*) AS orders, sum(amount) AS total FROM orders WHERE amount > 10 GROUP BY region ORDER BY region`

func runReplica(ctx context.Context, e *Env) (*Section, error) {
	dir := os.Getenv("TEST_CLUSTER_DIR")
	if dir == "" {
		return nil, errors.New("needs the private cluster's directory (TEST_CLUSTER_DIR, set by `dbchat cluster exec`, which make bench runs) to start its hot standby")
	}
	d := e.open(ctx, "replica")
	// The running cluster, reused; its standby is copied on first use and
	// stopped with the cluster when make bench ends.
	c := must1(pgcluster.EnsureWith(ctx, dir, io.Discard, pgcluster.Options{}))
	t0 := time.Now()
	st := must1(c.EnsureStandby(ctx))
	e.logf("replica: standby on port %d (%s)", st.Port, time.Since(t0).Round(time.Millisecond))
	standbyQuery, standbyApp := onPort(d.QueryURL, st.Port), onPort(d.AppURL, st.Port)

	db := tenant.New(e.pool(ctx, d.AppURL, 0, nil))
	res := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Replica bench"}))
	id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
	spec := catalog.TableSpec{Name: "orders", Columns: []catalog.ColumnSpec{{Name: "id", Type: "bigint"}, {Name: "region", Type: "text"}, {Name: "amount", Type: "numeric"}}}
	must(db.TxAs(ctx, id, func(tx tenant.Conn) error {
		t, err := catalog.Create(ctx, tx, spec)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+t.Ident().Sanitize()+` (id, region, amount)
			SELECT i, 'region ' || i % 12, (i % 1000) / 10.0 FROM generate_series(1, $1::int) i`, replicaRows)
		return err
	}))
	_, err := d.admin.Exec(ctx, "ANALYZE "+pgx.Identifier{tenant.Schema(id.TenantID), "orders"}.Sanitize())
	must(err)

	primaryBox := must1(tenant.NewSandbox(ctx, d.QueryURL, replicaConcurrency))
	e.atEnd(primaryBox.Close)
	standbyBox := must1(tenant.NewSandbox(ctx, d.QueryURL, replicaConcurrency))
	e.atEnd(standbyBox.Close)
	must(standbyBox.UseStandby(ctx, db, tenant.StandbyConfig{URL: standbyQuery, MonitorURL: standbyApp}))
	targets := []*replicaTarget{
		{name: "primary", url: e.serve(server.New(db, devNullLog, server.Config{SQL: sandbox.New(db, primaryBox)}))},
		{name: "standby", url: e.serve(server.New(db, devNullLog, server.Config{SQL: sandbox.New(db, standbyBox), Replica: standbyBox}))},
	}
	auth := "Bearer " + res.APIKey
	// Both answer the same rows (the standby once it has replayed the
	// seed: the tenant's first statement waits for the position of the
	// standby's attachment); then a warm-up.
	for _, t := range targets {
		t.want = postSQL(ctx, http.DefaultClient, t.url, auth)
		mustf(bytes.Equal(t.want, targets[0].want), "%s answered %s, the primary %s", t.name, t.want, targets[0].want)
		replicaLoad(ctx, t.url, auth, e.cfg.HTTP.Warmup)
	}
	onStandby0, fellBack0 := standbyBox.OnStandby(), standbyBox.OnPrimaryInstead()
	h := e.cfg.HTTP
	for run := range e.cfg.Runs {
		for k := range targets {
			t := targets[(k+run)%len(targets)] // the order alternates between runs
			t.runs = append(t.runs, replicaLoad(ctx, t.url, auth, h.Duration))
		}
		e.logf("replica: run %d/%d: primary %.0f req/s, standby %.0f req/s", run+1, e.cfg.Runs, targets[0].runs[run].RPS, targets[1].runs[run].RPS)
	}
	onStandby, fellBack := standbyBox.OnStandby()-onStandby0, standbyBox.OnPrimaryInstead()-fellBack0
	mustf(onStandby > 0, "no statement ran on the standby")
	return replicaSection(e, targets, onStandby, fellBack), nil
}

// replicaTarget is one server measured: its runs and its answer.
type replicaTarget struct {
	name, url string
	want      []byte
	runs      []loadResult
}

// postSQL runs the measured statement once and returns its rows.
func postSQL(ctx context.Context, client *http.Client, base, auth string) []byte {
	var res struct {
		Rows json.RawMessage `json:"rows"`
	}
	doJSON(ctx, client, http.MethodPost, base+"/v1/sql", "Authorization: "+auth, bytes.NewReader(replicaBody), &res)
	return res.Rows
}

var replicaBody = must1(json.Marshal(map[string]any{"sql": replicaSQL}))

// replicaLoad sends POST /v1/sql back to back on replicaConcurrency
// keep-alive connections for d (the load generator process sends GETs
// only, so this one runs here, the same way for both targets).
func replicaLoad(ctx context.Context, base, auth string, d time.Duration) loadResult {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: replicaConcurrency,
		MaxConnsPerHost: replicaConcurrency, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var wg sync.WaitGroup
	lat, res, start := []float64{}, loadResult{}, time.Now()
	deadline := start.Add(d)
	for range replicaConcurrency {
		wg.Go(func() {
			mine, errs, first := []float64{}, int64(0), ""
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				status, err := roundTrip(ctx, client, http.MethodPost, base+"/v1/sql", "Authorization: "+auth, bytes.NewReader(replicaBody), io.Discard)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("status %d", status)
				}
				if err != nil {
					if errs++; first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, micros(time.Since(t0)))
			}
			mu.Lock()
			defer mu.Unlock()
			lat, res.Errors, res.FirstError = append(lat, mine...), res.Errors+errs, cmp.Or(res.FirstError, first)
		})
	}
	wg.Wait()
	mustf(res.Errors == 0, "POST /v1/sql on %s: %d failed (first: %s)", base, res.Errors, res.FirstError)
	res.RPS = float64(len(lat)) / time.Since(start).Seconds()
	res.P50us, res.P99us = pq(lat, 0.50), pq(lat, 0.99)
	return res
}

// onPort is connURL on another port of the same host.
func onPort(connURL string, port int) string {
	u := must1(url.Parse(connURL))
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return u.String()
}

func replicaSection(e *Env, targets []*replicaTarget, onStandby, fellBack int64) *Section {
	rps := func(t *replicaTarget) []float64 { return collect(t.runs, func(r loadResult) float64 { return r.RPS }) }
	p, s := targets[0], targets[1]
	ratio := newDist(ratios(rps(s), rps(p)))
	row := func(t *replicaTarget) []string {
		return []string{t.name, newDist(rps(t)).f("%.0f"),
			newDist(collect(t.runs, func(r loadResult) float64 { return r.P50us / 1000 })).f("%.2f"),
			newDist(collect(t.runs, func(r loadResult) float64 { return r.P99us / 1000 })).f("%.2f")}
	}
	sec := &Section{Summary: []Row{{fmt.Sprintf("POST /v1/sql on a hot standby vs the primary (req/s, c=%d)", replicaConcurrency),
		"primary " + newDist(rps(p)).m("%.0f"), newDist(rps(s)).m("%.0f"), ratio.f("%.2f"), "reported", "—"}}}
	sec.Body = render("replica", map[string]any{"Rows": replicaRows, "SQL": replicaSQL, "C": replicaConcurrency, "H": e.cfg.HTTP, "Runs": e.cfg.Runs,
		"Table": [][]string{row(p), row(s)}, "Ratio": ratio.f("%.2f"), "OnStandby": onStandby, "FellBack": fellBack})
	return sec
}
