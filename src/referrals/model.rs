//! Referral rows and the shapes the API takes and returns.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::state::Status;
use crate::db::schema::{referral_contacts, referral_events, referral_offers, referrals};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referrals)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Referral {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub mode: String,
    pub status: String,
    pub urgency: String,
    pub response_minutes: i32,
    pub age_band: String,
    pub client_state: String,
    pub concerns: Vec<String>,
    pub modality: Option<String>,
    pub insurance: Option<String>,
    pub language: Option<String>,
    pub telehealth_ok: bool,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub note: String,
    pub accepted_by: Option<Uuid>,
    pub accepted_onto: Option<String>,
    pub first_appointment_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
    pub checked_in_at: Option<DateTime<Utc>>,
}

impl Referral {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Expired)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = referral_offers)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Offer {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub referral_id: Uuid,
    pub recipient_id: Uuid,
    /// Order in a cascade (0 first).
    pub rank: i32,
    /// queued | offered | received | accepted | declined | expired | withdrawn
    pub state: String,
    pub offered_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub note: Option<String>,
    #[serde(skip)]
    pub reminded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = referral_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct TimelineEvent {
    #[serde(skip_deserializing)]
    pub id: i64,
    #[serde(skip)]
    pub referral_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub from_status: Option<String>,
    pub to_status: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = referral_contacts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Contact {
    #[serde(skip)]
    pub referral_id: Uuid,
    pub full_name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub preferred_contact: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One named colleague.
    Direct,
    /// A ranked list, one colleague at a time until each deadline.
    Cascade,
    /// Several at once; the first to accept wins.
    Broadcast,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Cascade => "cascade",
            Mode::Broadcast => "broadcast",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Soon,
    Urgent,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Routine => "routine",
            Urgency::Soon => "soon",
            Urgency::Urgent => "urgent",
        }
    }

    /// How long each colleague has to answer (by default urgent 4 h, soon 24 h, routine 72 h).
    pub fn response_time(self, hours: &crate::config::ResponseHours) -> chrono::Duration {
        chrono::Duration::hours(match self {
            Urgency::Urgent => hours.urgent,
            Urgency::Soon => hours.soon,
            Urgency::Routine => hours.routine,
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
}

/// The de-identified description of the client: nothing here names them.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Packet {
    pub age_band: crate::search::AgeBand,
    /// The client's state (two letters).
    pub state: String,
    /// Specialty slugs, 1 to 10.
    pub concerns: Vec<String>,
    pub modality: Option<String>,
    pub insurance: Option<String>,
    pub language: Option<String>,
    #[serde(default = "yes")]
    pub telehealth_ok: bool,
    pub location: Option<Location>,
    pub urgency: Urgency,
    /// Clinical context without identifiers, at most 2,000 characters.
    #[serde(default)]
    pub note: String,
}

fn yes() -> bool {
    true
}

/// Who the client is and how to reach them: released only to the accepter.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub full_name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub preferred_contact: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReferral {
    pub mode: Mode,
    /// direct: exactly one; cascade: 1 to 20 in order (leave empty to use
    /// the match shortlist); broadcast: 1 to 10.
    #[serde(default)]
    pub recipients: Vec<Uuid>,
    pub packet: Packet,
    pub contact: ContactInput,
}

/// A referral as its sender or a colleague it was offered to sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReferralView {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub mode: Mode,
    pub status: Status,
    pub packet: Packet,
    pub accepted_by: Option<Uuid>,
    /// `slot` or `waitlist`.
    pub accepted_onto: Option<String>,
    pub first_appointment_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    /// The sender sees every offer; a colleague sees only their own.
    #[schema(value_type = Vec<Object>)]
    pub offers: Vec<serde_json::Value>,
    /// When the current offer runs out (the viewer's own, for a colleague).
    pub deadline: Option<DateTime<Utc>>,
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    NoCapacity,
    NotAFit,
    Insurance,
    Location,
    Other,
}

impl DeclineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::NoCapacity => "no_capacity",
            DeclineReason::NotAFit => "not_a_fit",
            DeclineReason::Insurance => "insurance",
            DeclineReason::Location => "location",
            DeclineReason::Other => "other",
        }
    }
}
