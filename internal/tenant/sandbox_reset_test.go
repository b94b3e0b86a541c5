package tenant

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A sandbox connection goes back to the pool only after DISCARD ALL, so no
// session state a statement could leave reaches the next tenant's.
func TestSandboxConnectionsAreResetOnRelease(t *testing.T) {
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		t.Fatal("TEST_DATABASE_URL is not set: run `make test`")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{`SET application_name = 'left-by-a'`, `PREPARE left_by_a AS SELECT 1`,
		`SELECT pg_advisory_lock(42)`} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if !resetSession(conn) {
		t.Fatal("reset failed")
	}
	var name string
	var prepared, locks int
	err = conn.QueryRow(ctx, `SELECT current_setting('application_name'),
		(SELECT count(*) FROM pg_prepared_statements WHERE name = 'left_by_a'), (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())`).Scan(&name, &prepared, &locks)
	if err != nil {
		t.Fatal(err)
	}
	if name == "left-by-a" || prepared != 0 || locks != 0 {
		t.Fatalf("session state survived: application_name=%q, %d prepared, %d advisory locks", name, prepared, locks)
	}
}
