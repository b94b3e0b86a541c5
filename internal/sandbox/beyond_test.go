package sandbox_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/audit/probe"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Isolation beyond rows: names, counts, sizes, other sessions' SQL, locks,
// session state and schema existence. Each attack is refused, with the
// parser (layer 1) and with the parser off (the tenant role's privileges),
// and no answer names tenant B's schema, table or id.
func TestBeyondRows(t *testing.T) {
	t.Parallel()
	for _, parserOff := range []bool{false, true} {
		r := newRedTeam(t, parserOff)
		ctx := tenant.NewContext(context.Background(), r.a.Identity)
		bSchema := tenant.Schema(r.b.ID)
		for _, at := range probe.BeyondRows(bSchema) {
			res, err := r.svc.Run(ctx, sandbox.Request{SQL: at.SQL, Timeout: time.Second})
			require.Error(t, err, "parser off=%v, %s: %s ran: %+v", parserOff, at.Class, at.SQL, res)
			code := apperr.CodeOf(err)
			require.Contains(t, []apperr.Code{apperr.SQLRejected, apperr.SQLFailed}, code, "%s: %v", at.SQL, err)
			msg := apperr.As(err).Message
			secrets := []string{r.b.ID.String(), bMarker}
			if !strings.Contains(at.SQL, bSchema) { // A may hear back what A wrote
				secrets = append(secrets, bSchema)
			}
			for _, secret := range secrets {
				require.NotContains(t, msg, secret, "parser off=%v: %s", parserOff, at.SQL)
			}
			if parserOff {
				require.Equal(t, apperr.SQLFailed, code, "the database refused %s: %s", at.SQL, msg)
			} else {
				require.Equal(t, apperr.SQLRejected, code, "the parser refused %s: %s", at.SQL, msg)
			}
		}
	}
}

// Another tenant's schema and a schema that does not exist get the same
// answer, in every syntax that names a schema, in both layers.
func TestNoSchemaExistenceOracle(t *testing.T) {
	t.Parallel()
	for _, parserOff := range []bool{false, true} {
		r := newRedTeam(t, parserOff)
		ctx := tenant.NewContext(context.Background(), r.a.Identity)
		real, missing := tenant.Schema(r.b.ID), tenant.Schema(uuid.New())
		for _, form := range []string{
			`SELECT * FROM %S.secrets`,
			`SELECT 'a' COLLATE %S."C"`,
			`SELECT 1 ORDER BY 1 USING OPERATOR(%S.<)`,
			`SELECT 1 WHERE 1 OPERATOR(%S.=) ANY (ARRAY[1])`,
			`SELECT 1::%S.t`,
			`SELECT %S.f(1)`,
		} {
			answer := func(schema string) string {
				sql := strings.ReplaceAll(form, "%S", schema)
				_, err := r.svc.Run(ctx, sandbox.Request{SQL: sql})
				require.Error(t, err, sql)
				return strings.ReplaceAll(apperr.As(err).Message, schema, "%S")
			}
			require.Equal(t, answer(missing), answer(real), "parser off=%v: %s tells whether B's schema exists", parserOff, form)
		}
	}
}

// With the parser off, A polls the backend activity functions while B runs
// statements with a marker in them: A gets a refusal every time, never B's
// text.
func TestOtherSessionsSQLStaysHidden(t *testing.T) {
	t.Parallel()
	r := newRedTeam(t, true)
	actx := tenant.NewContext(context.Background(), r.a.Identity)
	bctx := tenant.NewContext(context.Background(), r.b.Identity)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = r.svc.Run(bctx, sandbox.Request{SQL: `SELECT count(*) FROM generate_series(1, 300000) g WHERE 'zzinflight' <> 'x'`})
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for range 20 {
		for _, sql := range []string{
			`SELECT pg_stat_get_backend_activity(b) FROM generate_series(1, 64) b`,
			`SELECT (b).pg_stat_get_backend_activity FROM generate_series(1, 64) b`,
			`SELECT pid, query FROM pg_stat_activity`,
		} {
			res, err := r.svc.Run(actx, sandbox.Request{SQL: sql})
			out, _ := json.Marshal(res)
			require.Error(t, err, sql)
			require.NotContains(t, string(out)+err.Error(), "zzinflight")
		}
	}
}

// With the parser off, A's statements that name B's table, directly or
// through SQL text, take no lock on it: B's DDL, with a short lock timeout,
// goes through while they run.
func TestNoLockOnOtherTenantsTables(t *testing.T) {
	t.Parallel()
	r := newRedTeam(t, true)
	actx := tenant.NewContext(context.Background(), r.a.Identity)
	bSchema := tenant.Schema(r.b.ID)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, sql := range []string{
		`SELECT count(*) FROM ` + bSchema + `.secrets, generate_series(1, 20000000) g`,
		`SELECT ('select array_to_tsvector(array_agg(v)) from ` + bSchema + `.secrets, generate_series(1, 20000000)'::text).ts_stat`,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.svc.Run(actx, sandbox.Request{SQL: sql, Timeout: 3 * time.Second})
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // let A's statements start (they fail at once now)
	err := r.db.TxAs(context.Background(), r.b.Identity, func(tx tenant.Conn) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL lock_timeout = '500ms'`); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), `SELECT dbchat.add_data_column('secrets', 'added', 'text', true)`)
		return err
	})
	require.NoError(t, err, "B's DDL waited on a lock A's SQL took")
	wg.Wait()
	close(errs)
	for err := range errs {
		require.Equal(t, apperr.SQLFailed, apperr.CodeOf(err), "%v", err)
	}
}
