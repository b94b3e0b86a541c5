-- owner_or_admin asks "is this an admin?" as one boolean sub-select (issue
-- 18, part 2).
--
-- 00026 wrote the admin test as (SELECT current_setting('app.role', true))
-- = 'admin': a text parameter compared with a constant, which the planner
-- estimates at 0.5 % of the rows (its default for an equality it cannot
-- look up). With the owner test beside it, a tenant's 1,000 history rows
-- were estimated at 5, so a page of 50 was planned as "fetch them all and
-- sort" instead of walking (tenant_id, created_at DESC, id DESC) and
-- stopping at 51: 7.5 ms instead of 0.2 ms per page, measured, and
-- GET /v1/history fell from 0.63x to 0.22x of the floor. The same test as
-- one sub-select returning a boolean, (SELECT current_setting('app.role',
-- true) = 'admin'), is a boolean parameter, which the planner takes as
-- true half of the time (as it did with 00012's sub-select on
-- dbchat.users): the page is walked in index order again. The rule itself
-- is unchanged; only how it is written.

-- +goose Up
DROP POLICY owner_or_admin ON dbchat.query_history;
CREATE POLICY owner_or_admin ON dbchat.query_history AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true) = 'admin'))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true) = 'admin'));
COMMENT ON POLICY owner_or_admin ON dbchat.query_history IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own history entries (user_id = app.user_id); a tenant admin (app.role, set from dbchat.users and confirmed per request) all of the tenant''s; neither, none.';

DROP POLICY owner_or_admin ON dbchat.conversations;
CREATE POLICY owner_or_admin ON dbchat.conversations AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true) = 'admin'))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true) = 'admin'));
COMMENT ON POLICY owner_or_admin ON dbchat.conversations IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own conversations (user_id = app.user_id); a tenant admin (app.role, set from dbchat.users and confirmed per request) all of the tenant''s; neither, none.';

DROP POLICY owner_or_admin ON dbchat.messages;
CREATE POLICY owner_or_admin ON dbchat.messages AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true) = 'admin'))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true) = 'admin'));
COMMENT ON POLICY owner_or_admin ON dbchat.messages IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only the turns of its own conversations; a tenant admin (app.role) all of the tenant''s.';

-- +goose Down
DROP POLICY owner_or_admin ON dbchat.messages;
CREATE POLICY owner_or_admin ON dbchat.messages AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin')
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin');
COMMENT ON POLICY owner_or_admin ON dbchat.messages IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only the turns of its own conversations; a tenant admin (app.role) all of the tenant''s.';

DROP POLICY owner_or_admin ON dbchat.conversations;
CREATE POLICY owner_or_admin ON dbchat.conversations AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin')
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin');
COMMENT ON POLICY owner_or_admin ON dbchat.conversations IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own conversations (user_id = app.user_id); a tenant admin (app.role, set from dbchat.users and confirmed per request) all of the tenant''s; neither, none.';

DROP POLICY owner_or_admin ON dbchat.query_history;
CREATE POLICY owner_or_admin ON dbchat.query_history AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin')
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT current_setting('app.role', true)) = 'admin');
COMMENT ON POLICY owner_or_admin ON dbchat.query_history IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own history entries (user_id = app.user_id); a tenant admin (app.role, set from dbchat.users and confirmed per request) all of the tenant''s; neither, none.';
