//! The referral queries every action shares: locking a referral, reading its
//! offers and timeline, recording an event, the guarded status transition
//! and offering a cascade to its next colleague.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    model::{Offer, Referral, TimelineEvent},
    state::{self, Event, OfferEvent, OfferState, Status},
};
use crate::{
    db::schema::{referral_events, referral_offers, referrals},
    error::{AppError, AppResult},
};

pub fn not_found() -> AppError {
    AppError::not_found("No such referral.")
}

/// Reads a referral without locking it.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Referral> {
    referrals::table
        .find(id)
        .select(Referral::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(not_found)
}

/// Locks the referral row for the rest of the transaction.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Referral> {
    referrals::table
        .find(id)
        .select(Referral::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(not_found)
}

/// Every offer of a referral, in cascade order.
pub async fn offers_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<Offer>> {
    referral_offers::table
        .filter(referral_offers::referral_id.eq(id))
        .order(referral_offers::rank)
        .select(Offer::as_select())
        .load(conn)
        .await
}

/// A referral's timeline, oldest first.
pub async fn timeline_of(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Vec<TimelineEvent>> {
    referral_events::table
        .filter(referral_events::referral_id.eq(id))
        .order(referral_events::id)
        .select(TimelineEvent::as_select())
        .load(conn)
        .await
}

pub async fn record_event(
    conn: &mut AsyncPgConnection,
    referral: Uuid,
    actor: Option<Uuid>,
    from: Option<Status>,
    to: Status,
    at: DateTime<Utc>,
    note: Option<String>,
) -> QueryResult<()> {
    diesel::insert_into(referral_events::table)
        .values((
            referral_events::referral_id.eq(referral),
            referral_events::actor_id.eq(actor),
            referral_events::from_status.eq(from),
            referral_events::to_status.eq(to),
            referral_events::at.eq(at),
            referral_events::note.eq(note),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a referral from its status by `event` with the guarded UPDATE (the
/// status must still be what it was read as), and records the event. 409
/// when it cannot.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    referral: &Referral,
    event: Event,
    actor: Option<Uuid>,
    at: DateTime<Utc>,
    note: Option<String>,
) -> AppResult<Status> {
    let from = referral.status;
    let to = state::next(from, event)?;
    crate::guarded_update!(
        conn,
        referrals::table,
        referral.id,
        referrals::status,
        from,
        (
            referrals::status.eq(to),
            referrals::updated_at.eq(at),
            referrals::version.eq(referrals::version + 1),
        ),
        "referral"
    )?;
    if from != to || event != Event::View {
        record_event(conn, referral.id, actor, Some(from), to, at, note).await?;
    }
    Ok(to)
}

/// Moves one offer by `event`, guarded on the state it was read in.
pub async fn move_offer(
    conn: &mut AsyncPgConnection,
    offer: &Offer,
    event: OfferEvent,
    at: DateTime<Utc>,
) -> AppResult<OfferState> {
    let to = offer.state.next(event)?;
    let answered = matches!(
        event,
        OfferEvent::Accept | OfferEvent::Decline | OfferEvent::Lapse
    );
    crate::guarded_update!(
        conn,
        referral_offers::table,
        offer.id,
        referral_offers::state,
        offer.state,
        (
            referral_offers::state.eq(to),
            referral_offers::responded_at.eq(if answered {
                Some(at)
            } else {
                offer.responded_at
            }),
            referral_offers::closed_at.eq(if to.is_pending() {
                offer.closed_at
            } else {
                Some(at)
            }),
        ),
        "offer"
    )?;
    Ok(to)
}

/// Closes every pending offer of a referral but `keep` (the sender withdrew,
/// or one colleague accepted).
pub async fn close_pending_offers(
    conn: &mut AsyncPgConnection,
    referral: Uuid,
    keep: Option<i64>,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    use crate::db::Reuse;
    diesel::update(
        referral_offers::table.filter(
            referral_offers::referral_id
                .eq(referral)
                .and(referral_offers::id.ne(keep.unwrap_or(-1)))
                .and(referral_offers::state.eq_any(OfferState::PENDING)),
        ),
    )
    .set((
        referral_offers::state.eq(OfferState::Withdrawn),
        referral_offers::closed_at.eq(at),
    ))
    .reused()
    .execute(conn)
    .await
}

/// Offers the referral to the next queued colleague of a cascade; `None`
/// when no one is left.
pub async fn offer_next(
    conn: &mut AsyncPgConnection,
    referral: &Referral,
    now: DateTime<Utc>,
) -> AppResult<Option<Uuid>> {
    let next: Option<Offer> = referral_offers::table
        .filter(
            referral_offers::referral_id
                .eq(referral.id)
                .and(referral_offers::state.eq(OfferState::Queued)),
        )
        .order(referral_offers::rank)
        .select(Offer::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(offer) = next else {
        return Ok(None);
    };
    let to = offer.state.next(OfferEvent::Offer)?;
    crate::guarded_update!(
        conn,
        referral_offers::table,
        offer.id,
        referral_offers::state,
        offer.state,
        (
            referral_offers::state.eq(to),
            referral_offers::offered_at.eq(now),
            referral_offers::deadline.eq(now + referral.response_time()),
        ),
        "offer"
    )?;
    Ok(Some(offer.recipient_id))
}

/// How many offers of a referral can still be answered.
pub async fn answerable_offers(conn: &mut AsyncPgConnection, referral: Uuid) -> QueryResult<i64> {
    referral_offers::table
        .filter(
            referral_offers::referral_id
                .eq(referral)
                .and(referral_offers::state.eq_any(OfferState::ANSWERABLE)),
        )
        .count()
        .get_result(conn)
        .await
}
