//! What a viewer may see of a referral: its sender every offer; a colleague
//! it was offered to, their own offer; anyone else (a colleague still queued
//! in a cascade included) nothing, as a 404.

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::{
    model::{Offer, OfferView, Referral, ReferralView, TimelineEvent},
    state::OfferState,
    store::{not_found, offers_of, timeline_of},
};
use crate::error::AppResult;

/// The viewer's own offer, once it has reached them.
pub fn visible_offer(offers: &[Offer], user: Uuid) -> Option<&Offer> {
    offers
        .iter()
        .find(|o| o.recipient_id == user && o.state != OfferState::Queued)
}

/// The sender, or a colleague it reached; a 404 for anyone else.
pub fn check_party(referral: &Referral, offers: &[Offer], viewer: Uuid) -> AppResult<()> {
    if referral.is_sender(viewer) || visible_offer(offers, viewer).is_some() {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// Reads what `viewer` may see of `referral`.
pub async fn view_of(
    conn: &mut AsyncPgConnection,
    referral: &Referral,
    viewer: Uuid,
) -> AppResult<ReferralView> {
    let offers = offers_of(conn, referral.id).await?;
    check_party(referral, &offers, viewer)?;
    let timeline = timeline_of(conn, referral.id).await?;
    build_view(referral, &offers, timeline, viewer)
}

/// What `viewer` may see, from rows already read.
pub fn build_view(
    referral: &Referral,
    offers: &[Offer],
    timeline: Vec<TimelineEvent>,
    viewer: Uuid,
) -> AppResult<ReferralView> {
    check_party(referral, offers, viewer)?;
    let is_sender = referral.is_sender(viewer);
    let mine = visible_offer(offers, viewer);
    let shown: Vec<&Offer> = if is_sender {
        offers.iter().collect()
    } else {
        mine.into_iter().collect()
    };
    let deadline = if is_sender {
        offers
            .iter()
            .filter(|o| o.state.is_answerable())
            .filter_map(|o| o.deadline)
            .min()
    } else {
        mine.and_then(|o| o.deadline)
    };
    Ok(ReferralView {
        id: referral.id,
        sender_id: referral.sender_id,
        mode: referral.mode,
        status: referral.status,
        packet: referral.packet(),
        accepted_by: referral.accepted_by,
        accepted_onto: referral.accepted_onto,
        first_appointment_at: referral.first_appointment_at,
        outcome: referral.outcome.clone(),
        offers: shown.into_iter().map(OfferView::from).collect(),
        deadline,
        timeline,
        created_at: referral.created_at,
        updated_at: referral.updated_at,
    })
}
