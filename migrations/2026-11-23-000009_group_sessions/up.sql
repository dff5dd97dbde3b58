-- Supervisor-hosted group sessions, held in a group's room; attendance taken
-- from the room's visits; signed attendance lines form the supervision-hours
-- ledger. Each person's IANA time zone, for entering and showing times.
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE users ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

CREATE TABLE group_sessions (
    id uuid PRIMARY KEY,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    host_id uuid NOT NULL REFERENCES users (id),
    -- Weekly repeats share a series.
    series_id uuid,
    title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    agenda text NOT NULL DEFAULT '' CHECK (char_length(agenda) <= 4000),
    kind text NOT NULL CHECK (kind IN ('group_supervision', 'peer_consultation')),
    starts_at timestamptz NOT NULL,
    planned_minutes integer NOT NULL CHECK (planned_minutes BETWEEN 1 AND 480),
    -- The planned end, kept so that sessions of a group cannot overlap.
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    status text NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'live', 'ended', 'cancelled')),
    started_at timestamptz,
    ended_at timestamptz,
    -- While locked, only people present when it was locked may enter the room.
    locked_at timestamptz,
    signed_at timestamptz,
    reminded_day_at timestamptz,
    reminded_hour_at timestamptz,
    created_at timestamptz NOT NULL,
    CHECK (ended_at IS NULL OR ended_at >= started_at),
    EXCLUDE USING gist (group_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status <> 'cancelled')
);
CREATE INDEX group_sessions_group_idx ON group_sessions (group_id, starts_at);
CREATE INDEX group_sessions_due_idx ON group_sessions (starts_at) WHERE status = 'scheduled';

-- One line per attendee of an ended session: minutes from the room, and,
-- once the host signs, the ledger line (host, license, time).
CREATE TABLE session_attendance (
    session_id uuid NOT NULL REFERENCES group_sessions (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The merged stays in the room, for the record: [[from, to], …].
    stays jsonb NOT NULL,
    measured_minutes integer NOT NULL CHECK (measured_minutes >= 0),
    minutes integer NOT NULL CHECK (minutes BETWEEN 0 AND 480),
    kind text NOT NULL CHECK (kind IN ('group_supervision', 'peer_consultation')),
    adjusted_reason text,
    adjusted_at timestamptz,
    signed_at timestamptz,
    signed_by uuid REFERENCES users (id),
    signer_name text,
    signer_license text,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_attendance_user_idx ON session_attendance (user_id) WHERE signed_at IS NOT NULL;

ALTER TABLE notifications ADD COLUMN session_id uuid REFERENCES group_sessions (id) ON DELETE CASCADE;
