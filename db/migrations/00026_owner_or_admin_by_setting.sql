-- owner_or_admin reads the transaction's app.role (issue 18, part 1).
--
-- The restrictive owner_or_admin policies of query_history (00012),
-- conversations and messages (00009) decided "is this user a tenant admin?"
-- by reading dbchat.users in a sub-select: an extra index lookup on every
-- statement that touches these tables (about 10 µs, a fifth of a lookup by
-- id), and a policy that reads another table, which a distributed table
-- cannot do cheaply (docs/SCALING.md).
--
-- The role is already in the transaction: internal/tenant sets app.role
-- with app.user_id, from an identity read from dbchat.users when the
-- credential was checked, and the claim policies' admin bypass (00012) has
-- always trusted it. A remembered identity is confirmed against dbchat.users
-- in the transaction's own first statement (dbchat.confirm_key,
-- confirm_user, confirm_session, 00025), which raises when the role changed,
-- so app.role is never staler than the statement. The sandbox cannot reach
-- these tables at all (its roles have no grant on dbchat), so a generated
-- statement that set app.role would gain nothing here.
--
-- Count by status read user_id for the policy, so it lost the index-only
-- scan of (tenant_id, status, created_at): the index now carries user_id.

-- +goose Up
DROP POLICY owner_or_admin ON dbchat.query_history;
CREATE POLICY owner_or_admin ON dbchat.query_history AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin')
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin');
COMMENT ON POLICY owner_or_admin ON dbchat.query_history IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own history entries (user_id = app.user_id); a tenant admin (app.role, set from dbchat.users and confirmed per request) all of the tenant''s; neither, none.';

DROP POLICY owner_or_admin ON dbchat.conversations;
CREATE POLICY owner_or_admin ON dbchat.conversations AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin')
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin');
COMMENT ON POLICY owner_or_admin ON dbchat.conversations IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own conversations (user_id = app.user_id); a tenant admin (app.role, set from dbchat.users and confirmed per request) all of the tenant''s; neither, none.';

DROP POLICY owner_or_admin ON dbchat.messages;
CREATE POLICY owner_or_admin ON dbchat.messages AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin')
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin');
COMMENT ON POLICY owner_or_admin ON dbchat.messages IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only the turns of its own conversations; a tenant admin (app.role) all of the tenant''s.';

DROP INDEX dbchat.query_history_tenant_status_idx;
CREATE INDEX query_history_tenant_status_idx ON dbchat.query_history (tenant_id, status, created_at DESC) INCLUDE (user_id);

-- +goose Down
DROP INDEX dbchat.query_history_tenant_status_idx;
CREATE INDEX query_history_tenant_status_idx ON dbchat.query_history (tenant_id, status, created_at DESC);

DROP POLICY owner_or_admin ON dbchat.messages;
CREATE POLICY owner_or_admin ON dbchat.messages AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)));
DROP POLICY owner_or_admin ON dbchat.conversations;
CREATE POLICY owner_or_admin ON dbchat.conversations AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)));
DROP POLICY owner_or_admin ON dbchat.query_history;
CREATE POLICY owner_or_admin ON dbchat.query_history AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)));
