ALTER TABLE auth_sessions DROP COLUMN second_factor_at;
DROP TABLE sign_in_challenges;
DROP TABLE recovery_codes;
DROP TABLE second_factors;
