//! What a viewer may see of a referral, decided in one place.
//!
//! | viewer | sees |
//! |---|---|
//! | the sender | everything: every offer, the whole timeline, dates and outcome |
//! | a colleague holding the offer (offered, opened) | the packet, the status, their own offer and deadline, the timeline's steps by the sender, themselves and the system |
//! | the colleague who accepted | the same, and the first appointment and the outcome (and the contact, through its own route) |
//! | a colleague whose offer ended (declined, expired, withdrawn) | the packet as offered and that their offer ended: no status, no dates after it ended, no outcome, no other colleague |
//! | a colleague queued in a cascade who was never offered it, anyone else | nothing: 404, whatever happens to the referral later |
//!
//! The client's location is coarsened when the referral is stored (the exact
//! point travels sealed with the contact), so no view holds more than a
//! ~10 km grid cell.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::{
    model::{Offer, OfferView, Referral, ReferralView, TimelineEvent},
    state::OfferState,
    store::{not_found, offers_of, timeline_of},
};
use crate::error::AppResult;

/// Who the viewer is to a referral.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    Sender,
    /// Holds the offer now (offered or opened) or accepted it.
    Colleague(&'a Offer),
    /// Was offered it, and the offer ended without their accepting.
    Ended(&'a Offer),
}

/// The viewer's own offer, once it has reached them (a queued offer never
/// has: `offered_at` is set when a cascade reaches its colleague).
pub fn visible_offer(offers: &[Offer], user: Uuid) -> Option<&Offer> {
    offers
        .iter()
        .find(|o| o.recipient_id == user && o.offered_at.is_some())
}

/// What `viewer` is to `referral`; a 404 for anyone it never reached.
pub fn access<'a>(referral: &Referral, offers: &'a [Offer], viewer: Uuid) -> AppResult<Access<'a>> {
    if referral.is_sender(viewer) {
        return Ok(Access::Sender);
    }
    let offer = visible_offer(offers, viewer).ok_or_else(not_found)?;
    Ok(match offer.state {
        OfferState::Offered | OfferState::Received | OfferState::Accepted => {
            Access::Colleague(offer)
        }
        OfferState::Declined | OfferState::Expired | OfferState::Withdrawn => Access::Ended(offer),
        // Not reached yet (a queued offer has no `offered_at`).
        OfferState::Queued => return Err(not_found()),
    })
}

