package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
)

// A client that goes away mid-request takes its database work with it: the
// sandboxed statement is cancelled, not left running for its timeout.
func TestClientDisconnectCancelsTheStatement(t *testing.T) {
	t.Parallel()
	e := newSQLEnv(t)
	a := dbtest.NewTenant(t, e.db, "A")
	const marker = "zz_disconnect_marker"
	body, err := json.Marshal(map[string]any{
		"sql":        "SELECT count(*) FROM generate_series(1, 100000000000) g WHERE '" + marker + "' <> ''",
		"timeout_ms": 30000,
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/sql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.APIKey)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()

	admin := e.d.AdminPool(t)
	running := func() int {
		var n int
		require.NoError(t, admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, marker).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return running() == 1 }, 10*time.Second, 20*time.Millisecond, "the statement never started")
	cancel()
	<-done
	// Within a second of the disconnect, no backend still runs it (the
	// statement's own timeout is 30 s).
	require.Eventually(t, func() bool { return running() == 0 }, time.Second, 20*time.Millisecond,
		"the statement outlived its client")
}
