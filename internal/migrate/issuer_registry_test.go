package migrate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestIssuerRegistry: since 00021 an issuer's uniqueness across tenants is
// dbchat_migrations.issuer_registry's key, kept by the trigger on
// dbchat.identity_providers, not a global index on that table. It still
// holds: a second tenant registering a taken issuer fails with
// unique_violation (the API's 409); deleting the provider, or the tenant,
// frees the issuer; the sign-in lookup finds the provider through the
// registry; and dbchat_app cannot touch the registry itself.
func TestIssuerRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	app := d.AppPool(t, 2)
	db := tenant.New(app)
	a := dbtest.NewTenant(t, db, "Registry A")
	b := dbtest.NewTenant(t, db, "Registry B")
	const issuer = "https://issuer.example"

	register := func(tn dbtest.Tenant) error {
		return db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
			_, err := tx.Exec(ctx, `INSERT INTO dbchat.identity_providers (issuer, audience, jwks_url) VALUES ($1, 'aud', $1 || '/jwks')`, issuer)
			return err
		})
	}
	// Across tenants, the same error as before 00021: the key kept its name.
	// (Within one tenant the per-tenant key,
	// identity_providers_tenant_issuer_key, fails first.)
	taken := func(err error, constraint string) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
	}
	isUnique := func(err error) bool { return taken(err, "identity_providers_issuer_key") }
	lookup := func() (tenantID string) {
		t.Helper()
		// The sign-in lookup, as dbchat_app calls it (no tenant yet).
		err := app.QueryRow(ctx, `SELECT coalesce((SELECT tenant_id::text FROM dbchat_ops.identity_provider_by_issuer($1)), '')`, issuer).Scan(&tenantID)
		require.NoError(t, err)
		return tenantID
	}

	require.NoError(t, register(a))
	require.Equal(t, a.ID.String(), lookup())
	require.True(t, isUnique(register(b)), "a taken issuer is refused to another tenant")
	require.True(t, taken(register(a), "identity_providers_tenant_issuer_key"), "and to its own tenant a second time")

	// dbchat tenant import copies rows in replica mode, which skips
	// ordinary triggers; this one is ALWAYS, so the rule holds there too.
	admin := d.AdminPool(t)
	err := func() error {
		tx, err := admin.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO dbchat.identity_providers (tenant_id, issuer, audience, jwks_url) VALUES ($1, $2, 'aud', $2 || '/jwks')`, b.ID, issuer)
		return err
	}()
	require.True(t, isUnique(err), "an import cannot take a taken issuer: %v", err)

	// dbchat_app has no privilege on the registry: it can neither read nor
	// free another tenant's issuer.
	_, err = app.Exec(ctx, `DELETE FROM dbchat_migrations.issuer_registry`)
	require.ErrorContains(t, err, "permission denied")

	// Removing the provider frees the issuer.
	require.NoError(t, db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		_, err := tx.Exec(ctx, `DELETE FROM dbchat.identity_providers WHERE issuer = $1`, issuer)
		return err
	}))
	require.Equal(t, "", lookup())
	require.NoError(t, register(b), "a freed issuer can be registered by another tenant")
	require.Equal(t, b.ID.String(), lookup())

	// Deleting the tenant (as dbchat tenant erase does) cascades to its
	// providers and, through the trigger, to the registry.
	_, err = admin.Exec(ctx, `DELETE FROM dbchat.tenants WHERE id = $1`, b.ID)
	require.NoError(t, err)
	var left int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat_migrations.issuer_registry`).Scan(&left))
	require.Zero(t, left)
	require.NoError(t, register(a))
}
