//! A colleague answers an offer: accept (an open slot taken in the same
//! transaction, or a waitlist place; in a broadcast the other offers close)
//! or decline with a reason (a cascade then moves on by itself).

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    model::{AcceptTarget, DeclineReason, Mode, Offer, Referral, ReferralView},
    notices::{ReferralNotice, tell_new_offer},
    state::{self, Event, OfferEvent, OfferState, Status},
    store::{
        answerable_offers, close_pending_offers, lock, move_offer, offer_next, offers_of,
        record_event, timeline_of, transition,
    },
    view::{build_view, view_of, visible_offer},
};
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{referral_offers, referrals},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

/// The current offer of `user`, which must still be answerable.
pub fn my_open_offer(offers: &[Offer], user: Uuid) -> AppResult<&Offer> {
    let offer = visible_offer(offers, user).ok_or_else(super::store::not_found)?;
    if !offer.state.is_answerable() {
        // The offer's own table says why.
        offer.state.next(OfferEvent::Accept)?;
    }
    Ok(offer)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    /// `slot` (default: takes one open slot) or `waitlist`.
    pub onto: Option<AcceptTarget>,
}

/// Accepts the referral: one open slot is taken in the same transaction; with
/// none open, `onto: "waitlist"` accepts onto the waitlist. In a broadcast the
/// other offers are withdrawn.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = AcceptInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 409, body = ErrorBody, description = "taken, closed, or no open slot")))]
#[post("/referrals/{id}/accept")]
pub async fn accept_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AcceptInput>,
) -> AppResult<HttpResponse> {
    auth.require_verified("accept referrals")?;
    let id = path.into_inner();
    let onto = body.0.onto.unwrap_or(AcceptTarget::Slot);
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let referral = lock(conn, id).await?;
            let offers = offers_of(conn, id).await?;
            let offer = my_open_offer(&offers, auth.user_id)?.clone();
            let from = referral.status;
            let to = state::next(from, Event::Accept)?;
            if onto == AcceptTarget::Slot && !crate::profiles::take_open_slot(conn, auth.user_id, now).await? {
                return Err(AppError::conflict(
                    Code::NoOpenSlot,
                    "You have no open slots. Accept onto your waitlist instead, or update your capacity.",
                ));
            }
            // Status, accepter and place in one guarded UPDATE (the status must still be open).
            crate::guarded_update!(
                conn,
                referrals::table,
                id,
                referrals::status,
                from,
                (
                    referrals::status.eq(to),
                    referrals::accepted_by.eq(auth.user_id),
                    referrals::accepted_onto.eq(onto),
                    referrals::updated_at.eq(now),
                    referrals::version.eq(referrals::version + 1),
                ),
                "referral"
            )?;
            record_event(conn, id, Some(auth.user_id), Some(from), to, now, Some(format!("accepted onto {onto}"))).await?;
            move_offer(conn, &offer, OfferEvent::Accept, now).await?;
            // Responsiveness changed: search ranks by it.
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            let others_pending = offers.iter().any(|o| o.id != offer.id && o.state.is_pending());
            if others_pending {
                close_pending_offers(conn, id, Some(offer.id), now).await?;
            }
            ReferralNotice {
                kind: "referral_accepted",
                subject: "Your referral was accepted",
                message: format!(
                    "A colleague accepted your referral{}. They now have the client's contact details and will reach out.",
                    if onto == AcceptTarget::Waitlist { " onto their waitlist" } else { "" }
                ),
            }
            .send(conn, &state.mailer.public_url, referral.sender_id, id, now)
            .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(auth.user_id), audit::Action::ReferralAccepted, "referral", id)
                    .detail(serde_json::json!({"onto": onto})),
            )
            .await?;
            // The reply from what is known: only the timeline is read back.
            let accepted = Referral {
                status: to,
                accepted_by: Some(auth.user_id),
                accepted_onto: Some(onto),
                updated_at: now,
                version: referral.version + 1,
                ..referral
            };
            let offers: Vec<Offer> = offers
                .into_iter()
                .map(|o| {
                    if o.id == offer.id {
                        Offer { state: OfferState::Accepted, responded_at: Some(now), ..o }
                    } else if o.state.is_pending() {
                        Offer { state: OfferState::Withdrawn, ..o }
                    } else {
                        o
                    }
                })
                .collect();
            let timeline = timeline_of(conn, id).await?;
            build_view(&accepted, &offers, timeline, auth.user_id)
        })
        .await
    })
        .await?;
    state.indexer_wake.notify_one();
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineInput {
    pub reason: DeclineReason,
    pub note: Option<super::model::DeclineNote>,
    /// The note identifies no one, although the privacy guard found
    /// something like an identifier in it (recorded in the audit log).
    #[serde(default)]
    pub confirm_no_identifiers: bool,
}

