//! The referral lifecycle (after FHIR Task) and each offer's own. `next` and
//! `OfferState::next` are the only places that know which transitions exist;
//! everything else asks them and gets a 409 for anything they refuse.

use crate::error::{AppError, Code};

crate::text_enum! {
    /// Where a referral stands.
    pub enum Status {
        /// Offered to someone who has not opened it yet.
        Requested = "requested",
        /// The current offer holder has opened it.
        Received = "received",
        Accepted = "accepted",
        /// Declined by everyone it was offered to.
        Declined = "declined",
        /// First appointment booked.
        Scheduled = "scheduled",
        Completed = "completed",
        /// Taken back by the sender.
        Withdrawn = "withdrawn",
        /// Deadlines passed with no one left to offer it to.
        Expired = "expired",
    }
}

/// What happens to a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The offer holder opens it.
    View,
    Accept,
    /// Someone declined or let the deadline pass, and the next colleague gets it.
    OfferNext,
    /// The last colleague declined.
    DeclineLast,
    /// The last deadline passed.
    Expire,
    Schedule,
    Complete,
    Withdraw,
}

impl Status {
    /// Still waiting for someone to take it.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Requested | Status::Received)
    }
}

/// The status after `event`, or a 409 saying why it cannot happen now.
pub fn next(from: Status, event: Event) -> Result<Status, AppError> {
    use Event::*;
    use Status::*;
    let to = match (from, event) {
        (Requested, View) => Some(Received),
        (Received, View) => Some(Received),
        (Requested | Received, Accept) => Some(Accepted),
        (Requested | Received, OfferNext) => Some(Requested),
        (Requested | Received, DeclineLast) => Some(Declined),
        (Requested | Received, Expire) => Some(Expired),
        (Accepted | Scheduled, Schedule) => Some(Scheduled),
        (Scheduled, Complete) => Some(Completed),
        (Requested | Received | Accepted | Scheduled, Withdraw) => Some(Withdrawn),
        _ => None,
    };
    to.ok_or_else(|| {
        let message = match (from, event) {
            (Accepted | Scheduled | Completed, Accept) => {
                "Another colleague has already accepted this referral.".to_string()
            }
            (Withdrawn, _) => "The sender has withdrawn this referral.".to_string(),
            (Expired, _) => "This referral has expired.".to_string(),
            (Completed, _) => "This referral is completed.".to_string(),
            (Accepted, Complete) => {
                "Mark the first appointment scheduled before completing the referral.".to_string()
            }
            _ => format!(
                "A referral that is {} cannot be {}.",
                from.as_str(),
                verb(event)
            ),
        };
        AppError::conflict(Code::InvalidTransition, message)
    })
}

crate::text_enum! {
    /// Where one colleague's offer stands.
    pub enum OfferState {
        /// Later in a cascade: not yet offered (the colleague cannot see it).
        Queued = "queued",
        /// Offered, not yet opened.
        Offered = "offered",
        /// Opened by the colleague.
        Received = "received",
        Accepted = "accepted",
        Declined = "declined",
        /// The deadline passed without an answer.
        Expired = "expired",
        /// Closed without an answer: the sender withdrew, or another colleague accepted.
        Withdrawn = "withdrawn",
    }
}

/// What happens to an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferEvent {
    /// A cascade reaches this colleague.
    Offer,
    /// The colleague opens it.
    Open,
    Accept,
    Decline,
    /// The deadline passes.
    Lapse,
    /// The referral is withdrawn or taken by someone else.
    Close,
}

impl OfferState {
    /// Offered and not yet answered: the colleague may accept or decline.
    pub const ANSWERABLE: [OfferState; 2] = [OfferState::Offered, OfferState::Received];
    /// Not yet over: answerable, or waiting its turn in a cascade.
    pub const PENDING: [OfferState; 3] = [
        OfferState::Queued,
        OfferState::Offered,
        OfferState::Received,
    ];

    /// The colleague still follows the referral: holding the offer or having accepted it.
    pub const SEEING: [OfferState; 3] = [
        OfferState::Offered,
        OfferState::Received,
        OfferState::Accepted,
    ];

