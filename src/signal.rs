//! Room signals: what one instance tells the others after a change commits
//! (`NOTIFY` on one channel; every instance `LISTEN`s and reads the facts from
//! the tables). Groups and sessions send them, rooms deliver them; this module
//! sits below both so neither imports the other to speak.

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// The channel every instance listens on.
pub const CHANNEL: &str = "kith_rooms";

/// What one instance tells the others, after the change is committed. Small
/// on purpose: the facts are read from the tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Signal {
    /// New messages in a group.
    Message {
        group: Uuid,
    },
    Deleted {
        group: Uuid,
        id: i64,
    },
    /// Someone's connection to a room opened or closed.
    Presence {
        group: Uuid,
        user: Uuid,
    },
    Typing {
        group: Uuid,
        user: Uuid,
        name: String,
    },
    /// Someone's membership changed (role, mute, removal).
    Member {
        group: Uuid,
        user: Uuid,
    },
    /// A session of the group started, ended, was cancelled, locked or unlocked.
    Session {
        group: Uuid,
        session: Uuid,
    },
}

/// Sends a signal to every instance. Call it after the change commits:
/// `NOTIFY` takes a global lock at commit, so it never rides inside a
/// business transaction.
pub async fn announce(conn: &mut AsyncPgConnection, signal: &Signal) -> AppResult<()> {
    let payload = serde_json::to_string(signal).map_err(AppError::internal)?;
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await?;
    Ok(())
}
