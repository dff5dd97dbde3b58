-- How reliably each clinician answers referrals, as a view so that the
-- application reads it with one prepared statement (search hydrates a page of
-- hits with it on every query). Median hours from offer to answer, and how many
-- closed offers were accepted (a lapsed deadline counts as not accepted).
CREATE VIEW clinician_responsiveness AS
SELECT recipient_id,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM responded_at - offered_at) / 3600.0)
           FILTER (WHERE state IN ('accepted', 'declined')) AS median_hours,
       count(*) FILTER (WHERE state = 'accepted') AS accepted,
       count(*) FILTER (WHERE state IN ('accepted', 'declined', 'expired')) AS closed
FROM referral_offers
WHERE offered_at IS NOT NULL
GROUP BY recipient_id;
