//! Sign-ins (refresh-token families) and the per-instance cache that lets the
//! access-token check skip the database on most requests. A revocation on this
//! instance applies at once; on another instance within `CACHE_TTL`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::role::Role;
use crate::{
    db::{
        DbPool, Reuse,
        schema::{auth_sessions, users},
    },
    error::AppResult,
};

pub const CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SessionStatus {
    pub user_id: Uuid,
    pub role: Role,
    /// The account's email address is proved.
    pub verified: bool,
    /// This sign-in proved a second factor.
    pub second_factor: bool,
    pub active: bool,
}

#[derive(Clone)]
pub struct SessionCache {
    cache: moka::future::Cache<Uuid, SessionStatus>,
    clock: crate::clock::Clock,
}

impl SessionCache {
    pub fn new(clock: crate::clock::Clock) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(CACHE_TTL)
                .support_invalidation_closures()
                .build(),
            clock,
        }
    }

    /// The sign-in's state: from the cache, else from PostgreSQL.
    pub async fn status(
        &self,
        pool: &DbPool,
        session_id: Uuid,
    ) -> AppResult<Option<SessionStatus>> {
        if let Some(hit) = self.cache.get(&session_id).await {
            return Ok(Some(hit));
        }
        let mut conn = pool.get().await?;
        let row = auth_sessions::table
            .inner_join(users::table)
            .filter(auth_sessions::id.eq(session_id))
            .select((
                users::id,
                users::role,
                users::email_verified_at.is_not_null(),
                users::disabled_at,
                auth_sessions::revoked_at,
                auth_sessions::expires_at,
                auth_sessions::second_factor_at.is_not_null(),
            ))
            .first::<(
                Uuid,
                Role,
                bool,
                Option<DateTime<Utc>>,
                Option<DateTime<Utc>>,
                DateTime<Utc>,
                bool,
            )>(&mut conn)
            .await
            .optional()?;
        let Some((user_id, role, verified, disabled_at, revoked_at, expires_at, second_factor)) =
            row
        else {
            return Ok(None);
        };
        let status = SessionStatus {
            user_id,
            role,
            verified,
            second_factor,
            active: disabled_at.is_none() && revoked_at.is_none() && expires_at > self.clock.now(),
        };
        self.cache.insert(session_id, status.clone()).await;
        Ok(Some(status))
    }

    pub async fn forget(&self, session_id: Uuid) {
        self.cache.invalidate(&session_id).await;
    }

    /// Drops every cached sign-in (after a user-wide revocation, a role change
    /// or a verified address).
    pub fn forget_user(&self, user_id: Uuid) {
        let cache = self.cache.clone();
        // moka evaluates the predicate lazily; entries of this user vanish at once for readers.
        let _ = cache.invalidate_entries_if(move |_, status| status.user_id == user_id);
    }
}

/// Whether `user` ever signed in from `ip` (among the sign-ins still kept).
pub async fn signed_in_from(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    ip: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        auth_sessions::table.filter(
            auth_sessions::user_id
                .eq(user_id)
                .and(auth_sessions::ip.eq(ip)),
        ),
    ))
    .get_result(conn)
    .await
}

/// A sign-in about to start.
pub struct NewSignIn<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub now: DateTime<Utc>,
    pub max_ttl: chrono::Duration,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// It proved a second factor (privileged routes need that).
    pub second_factor: bool,
}

/// Starts a sign-in. Takes a shared connection so the caller can pipeline
/// its first refresh token beside it.
pub async fn create(mut conn: &AsyncPgConnection, new: NewSignIn<'_>) -> QueryResult<()> {
    diesel::insert_into(auth_sessions::table)
        .values((
            auth_sessions::id.eq(new.id),
            auth_sessions::user_id.eq(new.user_id),
            auth_sessions::created_at.eq(new.now),
            auth_sessions::expires_at.eq(new.now + new.max_ttl),
            auth_sessions::ip.eq(new.ip),
            auth_sessions::user_agent.eq(new.user_agent),
            auth_sessions::second_factor_at.eq(new.second_factor.then_some(new.now)),
        ))
        .reused()
        .execute(&mut conn)
        .await?;
    Ok(())
}

pub async fn revoke(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> QueryResult<usize> {
    diesel::update(
        auth_sessions::table.filter(
            auth_sessions::id
                .eq(session_id)
                .and(auth_sessions::revoked_at.is_null()),
        ),
    )
    .set((
        auth_sessions::revoked_at.eq(now),
        auth_sessions::revoked_reason.eq(reason),
    ))
    .reused()
    .execute(conn)
    .await
}

/// Marks a sign-in as having proved a second factor (it just confirmed one).
pub async fn mark_second_factor(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(auth_sessions::table.find(session_id))
        .set(auth_sessions::second_factor_at.eq(now))
        .execute(conn)
        .await
}

/// Ends every sign-in of a user but `keep` (a second factor turned on).
pub async fn revoke_others(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    keep: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> QueryResult<usize> {
    diesel::update(
        auth_sessions::table.filter(
            auth_sessions::user_id
                .eq(user_id)
                .and(auth_sessions::id.ne(keep))
                .and(auth_sessions::revoked_at.is_null()),
        ),
    )
    .set((
        auth_sessions::revoked_at.eq(now),
        auth_sessions::revoked_reason.eq(reason),
    ))
    .reused()
    .execute(conn)
    .await
}

/// Ends every sign-in of a user (logout everywhere, disabling, password change).
pub async fn revoke_all(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
    reason: &str,
) -> QueryResult<usize> {
    // No sign-in has the nil id.
    revoke_others(conn, user_id, Uuid::nil(), now, reason).await
}
