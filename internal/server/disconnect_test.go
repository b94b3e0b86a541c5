package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// disconnectStatement runs for minutes of CPU without spilling to disk (a
// single huge generate_series is materialised and hits temp_file_limit
// within a second, which would end it without any cancellation).
const disconnectStatement = "SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b"

// A client that goes away mid-request takes its database work with it, on
// every route that does long database work: an import mid-body (its
// transaction), a sandboxed statement (POST /v1/sql, 30 s timeout)
// and a question whose generated SQL runs long (POST /v1/ask: the offline
// generator reuses a trained pair's SQL; the sandbox's default timeout is
// 5 s). Within a second of the disconnect no backend of this database's
// runtime or sandbox role is still busy.
//
// The client leaves once the statement runs: the sandbox declares a cursor
// and runs the statement in its FETCH, in one pipelined round trip. (A
// client that leaves just before, while that round trip is on its way, is
// not covered yet: pgx sends one cancel request at once, which can land
// before the FETCH starts, and then keeps the socket open for up to 15 s
// waiting for the server, so the FETCH runs on. Closing the socket at once
// in the sandbox on a cancelled context would let PostgreSQL end it within
// client_connection_check_interval; see TestStatementsEndWhenTheirClientVanishes.)
func TestClientDisconnectCancelsDatabaseWork(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// request builds the request to abandon; started holds once its
		// database work is under way.
		request func(t *testing.T, e *env, key string) (method, path, contentType string, body io.Reader)
		started func(busy busyFunc) bool
	}{{
		name: "import mid-body",
		request: func(t *testing.T, e *env, key string) (string, string, string, io.Reader) {
			tbl := e.createTable(t, key, map[string]any{"name": "uploads", "columns": []map[string]any{
				{"name": "id", "type": "bigint"}, {"name": "name", "type": "text"}}})
			return http.MethodPost, "/v1/tables/" + tbl.ID.String() + "/rows", "text/csv", endlessCSV(t)
		},
		started: func(busy busyFunc) bool { return busy("dbchat_app", "") == 1 },
	}, {
		name: "sandboxed statement",
		request: func(t *testing.T, e *env, key string) (string, string, string, io.Reader) {
			return http.MethodPost, "/v1/sql", "application/json",
				jsonBody(t, map[string]any{"sql": disconnectStatement, "timeout_ms": 30000})
		},
		started: statementRunning,
	}, {
		name: "question",
		request: func(t *testing.T, e *env, key string) (string, string, string, io.Reader) {
			const question = "How many pairs of numbers up to a million are there?"
			status, body := e.send(t, http.MethodPost, "/v1/models/default/training-data", key,
				map[string]any{"kind": "sql", "question": question, "sql": disconnectStatement})
			require.Equal(t, http.StatusCreated, status, body)
			return http.MethodPost, "/v1/ask", "application/json", jsonBody(t, map[string]any{"question": question})
		},
		started: statementRunning,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newAskEnv(t)
			a := dbtest.NewTenant(t, e.db, "A")
			busy := watchBusy(t, e)
			method, path, contentType, body := c.request(t, e, a.APIKey)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, method, e.url+path, body)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+a.APIKey)
			req.Header.Set("Content-Type", contentType)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Errorf("answered before the client went away: %d %s", resp.StatusCode, b)
				}
			}()
			require.Eventually(t, func() bool { return c.started(busy) }, 10*time.Second, 20*time.Millisecond,
				"the database work never started")
			cancel()
			<-done
			require.Eventually(t, func() bool {
				return busy("dbchat_app", "") == 0 && busy("dbchat_query", "") == 0
			}, time.Second, 20*time.Millisecond, "database work outlived its client")
		})
	}
}

// busyFunc counts a test database's backends of role that are not idle
// (running a statement or inside a transaction), whose query matches the
// LIKE pattern match ("" for any).
type busyFunc func(role, match string) int

// statementRunning holds once the sandbox's FETCH, which runs the
// statement, is under way.
func statementRunning(busy busyFunc) bool { return busy("dbchat_query", "FETCH %") == 1 }

func watchBusy(t *testing.T, e *env) busyFunc {
	admin := e.d.AdminPool(t)
	return func(role, match string) int {
		if match == "" {
			match = "%"
		}
		var n int
		require.NoError(t, admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND usename = $2 AND state IS DISTINCT FROM 'idle'
			AND query LIKE $3 AND pid <> pg_backend_pid()`, e.d.Name, role, match).Scan(&n))
		return n
	}
}

// endlessCSV is an import body that sends a row every 20 ms until its
// reader is closed (the client's transport closes it when the request is
// cancelled).
func endlessCSV(t *testing.T) io.Reader {
	r, w := io.Pipe()
	t.Cleanup(func() { r.Close() })
	go func() {
		if _, err := io.WriteString(w, "id,name\n"); err != nil {
			return
		}
		for i := 1; ; i++ {
			if _, err := fmt.Fprintf(w, "%d,row %d\n", i, i); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return r
}

func jsonBody(t *testing.T, v any) io.Reader {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return bytes.NewReader(b)
}
