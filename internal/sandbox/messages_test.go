package sandbox_test

import (
	"context"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestDatabaseMessagesAreCut: a database message may quote a value of any
// size (a cast of a 2 MB text quotes all of it); the error answered and
// the history entry keep at most sandbox.MaxMessageBytes of it, cut at a
// character, and say where they were cut.
func TestDatabaseMessagesAreCut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := tenant.NewContext(context.Background(), f.a.Identity)
	big := fmt.Sprintf(`SELECT ((SELECT string_agg(repeat('é', %d), '') FROM generate_series(1, 4)))::int`, sandbox.MaxMessageBytes*64)
	_, err := f.svc.Run(ctx, sandbox.Request{SQL: big})
	require.Equal(t, apperr.SQLFailed, apperr.CodeOf(err), "%v", err)
	msg := apperr.As(err).Message
	require.LessOrEqual(t, len(msg), sandbox.MaxMessageBytes)
	require.Greater(t, len(msg), sandbox.MaxMessageBytes/2)
	require.True(t, utf8.ValidString(msg))
	require.Contains(t, msg, "invalid input syntax for type integer")
	require.Contains(t, msg, "é…")

	id, ok := apperr.As(err).Details["history_id"].(uuid.UUID)
	require.True(t, ok, "%+v", apperr.As(err).Details)
	var stored *string
	require.NoError(t, f.db.TxAs(context.Background(), f.a.Identity, func(tx tenant.Conn) error {
		h, err := dbsqlc.New().GetQueryHistory(context.Background(), tx, dbsqlc.GetQueryHistoryParams{ID: id})
		stored = h.Error
		return err
	}))
	require.NotNil(t, stored)
	require.Equal(t, msg, *stored)

	// A short message is passed on whole.
	_, err = f.svc.Run(ctx, sandbox.Request{SQL: `SELECT 'abc'::int`})
	require.Equal(t, `invalid input syntax for type integer: "abc"`, apperr.As(err).Message)
}
