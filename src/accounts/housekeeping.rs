//! Housekeeping of what sign-in leaves behind: refresh tokens, ended
//! sign-ins, reset and verification links, code-step challenges, login
//! counters and sent mail
//! (which carried those links) are kept as long as they can matter (theft
//! detection, the list of sign-ins, the audit of a reset, a retry of a
//! failed delivery), then deleted; idle per-address limits are forgotten.
//! Run hourly by a worker; safe on several instances.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::{
    db::{
        DbPool,
        schema::{
            auth_sessions, email_outbox, email_verifications, login_throttle, password_resets,
            refresh_tokens, sign_in_challenges, ws_tickets,
        },
    },
    error::AppResult,
};

/// How long an expired or ended row is kept before it goes.
pub const KEEP_FOR: chrono::Duration = chrono::Duration::days(7);

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub refresh_tokens: usize,
    pub sign_ins: usize,
    pub reset_links: usize,
    pub verification_links: usize,
    pub code_challenges: usize,
    pub throttle_rows: usize,
    pub sent_mail: usize,
    pub tickets: usize,
}

/// Deletes what expired or ended more than `KEEP_FOR` before `now`.
pub async fn prune(pool: &DbPool, now: DateTime<Utc>) -> AppResult<Pruned> {
    let before = now - KEEP_FOR;
    let mut conn = pool.get().await?;
    let refresh_tokens =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before)))
            .execute(&mut conn)
            .await?;
    // A sign-in goes once it has ended and its last token is gone; the tokens
    // of one still referenced are kept above, so this never breaks a key.
    let sign_ins = diesel::delete(
        auth_sessions::table
            .filter(
                auth_sessions::expires_at
                    .lt(before)
                    .or(auth_sessions::revoked_at.lt(before)),
            )
            .filter(diesel::dsl::not(diesel::dsl::exists(
                refresh_tokens::table.filter(refresh_tokens::session_id.eq(auth_sessions::id)),
            ))),
    )
    .execute(&mut conn)
    .await?;
    let reset_links = diesel::delete(
        password_resets::table.filter(
            password_resets::expires_at
                .lt(before)
                .or(password_resets::used_at.lt(before)),
        ),
    )
    .execute(&mut conn)
    .await?;
    let verification_links = diesel::delete(
        email_verifications::table.filter(
            email_verifications::expires_at
                .lt(before)
                .or(email_verifications::used_at.lt(before)),
        ),
    )
    .execute(&mut conn)
    .await?;
    let code_challenges =
        diesel::delete(sign_in_challenges::table.filter(sign_in_challenges::expires_at.lt(before)))
            .execute(&mut conn)
            .await?;
    let sent_mail = diesel::delete(email_outbox::table.filter(email_outbox::sent_at.lt(before)))
        .execute(&mut conn)
        .await?;
    let throttle_rows = diesel::delete(
        login_throttle::table
            .filter(login_throttle::window_started_at.lt(before))
            .filter(
                login_throttle::locked_until
                    .is_null()
                    .or(login_throttle::locked_until.lt(now)),
            ),
    )
    .execute(&mut conn)
    .await?;
    let tickets = diesel::delete(ws_tickets::table.filter(ws_tickets::expires_at.lt(before)))
        .execute(&mut conn)
        .await?;
    Ok(Pruned {
        refresh_tokens,
        sign_ins,
        reset_links,
        verification_links,
        code_challenges,
        throttle_rows,
        sent_mail,
        tickets,
    })
}

/// The hourly housekeeping worker.
pub async fn run(
    pool: DbPool,
    clock: crate::clock::Clock,
    address_limits: crate::limits::AddressLimits,
) {
    crate::worker::every(Duration::from_secs(3600), "sign-in housekeeping", || {
        address_limits.forget_idle();
        prune(&pool, clock.now())
    })
    .await;
}
