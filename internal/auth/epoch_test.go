package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// epochOf reads a tenant's credential epoch as a DBA would (-1: no row).
func epochOf(t *testing.T, admin *pgxpool.Pool, tenantID uuid.UUID) int64 {
	t.Helper()
	var e int64
	err := admin.QueryRow(context.Background(),
		`SELECT coalesce((SELECT epoch FROM dbchat.credential_epochs WHERE tenant_id = $1), -1)`, tenantID).Scan(&e)
	require.NoError(t, err)
	return e
}

// TestCredentialEpochFollowsEveryChange: the trigger of migration 00034
// raises a tenant's credential epoch for every change that a remembered
// credential's confirmation must refuse, made directly in the database as
// a DBA would (superuser, no tenant setting), and for nothing else: not
// for a key's use being recorded, renames or new keys and users, and never
// for another tenant.
func TestCredentialEpochFollowsEveryChange(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	admin := d.AdminPool(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, db, "Epochs")
	other := dbtest.NewTenant(t, db, "Epochs Bystander")
	require.Equal(t, int64(0), epochOf(t, admin, a.ID), "a new tenant starts at 0")
	otherAt := epochOf(t, admin, other.ID)

	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := admin.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	var userID, spareUser, keyID uuid.UUID
	require.NoError(t, admin.QueryRow(ctx, `INSERT INTO dbchat.users (tenant_id, email, role) VALUES ($1, 'u@epochs.test', 'member') RETURNING id`, a.ID).Scan(&userID))
	require.NoError(t, admin.QueryRow(ctx, `INSERT INTO dbchat.users (tenant_id, email, role) VALUES ($1, 'spare@epochs.test', 'member') RETURNING id`, a.ID).Scan(&spareUser))
	key, err := auth.Generate(a.ID)
	require.NoError(t, err)
	require.NoError(t, admin.QueryRow(ctx, `INSERT INTO dbchat.api_keys (tenant_id, user_id, prefix, key_hash) VALUES ($1, $2, $3, $4) RETURNING id`,
		a.ID, userID, key.Prefix, key.Hash).Scan(&keyID))
	var providerID uuid.UUID
	require.NoError(t, admin.QueryRow(ctx, `INSERT INTO dbchat.identity_providers (tenant_id, issuer, audience, jwks)
		VALUES ($1, 'https://idp.epochs.test', 'dbchat', '{"keys":[]}') RETURNING id`, a.ID).Scan(&providerID))
	require.Equal(t, int64(0), epochOf(t, admin, a.ID), "new users, keys and providers change nothing remembered")

	unchanged := []string{
		`UPDATE dbchat.api_keys SET last_used_at = now() WHERE id = $1`,
		`UPDATE dbchat.api_keys SET name = 'renamed' WHERE id = $1`,
		`UPDATE dbchat.api_keys SET revoked_at = NULL WHERE id = $1`, // the same value
		`UPDATE dbchat.users SET name = 'Renamed', email = 'renamed@epochs.test' WHERE id = $1`,
		`UPDATE dbchat.users SET role = 'member' WHERE id = $1`, // the same value
	}
	for _, sql := range unchanged {
		id := keyID
		if sql[14:19] == "users" {
			id = userID
		}
		exec(sql, id)
	}
	exec(`UPDATE dbchat.tenants SET name = 'Epochs renamed', limits = '{"burst": 5}' WHERE id = $1`, a.ID)
	require.Equal(t, int64(0), epochOf(t, admin, a.ID), "what no confirmation checks raises nothing")

	want := int64(0)
	raised := func(what, sql string, args ...any) {
		t.Helper()
		exec(sql, args...)
		want++
		require.Equal(t, want, epochOf(t, admin, a.ID), what)
	}
	raised("a user's role", `UPDATE dbchat.users SET role = 'admin' WHERE id = $1`, userID)
	raised("a user deactivated", `UPDATE dbchat.users SET is_active = false WHERE id = $1`, userID)
	raised("a user reactivated", `UPDATE dbchat.users SET is_active = true WHERE id = $1`, userID)
	raised("a user linked to a provider", `UPDATE dbchat.users SET identity_provider_id = $2, subject = 's' WHERE id = $1`, userID, providerID)
	raised("a provider removed (its users unlinked)", `DELETE FROM dbchat.identity_providers WHERE id = $1`, providerID)
	raised("a key given to another user", `UPDATE dbchat.api_keys SET user_id = $2 WHERE id = $1`, keyID, spareUser)
	raised("a key's hash replaced", `UPDATE dbchat.api_keys SET key_hash = $2 WHERE id = $1`, keyID, auth.Hash("another"))
	raised("a key revoked", `UPDATE dbchat.api_keys SET revoked_at = now() WHERE id = $1`, keyID)
	raised("a key deleted", `DELETE FROM dbchat.api_keys WHERE id = $1`, keyID)
	raised("a user deleted", `DELETE FROM dbchat.users WHERE id = $1`, userID)
	raised("the tenant deactivated", `UPDATE dbchat.tenants SET is_active = false WHERE id = $1`, a.ID)
	raised("the tenant reactivated", `UPDATE dbchat.tenants SET is_active = true WHERE id = $1`, a.ID)
	require.Equal(t, otherAt, epochOf(t, admin, other.ID), "another tenant's epoch never moves")

	// TRUNCATE (a DBA's, through the cascade of the keys' sessions) raises
	// every tenant's; deleting a tenant deletes its row, which no
	// remembered credential then matches.
	exec(`TRUNCATE dbchat.api_keys CASCADE`)
	require.Equal(t, want+1, epochOf(t, admin, a.ID), "TRUNCATE")
	require.Equal(t, otherAt+1, epochOf(t, admin, other.ID), "TRUNCATE")
	exec(`DELETE FROM dbchat.tenants WHERE id = $1`, a.ID)
	require.Equal(t, int64(-1), epochOf(t, admin, a.ID), "a deleted tenant has no epoch")
}

