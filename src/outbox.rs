//! The search outbox, written side: every change a search could see marks the
//! clinician here in the same transaction; the indexer (`search::indexer`)
//! claims the rows and brings the index in step. Below every feature that
//! changes a profile, so none of them imports search.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::{
    DbPool,
    schema::{profiles, search_outbox},
};

/// Marks a clinician for (re)indexing, inside the caller's transaction.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(search_outbox::table)
        .values((
            search_outbox::user_id.eq(user_id),
            search_outbox::enqueued_at.eq(now),
            search_outbox::next_attempt_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Queues every profile (a new, empty index fills itself through the outbox).
pub async fn enqueue_all(pool: &DbPool, now: DateTime<Utc>) -> anyhow::Result<usize> {
    use diesel::{dsl::sql, sql_types::Timestamptz};
    let at = || sql::<Timestamptz>("").bind::<Timestamptz, _>(now);
    let mut conn = pool.get().await?;
    let queued = diesel::insert_into(search_outbox::table)
        .values(profiles::table.select((profiles::user_id, at(), at())))
        .into_columns((
            search_outbox::user_id,
            search_outbox::enqueued_at,
            search_outbox::next_attempt_at,
        ))
        .execute(&mut conn)
        .await?;
    Ok(queued)
}
