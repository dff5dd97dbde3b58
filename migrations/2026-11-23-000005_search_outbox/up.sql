-- Changes that the search index must pick up, written in the same transaction
-- as the change itself; indexer workers claim them with FOR UPDATE SKIP LOCKED.
CREATE TABLE search_outbox (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL,
    enqueued_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error text
);
CREATE INDEX search_outbox_due_idx ON search_outbox (next_attempt_at, id);

-- Small facts background workers keep between runs (e.g. the freshness sweep's watermark).
CREATE TABLE worker_state (
    key text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The freshness sweep finds profiles whose confirmation crosses 14 days.
CREATE INDEX profiles_capacity_confirmed_at_idx ON profiles (capacity_confirmed_at);