    pub fn is_answerable(self) -> bool {
        Self::ANSWERABLE.contains(&self)
    }

    pub fn is_pending(self) -> bool {
        Self::PENDING.contains(&self)
    }

    /// The state after `event`, or a 409 `offer_closed` when the offer can no
    /// longer take it.
    pub fn next(self, event: OfferEvent) -> Result<OfferState, AppError> {
        use OfferEvent::*;
        use OfferState::*;
        match (self, event) {
            (Queued, Offer) => Ok(Offered),
            (Offered | Received, Open) => Ok(Received),
            (Offered | Received, Accept) => Ok(Accepted),
            (Offered | Received, Decline) => Ok(Declined),
            (Offered | Received, Lapse) => Ok(Expired),
            (Queued | Offered | Received, Close) => Ok(Withdrawn),
            (state, _) => Err(AppError::conflict(
                Code::OfferClosed,
                format!("Your offer for this referral is {state} and can no longer be answered."),
            )),
        }
    }
}

fn verb(event: Event) -> &'static str {
    match event {
        Event::View => "viewed",
        Event::Accept => "accepted",
        Event::OfferNext => "offered to the next colleague",
        Event::DeclineLast => "declined",
        Event::Expire => "expired",
        Event::Schedule => "scheduled",
        Event::Complete => "completed",
        Event::Withdraw => "withdrawn",
    }
}

#[cfg(test)]
mod tests {
    use super::{Event::*, Status::*, *};

    #[test]
    fn the_happy_path_runs_from_request_to_completion() {
        let mut s = Requested;
        for (event, expected) in [
            (View, Received),
            (Accept, Accepted),
            (Schedule, Scheduled),
            (Schedule, Scheduled),
            (Complete, Completed),
        ] {
            s = next(s, event).unwrap();
            assert_eq!(s, expected);
        }
    }

    #[test]
    fn everything_else_is_refused() {
        let all_events = [
            View,
            Accept,
            OfferNext,
            DeclineLast,
            Expire,
            Schedule,
            Complete,
            Withdraw,
        ];
        let allowed = |from, event| {
            matches!(
                (from, event),
                (
                    Requested | Received,
                    View | Accept | OfferNext | DeclineLast | Expire | Withdraw
                ) | (Accepted, Schedule | Withdraw)
                    | (Scheduled, Schedule | Complete | Withdraw)
            )
        };
        for from in [
            Requested, Received, Accepted, Declined, Scheduled, Completed, Withdrawn, Expired,
        ] {
            for event in all_events {
                let result = next(from, event);
                assert_eq!(result.is_ok(), allowed(from, event), "{from:?} + {event:?}");
                if let Err(e) = result {
                    assert_eq!(e.status.as_u16(), 409);
                }
            }
        }
    }

    #[test]
    fn an_offer_is_answered_once() {
        use super::{OfferEvent, OfferState};
        let offered = OfferState::Queued.next(OfferEvent::Offer).unwrap();
        assert_eq!(offered, OfferState::Offered);
        assert_eq!(
            offered.next(OfferEvent::Open).unwrap(),
            OfferState::Received
        );
        let accepted = offered.next(OfferEvent::Accept).unwrap();
        for event in [
            OfferEvent::Accept,
            OfferEvent::Decline,
            OfferEvent::Lapse,
            OfferEvent::Close,
        ] {
            let refused = accepted.next(event).unwrap_err();
            assert_eq!(refused.code, crate::error::Code::OfferClosed);
        }
        assert!(OfferState::Queued.next(OfferEvent::Accept).is_err());
        assert!(OfferState::Queued.is_pending() && !OfferState::Queued.is_answerable());
    }

    #[test]
    fn a_second_accept_is_told_it_is_taken() {
        let error = next(Accepted, Accept).unwrap_err();
        assert!(error.message.contains("already accepted"));
        assert!(Status::parse("scheduled").is_some_and(|s| !s.is_open()));
    }
}
