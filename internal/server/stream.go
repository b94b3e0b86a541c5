package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
)

// Streaming (Accept: text/event-stream) on POST /v1/ask and POST
// /v1/conversations/{id}/messages. Events, in order: status (one per stage
// as it starts: retrieving, generating, validating or executing), sql (the
// statement, before it runs), rows (columns, then batches of at most
// streamBatch rows), chart, summary, suggestions and done (the statement
// that ran and its interpretation, history id, timings, and for a turn its
// id, position and resolved question); or error (the usual error shape) in place of what is left. A
// comment line every heartbeat keeps idle proxies from closing the stream.
// A client that goes away cancels the request's context, and with it the
// generation and the running statement.

const streamBatch = 200

// heartbeat is how often a quiet stream sends a comment line.
var heartbeat = 15 * time.Second

// wantsStream reports whether the client asked for Server-Sent Events.
func wantsStream(c *gin.Context) bool {
	return strings.Contains(c.GetHeader("Accept"), "text/event-stream")
}

// answerFunc produces an answer, reporting each stage to progress; extra
// goes into the done event.
type answerFunc func(ctx context.Context, progress func(ask.Stage, string)) (ask.Answer, map[string]any, error)

type sseEvent struct {
	name string
	data any
}

// stream runs answer in the background and writes its progress and result
// as events; the handler adapter writes nothing more (status 0). It returns
// only once answer has (a client that leaves cancels it), so nothing of the
// request outlives the handler.
func (s *Server) stream(c *gin.Context, answer answerFunc) (int, any, error) {
	events := make(chan sseEvent, 8)
	go s.produce(c, answer, events)
	startStream(c.Writer)
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	gone := c.Request.Context().Done()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return 0, nil, nil
			}
			if c.Request.Context().Err() == nil {
				writeEvent(c.Writer, ev)
			}
		case <-tick.C:
			fmt.Fprint(c.Writer, ": heartbeat\n\n")
			c.Writer.Flush()
		case <-gone:
			gone = nil // the client left: drain until produce, cancelled, ends
		}
	}
}

func startStream(w gin.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
}

// produce runs answer and sends its events, then closes events; a send
// gives up once the client has gone.
func (s *Server) produce(c *gin.Context, answer answerFunc, events chan<- sseEvent) {
	defer close(events)
	ctx := c.Request.Context()
	send := func(ev sseEvent) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}
	a, extra, err := answer(ctx, func(stage ask.Stage, sql string) {
		send(sseEvent{"status", gin.H{"stage": stage}})
		if sql != "" {
			send(sseEvent{"sql", gin.H{"sql": sql}})
		}
	})
	if err != nil {
		e := apperr.As(err)
		s.logFailure(c, e, err)
		send(sseEvent{"error", errorBody(e)})
		return
	}
	for _, ev := range resultEvents(a, extra) {
		send(ev)
	}
}

func writeEvent(w gin.ResponseWriter, ev sseEvent) {
	b, err := json.Marshal(ev.data)
	if err != nil {
		b, _ = json.Marshal(errorBody(apperr.Wrap(apperr.Internal, err, "internal error")))
		ev.name = "error"
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, b)
	w.Flush()
}

// resultEvents are a finished answer's events: rows, chart, summary,
// suggestions, and done with the statement that ran (after any correction)
// and its interpretation and security receipt.
func resultEvents(a ask.Answer, extra map[string]any) []sseEvent {
	var evs []sseEvent
	for i := 0; i == 0 || i < len(a.Rows); i += streamBatch {
		batch := a.Rows[i:min(i+streamBatch, len(a.Rows))]
		evs = append(evs, sseEvent{"rows", gin.H{"columns": a.Columns, "offset": i, "rows": batch}})
	}
	done := gin.H{"sql": a.SQL, "interpretation": a.Interpretation, "history_id": a.HistoryID, "row_count": a.RowCount, "truncated": a.Truncated, "generator": a.Generator, "timings": a.Timings, "security": a.Security}
	for k, v := range extra {
		done[k] = v
	}
	return append(evs, sseEvent{"chart", gin.H{"chart": a.Chart}}, sseEvent{"summary", gin.H{"summary": a.Summary}},
		sseEvent{"suggestions", gin.H{"suggestions": a.Suggestions}}, sseEvent{"done", done})
}
