//! Sessions as stored and as shown, with their kinds, statuses and the
//! actions that move them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    audit,
    auth::users::Person,
    db::schema::group_sessions,
    error::{AppError, AppResult, Code},
};

crate::text_enum! {
    /// What a session is for; it decides what kind of hours its attendance counts as.
    pub enum SessionKind {
        GroupSupervision = "group_supervision",
        PeerConsultation = "peer_consultation",
    }
}

crate::text_enum! {
    /// Where a session stands.
    pub enum SessionStatus {
        Scheduled = "scheduled",
        Live = "live",
        Ended = "ended",
        Cancelled = "cancelled",
    }
}

/// What its host does to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    Start,
    End,
    Cancel,
    /// Only those present may enter the room while it is locked.
    Lock,
    Unlock,
}

impl SessionStatus {
    /// Upcoming in lists: not yet over.
    pub const UPCOMING: [SessionStatus; 2] = [SessionStatus::Scheduled, SessionStatus::Live];
    /// Past in lists.
    pub const PAST: [SessionStatus; 2] = [SessionStatus::Ended, SessionStatus::Cancelled];

    /// The status after `action`, or a 409 saying why it cannot happen now.
    /// Locking and unlocking keep a live session live.
    pub fn next(self, action: SessionAction) -> AppResult<SessionStatus> {
        use SessionAction::*;
        use SessionStatus::*;
        match (self, action) {
            (Scheduled, Start) => Ok(Live),
            (Live, End) => Ok(Ended),
            (Scheduled, Cancel) => Ok(Cancelled),
            (Live, Lock | Unlock) => Ok(Live),
            (_, Lock | Unlock) => Err(AppError::conflict(
                Code::InvalidTransition,
                "Only a live session's room can be locked or unlocked.",
            )),
            (from, action) => {
                let to = match action {
                    Start => Live,
                    End => Ended,
                    _ => Cancelled,
                };
                Err(AppError::conflict(
                    Code::InvalidTransition,
                    format!("This session is {from}; it cannot become {to}."),
                ))
            }
        }
    }
}

impl SessionAction {
    pub fn audited_as(self) -> audit::Action {
        match self {
            SessionAction::Start => audit::Action::SessionStarted,
            SessionAction::End => audit::Action::SessionEnded,
            SessionAction::Cancel => audit::Action::SessionCancelled,
            SessionAction::Lock => audit::Action::SessionLocked,
            SessionAction::Unlock => audit::Action::SessionUnlocked,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = group_sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Session {
    pub id: Uuid,
    pub group_id: Uuid,
    pub host_id: Uuid,
    pub series_id: Option<Uuid>,
    pub title: String,
    pub agenda: String,
    pub kind: SessionKind,
    pub starts_at: DateTime<Utc>,
    pub planned_minutes: i32,
    pub ends_at: DateTime<Utc>,
    pub status: SessionStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub locked_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub group_id: Uuid,
    pub group_name: String,
    pub host: Person,
    pub series_id: Option<Uuid>,
    pub title: String,
    pub agenda: String,
    pub kind: SessionKind,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub planned_minutes: i32,
    pub status: SessionStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub locked: bool,
    pub signed_at: Option<DateTime<Utc>>,
    /// The viewer's time zone, and the times in it.
    pub time_zone: String,
    pub starts_at_local: String,
    pub ends_at_local: String,
    /// Attendance once the session has ended: every line for its host, your own for others.
    pub attendance: Vec<AttendanceLine>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendanceLine {
    pub user: Person,
    pub minutes: i32,
    /// What the room measured, before any adjustment.
    pub measured_minutes: i32,
    pub kind: SessionKind,
    pub adjusted_reason: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
    pub signer_name: Option<String>,
    pub signer_license: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{SessionAction::*, SessionStatus::*};

    #[test]
    fn a_session_runs_scheduled_live_ended_and_nothing_else() {
        assert_eq!(Scheduled.next(Start).unwrap(), Live);
        assert_eq!(Live.next(Lock).unwrap(), Live);
        assert_eq!(Live.next(End).unwrap(), Ended);
        assert_eq!(Scheduled.next(Cancel).unwrap(), Cancelled);
        for (from, action) in [
            (Live, Start),
            (Ended, End),
            (Live, Cancel),
            (Scheduled, Lock),
            (Ended, Unlock),
        ] {
            let refused = from.next(action).unwrap_err();
            assert_eq!(refused.status.as_u16(), 409, "{from:?} {action:?}");
        }
        assert!(Ended.next(Start).unwrap_err().message.contains("ended"));
    }
}