/// After an offer closes without acceptance: the next colleague of a
/// cascade gets it; otherwise the referral ends once no offer is open.
pub async fn move_on(
    conn: &mut AsyncPgConnection,
    url: &str,
    referral: &Referral,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
    ended: Event,
) -> AppResult<()> {
    if referral.mode == Mode::Cascade
        && let Some(next) = offer_next(conn, referral, now).await?
    {
        transition(
            conn,
            referral,
            Event::OfferNext,
            actor,
            now,
            Some("offered to the next colleague".into()),
        )
        .await?;
        tell_new_offer(conn, url, referral, next, now).await?;
        ReferralNotice {
            kind: "referral_moved_on",
            subject: "Your referral moved to the next colleague",
            message: "Your referral was not taken up by the colleague holding it, so it was offered to the next colleague on your list.".into(),
        }
        .send(conn, url, referral.sender_id, referral.id, now)
        .await?;
        return Ok(());
    }
    if answerable_offers(conn, referral.id).await? == 0 {
        let to = transition(conn, referral, ended, actor, now, None).await?;
        let notice = if to == Status::Expired {
            ReferralNotice {
                kind: "referral_expired",
                subject: "Your referral expired",
                message: "No colleague answered your referral in time and no one is left to offer it to. You can send it again to others.".into(),
            }
        } else {
            ReferralNotice {
                kind: "referral_declined",
                subject: "Your referral was declined",
                message: "Every colleague you offered your referral to has declined it. You can send it again to others.".into(),
            }
        };
        notice
            .send(conn, url, referral.sender_id, referral.id, now)
            .await?;
    }
    Ok(())
}

/// Declines with a reason. A cascade moves on to the next colleague.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = DeclineInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/decline")]
pub async fn decline_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<DeclineInput>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let input = body.0;
    let note = input
        .note
        .clone()
        .map(String::from)
        .filter(|n| !n.is_empty());
    let overridden = crate::privacy::Travelling::new()
        .field("note", note.as_deref())
        .check(input.confirm_no_identifiers)?;
    let now = state.clock.now();
    let url = state.mailer.public_url.as_str();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let referral = lock(conn, id).await?;
            let offers = offers_of(conn, id).await?;
            let offer = my_open_offer(&offers, auth.user_id)?;
            state::next(referral.status, Event::DeclineLast)?;
            let to = offer.state.next(OfferEvent::Decline)?;
            crate::guarded_update!(
                conn,
                referral_offers::table,
                offer.id,
                referral_offers::state,
                offer.state,
                (
                    referral_offers::state.eq(to),
                    referral_offers::responded_at.eq(now),
                    referral_offers::closed_at.eq(now),
                    referral_offers::reason.eq(input.reason),
                    referral_offers::note.eq(&note),
                ),
                "offer"
            )?;
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            crate::privacy::record_override(
                conn,
                now,
                &meta,
                auth.user_id,
                ("referral", id.to_string()),
                overridden.clone(),
            )
            .await?;
            record_event(
                conn,
                id,
                Some(auth.user_id),
                Some(referral.status),
                referral.status,
                now,
                Some(format!("declined: {}", input.reason)),
            )
            .await?;
            ReferralNotice {
                kind: "referral_declined_by_one",
                subject: "A colleague declined your referral",
                message: format!(
                    "A colleague declined your referral ({}).",
                    input.reason.as_str().replace('_', " ")
                ),
            }
            .send(conn, url, referral.sender_id, id, now)
            .await?;
            move_on(
                conn,
                url,
                &referral,
                Some(auth.user_id),
                now,
                Event::DeclineLast,
            )
            .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::ReferralDeclined,
                    "referral",
                    id,
                ),
            )
            .await?;
            let referral = lock(conn, id).await?;
            // The decliner keeps seeing their own (closed) offer.
            view_of(conn, &referral, auth.user_id).await
        })
        .await
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(view))
}
