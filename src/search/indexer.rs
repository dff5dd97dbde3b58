//! Keeping the index in step with PostgreSQL. Every change that a search
//! could see writes a `search_outbox` row in the same transaction; indexer
//! workers claim rows with `FOR UPDATE SKIP LOCKED` (so several instances
//! share the work), index the profile as PostgreSQL has it then, and delete
//! the rows. A failure keeps the rows and retries them with backoff, so the
//! index may be late but never misses a change.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{SearchIndex, document};
use crate::outbox::enqueue;
use crate::{
    clock::Clock,
    db::{
        DbPool, Reuse,
        schema::{profiles, search_outbox, users, worker_state},
    },
    profiles::{model::FRESH_FOR_DAYS, taxonomy::Taxonomy},
};

const BATCH: i64 = 500;
const POLL: Duration = Duration::from_millis(100);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_KEY: &str = "search_freshness_sweep";
const SWEEP_LOCK: i64 = 0x6b69_7468_0002;

#[derive(Clone)]
pub struct Indexer {
    pub pool: DbPool,
    pub engine: Arc<dyn SearchIndex>,
    pub taxonomy: Arc<Taxonomy>,
    pub clock: Clock,
    pub wake: Arc<Notify>,
}

/// What one pass of the worker did.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    pub indexed: usize,
    pub failed: usize,
}

impl Indexer {
    /// Claims one batch of due rows and applies it. Safe to run on several instances.
    pub async fn drain_once(&self) -> anyhow::Result<Pass> {
        let now = self.clock.now();
        let mut conn = self.pool.get().await?;
        let pass = conn
            .transaction::<_, anyhow::Error, _>(async |conn| {
                let rows: Vec<(i64, Uuid, i32)> = search_outbox::table
                    .filter(search_outbox::next_attempt_at.le(now))
                    // The due index's own order: a batch reads its rows, never the whole backlog.
                    .order((search_outbox::next_attempt_at, search_outbox::id))
                    .limit(BATCH)
                    .select((search_outbox::id, search_outbox::user_id, search_outbox::attempts))
                    .for_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
                if rows.is_empty() {
                    return Ok(Pass::default());
                }
                let row_ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
                let users: Vec<Uuid> = rows.iter().map(|r| r.1).collect::<HashSet<_>>().into_iter().collect();
                let docs = document::load(conn, &users, &self.taxonomy, now).await?;
                let present: HashSet<Uuid> = docs.iter().map(|d| d.id).collect();
                let deletes: Vec<Uuid> = users.iter().copied().filter(|u| !present.contains(u)).collect();
                match self.engine.apply(docs, deletes).await {
                    Ok(()) => {
                        diesel::delete(search_outbox::table.filter(search_outbox::id.eq_any(&row_ids))).execute(conn).await?;
                        Ok(Pass { indexed: rows.len(), failed: 0 })
                    }
                    Err(error) => {
                        tracing::warn!(%error, rows = rows.len(), engine = self.engine.name(), "indexing failed; will retry");
                        let attempts = rows.iter().map(|r| r.2).max().unwrap_or(0) + 1;
                        diesel::update(search_outbox::table.filter(search_outbox::id.eq_any(&row_ids)))
                            .set((
                                search_outbox::attempts.eq(search_outbox::attempts + 1),
                                search_outbox::next_attempt_at.eq(now + crate::worker::backoff(attempts)),
                                search_outbox::last_error.eq(error.to_string()),
                            ))
                            .reused()
                            .execute(conn)
                            .await?;
                        Ok(Pass { indexed: 0, failed: rows.len() })
                    }
                }
            })
            .await?;
        Ok(pass)
    }

    /// Drains everything due now (tests and tools).
    pub async fn drain(&self) -> anyhow::Result<Pass> {
        let mut total = Pass::default();
        loop {
            let pass = self.drain_once().await?;
            total.indexed += pass.indexed;
            total.failed += pass.failed;
            if pass.indexed == 0 {
                return Ok(total);
            }
        }
    }

