-- Every state, kind and band the server maps to a Rust enum is CHECK-
-- constrained text; the client's age band was the one left free.
ALTER TABLE referrals ADD CONSTRAINT referrals_age_band_check
    CHECK (age_band IN ('early_childhood', 'child', 'adolescent', 'young_adult', 'adult', 'older_adult'));
