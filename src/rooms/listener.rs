//! The listener: one dedicated PostgreSQL connection per instance that
//! `LISTEN`s for room signals and turns them into frames for this instance's
//! connections. When the connection is lost it reconnects with backoff and
//! catches up from the tables, so nothing committed meanwhile is missed.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{FutureExt, StreamExt};
use uuid::Uuid;

use super::{
    Signal,
    hub::Cause,
    protocol::{MessageView, ServerFrame},
};
use crate::{db::schema::messages, error::AppResult, state::AppState};

/// Messages read per query when delivering or catching up.
const BATCH: i64 = 500;

/// Name of the listening connection in `pg_stat_activity`, followed by the instance id.
pub const APPLICATION_NAME: &str = "kith-rooms-listener";

pub async fn run(state: AppState) {
    let mut backoff = Duration::from_millis(100);
    // When the listener last lost its connection: tombstones since then are re-sent.
    let mut lost_at: Option<DateTime<Utc>> = None;
    loop {
        let result = listen(&state, &mut lost_at, &mut backoff).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "rooms: listener connection lost; reconnecting");
        }
        lost_at.get_or_insert_with(|| state.clock.now());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn listener_url(url: &str, instance: Uuid) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={APPLICATION_NAME}-{instance}")
}

async fn listen(
    state: &AppState,
    lost_at: &mut Option<DateTime<Utc>>,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(&listener_url(
        state.settings.database_url(),
        state.hub.instance,
    ))
    .await?;
    diesel::sql_query(format!("LISTEN {}", super::CHANNEL))
        .execute(&mut conn)
        .await?;
    // Listening again: read what happened while nobody was.
    catch_up(state, lost_at.take()).await?;
    *backoff = Duration::from_millis(100);
    loop {
        let mut batch = Vec::new();
        {
            let stream = conn.notifications_stream();
            let mut stream = std::pin::pin!(stream);
            match tokio::time::timeout(Duration::from_secs(15), stream.next()).await {
                Err(_quiet) => {}
                Ok(None) => anyhow::bail!("the listening connection closed"),
                Ok(Some(n)) => {
                    batch.push(n?);
                    // Take whatever else is already here, to deliver it in one go.
                    while let Some(Some(n)) = stream.next().now_or_never() {
                        batch.push(n?);
                    }
                }
            }
        }
        if batch.is_empty() {
            // Quiet for a while: make sure the connection is still there.
            diesel::sql_query("SELECT 1").execute(&mut conn).await?;
            continue;
        }
        let signals: Vec<Signal> = batch
            .iter()
            .filter_map(|n| serde_json::from_str(&n.payload).ok())
            .collect();
        if let Err(e) = handle(state, signals).await {
            tracing::warn!(error = %e, "rooms: could not handle signals");
        }
    }
}

async fn handle(state: &AppState, signals: Vec<Signal>) -> AppResult<()> {
    let hub = &state.hub;
    // New messages: one read per group however many signals arrived.
    let mut groups_with_news: Vec<Uuid> = Vec::new();
    for s in &signals {
        if let Signal::Message { group } = s
            && !groups_with_news.contains(group)
        {
            groups_with_news.push(*group);
        }
    }
    for group in groups_with_news {
        deliver_new(state, group).await?;
    }
    for signal in signals {
        match signal {
            Signal::Message { .. } => {}
            Signal::Deleted { group, id } => {
                if hub.cursor(group).is_some() {
                    let frame = ServerFrame::Deleted {
                        group_id: group,
                        id,
                    }
                    .to_text();
                    hub.broadcast(group, None, frame.into());
                }
            }
            Signal::Typing { group, user, name } => {
                if hub.cursor(group).is_some() {
                    let person = super::Person { id: user, name };
                    let frame = ServerFrame::Typing {
                        group_id: group,
                        user: &person,
                    }
                    .to_text();
                    hub.broadcast(group, Some(user), frame.into());
                }
            }
            Signal::Presence { group, user } => {
                if hub.cursor(group).is_some() {
                    let mut conn = state.pool.get().await?;
                    let (person, online) = super::is_online(state, &mut conn, group, user).await?;
                    announce_presence(state, group, person, online);
                }
            }
            Signal::Session { group, session } => {
                if hub.cursor(group).is_some() {
                    let mut conn = state.pool.get().await?;
                    if let Some(s) =
                        crate::groups::sessions::session_state(&mut conn, group, Some(session))
                            .await?
                    {
                        let frame = super::protocol::session_frame(group, &s);
                        hub.broadcast(group, None, frame.into());
                    }
                }
            }
            Signal::Member { group, user } => {
                if hub.local_users(group).contains(&user) {
                    recheck_member(state, group, user, true).await?;
                }
            }
        }
    }
    Ok(())
}

