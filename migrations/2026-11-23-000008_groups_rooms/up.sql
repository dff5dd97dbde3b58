-- Peer consultation groups and their rooms: membership with roles, invites
-- and join requests, the message history, single-use websocket tickets, and
-- who is in which room on which server instance (presence, later attendance).
CREATE TABLE groups (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 120),
    topic text NOT NULL DEFAULT '' CHECK (char_length(topic) <= 200),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 4000),
    listed boolean NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    -- Updated by every new message: the row lock it takes makes messages of
    -- one group commit in id order, so "everything after id N" has no gaps.
    last_message_at timestamptz
);
CREATE INDEX groups_listed_idx ON groups (name) WHERE listed;

CREATE TABLE group_members (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('host', 'moderator', 'member')),
    joined_at timestamptz NOT NULL,
    muted_until timestamptz,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);

-- An invitation from a host or moderator (to an email address, which may not
-- have an account yet) or a request to join a listed group.
CREATE TABLE group_invites (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('invite', 'request')),
    email text NOT NULL,
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled')),
    created_at timestamptz NOT NULL,
    responded_at timestamptz,
    responded_by uuid REFERENCES users (id) ON DELETE SET NULL,
    CHECK (kind = 'invite' OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX group_invites_pending_idx ON group_invites (group_id, email) WHERE status = 'pending';
CREATE INDEX group_invites_email_idx ON group_invites (email) WHERE status = 'pending';

CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    author_id uuid NOT NULL REFERENCES users (id),
    -- The sender's own id for the message, so a retried `say` is stored once.
    client_id text CHECK (char_length(client_id) BETWEEN 1 AND 64),
    body text NOT NULL CHECK (char_length(body) <= 4000),
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    deleted_by uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX messages_group_idx ON messages (group_id, id);
CREATE UNIQUE INDEX messages_client_id_idx ON messages (group_id, author_id, client_id);

CREATE TABLE ws_tickets (
    ticket_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    group_id uuid REFERENCES groups (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX ws_tickets_expiry_idx ON ws_tickets (expires_at);

-- Server instances holding websocket connections, with a heartbeat: rooms on
-- an instance that stopped beating are closed by the others.
CREATE TABLE room_instances (
    id uuid PRIMARY KEY,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

-- One row per connection's stay in a room: presence while left_at is NULL.
CREATE TABLE room_visits (
    id bigserial PRIMARY KEY,
    instance_id uuid NOT NULL,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL,
    left_at timestamptz,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE INDEX room_visits_open_idx ON room_visits (group_id, user_id) WHERE left_at IS NULL;
CREATE INDEX room_visits_instance_idx ON room_visits (instance_id) WHERE left_at IS NULL;
CREATE INDEX room_visits_group_time_idx ON room_visits (group_id, joined_at);

ALTER TABLE notifications ADD COLUMN group_id uuid REFERENCES groups (id) ON DELETE CASCADE;
CREATE INDEX notifications_group_idx ON notifications (group_id);
