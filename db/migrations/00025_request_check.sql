-- One round trip per authenticated read (issue 18).
--
-- A request signed in with an API key used to cost two round trips: the
-- key's lookup (its own tenant transaction), then the handler's statement.
-- A server now remembers keys it verified lately and, for a remembered key,
-- sends no lookup: the request's first statement instead calls
-- dbchat.confirm_key in the same pipeline, ahead of the handler's statement
-- (internal/tenant Check, internal/auth Cache). confirm_key receives the
-- transaction's settings already set (they are its arguments, evaluated
-- before its body runs), confirms the key is still good (not revoked, its
-- user and tenant active, the same user) and raises otherwise, so
-- the handler's statement never runs for a revoked key: revocation stays
-- immediate on every instance, with no cache invalidation to miss.
-- dbchat.confirm_user does the same for a token from a tenant's identity
-- provider that the server verified lately (internal/identity), and
-- dbchat.confirm_session for a browser session (internal/session).
--
-- The same call takes the request's rate token (dbchat.take_request_tokens,
-- which queries/limits.sql's TakeRequestToken now calls too, so the bucket
-- arithmetic has one copy), raising when the bucket is empty: a refused
-- request does no work.
--
-- Both are SECURITY INVOKER: they run as dbchat_app under the same
-- tenant_isolation policies as every other statement; EXECUTE is dbchat_app's
-- only.

-- +goose Up
-- How many tokens the last take took (a lease may take several).
ALTER TABLE dbchat.rate_buckets ADD COLUMN taken integer NOT NULL DEFAULT 1 CHECK (taken >= 0);

-- +goose StatementBegin
CREATE FUNCTION dbchat.take_request_tokens(default_rate double precision, default_burst double precision, n integer)
    RETURNS TABLE (rate double precision, burst double precision, tokens double precision, allowed boolean, taken integer)
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- Refill at rate per second up to burst since the last take, then take
    -- up to n whole tokens (a lease: n > 1 lets a server serve the next
    -- requests without writing; 1 for a single request), at least one or
    -- none. A tenant without a rate limit writes nothing and gets rate 0.
    -- "at" never moves backwards, so a transaction that started a little
    -- earlier than the last take adds no tokens.
    WITH l AS (
        SELECT CASE WHEN t.limits ? 'requests_per_second' THEN (t.limits ->> 'requests_per_second')::float8
                    ELSE default_rate END AS rate,
               CASE WHEN t.limits ? 'burst' THEN (t.limits ->> 'burst')::float8
                    ELSE default_burst END AS burst
        FROM dbchat.tenants t
    ), take AS (
        INSERT INTO dbchat.rate_buckets AS b (tokens, rate, burst, allowed, at, taken)
        SELECT e.burst - least(n, floor(e.burst)), e.rate, e.burst, true, now(), least(n, floor(e.burst))::int
        FROM (SELECT l.rate, greatest(1, coalesce(l.burst, ceil(l.rate))) AS burst FROM l WHERE l.rate > 0) e
        ON CONFLICT (tenant_id) DO UPDATE
        SET tokens  = least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.at - b.at))::float8)
                      - CASE WHEN least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.at - b.at))::float8) >= 1
                             THEN least(n, floor(least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.at - b.at))::float8)))
                             ELSE 0 END,
            taken   = CASE WHEN least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.at - b.at))::float8) >= 1
                           THEN least(n, floor(least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.at - b.at))::float8)))::int
                           ELSE 0 END,
            allowed = least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.at - b.at))::float8) >= 1,
            rate    = excluded.rate,
            burst   = excluded.burst,
            at      = greatest(b.at, excluded.at)
        WHERE b.tenant_id = excluded.tenant_id
        RETURNING b.tokens, b.rate, b.burst, b.allowed, b.taken
    )
    SELECT coalesce(take.rate, 0)::float8, coalesce(take.burst, 0)::float8,
           coalesce(take.tokens, 0)::float8, coalesce(take.allowed, true), coalesce(take.taken, 0)
    FROM l LEFT JOIN take ON true;
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.take_request_tokens(double precision, double precision, integer) IS
    'Takes up to n request tokens (at least one, or none: allowed false) from the current tenant''s bucket (dbchat.rate_buckets), refilled at the tenant''s rate up to its burst (defaults: the arguments). Invoker''s rights: the tenant_isolation policy scopes it. EXECUTE: dbchat_app only.';

