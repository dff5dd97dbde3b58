//! Time in a group's room, as a record: rooms open a visit when a
//! connection enters and close it when it leaves; sessions read the visits to
//! take attendance and to know who was present when a room was locked. It
//! sits below both, so sessions never read the rooms' tables and rooms never
//! import sessions to record attendance.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::{Reuse, schema::room_visits};

/// One stay: who, from when, and until when (still there when `None`).
pub type Visit = (Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// Opens a visit for `user` entering `group`'s room on `instance`.
pub async fn open(
    conn: &mut AsyncPgConnection,
    instance: Uuid,
    group: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<i64> {
    diesel::insert_into(room_visits::table)
        .values((
            room_visits::instance_id.eq(instance),
            room_visits::group_id.eq(group),
            room_visits::user_id.eq(user),
            room_visits::joined_at.eq(at),
        ))
        .returning(room_visits::id)
        .get_result(conn)
        .await
}

/// Closes a visit when its connection leaves.
pub async fn close(conn: &mut AsyncPgConnection, visit: i64, at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(room_visits::table.find(visit))
        .set(room_visits::left_at.eq(at))
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// The visits of `people` to `group`'s room that overlap `[from, to)`.
pub async fn overlapping(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    people: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<Visit>> {
    room_visits::table
        .filter(
            room_visits::group_id
                .eq(group)
                .and(room_visits::joined_at.lt(to))
                .and(
                    room_visits::left_at
                        .is_null()
                        .or(room_visits::left_at.gt(from)),
                )
                .and(room_visits::user_id.eq_any(people)),
        )
        .select((
            room_visits::user_id,
            room_visits::joined_at,
            room_visits::left_at,
        ))
        .load(conn)
        .await
}

/// Whether `user` was in `group`'s room at `at` (having left at most `grace`
/// before it counts as there: a reconnect).
pub async fn present_at(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
    grace: Duration,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        room_visits::table.filter(
            room_visits::group_id
                .eq(group)
                .and(room_visits::user_id.eq(user))
                .and(room_visits::joined_at.le(at))
                .and(
                    room_visits::left_at
                        .is_null()
                        .or(room_visits::left_at.ge(at - grace)),
                ),
        ),
    ))
    .get_result(conn)
    .await
}
