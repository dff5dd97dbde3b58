-- Two-step sign-in: a TOTP key per account (sealed with the data key, which
-- never enters the database), ten single-use recovery codes (SHA-256 of 80
-- random bits each), and the short-lived challenge between the password
-- step and the code step.
CREATE TABLE second_factors (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret bytea NOT NULL,
    created_at timestamptz NOT NULL,
    -- Null while enrolling: the factor counts once a first code confirmed it.
    confirmed_at timestamptz,
    -- The newest time step accepted; a code is accepted once (RFC 6238 §5.2).
    last_step bigint
);

CREATE TABLE recovery_codes (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    created_at timestamptz NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sign_in_challenges (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
    used_at timestamptz,
    failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0)
);
CREATE INDEX sign_in_challenges_user_idx ON sign_in_challenges (user_id);

-- A sign-in records when it proved a second factor: privileged routes need it.
ALTER TABLE auth_sessions ADD COLUMN second_factor_at timestamptz;