-- The confirmations return one row through OUT parameters rather than a
-- set (RETURNS TABLE would materialise it), since they run on every request.
-- +goose StatementBegin
CREATE FUNCTION dbchat.confirm_tokens(take integer, default_rate double precision, default_burst double precision,
                                      OUT rate double precision, OUT burst double precision, OUT tokens double precision,
                                      OUT allowed boolean, OUT taken integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF take <= 0 THEN
        rate := 0; burst := 0; tokens := 0; allowed := true; taken := 0;
        RETURN;
    END IF;
    SELECT b.rate, b.burst, b.tokens, b.allowed, b.taken INTO rate, burst, tokens, allowed, taken
    FROM dbchat.take_request_tokens(default_rate, default_burst, take) b;
    IF NOT allowed THEN
        RAISE EXCEPTION 'rate limited' USING ERRCODE = 'DC429',
            DETAIL = json_build_object('rate', rate, 'burst', burst, 'tokens', tokens)::text;
    END IF;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.confirm_tokens(integer, double precision, double precision) IS
    'The rate part of a request''s confirmation: takes up to take request tokens (none for 0) and raises DC429, with the bucket as JSON detail, when refused. EXECUTE: dbchat_app only.';

-- +goose StatementBegin
CREATE FUNCTION dbchat.confirm_key(tenant_setting text, user_setting text, role_setting text, claims_setting text,
                                   key_id uuid, take integer, default_rate double precision, default_burst double precision,
                                   OUT rate double precision, OUT burst double precision, OUT tokens double precision,
                                   OUT allowed boolean, OUT taken integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current_role_ text;
BEGIN
    -- The settings are this transaction's (the caller passes set_config's
    -- results), so the policies below see the key's tenant.
    SELECT u.role INTO current_role_ FROM dbchat.api_keys a
        JOIN dbchat.users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
        JOIN dbchat.tenants t ON t.id = a.tenant_id
    WHERE a.tenant_id = nullif(tenant_setting, '')::uuid AND a.id = key_id
      AND a.user_id = nullif(user_setting, '')::uuid
      AND a.revoked_at IS NULL AND u.is_active AND t.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'API key no longer valid' USING ERRCODE = 'DC401';
    END IF;
    IF current_role_ IS DISTINCT FROM role_setting THEN -- the server signs in again
        RAISE EXCEPTION 'role changed' USING ERRCODE = 'DC401', DETAIL = 'changed';
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
COMMENT ON FUNCTION dbchat.confirm_key(text, text, text, text, uuid, integer, double precision, double precision) IS
    'Confirms, in a request''s first statement, that the API key a server remembered is still good (SQLSTATE DC401 if not: revoked, its user or tenant inactive, another user; DC401 with detail changed when the user''s role changed, and the server signs in again), then dbchat.confirm_tokens. The first four arguments are the transaction''s settings, passed as set_config''s results so that they are set first. EXECUTE: dbchat_app only.';

-- +goose StatementBegin
CREATE FUNCTION dbchat.confirm_user(tenant_setting text, user_setting text, role_setting text, claims_setting text,
                                    provider_id uuid, take integer, default_rate double precision, default_burst double precision,
                                    OUT rate double precision, OUT burst double precision, OUT tokens double precision,
                                    OUT allowed boolean, OUT taken integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u record;
BEGIN
    SELECT usr.is_active, usr.role, usr.identity_provider_id, t.is_active AS tenant_active INTO u
    FROM dbchat.users usr
    JOIN dbchat.tenants t ON t.id = usr.tenant_id
    WHERE usr.tenant_id = nullif(tenant_setting, '')::uuid AND usr.id = nullif(user_setting, '')::uuid;
    -- The detail is the refusal's reason, as a fresh sign-in would give it:
    -- a provider removed since unlinks its users (ON DELETE SET NULL), and
    -- an inactive tenant's providers sign nobody in.
    IF FOUND AND (u.identity_provider_id IS DISTINCT FROM provider_id OR NOT u.tenant_active) THEN
        RAISE EXCEPTION 'signed-in user no longer valid' USING ERRCODE = 'DC401', DETAIL = 'unknown_issuer';
    END IF;
    IF NOT FOUND OR NOT u.is_active THEN
        RAISE EXCEPTION 'signed-in user no longer valid' USING ERRCODE = 'DC401', DETAIL = 'user_disabled';
    END IF;
    IF u.role IS DISTINCT FROM role_setting THEN -- the server signs in again
        RAISE EXCEPTION 'role changed' USING ERRCODE = 'DC401', DETAIL = 'changed';
    END IF;
    IF take <= 0 THEN
        rate := 0; burst := 0; tokens := 0; allowed := true; taken := 0;
        RETURN;
    END IF;
    SELECT c.rate, c.burst, c.tokens, c.allowed, c.taken INTO rate, burst, tokens, allowed, taken
    FROM dbchat.confirm_tokens(take, default_rate, default_burst) c;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.confirm_user(text, text, text, text, uuid, integer, double precision, double precision) IS
    'confirm_key for a token from an identity provider that a server verified lately: its user is still active, signed in by the same provider, in an active tenant (DC401 if not; detail changed for another role), then dbchat.confirm_tokens. EXECUTE: dbchat_app only.';

-- +goose StatementBegin
CREATE FUNCTION dbchat.confirm_session(tenant_setting text, user_setting text, role_setting text, claims_setting text,
                                       session_id uuid, idle_seconds double precision,
                                       take integer, default_rate double precision, default_burst double precision,
                                       OUT rate double precision, OUT burst double precision, OUT tokens double precision,
                                       OUT allowed boolean, OUT taken integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    current_role_ text;
    seen          timestamptz;
BEGIN
    -- What AuthenticateSession (queries/sessions.sql) requires, for the
    -- session a server remembered.
    SELECT u.role, s.last_seen_at INTO current_role_, seen FROM dbchat.sessions s
        JOIN dbchat.users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
        JOIN dbchat.tenants t ON t.id = s.tenant_id
        LEFT JOIN dbchat.api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.api_key_id
    WHERE s.tenant_id = nullif(tenant_setting, '')::uuid AND s.id = session_id
      AND s.user_id = nullif(user_setting, '')::uuid
      AND s.revoked_at IS NULL AND s.expires_at > now()
      AND s.last_seen_at > now() - make_interval(secs => idle_seconds)
      AND u.is_active AND t.is_active
      AND (s.api_key_id IS NULL OR (k.id IS NOT NULL AND k.revoked_at IS NULL));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session no longer valid' USING ERRCODE = 'DC401';
    END IF;
    IF current_role_ IS DISTINCT FROM role_setting THEN -- the server looks it up again
        RAISE EXCEPTION 'role changed' USING ERRCODE = 'DC401', DETAIL = 'changed';
    END IF;
    -- Use moves the idle deadline, written at most once a minute (as
    -- TouchSession after a lookup).
    IF seen < now() - interval '1 minute' THEN
        UPDATE dbchat.sessions SET last_seen_at = now()
        WHERE tenant_id = nullif(tenant_setting, '')::uuid AND id = session_id;
    END IF;
    IF take <= 0 THEN
        rate := 0; burst := 0; tokens := 0; allowed := true; taken := 0;
        RETURN;
    END IF;
    SELECT c.rate, c.burst, c.tokens, c.allowed, c.taken INTO rate, burst, tokens, allowed, taken
    FROM dbchat.confirm_tokens(take, default_rate, default_burst) c;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.confirm_session(text, text, text, text, uuid, double precision, integer, double precision, double precision) IS
    'confirm_key for a browser session a server remembered: not signed out, expired or idle past idle_seconds, its user and tenant active, the API key it came from not revoked (DC401 if not; detail changed for another role); records use at most once a minute, then dbchat.confirm_tokens. EXECUTE: dbchat_app only.';

REVOKE ALL ON FUNCTION dbchat.take_request_tokens(double precision, double precision, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dbchat.confirm_tokens(integer, double precision, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION dbchat.confirm_key(text, text, text, text, uuid, integer, double precision, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION dbchat.confirm_user(text, text, text, text, uuid, integer, double precision, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION dbchat.confirm_session(text, text, text, text, uuid, double precision, integer, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.take_request_tokens(double precision, double precision, integer) TO dbchat_app;
GRANT EXECUTE ON FUNCTION dbchat.confirm_tokens(integer, double precision, double precision) TO dbchat_app;
GRANT EXECUTE ON FUNCTION dbchat.confirm_key(text, text, text, text, uuid, integer, double precision, double precision) TO dbchat_app;
GRANT EXECUTE ON FUNCTION dbchat.confirm_user(text, text, text, text, uuid, integer, double precision, double precision) TO dbchat_app;
GRANT EXECUTE ON FUNCTION dbchat.confirm_session(text, text, text, text, uuid, double precision, integer, double precision, double precision) TO dbchat_app;

-- +goose Down
DROP FUNCTION dbchat.confirm_session(text, text, text, text, uuid, double precision, integer, double precision, double precision);
DROP FUNCTION dbchat.confirm_user(text, text, text, text, uuid, integer, double precision, double precision);
DROP FUNCTION dbchat.confirm_key(text, text, text, text, uuid, integer, double precision, double precision);
DROP FUNCTION dbchat.confirm_tokens(integer, double precision, double precision);
DROP FUNCTION dbchat.take_request_tokens(double precision, double precision, integer);
ALTER TABLE dbchat.rate_buckets DROP COLUMN taken;
