//! Attendance from the room: a person's stays in a group's room during a
//! session, clipped to the session and merged (a reconnect within two
//! minutes is the same stay); their minutes are the union of those stays.
//! Also the time-zone helpers for entering and showing session times.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{AppError, AppResult};

/// A stretch of time in the room, from and to.
pub type Stay = (DateTime<Utc>, DateTime<Utc>);

/// A reconnect within this long continues the same stay.
pub const RECONNECT_GRACE: Duration = Duration::minutes(2);

/// Clips stays to `[from, to]`, merges those that overlap or are separated
/// by at most `grace`, and returns them with the whole minutes they cover.
pub fn merge_stays(
    mut stays: Vec<Stay>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    grace: Duration,
) -> (Vec<Stay>, i32) {
    stays.sort();
    let mut merged: Vec<Stay> = Vec::new();
    for (start, end) in stays {
        let (start, end) = (start.max(from), end.min(to));
        if end <= start {
            continue;
        }
        match merged.last_mut() {
            Some(last) if start - last.1 <= grace => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let seconds: i64 = merged.iter().map(|(s, e)| (*e - *s).num_seconds()).sum();
    // Rounded to the nearest minute.
    let minutes = ((seconds + 30) / 60) as i32;
    (merged, minutes)
}

pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::UTC)
}

/// A start time as given: an instant with an offset (`2026-12-01T15:00:00Z`,
/// `…-06:00`), or a wall-clock time in the person's time zone (`2026-12-01T09:00`).
pub fn parse_time(field: &str, value: &str, tz: Tz) -> AppResult<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .ok_or_else(|| {
            AppError::invalid_field(
                field,
                format!(
                    "`{value}` is not a time: use 2026-12-01T09:00 (your time zone, {tz}) or an RFC 3339 time with an offset."
                ),
            )
        })?;
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(_, _) => Err(AppError::invalid_field(
            field,
            format!("{value} happens twice in {tz} (the clocks go back): give the offset too."),
        )),
        chrono::LocalResult::None => Err(AppError::invalid_field(
            field,
            format!("{value} does not exist in {tz} (the clocks go forward)."),
        )),
    }
}

/// A time as the person reads it, with its offset.
pub fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minute)
    }

    #[test]
    fn a_short_drop_is_one_stay_and_a_long_one_is_two() {
        let (stays, minutes) = merge_stays(
            vec![(t(0), t(20)), (t(21), t(40)), (t(50), t(60))],
            t(0),
            t(60),
            RECONNECT_GRACE,
        );
        assert_eq!(stays, vec![(t(0), t(40)), (t(50), t(60))]);
        assert_eq!(minutes, 50);
    }

    #[test]
    fn stays_are_clipped_to_the_session_and_overlaps_count_once() {
        // Two tabs open at once, one from before the start, one past the end.
        let (stays, minutes) = merge_stays(
            vec![(t(-30), t(30)), (t(10), t(90))],
            t(0),
            t(60),
            RECONNECT_GRACE,
        );
        assert_eq!(stays, vec![(t(0), t(60))]);
        assert_eq!(minutes, 60);
        let (none, zero) = merge_stays(vec![(t(70), t(80))], t(0), t(60), RECONNECT_GRACE);
        assert!(none.is_empty());
        assert_eq!(zero, 0);
    }

    #[test]
    fn wall_clock_times_are_read_in_the_persons_zone() {
        let chicago: Tz = "America/Chicago".parse().unwrap();
        let at = parse_time("starts_at", "2026-12-01T09:00", chicago).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-01T15:00:00+00:00");
        assert_eq!(local(at, chicago), "2026-12-01T09:00:00-06:00");
        let exact = parse_time("starts_at", "2026-12-01T09:00:00+01:00", chicago).unwrap();
        assert_eq!(exact.to_rfc3339(), "2026-12-01T08:00:00+00:00");
        // 02:30 on the spring-forward night does not exist.
        assert!(parse_time("starts_at", "2026-03-08T02:30", chicago).is_err());
        assert!(parse_time("starts_at", "next tuesday", chicago).is_err());
    }
}
