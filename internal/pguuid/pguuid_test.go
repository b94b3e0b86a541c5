package pguuid_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/pguuid"
)

// TestRoundTrip sends and reads uuid.UUID values through real PostgreSQL in
// the binary (prepared) and text (simple protocol) formats, as values,
// pointers, NULLs and arrays, and checks the text PostgreSQL sees.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.AdminURL(t))
	require.NoError(t, err)
	require.NoError(t, pguuid.AfterConnect(ctx, conn))
	t.Cleanup(func() { conn.Close(ctx) })

	u, v := uuid.New(), uuid.New()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			var text string
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid::text", mode, u).Scan(&text))
			require.Equal(t, u.String(), text)

			var got uuid.UUID
			var ptr, null *uuid.UUID
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid, $2::uuid, $3::uuid", mode, u, &v, (*uuid.UUID)(nil)).Scan(&got, &ptr, &null))
			require.Equal(t, u, got)
			require.Equal(t, v, *ptr)
			require.Nil(t, null)

			err := conn.QueryRow(ctx, "SELECT NULL::uuid", mode).Scan(&got)
			require.ErrorContains(t, err, "NULL")

			var list []uuid.UUID
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid[]", mode, []uuid.UUID{u, v}).Scan(&list))
			require.Equal(t, []uuid.UUID{u, v}, list)
			require.NoError(t, conn.QueryRow(ctx, "SELECT array_to_string($1::uuid[], ',')", mode, []uuid.UUID{u, v}).Scan(&text))
			require.Equal(t, u.String()+","+v.String(), text)

			var anyValue any // other targets keep pgx's own codec
			require.NoError(t, conn.QueryRow(ctx, "SELECT $1::uuid", mode, u).Scan(&anyValue))
			require.Equal(t, [16]byte(u), anyValue)
		})
	}
}

// TestDirectPlans checks that the registered codec, not the driver.Valuer and
// sql.Scanner detours, handles uuid.UUID: the reason the package exists.
func TestDirectPlans(t *testing.T) {
	m := pgtype.NewMap()
	before := m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, uuid.UUID{})
	pguuid.Register(m)
	after := m.PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, uuid.UUID{})
	require.NotEqual(t, typeName(before), typeName(after))
	require.Equal(t, "pguuid.encodeBinary", typeName(after))
	require.Equal(t, "pguuid.scanBinary", typeName(m.PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &uuid.UUID{})))
	require.Equal(t, "pguuid.scanText", typeName(m.PlanScan(pgtype.UUIDOID, pgtype.TextFormatCode, &uuid.UUID{})))
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
