ALTER TABLE referrals DROP COLUMN checked_in_at;
ALTER TABLE referral_offers DROP COLUMN reminded_at;
DROP TABLE email_outbox;
DROP TABLE notifications;
