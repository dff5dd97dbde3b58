//! What every background worker shares: a loop that runs a pass on a fixed
//! period (and logs, never dies, when a pass fails), and the retry backoff.

use std::{future::Future, time::Duration};

/// Runs `pass` every `period`, for ever. A failed pass is logged as `what`
/// and the next one runs on time; a slow pass delays the next, never doubles it.
pub async fn every<F, Fut, T, E>(period: Duration, what: &'static str, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = pass().await {
            tracing::warn!(%error, "{what} failed");
        }
    }
}

/// Delay before retry number `attempts` (1, 2, 4 … seconds, at most 5 minutes).
pub fn backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 8)).min(chrono::Duration::minutes(5))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(super::backoff(1).num_seconds(), 2);
        assert_eq!(super::backoff(3).num_seconds(), 8);
        assert!(super::backoff(30).num_seconds() <= 300);
    }
}
