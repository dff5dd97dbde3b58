ALTER TABLE referrals DROP CONSTRAINT referrals_age_band_check;
