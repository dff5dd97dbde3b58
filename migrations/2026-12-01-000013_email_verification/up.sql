-- Single-use links that prove an address: the account's own at registration,
-- or a new one the owner asked to move to (which takes effect only once
-- proved). Only a hash of each token is kept.
CREATE TABLE email_verifications (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
    used_at timestamptz
);
CREATE INDEX email_verifications_user_idx ON email_verifications (user_id, created_at);

-- Search and match read only verified accounts.
CREATE INDEX users_unverified_idx ON users (id) WHERE email_verified_at IS NULL;
