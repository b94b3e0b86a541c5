package audit_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/audit/audittest"
	"github.com/dbchat/dbchat/internal/dbtest"
)

// TestDistributionKeysClaim: the report's claim "every key of every
// tenant-scoped table includes tenant_id" is verified on a migrated
// database by audit.distribution_key_findings being empty (read as
// dbchat_auditor), and fails, naming the key, in every format, once a key
// without tenant_id exists; the report is then not clean.
func TestDistributionKeysClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	conn, err := pgx.Connect(ctx, audittest.AuditorURL(t, d))
	require.NoError(t, err)
	defer conn.Close(ctx)

	claim := func(r *audit.Report) audit.Claim {
		for _, c := range r.Claims {
			if c.Key == audit.ClaimDistributionKeys {
				return c
			}
		}
		t.Fatalf("no %s claim in %+v", audit.ClaimDistributionKeys, r.Claims)
		return audit.Claim{}
	}

	rep, err := audit.Collect(ctx, conn)
	require.NoError(t, err)
	require.Empty(t, rep.DistributionKeys)
	c := claim(rep)
	require.Equal(t, audit.StatusVerified, c.Status, c.Note)
	require.Contains(t, c.Evidence, "audit.distribution_key_findings")
	require.True(t, rep.Summary.Clean)

	admin, err := pgx.Connect(ctx, d.AdminURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `CREATE UNIQUE INDEX models_global_name ON dbchat.models (name)`)
	require.NoError(t, err)

	rep, err = audit.Collect(ctx, conn)
	require.NoError(t, err)
	require.Len(t, rep.DistributionKeys, 1)
	f := rep.DistributionKeys[0]
	require.Equal(t, "key_without_tenant_id", f.Lint)
	require.Equal(t, "dbchat.models", f.Table)
	require.Equal(t, "models_global_name", f.Key)
	c = claim(rep)
	require.Equal(t, audit.StatusFailed, c.Status)
	require.Contains(t, c.Note, "dbchat.models models_global_name")
	require.False(t, rep.Summary.Clean, "a key that stops distribution makes the report not clean")
	require.Equal(t, 1, rep.Summary.DistributionFindings)
	// The isolation lint sees the same index from its side (an existence
	// oracle across tenants).
	require.Len(t, rep.FindingsFor("unique_key_without_tenant_id"), 1)

	for _, format := range audit.Formats {
		var b bytes.Buffer
		require.NoError(t, audit.Render(&b, rep, format))
		require.Contains(t, b.String(), "models_global_name", format)
	}
}
