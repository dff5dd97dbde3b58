//! Failed sign-in counters, kept in PostgreSQL so that every instance
//! enforces the same limit: per account and address pair (pauses the
//! attacker's address, never the owner's), per address (one address guessing
//! many accounts), and per account (a ceiling that slows a guess from
//! anywhere new once very many addresses have failed).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    config::LoginLimits,
    db::{Reuse, schema::login_throttle},
};

pub fn account_key(email: &str) -> String {
    format!("email:{email}")
}

pub fn pair_key(email: &str, ip: Option<&str>) -> String {
    format!("pair:{email}|{}", ip.unwrap_or("-"))
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Seconds until the first of these keys unlocks, when any is locked now.
pub async fn locked_for(
    mut conn: &AsyncPgConnection,
    keys: &[String],
    now: DateTime<Utc>,
) -> QueryResult<Option<u64>> {
    let until: Option<DateTime<Utc>> = login_throttle::table
        .filter(login_throttle::key.eq_any(keys))
        .filter(login_throttle::locked_until.gt(now))
        .select(diesel::dsl::max(login_throttle::locked_until))
        .first::<Option<DateTime<Utc>>>(&mut conn)
        .await?;
    Ok(until.map(|u| (u - now).num_seconds().max(1) as u64))
}

/// Counts one failure against `key`; once `limit` is reached in the window,
/// each further failure locks it for `lock_for`.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    key: &str,
    limit: i32,
    lock_for: std::time::Duration,
    limits: &LoginLimits,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let window_start = now - chrono::Duration::from_std(limits.window).unwrap_or_default();
    let lock_until = now + chrono::Duration::from_std(lock_for).unwrap_or_default();
    use diesel::dsl::sql;
    use diesel::sql_types::{Integer, Nullable, Timestamptz};
    diesel::insert_into(login_throttle::table)
        .values((
            login_throttle::key.eq(key),
            login_throttle::failures.eq(1),
            login_throttle::window_started_at.eq(now),
            login_throttle::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .on_conflict(login_throttle::key)
        .do_update()
        .set((
            login_throttle::failures.eq(sql::<Integer>(
                "CASE WHEN login_throttle.window_started_at < ",
            )
            .bind::<Timestamptz, _>(window_start)
            .sql(" THEN 1 ELSE login_throttle.failures + 1 END")),
            login_throttle::window_started_at.eq(sql::<Timestamptz>(
                "CASE WHEN login_throttle.window_started_at < ",
            )
            .bind::<Timestamptz, _>(window_start)
            .sql(" THEN ")
            .bind::<Timestamptz, _>(now)
            .sql(" ELSE login_throttle.window_started_at END")),
            login_throttle::locked_until.eq(sql::<Nullable<Timestamptz>>(
                "CASE WHEN login_throttle.window_started_at >= ",
            )
            .bind::<Timestamptz, _>(window_start)
            .sql(" AND login_throttle.failures + 1 >= ")
            .bind::<Integer, _>(limit)
            .sql(" THEN ")
            .bind::<Timestamptz, _>(lock_until)
            .sql(" ELSE login_throttle.locked_until END")),
        ))
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// A successful sign-in clears its pair's counter (not the address's or the
/// account's: those count what others tried).
pub async fn clear(mut conn: &AsyncPgConnection, key: &str) -> QueryResult<()> {
    diesel::delete(login_throttle::table.filter(login_throttle::key.eq(key)))
        .reused()
        .execute(&mut conn)
        .await?;
    Ok(())
}
