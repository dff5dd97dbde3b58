-- In-app notifications, and email waiting to be sent (written in the same
-- transaction as what it announces; a worker sends and retries).
CREATE TABLE notifications (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL,
    referral_id uuid REFERENCES referrals (id) ON DELETE CASCADE,
    message text NOT NULL,
    created_at timestamptz NOT NULL,
    read_at timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_referral_idx ON notifications (referral_id);

CREATE TABLE email_outbox (
    id bigserial PRIMARY KEY,
    to_address text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    enqueued_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error text,
    sent_at timestamptz
);
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at, id) WHERE sent_at IS NULL;

-- Reminders sent once: 2 hours before an offer's deadline, and a check-in
-- to the sender 14 days after acceptance without a scheduled appointment.
ALTER TABLE referral_offers ADD COLUMN reminded_at timestamptz;
ALTER TABLE referrals ADD COLUMN checked_in_at timestamptz;
