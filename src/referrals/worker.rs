//! The referral worker: closes offers whose deadline passed (a cascade moves
//! on, a referral with no one left expires), reminds a colleague two hours
//! before their deadline, and asks a sender to check in 14 days after an
//! acceptance with no appointment. Safe on several instances.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    notices::ReferralNotice,
    respond::move_on,
    state::{Event, OfferState, Status},
    store::lock,
};
use crate::{
    audit,
    db::{
        Reuse,
        schema::{referral_offers, referrals},
    },
    error::AppError,
    http::RequestMeta,
    state::AppState,
};

/// Closes offers whose deadline passed: a cascade moves on, a referral with
/// no one left expires. Run by the referral worker; safe on several instances.
pub async fn sweep_deadlines(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let url = state.mailer.public_url.as_str();
    let mut conn = state.pool.get().await?;
    let due: Vec<(i64, Uuid, Uuid)> = referral_offers::table
        .filter(
            referral_offers::state
                .eq_any(OfferState::ANSWERABLE)
                .and(referral_offers::deadline.le(now)),
        )
        .select((
            referral_offers::id,
            referral_offers::referral_id,
            referral_offers::recipient_id,
        ))
        .limit(500)
        .load(&mut conn)
        .await?;
    let mut moved = 0;
    for (offer, referral_id, recipient) in due {
        let done = conn
            .transaction::<_, AppError, _>(async |conn| {
                let referral = lock(conn, referral_id).await?;
                // Another instance may have closed it since it was read: then nothing is done.
                let expired = diesel::update(
                    referral_offers::table.filter(
                        referral_offers::id
                            .eq(offer)
                            .and(referral_offers::state.eq_any(OfferState::ANSWERABLE)),
                    ),
                )
                .set((
                    referral_offers::state.eq(OfferState::Expired),
                    referral_offers::responded_at.eq(now),
                    referral_offers::closed_at.eq(now),
                ))
                .reused()
                .execute(conn)
                .await?;
                if expired == 1 {
                    // A lapsed deadline counts against responsiveness, which search ranks by.
                    crate::outbox::enqueue(conn, recipient, now).await?;
                    let meta = RequestMeta::default();
                    let event = audit::Event::new(
                        None,
                        audit::Action::ReferralOfferExpired,
                        "referral",
                        referral_id,
                    )
                    .detail(serde_json::json!({"recipient": recipient}));
                    audit::record(conn, now, &meta, event).await?;
                    if referral.status.is_open() {
                        move_on(conn, url, &referral, None, now, Event::Expire).await?;
                    }
                }
                Ok(expired)
            })
            .await?;
        moved += done;
    }
    send_reminders(&mut conn, url, now).await?;
    state.courier_wake.notify_one();
    Ok(moved)
}

/// Two hours before an offer's deadline, its holder is reminded once; 14
/// days after acceptance with no appointment, the sender is asked to check in.
async fn send_reminders(
    conn: &mut AsyncPgConnection,
    url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    conn.transaction::<_, AppError, _>(async |conn| {
        let due: Vec<(i64, Uuid, Uuid)> = referral_offers::table
            .filter(referral_offers::state.eq_any(OfferState::ANSWERABLE))
            .filter(referral_offers::reminded_at.is_null())
            .filter(referral_offers::deadline.le(now + chrono::Duration::hours(2)))
            .select((
                referral_offers::id,
                referral_offers::referral_id,
                referral_offers::recipient_id,
            ))
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        for (offer, referral, recipient) in due {
            diesel::update(referral_offers::table.find(offer))
                .set(referral_offers::reminded_at.eq(now))
                .reused()
                .execute(conn)
                .await?;
            ReferralNotice {
                kind: "offer_reminder",
                subject: "Reminder: a referral is waiting for your answer",
                message: "A referral offered to you reaches its deadline within two hours. Please accept or decline so the client is not kept waiting.".into(),
            }
            .send(conn, url, recipient, referral, now)
            .await?;
        }
        let stale: Vec<(Uuid, Uuid)> = referrals::table
            .filter(referrals::status.eq(Status::Accepted))
            .filter(referrals::checked_in_at.is_null())
            .filter(referrals::updated_at.le(now - chrono::Duration::days(14)))
            .select((referrals::id, referrals::sender_id))
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        for (referral, sender) in stale {
            diesel::update(referrals::table.find(referral))
                .set(referrals::checked_in_at.eq(now))
                .reused()
                .execute(conn)
                .await?;
            ReferralNotice {
                kind: "referral_check_in",
                subject: "Checking in on your referral",
                message: "Two weeks ago a colleague accepted your referral, and no first appointment has been recorded yet. You may want to check in with them.".into(),
            }
            .send(conn, url, sender, referral, now)
            .await?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// The referral worker: deadlines, reminders and check-ins every 30 seconds.
pub async fn run_worker(state: AppState) {
    crate::worker::every(
        Duration::from_secs(30),
        "referral deadline sweep",
        || async {
            let now = state.clock.now();
            sweep_deadlines(&state, now).await?;
            let mut conn = state.pool.get().await?;
            let retention = state.settings.contact_retention;
            while super::contact::purge_closed(&mut conn, retention, now).await? == 500 {}
            Ok::<_, anyhow::Error>(())
        },
    )
    .await;
}
