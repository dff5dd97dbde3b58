-- A licence is verified state by state: the states an administrator checked
-- (with the number as it was then). Editing the number clears them all;
-- editing the states keeps only those still claimed.
ALTER TABLE profiles ADD COLUMN verified_states text[] NOT NULL DEFAULT '{}';
UPDATE profiles SET verified_states = license_states WHERE verified_at IS NOT NULL;
ALTER TABLE profiles ADD CONSTRAINT profiles_verified_states_claimed
    CHECK (verified_states <@ license_states);
