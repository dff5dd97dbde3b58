//! How reliably each clinician answers referrals, from offer history: median
//! hours from offer to answer, and the share of closed offers they accepted
//! (a lapsed deadline counts as not accepted). Read from a view over the
//! offer history; search ranks by it and shows it, so it sits below both.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Responsiveness as search and match show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Responsiveness {
    /// Median hours from offer to answer; null until there is history.
    pub median_response_hours: Option<f64>,
    /// Share of answered offers that were accepted (0–1); null until there is history.
    pub acceptance_rate: Option<f64>,
}

diesel::table! {
    /// A view (migration 000010): one row per clinician who was ever offered a referral.
    clinician_responsiveness (recipient_id) {
        recipient_id -> Uuid,
        median_hours -> Nullable<Double>,
        accepted -> BigInt,
        closed -> BigInt,
    }
}

/// The responsiveness of each of `ids` that has answered or let lapse at
/// least one offer.
pub async fn of(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> diesel::QueryResult<HashMap<Uuid, Responsiveness>> {
    use clinician_responsiveness::dsl as r;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Option<f64>, i64, i64)> = r::clinician_responsiveness
        .filter(r::recipient_id.eq_any(ids))
        .filter(r::closed.gt(0))
        .select((r::recipient_id, r::median_hours, r::accepted, r::closed))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, median_hours, accepted, closed)| {
            let value = Responsiveness {
                median_response_hours: median_hours.map(|h| (h * 10.0).round() / 10.0),
                acceptance_rate: Some((accepted as f64 / closed as f64 * 100.0).round() / 100.0),
            };
            (id, value)
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
