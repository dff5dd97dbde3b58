-- Closed-loop referrals: the de-identified packet, one offer per colleague
-- asked, every transition, and the client's contact details kept apart.
CREATE TABLE referrals (
    id uuid PRIMARY KEY,
    sender_id uuid NOT NULL REFERENCES users (id),
    mode text NOT NULL CHECK (mode IN ('direct', 'cascade', 'broadcast')),
    status text NOT NULL CHECK (status IN ('requested', 'received', 'accepted', 'declined', 'scheduled', 'completed', 'withdrawn', 'expired')),
    urgency text NOT NULL CHECK (urgency IN ('routine', 'soon', 'urgent')),
    -- How long each colleague has to answer, fixed when the referral is sent.
    response_minutes integer NOT NULL CHECK (response_minutes > 0),
    age_band text NOT NULL,
    client_state text NOT NULL CHECK (client_state ~ '^[A-Z]{2}$'),
    concerns text[] NOT NULL CHECK (cardinality(concerns) BETWEEN 1 AND 10),
    modality text,
    insurance text,
    language text,
    telehealth_ok boolean NOT NULL,
    latitude double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude double precision CHECK (longitude BETWEEN -180 AND 180),
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    accepted_by uuid REFERENCES users (id),
    accepted_onto text CHECK (accepted_onto IN ('slot', 'waitlist')),
    first_appointment_at timestamptz,
    outcome text CHECK (length(outcome) <= 2000),
    idempotency_key text CHECK (length(idempotency_key) <= 200),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL DEFAULT 1,
    UNIQUE (sender_id, idempotency_key)
);
CREATE INDEX referrals_sender_idx ON referrals (sender_id, created_at DESC);
CREATE INDEX referrals_accepted_by_idx ON referrals (accepted_by);

CREATE TABLE referral_offers (
    id bigserial PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    recipient_id uuid NOT NULL REFERENCES users (id),
    rank integer NOT NULL CHECK (rank >= 0),
    state text NOT NULL CHECK (state IN ('queued', 'offered', 'received', 'accepted', 'declined', 'expired', 'withdrawn')),
    offered_at timestamptz,
    deadline timestamptz,
    responded_at timestamptz,
    reason text CHECK (reason IN ('no_capacity', 'not_a_fit', 'insurance', 'location', 'other')),
    note text CHECK (length(note) <= 2000),
    UNIQUE (referral_id, recipient_id)
);
-- The inbox: a colleague's offers, newest first, read 20 at a time.
CREATE INDEX referral_offers_inbox_idx ON referral_offers (recipient_id, offered_at DESC, id DESC);
CREATE INDEX referral_offers_due_idx ON referral_offers (deadline) WHERE state IN ('offered', 'received');

CREATE TABLE referral_events (
    id bigserial PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    actor_id uuid REFERENCES users (id),
    from_status text,
    to_status text NOT NULL,
    at timestamptz NOT NULL,
    note text
);
CREATE INDEX referral_events_referral_idx ON referral_events (referral_id, id);

-- Released only to the clinician who accepted; every read is audited.
CREATE TABLE referral_contacts (
    referral_id uuid PRIMARY KEY REFERENCES referrals (id) ON DELETE CASCADE,
    full_name text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    phone text CHECK (length(phone) <= 40),
    email text CHECK (length(email) <= 254),
    preferred_contact text CHECK (length(preferred_contact) <= 200)
);
