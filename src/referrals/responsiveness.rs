//! How reliably each clinician answers referrals, from offer history: median
//! hours from offer to answer, and the share of closed offers they accepted
//! (a lapsed deadline counts as not accepted).

use std::collections::HashMap;

use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Double, Nullable, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::search::Responsiveness;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    recipient_id: Uuid,
    #[diesel(sql_type = Nullable<Double>)]
    median_hours: Option<f64>,
    #[diesel(sql_type = BigInt)]
    accepted: i64,
    #[diesel(sql_type = BigInt)]
    closed: i64,
}

pub async fn of(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> diesel::QueryResult<HashMap<Uuid, Responsiveness>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT recipient_id, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM responded_at - offered_at) / 3600.0) \
                    FILTER (WHERE state IN ('accepted', 'declined')) AS median_hours, \
                count(*) FILTER (WHERE state = 'accepted') AS accepted, \
                count(*) FILTER (WHERE state IN ('accepted', 'declined', 'expired')) AS closed \
         FROM referral_offers WHERE recipient_id = ANY($1) AND offered_at IS NOT NULL GROUP BY recipient_id",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.closed > 0)
        .map(|r| {
            let value = Responsiveness {
                median_response_hours: r.median_hours.map(|h| (h * 10.0).round() / 10.0),
                acceptance_rate: Some(
                    (r.accepted as f64 / r.closed as f64 * 100.0).round() / 100.0,
                ),
            };
            (r.recipient_id, value)
        })
        .collect())
}

/// 0–100 for ranking: half how often they accept, half how fast they answer
/// (within an hour is best, three days or more is worst); 50 with no history.
pub fn score(r: Option<&Responsiveness>) -> u8 {
    let Some(r) = r else { return 50 };
    let rate = r.acceptance_rate.unwrap_or(0.5);
    let speed = r
        .median_response_hours
        .map_or(0.0, |h| (1.0 - (h - 1.0).max(0.0) / 71.0).clamp(0.0, 1.0));
    ((rate * 0.5 + speed * 0.5) * 100.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_accepters_rank_above_slow_decliners_and_newcomers_sit_between() {
        let quick = Responsiveness {
            median_response_hours: Some(0.5),
            acceptance_rate: Some(0.9),
        };
        let slow = Responsiveness {
            median_response_hours: Some(70.0),
            acceptance_rate: Some(0.1),
        };
        assert!(score(Some(&quick)) > score(None));
        assert!(score(None) > score(Some(&slow)));
        assert_eq!(score(Some(&quick)), 95);
    }
}