/// The sender, or a colleague it reached; a 404 for anyone else.
pub fn check_party(referral: &Referral, offers: &[Offer], viewer: Uuid) -> AppResult<()> {
    access(referral, offers, viewer).map(|_| ())
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

/// When an ended offer ended (for offers closed before that was recorded,
/// its answer, else when it was offered).
fn ended_at(offer: &Offer) -> Option<DateTime<Utc>> {
    offer.closed_at.or(offer.responded_at).or(offer.offered_at)
}

/// What `viewer` may see, from rows already read.
pub fn build_view(
    referral: &Referral,
    offers: &[Offer],
    timeline: Vec<TimelineEvent>,
    viewer: Uuid,
) -> AppResult<ReferralView> {
    let access = access(referral, offers, viewer)?;
    // A colleague sees the steps taken by the sender, by themselves and by
    // the system, never another colleague's.
    let steps_for = |until: Option<DateTime<Utc>>| -> Vec<TimelineEvent> {
        timeline
            .iter()
            .filter(|e| {
                e.actor_id
                    .is_none_or(|a| a == viewer || referral.is_sender(a))
            })
            .filter(|e| until.is_none_or(|t| e.at <= t))
            .cloned()
            .collect()
    };
    let full = ReferralView {
        id: referral.id,
        sender_id: referral.sender_id,
        mode: referral.mode,
        status: Some(referral.status),
        packet: referral.packet(),
        accepted_by: referral.accepted_by,
        accepted_onto: referral.accepted_onto,
        first_appointment_at: referral.first_appointment_at,
        outcome: referral.outcome.clone(),
        offers: vec![],
        deadline: None,
        timeline: vec![],
        created_at: referral.created_at,
        updated_at: referral.updated_at,
    };
    Ok(match access {
        Access::Sender => ReferralView {
            offers: offers.iter().map(OfferView::from).collect(),
            deadline: offers
                .iter()
                .filter(|o| o.state.is_answerable())
                .filter_map(|o| o.deadline)
                .min(),
            timeline,
            ..full
        },
        Access::Colleague(offer) => {
            let accepter = referral.is_accepter(viewer);
            ReferralView {
                accepted_by: referral.accepted_by.filter(|_| accepter),
                accepted_onto: referral.accepted_onto.filter(|_| accepter),
                first_appointment_at: referral.first_appointment_at.filter(|_| accepter),
                outcome: referral.outcome.clone().filter(|_| accepter),
                offers: vec![OfferView::from(offer)],
                deadline: offer.deadline.filter(|_| offer.state.is_answerable()),
                timeline: steps_for(None),
                ..full
            }
        }
        Access::Ended(offer) => {
            let ended = ended_at(offer);
            ReferralView {
                status: None,
                accepted_by: None,
                accepted_onto: None,
                first_appointment_at: None,
                outcome: None,
                offers: vec![OfferView::from(offer)],
                deadline: None,
                timeline: steps_for(ended),
                updated_at: ended
                    .unwrap_or(referral.created_at)
                    .min(referral.updated_at),
                ..full
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::{
        referrals::{
            model::{AcceptTarget, Mode, Urgency},
            state::Status,
        },
        search::AgeBand,
    };

    const SENDER: Uuid = Uuid::from_u128(1);
    const VIEWER: Uuid = Uuid::from_u128(2);
    const OTHER: Uuid = Uuid::from_u128(3);
    const STRANGER: Uuid = Uuid::from_u128(4);

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn referral(status: Status, accepted_by: Option<Uuid>) -> Referral {
        Referral {
            id: Uuid::from_u128(99),
            sender_id: SENDER,
            mode: Mode::Cascade,
            status,
            urgency: Urgency::Soon,
            response_minutes: 60,
            age_band: AgeBand::Adult,
            client_state: "IL".into(),
            concerns: vec!["anxiety".into()],
            modality: None,
            insurance: None,
            language: None,
            telehealth_ok: true,
            latitude: Some(41.9),
            longitude: Some(-87.6),
            note: "Panic attacks at work.".into(),
            accepted_by,
            accepted_onto: accepted_by.map(|_| AcceptTarget::Slot),
            first_appointment_at: Some(at(10_000)),
            outcome: Some("Seen twice, going well.".into()),
            idempotency_key: None,
            created_at: at(0),
            updated_at: at(500),
            version: 3,
            checked_in_at: None,
        }
    }

    fn offer(recipient: Uuid, rank: i32, state: OfferState) -> Offer {
        let reached = state != OfferState::Queued;
        Offer {
            id: i64::from(rank),
            referral_id: Uuid::from_u128(99),
            recipient_id: recipient,
            rank,
            state,
            offered_at: reached.then(|| at(1)),
            deadline: reached.then(|| at(61)),
            responded_at: None,
            reason: None,
            note: None,
            reminded_at: None,
            closed_at: (!state.is_pending() && reached).then(|| at(30)),
        }
    }

    fn step(actor: Option<Uuid>, minute: i64, to: Status) -> TimelineEvent {
        TimelineEvent {
            id: minute,
            referral_id: Uuid::from_u128(99),
            actor_id: actor,
            from_status: None,
            to_status: to,
            at: at(minute),
            note: Some(format!("step at {minute}")),
        }
    }

    /// Every status × every state of the viewer's offer × every kind of viewer.
    #[test]
    fn each_viewer_sees_what_their_part_allows_and_no_more() {
        let timeline = vec![
            step(Some(SENDER), 0, Status::Requested),
            step(Some(VIEWER), 5, Status::Received),
            step(Some(OTHER), 40, Status::Received),
            step(None, 45, Status::Requested),
            step(Some(OTHER), 50, Status::Accepted),
        ];
        for &status in Status::ALL {
            for &mine in OfferState::ALL {
                let accepted_by = match (mine, status) {
                    (OfferState::Accepted, _) => Some(VIEWER),
                    (_, Status::Accepted | Status::Scheduled | Status::Completed) => Some(OTHER),
                    _ => None,
                };
                let r = referral(status, accepted_by);
                let offers = [offer(VIEWER, 0, mine), offer(OTHER, 1, OfferState::Offered)];
                let case = format!("{status} / viewer's offer {mine}");

                let sender = build_view(&r, &offers, timeline.clone(), SENDER).expect(&case);
                assert_eq!(sender.status, Some(status), "{case}");
                assert_eq!(sender.offers.len(), 2, "{case}");
                assert_eq!(sender.timeline.len(), timeline.len(), "{case}");
                assert_eq!(sender.outcome, r.outcome, "{case}");

                let stranger = build_view(&r, &offers, timeline.clone(), STRANGER);
                assert!(stranger.is_err(), "{case}: a stranger gets 404");

                let seen = build_view(&r, &offers, timeline.clone(), VIEWER);
                match mine {
                    OfferState::Queued => assert!(seen.is_err(), "{case}: never offered, 404"),
                    OfferState::Offered | OfferState::Received | OfferState::Accepted => {
                        let v = seen.expect(&case);
                        let accepter = mine == OfferState::Accepted;
                        assert_eq!(v.status, Some(status), "{case}");
                        assert_eq!(v.packet.note.as_str(), "Panic attacks at work.", "{case}");
                        assert_eq!(v.offers.len(), 1, "{case}: only their own offer");
                        assert_eq!(v.accepted_by.is_some(), accepter, "{case}");
                        assert_eq!(v.outcome.is_some(), accepter, "{case}");
                        assert_eq!(v.first_appointment_at.is_some(), accepter, "{case}");
                        assert!(
                            v.timeline.iter().all(|e| e.actor_id != Some(OTHER)),
                            "{case}: no other colleague's steps"
                        );
                        assert_eq!(v.timeline.len(), 3, "{case}");
                    }
                    OfferState::Declined | OfferState::Expired | OfferState::Withdrawn => {
                        let v = seen.expect(&case);
                        assert_eq!(v.status, None, "{case}: not what happened next");
                        assert_eq!(v.packet.concerns, vec!["anxiety".to_string()], "{case}");
                        assert_eq!(v.offers.len(), 1, "{case}");
                        assert_eq!(v.offers[0].state, mine, "{case}: that their offer ended");
                        assert_eq!(v.accepted_by, None, "{case}");
                        assert_eq!(v.outcome, None, "{case}");
                        assert_eq!(v.first_appointment_at, None, "{case}");
                        assert_eq!(v.deadline, None, "{case}");
                        assert!(
                            v.timeline.iter().all(|e| e.at <= at(30)),
                            "{case}: nothing after it ended"
                        );
                        assert!(v.updated_at <= at(30), "{case}");
                        assert_eq!(v.timeline.len(), 2, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_queued_colleague_whose_offer_is_withdrawn_unseen_still_gets_404() {
        let r = referral(Status::Accepted, Some(OTHER));
        let mut never = offer(VIEWER, 1, OfferState::Queued);
        never.state = OfferState::Withdrawn;
        never.closed_at = Some(at(30));
        let offers = [offer(OTHER, 0, OfferState::Accepted), never];
        assert!(build_view(&r, &offers, vec![], VIEWER).is_err());
        assert!(check_party(&r, &offers, VIEWER).is_err());
    }
}