fn announce_presence(state: &AppState, group: Uuid, person: super::Person, online: bool) {
    if state.hub.set_online(group, person.clone(), online) {
        let frame = ServerFrame::PresenceChange {
            group_id: group,
            user: &person,
            online,
        }
        .to_text();
        state.hub.broadcast(group, None, frame.into());
    }
}

/// Tells a member of a change in their standing, or closes their
/// connections when they are no longer a member.
async fn recheck_member(state: &AppState, group: Uuid, user: Uuid, tell: bool) -> AppResult<()> {
    let mut conn = state.pool.get().await?;
    match crate::groups::membership(&mut conn, group, user).await? {
        None => state.hub.close_for(group, user, Cause::Removed),
        Some(m) if tell => {
            let frame = ServerFrame::Membership {
                group_id: group,
                role: m.role,
                muted_until: m.muted_at(state.clock.now()),
            }
            .to_text();
            state.hub.send_to(group, user, frame.into());
        }
        Some(_) => {}
    }
    Ok(())
}

/// Hands a room everything committed after its cursor, in id order.
async fn deliver_new(state: &AppState, group: Uuid) -> AppResult<()> {
    let Some(mut cursor) = state.hub.cursor(group) else {
        return Ok(());
    };
    let mut conn = state.pool.get().await?;
    loop {
        let batch: Vec<MessageView> = super::messages_after(
            &mut conn,
            group,
            (cursor, i64::MAX),
            BATCH,
            super::Take::Oldest,
        )
        .await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        cursor = last.id;
        let frames: Vec<(i64, bytestring::ByteString)> = batch
            .iter()
            .map(|m| (m.id, ServerFrame::Message(m).to_text().into()))
            .collect();
        state.hub.deliver(group, &frames);
        if (batch.len() as i64) < BATCH {
            return Ok(());
        }
    }
}

/// After listening resumes: new messages, tombstones since `lost_at`,
/// presence and membership of everyone connected here.
async fn catch_up(state: &AppState, lost_at: Option<DateTime<Utc>>) -> AppResult<()> {
    for group in state.hub.groups() {
        deliver_new(state, group).await?;
        let mut conn = state.pool.get().await?;
        if let Some(since) = lost_at {
            let deleted: Vec<i64> = messages::table
                .filter(
                    messages::group_id
                        .eq(group)
                        .and(messages::deleted_at.ge(since)),
                )
                .select(messages::id)
                .load(&mut conn)
                .await?;
            for id in deleted {
                let frame = ServerFrame::Deleted {
                    group_id: group,
                    id,
                }
                .to_text();
                state.hub.broadcast(group, None, frame.into());
            }
        }
        let now_online = super::online(state, &mut conn, group).await?;
        let before: HashMap<Uuid, super::Person> = state
            .hub
            .online(group)
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        for person in &now_online {
            if !before.contains_key(&person.id) {
                announce_presence(state, group, person.clone(), true);
            }
        }
        for (id, person) in before {
            if !now_online.iter().any(|p| p.id == id) {
                announce_presence(state, group, person, false);
            }
        }
        for user in state.hub.local_users(group) {
            recheck_member(state, group, user, false).await?;
        }
    }
    Ok(())
}
