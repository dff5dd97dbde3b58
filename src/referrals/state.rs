//! The referral lifecycle (after FHIR Task). `next` is the only place that
//! knows which transitions exist; everything else asks it and gets a 409 for
//! anything it refuses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Offered to someone who has not opened it yet.
    Requested,
    /// The current offer holder has opened it.
    Received,
    Accepted,
    /// Declined by everyone it was offered to.
    Declined,
    /// First appointment booked.
    Scheduled,
    Completed,
    /// Taken back by the sender.
    Withdrawn,
    /// Deadlines passed with no one left to offer it to.
    Expired,
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
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Received => "received",
            Status::Accepted => "accepted",
            Status::Declined => "declined",
            Status::Scheduled => "scheduled",
            Status::Completed => "completed",
            Status::Withdrawn => "withdrawn",
            Status::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use Status::*;
        [
            Requested, Received, Accepted, Declined, Scheduled, Completed, Withdrawn, Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

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
        AppError::conflict(crate::error::Code::InvalidTransition, message)
    })
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
    fn a_second_accept_is_told_it_is_taken() {
        let error = next(Accepted, Accept).unwrap_err();
        assert!(error.message.contains("already accepted"));
        assert!(Status::parse("scheduled").is_some_and(|s| !s.is_open()));
    }
}
