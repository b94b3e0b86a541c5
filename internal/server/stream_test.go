package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

type sseEvent struct {
	name string
	data map[string]json.RawMessage
}

// readEvents reads a Server-Sent Events body to its end; heartbeats counts
// the comment lines.
func readEvents(t *testing.T, body io.Reader) (events []sseEvent, heartbeats int) {
	t.Helper()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			heartbeats++
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data), line)
		case line == "" && ev.name != "":
			events = append(events, ev)
			ev = sseEvent{}
		}
	}
	return events, heartbeats
}

func (e *env) stream(t *testing.T, path, key, body string) []sseEvent {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events, _ := readEvents(t, resp.Body)
	return events
}

func names(events []sseEvent) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.name
		if ev.name == "status" {
			out[i] += ":" + strings.Trim(string(ev.data["stage"]), `"`)
		}
	}
	return out
}

// With Accept: text/event-stream, /v1/ask and a conversation turn stream
// their stages, the SQL before it runs, the rows, chart, summary,
// suggestions and done, in that order, with the same rows as the JSON
// answer; a refused turn ends with an error event in the usual shape and is
// still recorded.
func TestAnswersStreamInOrder(t *testing.T) {
	t.Parallel()
	e := newAskEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	want := []string{"status:retrieving", "status:generating", "status:executing", "sql", "rows", "chart", "summary", "suggestions", "done"}

	const question = `{"question":"How many customers per country?"}`
	events := e.stream(t, "/v1/ask", a.APIKey, question)
	require.Equal(t, want, names(events))
	status, body := e.callJSON(t, http.MethodPost, "/v1/ask", a.APIKey, question)
	require.Equal(t, http.StatusOK, status, body)
	var plain struct {
		SQL  string            `json:"sql"`
		Rows []json.RawMessage `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &plain))
	var streamed []json.RawMessage
	require.NoError(t, json.Unmarshal(events[4].data["rows"], &streamed))
	require.Equal(t, plain.Rows, streamed)
	var sql string
	require.NoError(t, json.Unmarshal(events[3].data["sql"], &sql))
	require.Equal(t, plain.SQL, sql)
	require.NotEmpty(t, events[8].data["history_id"])
	require.NotEmpty(t, events[8].data["interpretation"])

	conv := e.newConversation(t, a.APIKey, "streamed")
	events = e.stream(t, "/v1/conversations/"+conv.Id.String()+"/messages", a.APIKey, question)
	require.Equal(t, want, names(events))
	require.JSONEq(t, `1`, string(events[8].data["position"]))
	events = e.stream(t, "/v1/conversations/"+conv.Id.String()+"/messages", a.APIKey, `{"question":"what about NL?"}`)
	require.Equal(t, want, names(events))
	require.Contains(t, string(events[8].data["resolved_question"]), "How many customers per country")

	events = e.stream(t, "/v1/conversations/"+conv.Id.String()+"/messages", a.APIKey, `{"question":"and the weather?"}`)
	require.Equal(t, []string{"status:retrieving", "status:generating", "error"}, names(events))
	var refusal struct{ Code, Message string }
	require.NoError(t, json.Unmarshal(events[2].data["error"], &refusal))
	require.Equal(t, "no_sql_generated", refusal.Code)
	var d convDetail
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/conversations/"+conv.Id.String(), a.APIKey, "", &d)
	require.Len(t, d.Messages, 3)
	require.Equal(t, refusal.Message, *d.Messages[2].Error)
}

// A streaming client that goes away while the statement runs cancels it:
// within a second no backend of the request is busy. Meanwhile the quiet
// stream sent heartbeats.
func TestStreamDisconnectCancelsTheStatement(t *testing.T) {
	t.Parallel()
	old := server.SetHeartbeat(50 * time.Millisecond)
	t.Cleanup(func() { server.SetHeartbeat(old) })
	for _, route := range []string{"ask", "conversation"} {
		t.Run(route, func(t *testing.T) {
			t.Parallel()
			e := newAskEnv(t)
			a := dbtest.NewTenant(t, e.db, "A")
			busy := watchBusy(t, e)
			const question = "How many pairs of numbers up to a million are there?"
			status, body := e.send(t, http.MethodPost, "/v1/models/default/training-data", a.APIKey,
				map[string]any{"kind": "sql", "question": question, "sql": disconnectStatement})
			require.Equal(t, http.StatusCreated, status, body)
			path := "/v1/ask"
			if route == "conversation" {
				path = "/v1/conversations/" + e.newConversation(t, a.APIKey, "slow").Id.String() + "/messages"
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+path, strings.NewReader(`{"question":"`+question+`"}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+a.APIKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			beats := make(chan int, 1)
			go func() {
				defer resp.Body.Close()
				events, n := readEvents(t, resp.Body)
				for _, ev := range events {
					if ev.name == "done" {
						t.Errorf("the statement finished before the client went away")
					}
				}
				beats <- n
			}()
			require.Eventually(t, func() bool { return statementRunning(busy) }, 10*time.Second, 20*time.Millisecond)
			time.Sleep(200 * time.Millisecond) // a few heartbeats
			cancel()
			require.Positive(t, <-beats, "heartbeats while the statement ran")
			require.Eventually(t, func() bool {
				return busy("dbchat_app", "") == 0 && busy("dbchat_query", "") == 0
			}, time.Second, 20*time.Millisecond, "database work outlived its client")
		})
	}
}
