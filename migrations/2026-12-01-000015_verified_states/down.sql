ALTER TABLE profiles DROP CONSTRAINT profiles_verified_states_claimed;
ALTER TABLE profiles DROP COLUMN verified_states;
