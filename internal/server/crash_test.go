package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// PostgreSQL is killed (SIGKILL on the postmaster) four times on one
// private cluster: during training writes, during questions (/v1/ask, which
// writes query history), during conversation turns (which also record the
// turn), and under steady read traffic from several clients. Each time, every request in flight answers 503 unavailable
// (never 500, never a hang or a dropped connection), /readyz is 503 while
// the database is down, the same server answers 200 again within 5 s of the
// cluster accepting connections, no training or history row is missing a
// part (an acknowledged write is whole, a cut one is absent), and no
// pooled connection or sandbox slot is left taken.
//
// The first two faults are made to land mid-write deterministically: a
// superuser transaction holds a lock the writes need, the test waits until
// they wait on it, then kills the server.
func TestPostgresKilledMidRequests(t *testing.T) {
	t.Parallel()
	e := newCrashEnv(t)
	tn := dbtest.NewTenant(t, e.db, "Crash")
	other := dbtest.NewTenant(t, e.db, "Bystander")
	schema := tenant.Schema(tn.ID)
	orders := map[string]string{} // API key -> that tenant's orders table
	for _, x := range []dbtest.Tenant{tn, other} {
		for _, name := range []string{"orders", "events"} {
			id := e.createTable(t, x.APIKey, fmt.Sprintf(`{"name":%q,"columns":[{"name":"id","type":"bigint"},{"name":"kind","type":"text"}]}`, name))
			status, body := e.importRows(t, x.APIKey, id, "text/csv", strings.NewReader("id,kind\n1,a\n2,b\n3,c\n"))
			require.Equal(t, http.StatusOK, status, body)
			if name == "orders" {
				orders[x.APIKey] = id
			}
		}
	}
	// Something complete to check before the faults: one training item and
	// one answered question.
	status, body := e.do(t, http.MethodPost, "/v1/models/default/training-data", tn.APIKey, "application/json",
		strings.NewReader(`{"kind":"documentation","content":"orders holds one row per order"}`))
	require.Equal(t, http.StatusCreated, status, body)
	status, body = e.do(t, http.MethodPost, "/v1/ask", tn.APIKey, "application/json",
		strings.NewReader(`{"question":"How many rows are in orders?"}`))
	require.Equal(t, http.StatusOK, status, body)

	t.Run("training writes", func(t *testing.T) {
		e.t = t
		before := e.trainingRows(tn)
		unlock := e.lock("dbchat.training_data IN SHARE ROW EXCLUSIVE MODE")
		defer unlock()
		var vanna strings.Builder
		vanna.WriteString("id,question,content,training_data_type\n")
		for i := range 20 {
			fmt.Fprintf(&vanna, "d%d,,Imported note %d,documentation\n", i, i)
		}
		cut := []<-chan crashAnswer{
			e.inFlight(http.MethodPost, "/v1/models/default/training-data", tn.APIKey, "application/json",
				`{"kind":"documentation","content":"written while the database dies"}`),
			e.inFlight(http.MethodPost, "/v1/models/default/training-data/import", tn.APIKey, "text/csv", vanna.String()),
		}
		waitFor(t, "both training writes to wait on the lock", func() bool { return e.lockWaiters("%training_data%") == 2 })
		e.kill()
		for _, ch := range cut {
			requireUnavailable(t, <-ch)
		}
		e.requireDown(tn.APIKey)
		e.restart(tn.APIKey)
		require.Equal(t, before, e.trainingRows(tn), "the cut training writes left nothing")
		e.requireIdle(tn)
		status, body := e.do(t, http.MethodPost, "/v1/models/default/training-data", tn.APIKey, "application/json",
			strings.NewReader(`{"kind":"documentation","content":"written after the restart"}`))
		require.Equal(t, http.StatusCreated, status, body)
		require.Equal(t, before+1, e.trainingRows(tn))
	})

	t.Run("questions", func(t *testing.T) {
		e.t = t
		before := e.historyRows(tn, "question IS NOT NULL")
		// One question waits in the sandbox (its table is locked), the
		// other has its answer and waits to write it to history.
		unlock := e.lock(pgx.Identifier{schema, "events"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE",
			"dbchat.query_history IN SHARE ROW EXCLUSIVE MODE")
		defer unlock()
		cut := []<-chan crashAnswer{
			e.inFlight(http.MethodPost, "/v1/ask", tn.APIKey, "application/json", `{"question":"How many rows are in events?"}`),
			e.inFlight(http.MethodPost, "/v1/ask", tn.APIKey, "application/json", `{"question":"How many rows are in orders?"}`),
		}
		waitFor(t, "one question in the sandbox and one writing history", func() bool {
			return e.lockWaiters("%events%") == 1 && e.lockWaiters("%query_history%") == 1
		})
		e.kill()
		for _, ch := range cut {
			requireUnavailable(t, <-ch)
		}
		e.requireDown(tn.APIKey)
		e.restart(tn.APIKey)
		require.Equal(t, before, e.historyRows(tn, "question IS NOT NULL"), "the cut questions wrote no history")
		e.requireIdle(tn)
		status, body := e.do(t, http.MethodPost, "/v1/ask", tn.APIKey, "application/json", strings.NewReader(`{"question":"How many rows are in events?"}`))
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, before+1, e.historyRows(tn, "question IS NOT NULL"))
	})

	t.Run("conversation turn", func(t *testing.T) {
		e.t = t
		var conv struct{ ID string }
		status, body := e.do(t, http.MethodPost, "/v1/conversations", tn.APIKey, "application/json", strings.NewReader(`{"title":"cut"}`))
		require.Equal(t, http.StatusCreated, status, body)
		require.NoError(t, json.Unmarshal([]byte(body), &conv))
		path := "/v1/conversations/" + conv.ID + "/messages"
		// One turn waits in the sandbox, the other has its answer (and
		// its history row) and waits to record the turn.
		unlock := e.lock(pgx.Identifier{schema, "events"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE",
			"dbchat.messages IN SHARE ROW EXCLUSIVE MODE")
		defer unlock()
		cut := []<-chan crashAnswer{
			e.inFlight(http.MethodPost, path, tn.APIKey, "application/json", `{"question":"How many rows are in events?"}`),
			e.inFlight(http.MethodPost, path, tn.APIKey, "application/json", `{"question":"How many rows are in orders?"}`),
		}
		waitFor(t, "one turn in the sandbox and one recording itself", func() bool {
			return e.lockWaiters("%events%") == 1 && e.lockWaiters("%dbchat.messages%") == 1
		})
		e.kill()
		for _, ch := range cut {
			requireUnavailable(t, <-ch)
		}
		e.requireDown(tn.APIKey)
		e.restart(tn.APIKey)
		var turns, partial int
		require.NoError(t, e.admin.QueryRow(context.Background(), `SELECT count(*),
			count(*) FILTER (WHERE sql IS NULL AND error IS NULL OR sql IS NOT NULL AND history_id IS NULL)
			FROM dbchat.messages WHERE tenant_id = $1`, tn.ID).Scan(&turns, &partial))
		require.Zero(t, turns, "the cut turns recorded nothing")
		e.requireIdle(tn)
		status, body = e.do(t, http.MethodPost, path, tn.APIKey, "application/json", strings.NewReader(`{"question":"How many rows are in events?"}`))
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, `"position":1`)
		e.historyRows(tn, "true") // every history row whole, the cut turn's answer included
	})

	t.Run("steady reads", func(t *testing.T) {
		e.t = t
		sqlBefore := e.historyRows(tn, "question IS NULL") + e.historyRows(other, "question IS NULL")
		var (
			stop                    atomic.Bool
			ok, down, sqlOK, sqlCut atomic.Int64
			mu                      sync.Mutex
			failures                []string
			wg                      sync.WaitGroup
		)
		const clients = 6
		var okAfterRestart [clients]atomic.Bool
		var restarted atomic.Bool
		for c := range clients {
			key := []string{tn.APIKey, other.APIKey}[c%2]
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					var a crashAnswer
					isSQL := false
					switch (c + i) % 5 {
					case 0:
						a = <-e.inFlight(http.MethodGet, "/v1/me", key, "", "")
					case 1:
						a = <-e.inFlight(http.MethodGet, "/v1/tables", key, "", "")
					case 2:
						a = <-e.inFlight(http.MethodGet, "/v1/tables/"+orders[key]+"/rows?limit=10", key, "", "")
					case 3:
						a = <-e.inFlight(http.MethodGet, "/v1/history?limit=5", key, "", "")
					case 4:
						isSQL = true
						a = <-e.inFlight(http.MethodPost, "/v1/sql", key, "application/json", `{"sql":"SELECT count(*) FROM orders"}`)
					}
					switch {
					case a.err == nil && a.status == http.StatusOK:
						ok.Add(1)
						if isSQL {
							sqlOK.Add(1)
						}
						if restarted.Load() {
							okAfterRestart[c].Store(true)
						}
					case a.err == nil && a.status == http.StatusServiceUnavailable && strings.Contains(a.body, `"code":"unavailable"`):
						down.Add(1)
						if isSQL {
							sqlCut.Add(1)
						}
						time.Sleep(10 * time.Millisecond) // as a client would back off
					default:
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %d %v %s", a.what, a.status, a.err, a.body))
						mu.Unlock()
					}
				}
			})
		}
		defer func() { stop.Store(true); wg.Wait() }()
		waitFor(t, "steady traffic", func() bool { return ok.Load() >= 60 })
		e.kill()
		waitFor(t, "every client to meet the outage", func() bool { return down.Load() >= 2*clients })
		e.requireDown(tn.APIKey)
		e.restart(tn.APIKey)
		restarted.Store(true)
		waitFor(t, "every client to be answered again", func() bool {
			for c := range clients {
				if !okAfterRestart[c].Load() {
					return false
				}
			}
			return true
		})
		stop.Store(true)
		wg.Wait()
		mu.Lock()
		require.Empty(t, failures, "every answer is 200 or 503 unavailable")
		mu.Unlock()
		t.Logf("%d answered 200, %d answered 503 unavailable", ok.Load(), down.Load())

		// Every acknowledged /v1/sql has its history row; one cut after its
		// commit may have one too; none is half-written (historyRows counts
		// complete rows and fails on any other).
		after := e.historyRows(tn, "question IS NULL") + e.historyRows(other, "question IS NULL")
		require.GreaterOrEqual(t, after-sqlBefore, sqlOK.Load())
		require.LessOrEqual(t, after-sqlBefore, sqlOK.Load()+sqlCut.Load())
		e.requireIdle(tn, other)
	})
	e.t = t
	e.requireLogged()
}

