DROP TRIGGER audit_chain_no_truncate ON audit_chain;
DROP TRIGGER audit_chain_append_only ON audit_chain;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP TABLE audit_chain;
DROP TRIGGER audit_log_to_seal ON audit_log;
DROP TABLE audit_pending;
DROP FUNCTION audit_log_queue();
ALTER TABLE audit_log ADD COLUMN seq bigint UNIQUE, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea,
    ADD CHECK ((seq IS NULL) = (hash IS NULL));
CREATE INDEX audit_log_unsealed_idx ON audit_log (id) WHERE seq IS NULL;
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor_id, NEW.action, NEW.entity_type, NEW.entity_id,
            NEW.ip, NEW.request_id, NEW.detail)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.actor_id, OLD.action, OLD.entity_type, OLD.entity_id,
            OLD.ip, OLD.request_id, OLD.detail) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
DROP INDEX referrals_closed_idx;
DROP INDEX referral_contacts_clear_idx;
DROP INDEX referral_contacts_key_idx;
-- Sealed contacts cannot come back into clear columns without the key.
DELETE FROM referral_contacts WHERE full_name IS NULL;
ALTER TABLE referral_contacts
    DROP CONSTRAINT referral_contacts_key_named,
    DROP CONSTRAINT referral_contacts_sealed_or_clear,
    DROP COLUMN purged_at, DROP COLUMN key_id, DROP COLUMN sealed,
    ALTER COLUMN full_name SET NOT NULL;
DROP TABLE referral_reads;
ALTER TABLE session_attendance DROP COLUMN answer_note, DROP COLUMN answered_at, DROP COLUMN answer;
ALTER TABLE referral_offers DROP COLUMN closed_at;
