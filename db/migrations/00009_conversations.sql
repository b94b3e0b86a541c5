-- Conversations: a user's thread of questions to one model. Each turn is a
-- message holding the question as typed, the standalone question it was
-- resolved to, the SQL that answered it and the query_history entry that
-- recorded the run (so feedback, stats and history keep working per turn).
-- Result rows are never stored here.
--
-- Two policies, both enforced by PostgreSQL: tenant_isolation (the same text
-- as every other table: only the transaction's tenant) and, AS RESTRICTIVE,
-- owner_or_admin: a member sees and writes only the conversations (and
-- messages) whose user_id is the transaction's app.user_id; a tenant admin
-- sees all of the tenant's. Another member's conversation is therefore
-- invisible, exactly like an unknown id.

-- +goose Up
CREATE TABLE dbchat.conversations (
    tenant_id        uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                                 REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id          uuid        NOT NULL DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    model_id         uuid        NOT NULL,
    title            text        NOT NULL DEFAULT '' CHECK (length(title) <= 200),
    archived         boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE dbchat.conversations IS
    'A user''s thread of questions to one model; its turns are dbchat.messages.';
COMMENT ON COLUMN dbchat.conversations.last_activity_at IS
    'When the latest turn was added (listing order: newest activity first).';
-- Listing (a member's own, an admin's all), newest activity first; the
-- model key for deleting a model.
CREATE INDEX conversations_tenant_user_activity_idx ON dbchat.conversations (tenant_id, user_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_tenant_activity_idx ON dbchat.conversations (tenant_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_tenant_model_idx ON dbchat.conversations (tenant_id, model_id);

CREATE TABLE dbchat.messages (
    tenant_id         uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                                  REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    conversation_id   uuid        NOT NULL,
    user_id           uuid        NOT NULL,
    position          integer     NOT NULL CHECK (position > 0),
    question          text        NOT NULL,
    resolved_question text        NOT NULL,
    sql               text,
    history_id        uuid,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT messages_position_key UNIQUE (tenant_id, conversation_id, position),
    -- A turn has SQL, or the error that stopped it; never neither.
    CHECK (sql IS NOT NULL OR error IS NOT NULL),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES dbchat.conversations (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, history_id) REFERENCES dbchat.query_history (tenant_id, id) ON DELETE SET NULL (history_id)
);
COMMENT ON TABLE dbchat.messages IS
    'One turn of a conversation: the question as typed, the standalone question it resolved to, the SQL and its query_history entry. No result rows.';
COMMENT ON COLUMN dbchat.messages.user_id IS
    'The conversation''s owner (copied, so the owner_or_admin policy needs no join).';
CREATE INDEX messages_tenant_user_idx ON dbchat.messages (tenant_id, user_id);
CREATE INDEX messages_tenant_history_idx ON dbchat.messages (tenant_id, history_id) WHERE history_id IS NOT NULL;

ALTER TABLE dbchat.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.conversations
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.conversations IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';
CREATE POLICY owner_or_admin ON dbchat.conversations AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)));
COMMENT ON POLICY owner_or_admin ON dbchat.conversations IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own conversations (user_id = app.user_id); a tenant admin all of the tenant''s; no app.user_id, none.';

ALTER TABLE dbchat.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.messages
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.messages IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';
CREATE POLICY owner_or_admin ON dbchat.messages AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)));
COMMENT ON POLICY owner_or_admin ON dbchat.messages IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only the turns of its own conversations; a tenant admin all of the tenant''s.';

GRANT SELECT, INSERT, DELETE, UPDATE (title, archived, last_activity_at) ON dbchat.conversations TO dbchat_app;
GRANT SELECT, INSERT ON dbchat.messages TO dbchat_app;

-- +goose Down
DROP TABLE dbchat.messages;
DROP TABLE dbchat.conversations;
