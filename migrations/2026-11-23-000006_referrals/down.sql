DROP TABLE referral_contacts;
DROP TABLE referral_events;
DROP TABLE referral_offers;
DROP TABLE referrals;
