//! Consultation rooms over websockets. A message is committed to PostgreSQL,
//! then announced with a small `NOTIFY` after the commit; every instance
//! `LISTEN`s, reads what it has not delivered from the table, and hands it to
//! its own connections. So several instances form one chat, a lost listener
//! catches up from the table, and every member sees one order.

pub mod hub;
mod listener;
pub mod protocol;
mod routes;
mod socket;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use uuid::Uuid;

pub use crate::signal::{CHANNEL, Signal, announce};
use crate::{
    db::Reuse,
    db::schema::{messages, room_instances, room_visits, users},
    error::AppResult,
    state::AppState,
};
pub use hub::Hub;
use protocol::{MessageView, Person};
pub use routes::routes;

type MessageRow = (
    i64,
    Uuid,
    Uuid,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn message_view(row: MessageRow) -> MessageView {
    let (id, group_id, author_id, author_name, client_id, body, at, deleted_at) = row;
    MessageView {
        id,
        group_id,
        author: Person {
            id: author_id,
            name: author_name,
        },
        body: deleted_at.is_none().then_some(body),
        at,
        client_id,
        deleted: deleted_at.is_some(),
    }
}

macro_rules! message_columns {
    () => {
        (
            messages::id,
            messages::group_id,
            messages::author_id,
            users::display_name,
            messages::client_id,
            messages::body,
            messages::created_at,
            messages::deleted_at,
        )
    };
}

/// Which messages of a range longer than the limit to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The first ones (catching up in order, page by page).
    Oldest,
    /// The last ones (a replay capped at the newest).
    Newest,
}

/// Messages of a group after `after` (up to and including `upto`), at most
/// `limit` of them from the end `take` names, oldest first.
pub async fn messages_after(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    (after, upto): (i64, i64),
    limit: i64,
    take: Take,
) -> AppResult<Vec<MessageView>> {
    let range = messages::table
        .inner_join(users::table)
        .filter(
            messages::group_id
                .eq(group)
                .and(messages::id.gt(after))
                .and(messages::id.le(upto)),
        )
        .limit(limit)
        .select(message_columns!());
    let mut rows: Vec<MessageRow> = match take {
        Take::Oldest => range.order(messages::id).load(conn).await?,
        Take::Newest => range.order(messages::id.desc()).load(conn).await?,
    };
    if take == Take::Newest {
        rows.reverse();
    }
    Ok(rows.into_iter().map(message_view).collect())
}

/// Messages of a group before `before`, oldest first (a page of history).
pub async fn messages_before(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    before: i64,
    limit: i64,
) -> AppResult<Vec<MessageView>> {
    let mut rows: Vec<MessageRow> = messages::table
        .inner_join(users::table)
        .filter(messages::group_id.eq(group).and(messages::id.lt(before)))
        .order(messages::id.desc())
        .limit(limit)
        .select(message_columns!())
        .load(conn)
        .await?;
    rows.reverse();
    Ok(rows.into_iter().map(message_view).collect())
}

async fn message_by_client_id(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    author: Uuid,
    client_id: &str,
) -> AppResult<Option<MessageView>> {
    let row: Option<MessageRow> = messages::table
        .inner_join(users::table)
        .filter(
            messages::group_id
                .eq(group)
                .and(messages::author_id.eq(author))
                .and(messages::client_id.eq(client_id)),
        )
        .select(message_columns!())
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(message_view))
}

/// The newest message id of a group (0 when it has none).
pub async fn last_message_id(conn: &mut AsyncPgConnection, group: Uuid) -> AppResult<i64> {
    let last: Option<i64> = messages::table
        .filter(messages::group_id.eq(group))
        .select(diesel::dsl::max(messages::id))
        .first(conn)
        .await?;
    Ok(last.unwrap_or(0))
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// What became of a `say`.
pub enum Posted {
    Stored(i64),
    /// The same `client_id` was posted before: this is that message.
    Duplicate(Box<MessageView>),
    NotMember,
    Muted(DateTime<Utc>),
}

/// Stores a message if its author is a member who is not muted, in one
/// statement. Updating the group row first serialises a group's messages,
/// so they commit in id order and "everything after N" never skips one.
pub async fn post(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    author: Uuid,
    client_id: &str,
    body: &str,
    now: DateTime<Utc>,
) -> AppResult<Posted> {
    let stored: Option<Stored> = diesel::sql_query(
        "WITH allowed AS (
             SELECT 1 FROM group_members
              WHERE group_id = $1 AND user_id = $2
                AND (muted_until IS NULL OR muted_until <= $5)
         ), locked AS (
             UPDATE groups SET last_message_at = $5
              WHERE id = $1 AND EXISTS (SELECT 1 FROM allowed)
             RETURNING id
         )
         INSERT INTO messages (group_id, author_id, client_id, body, created_at)
         SELECT id, $2, $3, $4, $5 FROM locked
         ON CONFLICT (group_id, author_id, client_id) DO NOTHING
         RETURNING id",
    )
    .bind::<SqlUuid, _>(group)
    .bind::<SqlUuid, _>(author)
    .bind::<Text, _>(client_id)
    .bind::<Text, _>(body)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(s) = stored {
        return Ok(Posted::Stored(s.id));
    }
    if let Some(existing) = message_by_client_id(conn, group, author, client_id).await? {
        return Ok(Posted::Duplicate(Box::new(existing)));
    }
    match crate::groups::membership(conn, group, author).await? {
        None => Ok(Posted::NotMember),
        Some(m) => match m.muted_at(now) {
            Some(until) => Ok(Posted::Muted(until)),
            // Unmuted in between: the caller may try again.
            None => Ok(Posted::NotMember),
        },
    }
}

