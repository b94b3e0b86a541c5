-- A remembered credential confirmed by one row read (issue 18).
--
-- Since 00025 a server remembers the API keys and identity-provider tokens
-- it looked up, and each request confirms its credential in the pipeline of
-- the handler's first statement: dbchat.confirm_key (confirm_user for a
-- token) looked the key, its user and its tenant up again under the
-- policies. That PL/pgSQL call and its three-table lookup cost a read
-- request about 50 µs more than the settings alone (pgbench), half of what
-- PostgreSQL spends on it beyond the floor's (docs/BENCHMARKS.md part 2).
--
-- Now each tenant has a credential epoch, a counter that a trigger raises,
-- in the same transaction, whenever anything a confirmation checks changes:
-- a key revoked or deleted (or its user, tenant or hash changed), a user
-- deactivated, deleted, given another role or linked to another identity
-- provider (a provider's removal unlinks its users through ON DELETE SET
-- NULL, which fires the same trigger), a tenant deactivated. A server reads
-- the epoch with the lookup that resolves a credential, in the same
-- statement (one snapshot: a change committed after it raises the epoch
-- past what the server holds), and each later request confirms, in the
-- statement that sets its context, that the tenant's epoch is still that
-- one. If it moved, the statement raises DC401 with detail "changed" before the
-- handler's statement runs, and the server looks the credential up afresh
-- (a revoked key then gets its 401). Revocation stays immediate on every
-- instance, for changes made through the API or by a DBA in psql alike,
-- with no invalidation message to miss; a change anywhere in a tenant costs
-- that tenant's remembered credentials one lookup each.
--
-- The epochs follow the isolation rule of every dbchat table: tenant_id is
-- the key, RLS enabled and forced, one tenant_isolation policy. The trigger
-- is SECURITY INVOKER: it raises the epoch as the writer of the changed
-- row, under the same policy, so a writer that can change a tenant's users
-- can raise that tenant's epoch and no other (a superuser or BYPASSRLS
-- writer, a DBA in psql, bypasses both alike). The triggers are ENABLE
-- ALWAYS, so replica-mode writes (dbchat tenant import) raise it too.
--
-- A tenant's row is created with the tenant and deleted with it. A missing
-- row never confirms anything: a deleted tenant's remembered keys fail.
--
-- confirm_key and confirm_user stay for servers of the previous release
-- during a rolling upgrade; this release's servers no longer call them.
-- Browser sessions keep dbchat.confirm_session, which also checks their
-- expiry and idle time.