// TestRememberedKeyIsConfirmedByItsEpoch: a remembered key's request is one
// round trip whose first statement confirms the epoch and sets the context;
// a change elsewhere (another tenant) does not disturb it, while a key
// revoked by a DBA in psql is refused at the next request (as changed, so
// that the server looks it up again, and the lookup refuses it), before the
// request's statement runs.
func TestRememberedKeyIsConfirmedByItsEpoch(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db, writes := d.CountingTenants(t)
	admin := d.AdminPool(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, db, "Confirmed")
	other := dbtest.NewTenant(t, db, "Confirmed Bystander")
	cache := auth.NewCache(8)

	id, remembered, err := cache.Authenticate(ctx, db, a.APIKey, auth.AuthenticateKeyOnly, nil)
	require.NoError(t, err)
	require.False(t, remembered, "the first request looks the key up")
	request := func() (string, error) {
		id, remembered, err := cache.Authenticate(ctx, db, a.APIKey, auth.AuthenticateKeyOnly, nil)
		if err != nil {
			return "", err
		}
		require.True(t, remembered)
		var name string
		err = db.OnceAs(tenant.NewContext(ctx, id), id, func(tx tenant.Conn) error {
			return tx.QueryRow(ctx, `SELECT name FROM dbchat.tenants`).Scan(&name)
		})
		return name, err
	}
	_, err = request() // prepares the statements on the one connection
	require.NoError(t, err)
	before := writes.Load()
	name, err := request()
	require.NoError(t, err)
	require.Equal(t, "Confirmed", name)
	require.Equal(t, int64(1), writes.Load()-before, "a remembered key's read is one round trip")

	_, err = admin.Exec(ctx, `UPDATE dbchat.users SET role = 'member' WHERE tenant_id = $1`, other.ID)
	require.NoError(t, err)
	before = writes.Load()
	_, err = request()
	require.NoError(t, err, "another tenant's change does not touch this one's keys")
	require.Equal(t, int64(1), writes.Load()-before)

	_, err = admin.Exec(ctx, `UPDATE dbchat.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2`, a.ID, id.KeyID)
	require.NoError(t, err)
	_, err = request()
	require.True(t, errors.Is(err, auth.ErrChanged), "refused as changed: %v", err)
	_, _, err = cache.Authenticate(ctx, db, a.APIKey, auth.AuthenticateKeyOnly, nil)
	require.Equal(t, apperr.Unauthorized, apperr.CodeOf(err), "looked up again, the revoked key is refused: %v", err)
}