/// How long an instance may miss heartbeats before others close its rooms.
fn instance_cutoff(state: &AppState) -> DateTime<Utc> {
    let grace = state.settings.rooms.heartbeat * 3;
    state.clock.now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::seconds(30))
}

/// Who is in a group's room on any live instance.
pub async fn online(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    group: Uuid,
) -> AppResult<Vec<Person>> {
    let live = room_instances::table
        .filter(room_instances::heartbeat_at.gt(instance_cutoff(state)))
        .select(room_instances::id);
    let rows: Vec<(Uuid, String)> = room_visits::table
        .inner_join(users::table)
        .filter(
            room_visits::group_id
                .eq(group)
                .and(room_visits::left_at.is_null())
                .and(room_visits::instance_id.eq_any(live)),
        )
        .select((users::id, users::display_name))
        .distinct()
        .order((users::display_name, users::id))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Person { id, name })
        .collect())
}

/// Whether someone is in a group's room on any live instance, with their name.
pub async fn is_online(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<(Person, bool)> {
    let live = room_instances::table
        .filter(room_instances::heartbeat_at.gt(instance_cutoff(state)))
        .select(room_instances::id);
    let here: bool = diesel::select(diesel::dsl::exists(
        room_visits::table.filter(
            room_visits::group_id
                .eq(group)
                .and(room_visits::user_id.eq(user))
                .and(room_visits::left_at.is_null())
                .and(room_visits::instance_id.eq_any(live)),
        ),
    ))
    .get_result(conn)
    .await?;
    let name: String = users::table
        .find(user)
        .select(users::display_name)
        .first(conn)
        .await?;
    Ok((Person { id: user, name }, here))
}

/// Registers this instance (before it accepts connections) or beats its heart.
pub async fn heartbeat(state: &AppState) -> AppResult<()> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    diesel::insert_into(room_instances::table)
        .values((
            room_instances::id.eq(state.hub.instance),
            room_instances::started_at.eq(now),
            room_instances::heartbeat_at.eq(now),
        ))
        .on_conflict(room_instances::id)
        .do_update()
        .set(room_instances::heartbeat_at.eq(now))
        .execute(&mut conn)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Closed {
    #[diesel(sql_type = SqlUuid)]
    group_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
}

/// Closes the room visits of instances that stopped beating (they left when
/// their heart last beat) and tells everyone who is gone.
pub async fn sweep_dead_instances(state: &AppState) -> AppResult<usize> {
    let mut conn = state.pool.get().await?;
    let closed: Vec<Closed> = diesel::sql_query(
        "WITH dead AS (
             DELETE FROM room_instances WHERE heartbeat_at < $1 RETURNING id, heartbeat_at
         )
         UPDATE room_visits v SET left_at = GREATEST(dead.heartbeat_at, v.joined_at)
           FROM dead
          WHERE v.instance_id = dead.id AND v.left_at IS NULL
         RETURNING v.group_id, v.user_id",
    )
    .bind::<Timestamptz, _>(instance_cutoff(state))
    .load(&mut conn)
    .await?;
    let mut seen = std::collections::HashSet::new();
    for c in &closed {
        if seen.insert((c.group_id, c.user_id)) {
            announce(
                &mut conn,
                &Signal::Presence {
                    group: c.group_id,
                    user: c.user_id,
                },
            )
            .await?;
        }
    }
    diesel::delete(
        crate::db::schema::ws_tickets::table
            .filter(crate::db::schema::ws_tickets::expires_at.lt(state.clock.now())),
    )
    .execute(&mut conn)
    .await?;
    Ok(closed.len())
}

/// Closes this instance's visits when it stops.
pub async fn shut_down(state: &AppState) -> AppResult<()> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let left: Vec<(Uuid, Uuid)> = diesel::update(
        room_visits::table.filter(
            room_visits::instance_id
                .eq(state.hub.instance)
                .and(room_visits::left_at.is_null()),
        ),
    )
    .set(room_visits::left_at.eq(now))
    .returning((room_visits::group_id, room_visits::user_id))
    .reused()
    .get_results(&mut conn)
    .await?;
    diesel::delete(room_instances::table.find(state.hub.instance))
        .execute(&mut conn)
        .await?;
    let mut told = std::collections::HashSet::new();
    for (group, user) in left {
        if told.insert((group, user)) {
            announce(&mut conn, &Signal::Presence { group, user }).await?;
        }
    }
    Ok(())
}

/// The rooms' background work on this instance: the listener, and a keeper
/// that beats the instance's heart and closes rooms of instances that died.
pub async fn run(state: AppState) {
    let keeper = {
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(state.settings.rooms.heartbeat);
            loop {
                tick.tick().await;
                if let Err(e) = heartbeat(&state).await {
                    tracing::warn!(error = %e, "rooms: heartbeat failed");
                }
                if let Err(e) = sweep_dead_instances(&state).await {
                    tracing::warn!(error = %e, "rooms: sweeping dead instances failed");
                }
                state.hub.prune_posts(state.settings.rooms.rate_window);
            }
        }
    };
    tokio::join!(keeper, listener::run(state.clone()));
}