// lock takes locks in a superuser transaction; the returned func ends it
// (quietly: the kill usually has ended it already).
func (e *crashEnv) lock(what ...string) func() {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.admin.Begin(ctx)
	require.NoError(e.t, err)
	for _, w := range what {
		_, err := tx.Exec(ctx, "LOCK TABLE "+w)
		require.NoError(e.t, err)
	}
	return func() { _ = tx.Rollback(ctx) }
}

// trainingRows counts tn's training items, failing on any that is not
// whole: every item has its content and its embedding.
func (e *crashEnv) trainingRows(tn dbtest.Tenant) int {
	e.t.Helper()
	var n, partial int
	require.NoError(e.t, e.admin.QueryRow(context.Background(), `SELECT count(*),
		count(*) FILTER (WHERE content = '' OR embedding IS NULL OR embedder IS NULL OR model_id IS NULL)
		FROM dbchat.training_data WHERE tenant_id = $1`, tn.ID).Scan(&n, &partial))
	require.Zero(e.t, partial, "training items without their content or embedding")
	return n
}

// historyRows counts tn's history rows matching where, failing on any of
// tn's rows that is not whole: a statement, and for a success its row count
// and timing, for an error its message.
func (e *crashEnv) historyRows(tn dbtest.Tenant, where string) int64 {
	e.t.Helper()
	var n, partial int64
	require.NoError(e.t, e.admin.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE `+where+`),
		count(*) FILTER (WHERE generated_sql IS NULL
			OR status = 'success' AND (row_count IS NULL OR execution_ms IS NULL)
			OR status = 'error' AND error IS NULL
			OR question IS NOT NULL AND (model_id IS NULL OR generation_ms IS NULL))
		FROM dbchat.query_history WHERE tenant_id = $1`, tn.ID).Scan(&n, &partial))
	require.Zero(e.t, partial, "history rows missing a part")
	return n
}
