package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// An import that runs the database out of room answers 507
// insufficient_storage, not 500, and imports nothing, whatever it had
// already written; the next import that fits works.
//
// The fault is injected, not provoked: an import never writes temporary
// files (its batches go straight into the data table), and filling a real
// disk needs a filesystem of its own. So, as the superuser, a trigger
// on the target raises exactly what PostgreSQL raises when the disk fills
// while the import's batch INSERT writes (SQLSTATE 53100 disk_full,
// "could not extend file") or when a statement's temporary files pass
// temp_file_limit (53400 configuration_limit_exceeded), after every row of
// the statement was written. The training-data import gets the same fault.
func TestImportOutOfSpaceIs507(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, 2, time.Second, server.Config{}, nil)
	tn := dbtest.NewTenant(t, e.db, "Full")
	ctx := t.Context()
	_, err := e.admin.Exec(ctx, `CREATE FUNCTION public.test_out_of_space() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION USING ERRCODE = TG_ARGV[0], MESSAGE = TG_ARGV[1]; END $$`)
	require.NoError(t, err)
	faults := []struct{ sqlstate, message string }{
		{"53100", `could not extend file "base/16384/t3_16390": No space left on device`},
		{"53400", "temporary file size exceeds temp_file_limit (64kB)"},
	}
	var csv strings.Builder
	csv.WriteString("id,note\n")
	for i := range 5000 {
		fmt.Fprintf(&csv, "%d,row %d\n", i, i)
	}
	for i, f := range faults {
		table := e.createTable(t, tn.APIKey, fmt.Sprintf(`{"name":"full%d","columns":[{"name":"id","type":"bigint"},{"name":"note","type":"text"}]}`, i))
		ident := pgx.Identifier{tenant.Schema(tn.ID), fmt.Sprintf("full%d", i)}.Sanitize()
		_, err := e.admin.Exec(ctx, fmt.Sprintf(`CREATE TRIGGER out_of_space AFTER INSERT ON %s
			FOR EACH STATEMENT EXECUTE FUNCTION public.test_out_of_space('%s', '%s')`,
			ident, f.sqlstate, strings.ReplaceAll(f.message, "'", "''")))
		require.NoError(t, err)

		status, body := e.importRows(t, tn.APIKey, table, "text/csv", strings.NewReader(csv.String()))
		require.Equal(t, http.StatusInsufficientStorage, status, "%s: %s", f.sqlstate, body)
		require.Equal(t, "insufficient_storage", errorCode(t, body), f.sqlstate)
		require.Contains(t, body, "nothing was changed", f.sqlstate)
		require.NotContains(t, body, "16384", "the database's own message stays in the log")
		require.Zero(t, e.rowCount(t, tn, table), "%s: the refused import left no rows", f.sqlstate)

		_, err = e.admin.Exec(ctx, "DROP TRIGGER out_of_space ON "+ident)
		require.NoError(t, err)
		status, body = e.importRows(t, tn.APIKey, table, "text/csv", strings.NewReader("id,note\n1,fits\n"))
		require.Equal(t, http.StatusOK, status, body)
		require.JSONEq(t, `{"inserted":1}`, body)
	}

	// A training-data import, all or nothing as well.
	_, err = e.admin.Exec(ctx, `CREATE TRIGGER out_of_space AFTER INSERT ON dbchat.training_data
		FOR EACH STATEMENT EXECUTE FUNCTION public.test_out_of_space('53100', 'could not extend file: No space left on device')`)
	require.NoError(t, err)
	var vanna strings.Builder
	vanna.WriteString("id,question,content,training_data_type\n")
	for i := range 50 {
		fmt.Fprintf(&vanna, "d%d,,Documentation note %d,documentation\n", i, i)
	}
	status, body := e.do(t, http.MethodPost, "/v1/models/default/training-data/import", tn.APIKey, "text/csv", strings.NewReader(vanna.String()))
	require.Equal(t, http.StatusInsufficientStorage, status, body)
	require.Equal(t, "insufficient_storage", errorCode(t, body))
	var n int
	require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.training_data WHERE tenant_id = $1`, tn.ID).Scan(&n))
	require.Zero(t, n, "the refused training import left no rows")
	require.Zero(t, e.appBackends(t, "idle in transaction"), "no transaction was left open")
}