-- +goose Up
CREATE TABLE dbchat.credential_epochs (
    tenant_id uuid   NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                     PRIMARY KEY REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    epoch     bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE dbchat.credential_epochs IS
    'Per tenant, a counter raised by trigger (00034) whenever a key, user or tenant change could make a remembered credential no longer good; each request with a remembered credential checks, in the statement that sets its context, that it still holds the value the server read when it looked the credential up.';

ALTER TABLE dbchat.credential_epochs ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.credential_epochs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.credential_epochs
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.credential_epochs IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';
-- dbchat_app writes it only through the trigger (its revocations, role
-- changes, deactivations); the owner's create_tenant inserts through it.
GRANT SELECT, UPDATE (epoch) ON dbchat.credential_epochs TO dbchat_app;

-- +goose StatementBegin
CREATE FUNCTION dbchat.raise_credential_epoch() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN -- a new tenant (on dbchat.tenants)
        INSERT INTO dbchat.credential_epochs (tenant_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'TRUNCATE' THEN
        UPDATE dbchat.credential_epochs SET epoch = epoch + 1;
    ELSIF TG_OP = 'DELETE' THEN -- statement level: every tenant of the deleted rows
        UPDATE dbchat.credential_epochs SET epoch = epoch + 1
        WHERE tenant_id IN (SELECT DISTINCT o.tenant_id FROM old_rows o);
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        UPDATE dbchat.credential_epochs SET epoch = epoch + 1 WHERE tenant_id = OLD.id;
    ELSE -- a row of users or api_keys changed what a confirmation checks
        UPDATE dbchat.credential_epochs SET epoch = epoch + 1
        WHERE tenant_id = OLD.tenant_id OR tenant_id = NEW.tenant_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- Firing a trigger needs no EXECUTE grant; calling it directly fails anyway.
REVOKE ALL ON FUNCTION dbchat.raise_credential_epoch() FROM PUBLIC;
COMMENT ON FUNCTION dbchat.raise_credential_epoch() IS
    'Trigger on dbchat.tenants, users and api_keys: creates a new tenant''s credential epoch and raises it when a change could refuse a remembered credential (as the writer, under the policy).';

CREATE TRIGGER tenants_credential_epoch_insert AFTER INSERT ON dbchat.tenants
    FOR EACH ROW EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER tenants_credential_epoch_update AFTER UPDATE OF id, is_active ON dbchat.tenants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER users_credential_epoch_update AFTER UPDATE OF tenant_id, id, role, is_active, identity_provider_id ON dbchat.users
    FOR EACH ROW WHEN ((OLD.tenant_id, OLD.id, OLD.role, OLD.is_active, OLD.identity_provider_id)
                       IS DISTINCT FROM (NEW.tenant_id, NEW.id, NEW.role, NEW.is_active, NEW.identity_provider_id))
    EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER users_credential_epoch_delete AFTER DELETE ON dbchat.users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER users_credential_epoch_truncate AFTER TRUNCATE ON dbchat.users
    FOR EACH STATEMENT EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER api_keys_credential_epoch_update AFTER UPDATE OF tenant_id, id, user_id, key_hash, revoked_at ON dbchat.api_keys
    FOR EACH ROW WHEN ((OLD.tenant_id, OLD.id, OLD.user_id, OLD.key_hash, OLD.revoked_at)
                       IS DISTINCT FROM (NEW.tenant_id, NEW.id, NEW.user_id, NEW.key_hash, NEW.revoked_at))
    EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER api_keys_credential_epoch_delete AFTER DELETE ON dbchat.api_keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dbchat.raise_credential_epoch();
CREATE TRIGGER api_keys_credential_epoch_truncate AFTER TRUNCATE ON dbchat.api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION dbchat.raise_credential_epoch();
ALTER TABLE dbchat.tenants ENABLE ALWAYS TRIGGER tenants_credential_epoch_insert;
ALTER TABLE dbchat.tenants ENABLE ALWAYS TRIGGER tenants_credential_epoch_update;
ALTER TABLE dbchat.users ENABLE ALWAYS TRIGGER users_credential_epoch_update;
ALTER TABLE dbchat.users ENABLE ALWAYS TRIGGER users_credential_epoch_delete;
ALTER TABLE dbchat.users ENABLE ALWAYS TRIGGER users_credential_epoch_truncate;
ALTER TABLE dbchat.api_keys ENABLE ALWAYS TRIGGER api_keys_credential_epoch_update;
ALTER TABLE dbchat.api_keys ENABLE ALWAYS TRIGGER api_keys_credential_epoch_delete;
ALTER TABLE dbchat.api_keys ENABLE ALWAYS TRIGGER api_keys_credential_epoch_truncate;

-- Existing tenants' rows, inserted as dbchat_operator (BYPASSRLS): the
-- owner running migrations sees no row of a forced-RLS table without a
-- tenant. The grants last only for this.
GRANT SELECT (id) ON dbchat.tenants TO dbchat_operator;
GRANT INSERT ON dbchat.credential_epochs TO dbchat_operator;
SET LOCAL ROLE dbchat_operator;
INSERT INTO dbchat.credential_epochs (tenant_id) SELECT id FROM dbchat.tenants ON CONFLICT DO NOTHING;
SET LOCAL ROLE dbchat_owner;
REVOKE INSERT ON dbchat.credential_epochs FROM dbchat_operator;
REVOKE SELECT (id) ON dbchat.tenants FROM dbchat_operator;

-- The confirmation itself is a condition in the statement that sets the
-- context (internal/auth): SELECT set_config(…) ×4, CASE WHEN EXISTS (the
-- tenant's row at the known epoch) THEN true ELSE
-- dbchat.credential_changed() END. Its row is looked up with the tenant id
-- as a parameter as well as under the policy, so whatever order PostgreSQL
-- evaluated the select list in, the row it finds is that tenant's at that
-- epoch; evaluated before the settings, it would find none and refuse. A
-- PL/pgSQL function with the settings as arguments, as confirm_key was,
-- costs a request about 20 µs more (pgbench). CASE calls this one only
-- when the row is missing.
-- +goose StatementBegin
CREATE FUNCTION dbchat.credential_changed() RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'credential changed since it was looked up' USING ERRCODE = 'DC401', DETAIL = 'changed';
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.credential_changed() IS
    'Raises SQLSTATE DC401 with detail changed: a remembered credential''s tenant epoch moved (00034), and the server looks the credential up again. EXECUTE: dbchat_app only.';
REVOKE ALL ON FUNCTION dbchat.credential_changed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.credential_changed() TO dbchat_app;

-- With a rate token to take (internal/limits), the confirmation is this
-- function, which takes it after confirming the epoch, in the same call.
-- +goose StatementBegin
CREATE FUNCTION dbchat.confirm_epoch(tenant_setting text, user_setting text, role_setting text, claims_setting text,
                                     known_epoch bigint, take integer, default_rate double precision, default_burst double precision,
                                     OUT rate double precision, OUT burst double precision, OUT tokens double precision,
                                     OUT allowed boolean, OUT taken integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The settings are this transaction's (the caller passes set_config's
    -- results), so the policy below sees the credential's tenant.
    PERFORM FROM dbchat.credential_epochs e
    WHERE e.tenant_id = nullif(tenant_setting, '')::uuid AND e.epoch = known_epoch;
    IF NOT FOUND THEN -- the server looks the credential up again
        RAISE EXCEPTION 'credential changed since it was looked up' USING ERRCODE = 'DC401', DETAIL = 'changed';
    END IF;
    IF take <= 0 THEN -- most requests (no limit, or a lease): no nested call
        rate := 0; burst := 0; tokens := 0; allowed := true; taken := 0;
        RETURN;
    END IF;
    SELECT c.rate, c.burst, c.tokens, c.allowed, c.taken INTO rate, burst, tokens, allowed, taken
    FROM dbchat.confirm_tokens(take, default_rate, default_burst) c;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.confirm_epoch(text, text, text, text, bigint, integer, double precision, double precision) IS
    'Confirms, in a request''s first statement, that nothing a remembered key or token depends on changed since the server looked it up: the tenant''s credential epoch is still known_epoch (SQLSTATE DC401 with detail changed if not, and the server looks the credential up again), then dbchat.confirm_tokens. The first four arguments are the transaction''s settings, passed as set_config''s results so that they are set first. EXECUTE: dbchat_app only.';
REVOKE ALL ON FUNCTION dbchat.confirm_epoch(text, text, text, text, bigint, integer, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.confirm_epoch(text, text, text, text, bigint, integer, double precision, double precision) TO dbchat_app;

-- +goose Down
DROP FUNCTION dbchat.confirm_epoch(text, text, text, text, bigint, integer, double precision, double precision);
DROP FUNCTION dbchat.credential_changed();
DROP TRIGGER api_keys_credential_epoch_truncate ON dbchat.api_keys;
DROP TRIGGER api_keys_credential_epoch_delete ON dbchat.api_keys;
DROP TRIGGER api_keys_credential_epoch_update ON dbchat.api_keys;
DROP TRIGGER users_credential_epoch_truncate ON dbchat.users;
DROP TRIGGER users_credential_epoch_delete ON dbchat.users;
DROP TRIGGER users_credential_epoch_update ON dbchat.users;
DROP TRIGGER tenants_credential_epoch_update ON dbchat.tenants;
DROP TRIGGER tenants_credential_epoch_insert ON dbchat.tenants;
DROP FUNCTION dbchat.raise_credential_epoch();
DROP TABLE dbchat.credential_epochs;
