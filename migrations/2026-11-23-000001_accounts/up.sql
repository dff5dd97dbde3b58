-- Accounts, sign-in sessions (refresh-token families) and login throttling.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
    role text NOT NULL DEFAULT 'clinician' CHECK (role IN ('clinician', 'supervisor', 'admin')),
    email_verified_at timestamptz,
    disabled_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per sign-in: the family that every rotated refresh token belongs to.
-- Revoking it ends the sign-in everywhere (access tokens carry its id).
CREATE TABLE auth_sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text,
    ip text,
    user_agent text
);
CREATE INDEX auth_sessions_user_id_idx ON auth_sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes; a used one presented again
-- revokes its whole family (theft detection).
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

-- Failed sign-ins per account ('email:...') and per address ('ip:...'),
-- shared by every server instance.
CREATE TABLE login_throttle (
    key text PRIMARY KEY,
    failures integer NOT NULL CHECK (failures >= 0),
    window_started_at timestamptz NOT NULL,
    locked_until timestamptz
);
