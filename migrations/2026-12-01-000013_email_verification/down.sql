DROP INDEX users_unverified_idx;
DROP TABLE email_verifications;
