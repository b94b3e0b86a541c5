-- Browser sessions (issue 16): the web app exchanges an API key for a
-- session cookie, so the key never stays in the browser. Like an API key,
-- the cookie's token names its tenant (dbs_<tenant hex>_<secret>), so the
-- lookup runs inside that tenant's transaction under tenant_isolation: no
-- SECURITY DEFINER function, no path that finds a session of any tenant.
--
-- Only the SHA-256 of the token is stored, never the token; the CSRF token
-- is derived from the token (internal/session) and not stored at all, so a
-- copy of this table signs nobody in and forges no request.
--
-- A session acts as its user with the user's current role. It stops
-- working at once when its user is deleted (cascade) or deactivated, its
-- tenant is deactivated, the API key it was made from is revoked (the
-- lookup joins the key) or deleted (cascade), it is signed out (revoked_at),
-- it has been idle too long (last_seen_at, the idle timeout is the
-- server's setting) or it reaches expires_at (the absolute lifetime).

-- +goose Up
CREATE TABLE dbchat.sessions (
    tenant_id    uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                             REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    api_key_id   uuid,
    token_hash   bytea       NOT NULL CHECK (length(token_hash) = 32),
    user_agent   text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 500),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT sessions_tenant_token_key UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES dbchat.api_keys (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_tenant_user_idx ON dbchat.sessions (tenant_id, user_id);
CREATE INDEX sessions_tenant_api_key_idx ON dbchat.sessions (tenant_id, api_key_id);
COMMENT ON TABLE dbchat.sessions IS
    'Web app sign-ins (POST/GET/DELETE /v1/sessions): the SHA-256 of the cookie''s token only; the CSRF token is derived from the token and never stored.';
COMMENT ON COLUMN dbchat.sessions.api_key_id IS 'The API key exchanged for the session: revoking or deleting it ends the session.';
COMMENT ON COLUMN dbchat.sessions.token_hash IS 'SHA-256 of the cookie''s token (dbs_<tenant hex>_<43 base64url chars>).';
COMMENT ON COLUMN dbchat.sessions.user_agent IS 'The browser''s User-Agent at sign-in (truncated), to tell sessions apart.';
COMMENT ON COLUMN dbchat.sessions.last_seen_at IS 'Last use, written at most once a minute; the idle timeout counts from it.';
COMMENT ON COLUMN dbchat.sessions.expires_at IS 'The absolute end of the session, however active.';
COMMENT ON COLUMN dbchat.sessions.revoked_at IS 'When it was signed out (DELETE /v1/sessions/current).';

ALTER TABLE dbchat.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.sessions
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.sessions IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

GRANT SELECT, INSERT, DELETE, UPDATE (last_seen_at, revoked_at) ON dbchat.sessions TO dbchat_app;

-- +goose Down
DROP TABLE dbchat.sessions;
