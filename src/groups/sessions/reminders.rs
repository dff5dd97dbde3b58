//! Reminders a day and an hour before each session, to every member.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    model::*,
    stays::{self},
};
use crate::{
    db::schema::{group_members, group_sessions, groups, users},
    error::{AppError, AppResult},
    notify,
    state::AppState,
};

/// Reminders 24 hours and 1 hour before each session, to every member
/// (in-app and email). Returns how many sessions were reminded about.
pub async fn send_reminders(state: &AppState, now: DateTime<Utc>) -> AppResult<usize> {
    let mut conn = state.pool.get().await?;
    let url = state.mailer.public_url.clone();
    let due: Vec<Session> = group_sessions::table
        .filter(
            group_sessions::status
                .eq(SessionStatus::Scheduled)
                .and(group_sessions::starts_at.gt(now))
                .and(group_sessions::starts_at.le(now + Duration::hours(24)))
                .and(
                    group_sessions::reminded_day_at
                        .is_null()
                        .or(group_sessions::reminded_hour_at
                            .is_null()
                            .and(group_sessions::starts_at.le(now + Duration::hours(1)))),
                ),
        )
        .select(Session::as_select())
        .load(&mut conn)
        .await?;
    let count = due.len();
    for session in due {
        let within_hour = session.starts_at <= now + Duration::hours(1);
        conn.transaction::<_, AppError, _>(async |conn| {
            let group_name: String = groups::table
                .find(session.group_id)
                .select(groups::name)
                .first(conn)
                .await?;
            let members: Vec<(Uuid, String)> = group_members::table
                .inner_join(users::table)
                .filter(group_members::group_id.eq(session.group_id))
                .select((users::id, users::time_zone))
                .load(conn)
                .await?;
            let when = if within_hour { "within the hour" } else { "tomorrow" };
            for (member, zone) in members {
                let at = stays::local(session.starts_at, stays::zone(&zone));
                notify::tell(
                    conn,
                    &url,
                    member,
                    notify::Notice {
                        kind: "session_reminder",
                        referral: None,
                        group: Some(session.group_id),
                        session: Some(session.id),
                        message: format!(
                            "\u{201c}{}\u{201d} in \u{201c}{group_name}\u{201d} starts {when}: {at}.",
                            session.title
                        ),
                        email_subject: Some(format!("Reminder: {}", session.title)),
                    },
                    now,
                )
                .await?;
            }
            let target = diesel::update(group_sessions::table.find(session.id));
            if within_hour {
                target
                    .set((
                        group_sessions::reminded_hour_at.eq(now),
                        group_sessions::reminded_day_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            } else {
                target
                    .set(group_sessions::reminded_day_at.eq(now))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await?;
    }
    if count > 0 {
        state.courier_wake.notify_one();
    }
    Ok(count)
}

/// Sends session reminders every 30 seconds.
pub async fn run_reminders(state: AppState) {
    crate::worker::every(
        std::time::Duration::from_secs(30),
        "session reminders",
        || send_reminders(&state, state.clock.now()),
    )
    .await;
}
