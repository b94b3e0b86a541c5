-- Browser sign-in through a tenant's identity provider (OpenID Connect
-- authorization code flow with PKCE, issue 15 §1 and issue 16): a provider
-- registration may name its authorization and token endpoints. The web
-- app's sign-in sends the browser to the authorization endpoint with a
-- PKCE challenge; the callback trades the code (with the verifier) for an
-- ID token at the token endpoint, which is verified exactly as a bearer
-- JWT (the provider's JWKS, issuer, audience = the OIDC client id) and
-- starts a session. Nothing here is trusted more than a bearer token.
--
-- dbchat_ops.identity_provider_by_issuer returns the two endpoints too
-- (a new result type, so the function is created again, same owner and
-- grants).

-- +goose Up
ALTER TABLE dbchat.identity_providers
    ADD COLUMN authorization_endpoint text CHECK (length(authorization_endpoint) BETWEEN 1 AND 2000),
    ADD COLUMN token_endpoint         text CHECK (length(token_endpoint) BETWEEN 1 AND 2000),
    ADD CONSTRAINT identity_providers_login_check CHECK ((authorization_endpoint IS NULL) = (token_endpoint IS NULL));
COMMENT ON COLUMN dbchat.identity_providers.authorization_endpoint IS
    'OpenID Connect authorization endpoint for the web app''s sign-in (code flow with PKCE; the client id is audience); NULL: no browser sign-in.';
COMMENT ON COLUMN dbchat.identity_providers.token_endpoint IS
    'OpenID Connect token endpoint the sign-in''s code is exchanged at (with the PKCE verifier); set together with authorization_endpoint.';
GRANT SELECT (authorization_endpoint, token_endpoint) ON dbchat.identity_providers TO dbchat_operator;

-- A session started by a provider's sign-in keeps the end user's verified
-- claims (app.claims for its requests, as for the bearer token) and its
-- provider: deleting the provider ends its sessions at once, as it stops
-- its tokens.
ALTER TABLE dbchat.sessions
    ADD COLUMN claims jsonb CHECK (claims IS NULL OR jsonb_typeof(claims) = 'object'),
    ADD COLUMN identity_provider_id uuid,
    ADD CONSTRAINT sessions_identity_provider_fkey FOREIGN KEY (tenant_id, identity_provider_id)
        REFERENCES dbchat.identity_providers (tenant_id, id) ON DELETE CASCADE;
CREATE INDEX sessions_tenant_identity_provider_idx ON dbchat.sessions (tenant_id, identity_provider_id);
COMMENT ON COLUMN dbchat.sessions.claims IS
    'The end user''s verified claims (the provider''s pass-through mapping) at sign-in through an identity provider; NULL for a session from an API key.';
COMMENT ON COLUMN dbchat.sessions.identity_provider_id IS
    'The identity provider the session signed in through (ON DELETE CASCADE: removing it ends the session); NULL for a session from an API key.';

DROP FUNCTION dbchat_ops.identity_provider_by_issuer(text);
-- +goose StatementBegin
CREATE FUNCTION dbchat_ops.identity_provider_by_issuer(p_issuer text)
    RETURNS TABLE (tenant_id uuid, id uuid, audience text, jwks_url text, jwks jsonb, user_claim text,
                   email_claim text, role_claim text, admin_values text[], pass_claims text[],
                   authorization_endpoint text, token_endpoint text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tenant_id, p.id, p.audience, p.jwks_url, p.jwks, p.user_claim,
           p.email_claim, p.role_claim, p.admin_values, p.pass_claims,
           p.authorization_endpoint, p.token_endpoint
    FROM dbchat.identity_providers p
    JOIN dbchat.tenants t ON t.id = p.tenant_id AND t.is_active
    WHERE p.issuer = p_issuer
$$;
-- +goose StatementEnd
ALTER FUNCTION dbchat_ops.identity_provider_by_issuer(text) OWNER TO dbchat_operator;
REVOKE ALL ON FUNCTION dbchat_ops.identity_provider_by_issuer(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat_ops.identity_provider_by_issuer(text) TO dbchat_app;
COMMENT ON FUNCTION dbchat_ops.identity_provider_by_issuer(text) IS
    'Sign-in path: the identity provider of one exact issuer (of an active tenant) and what verifying its tokens and its browser sign-in need, before any tenant is known. EXECUTE: dbchat_app only.';

-- +goose Down
DROP FUNCTION dbchat_ops.identity_provider_by_issuer(text);
-- +goose StatementBegin
CREATE FUNCTION dbchat_ops.identity_provider_by_issuer(p_issuer text)
    RETURNS TABLE (tenant_id uuid, id uuid, audience text, jwks_url text, jwks jsonb, user_claim text,
                   email_claim text, role_claim text, admin_values text[], pass_claims text[])
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tenant_id, p.id, p.audience, p.jwks_url, p.jwks, p.user_claim,
           p.email_claim, p.role_claim, p.admin_values, p.pass_claims
    FROM dbchat.identity_providers p
    JOIN dbchat.tenants t ON t.id = p.tenant_id AND t.is_active
    WHERE p.issuer = p_issuer
$$;
-- +goose StatementEnd
ALTER FUNCTION dbchat_ops.identity_provider_by_issuer(text) OWNER TO dbchat_operator;
REVOKE ALL ON FUNCTION dbchat_ops.identity_provider_by_issuer(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat_ops.identity_provider_by_issuer(text) TO dbchat_app;
REVOKE SELECT (authorization_endpoint, token_endpoint) ON dbchat.identity_providers FROM dbchat_operator;
ALTER TABLE dbchat.sessions DROP COLUMN identity_provider_id, DROP COLUMN claims;
ALTER TABLE dbchat.identity_providers DROP CONSTRAINT identity_providers_login_check,
    DROP COLUMN token_endpoint, DROP COLUMN authorization_endpoint;