    /// Re-indexes profiles whose capacity crossed the 14-day freshness line
    /// since the last sweep (their capacity tier changes with no edit).
    pub async fn sweep_freshness(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut conn = self.pool.get().await?;
        let n = conn
            .transaction::<_, anyhow::Error, _>(async |conn| {
                let locked: bool = diesel::select(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("pg_try_advisory_xact_lock(")
                        .bind::<diesel::sql_types::BigInt, _>(SWEEP_LOCK)
                        .sql(")"),
                )
                .get_result(conn)
                .await?;
                if !locked {
                    return Ok(0);
                }
                let last: Option<String> = worker_state::table
                    .find(SWEEP_KEY)
                    .select(worker_state::value)
                    .first(conn)
                    .await
                    .optional()?;
                let since = last
                    .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                    .map(|d| d.with_timezone(&Utc))
                    .unwrap_or(now - chrono::Duration::minutes(15));
                let fresh_for = chrono::Duration::days(FRESH_FOR_DAYS);
                let crossed: Vec<Uuid> = profiles::table
                    .filter(profiles::capacity_confirmed_at.gt(since - fresh_for))
                    .filter(profiles::capacity_confirmed_at.le(now - fresh_for))
                    .select(profiles::user_id)
                    .load(conn)
                    .await?;
                for id in &crossed {
                    enqueue(conn, *id, now).await?;
                }
                diesel::insert_into(worker_state::table)
                    .values((
                        worker_state::key.eq(SWEEP_KEY),
                        worker_state::value.eq(now.to_rfc3339()),
                        worker_state::updated_at.eq(now),
                    ))
                    .on_conflict(worker_state::key)
                    .do_update()
                    .set((
                        worker_state::value.eq(now.to_rfc3339()),
                        worker_state::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                Ok(crossed.len())
            })
            .await?;
        Ok(n)
    }

    /// The worker: drains the outbox whenever woken or every 100 ms, sweeps
    /// freshness every minute, and follows `kith reindex` switches.
    pub async fn run(self, follow: Option<Arc<super::embedded::EmbeddedEngine>>) {
        let mut settings_applied = false;
        let mut last_sweep = std::time::Instant::now() - SWEEP_EVERY;
        let mut last_follow = std::time::Instant::now();
        loop {
            if !settings_applied {
                match self.engine.apply_settings().await {
                    Ok(()) => settings_applied = true,
                    Err(error) => {
                        tracing::warn!(%error, "could not apply search settings; will retry")
                    }
                }
            }
            if let Some(engine) = &follow
                && last_follow.elapsed() >= Duration::from_secs(1)
            {
                last_follow = std::time::Instant::now();
                match engine.follow_pointer() {
                    Ok(true) => tracing::info!("switched to the rebuilt search index"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "could not open the rebuilt search index"),
                }
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = std::time::Instant::now();
                if let Err(error) = self.sweep_freshness().await {
                    tracing::warn!(%error, "freshness sweep failed");
                }
            }
            match self.drain_once().await {
                Ok(pass) if pass.indexed > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "search outbox pass failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Rebuilds the whole index from PostgreSQL, beside the live one, then
/// re-queues whatever changed while it was being built.
pub async fn reindex(
    pool: &DbPool,
    taxonomy: &Taxonomy,
    clock: &Clock,
    rebuild: impl AsyncFnOnce(Vec<document::ClinicianDoc>) -> super::SearchResult<()>,
) -> anyhow::Result<usize> {
    let started = clock.now();
    let docs = {
        let mut conn = pool.get().await?;
        document::load_all(&mut conn, taxonomy, started).await?
    };
    let count = docs.len();
    rebuild(docs).await?;
    let mut conn = pool.get().await?;
    let changed: Vec<Uuid> = profiles::table
        .inner_join(users::table.on(users::id.eq(profiles::user_id)))
        .filter(
            profiles::updated_at
                .ge(started)
                .or(profiles::capacity_confirmed_at.ge(started))
                .or(profiles::verified_at.ge(started))
                .or(users::updated_at.ge(started)),
        )
        .select(profiles::user_id)
        .load(&mut conn)
        .await?;
    for id in changed {
        enqueue(&mut conn, id, clock.now()).await?;
    }
    Ok(count)
}
