package conversation_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/conversation"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
)

// A generator that fails mid-turn (the LLM server answers 503) leaves a
// consistent conversation: the turn is recorded with its error and no SQL,
// and the next turn takes the next position.
func TestFailedTurnIsRecorded(t *testing.T) {
	t.Parallel()
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(llm.Close)
	box := dbtest.NewSandboxed(t, 2)
	store := &nlsql.Store{DB: box.Tenants, Embedder: embed.NewLocal()}
	gen := generate.NewOpenAI(llm.URL+"/v1", "k", "m")
	svc := conversation.New(box.Tenants, ask.New(box.Tenants, box.SQL, store, gen))
	_, tctx := box.DemoTenant(t, "Shop")

	c, err := svc.Create(tctx, "", "failing")
	require.NoError(t, err)
	_, err = svc.Ask(tctx, c.ID, ask.Request{Question: "How many customers do we have?"})
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "%v", err)
	_, err = svc.Ask(tctx, c.ID, ask.Request{Question: "   "})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "an empty question is not a turn")

	got, err := svc.Get(tctx, c.ID)
	require.NoError(t, err)
	require.Len(t, got.Messages, 1)
	m := got.Messages[0]
	require.EqualValues(t, 1, m.Position)
	require.Nil(t, m.SQL)
	require.NotNil(t, m.Error)
	require.Contains(t, *m.Error, "did not answer")
}

// Two turns of one conversation at once both land, at positions 1 and 2:
// recording locks the conversation and reads the next position after it.
func TestConcurrentTurnsTakeTheirOwnPositions(t *testing.T) {
	t.Parallel()
	box := dbtest.NewSandboxed(t, 4)
	store := &nlsql.Store{DB: box.Tenants, Embedder: embed.NewLocal()}
	svc := conversation.New(box.Tenants, ask.New(box.Tenants, box.SQL, store, generate.NewOffline()))
	_, tctx := box.DemoTenant(t, "Shop")
	c, err := svc.Create(tctx, "", "busy")
	require.NoError(t, err)
	positions := make(chan int32, 4)
	errs := make(chan error, 4)
	for _, q := range []string{"How many customers do we have?", "How many orders are there?", "List all customers", "What is the total amount of all orders?"} {
		go func() {
			turn, err := svc.Ask(tctx, c.ID, ask.Request{Question: q})
			positions <- turn.Position
			errs <- err
		}()
	}
	var got []int32
	for range 4 {
		require.NoError(t, <-errs)
		got = append(got, <-positions)
	}
	require.ElementsMatch(t, []int32{1, 2, 3, 4}, got)
}
