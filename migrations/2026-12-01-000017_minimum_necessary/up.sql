-- Minimum necessary, and records an auditor can trust.

-- When an offer stopped being pending: a colleague whose offer ended sees
-- nothing of the referral after this.
ALTER TABLE referral_offers ADD COLUMN closed_at timestamptz;
UPDATE referral_offers SET closed_at = coalesce(responded_at, offered_at)
    WHERE state IN ('accepted', 'declined', 'expired', 'withdrawn');

-- Reads of a referral are audited once per viewer per hour: the newest
-- audited read of each, looked up without locking the referral.
CREATE TABLE referral_reads (
    referral_id uuid NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    viewer_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    audited_at timestamptz NOT NULL,
    PRIMARY KEY (referral_id, viewer_id)
);

-- The client's contact details, sealed in the application (XChaCha20-Poly1305
-- under KITH_CONTACT_KEY, which PostgreSQL never sees; `key_id` names the
-- key); rows from before are sealed by the application when it starts and
-- their clear columns emptied. Purged some days after the referral closes.
ALTER TABLE referral_contacts
    ALTER COLUMN full_name DROP NOT NULL,
    ADD COLUMN sealed bytea,
    ADD COLUMN key_id text,
    ADD COLUMN purged_at timestamptz,
    ADD CONSTRAINT referral_contacts_sealed_or_clear
        CHECK (sealed IS NULL OR (full_name IS NULL AND phone IS NULL AND email IS NULL AND preferred_contact IS NULL)),
    ADD CONSTRAINT referral_contacts_key_named CHECK ((sealed IS NULL) = (key_id IS NULL));
CREATE INDEX referral_contacts_key_idx ON referral_contacts (key_id) WHERE sealed IS NOT NULL;
CREATE INDEX referral_contacts_clear_idx ON referral_contacts (referral_id) WHERE full_name IS NOT NULL;
CREATE INDEX referrals_closed_idx ON referrals (updated_at)
    WHERE status IN ('completed', 'withdrawn', 'declined', 'expired');

-- A referral's location is kept only as a ~10 km grid cell (0.1 degree);
-- the exact point travels sealed with the contact.
UPDATE referrals SET latitude = round(latitude::numeric, 1)::float8,
                     longitude = round(longitude::numeric, 1)::float8
    WHERE latitude IS NOT NULL;

-- The supervisee answers each signed line of theirs: confirmed, or
-- disputed with a note (marked as such in every export).
ALTER TABLE session_attendance
    ADD COLUMN answer text CHECK (answer IN ('confirmed', 'disputed')),
    ADD COLUMN answered_at timestamptz,
    ADD COLUMN answer_note text CHECK (length(answer_note) <= 1000),
    ADD CONSTRAINT session_attendance_answered CHECK ((answer IS NULL) = (answered_at IS NULL)),
    ADD CONSTRAINT session_attendance_answer_signed CHECK (answer IS NULL OR signed_at IS NOT NULL);

-- The audit chain moves to its own table, so the application role needs no
-- UPDATE on the audit log: each row is sealed by inserting its link (keyed
-- HMAC-SHA-256 over the previous link and the row) in seal order.
CREATE TABLE audit_chain (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    entry_id bigint NOT NULL UNIQUE REFERENCES audit_log (id),
    hash bytea NOT NULL CHECK (length(hash) = 32)
);
-- What is still to seal: filled by a trigger on every audit row, emptied by
-- the sealer (a work queue, not a record: an entry missing from the chain is
-- reported by verification however it got lost).
CREATE TABLE audit_pending (entry_id bigint PRIMARY KEY REFERENCES audit_log (id));
CREATE FUNCTION audit_log_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_pending (entry_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER audit_log_to_seal AFTER INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_queue();
INSERT INTO audit_pending (entry_id) SELECT id FROM audit_log;
-- Links made under the old unkeyed scheme are not carried over: the chain
-- starts again under the key, with every row in id order.
DROP INDEX audit_log_unsealed_idx;
DROP TRIGGER audit_log_append_only ON audit_log;
ALTER TABLE audit_log DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash;
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();
