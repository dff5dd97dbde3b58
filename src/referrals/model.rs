//! Referral rows and the shapes the API takes and returns.

use crate::text::Limit;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::state::{OfferState, Status};
use crate::{
    db::schema::{referral_events, referral_offers, referrals},
    search::{AgeBand, Location},
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referrals)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Referral {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub mode: Mode,
    pub status: Status,
    pub urgency: Urgency,
    pub response_minutes: i32,
    pub age_band: AgeBand,
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
    pub accepted_onto: Option<AcceptTarget>,
    pub first_appointment_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
    pub checked_in_at: Option<DateTime<Utc>>,
}

impl Referral {
    pub fn packet(&self) -> Packet {
        Packet {
            age_band: self.age_band,
            state: self.client_state.clone(),
            concerns: self.concerns.clone(),
            modality: self.modality.clone(),
            insurance: self.insurance.clone(),
            language: self.language.clone(),
            telehealth_ok: self.telehealth_ok,
            location: self
                .latitude
                .zip(self.longitude)
                .map(|(lat, lng)| Location { lat, lng }),
            urgency: self.urgency,
            note: ReferralNote::stored(self.note.clone()),
        }
    }

    /// How long each colleague has to answer, fixed when it was sent.
    pub fn response_time(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.response_minutes))
    }

    pub fn is_sender(&self, user: Uuid) -> bool {
        self.sender_id == user
    }

    pub fn is_accepter(&self, user: Uuid) -> bool {
        self.accepted_by == Some(user)
    }
}

/// One colleague's offer of a referral, as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = referral_offers)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Offer {
    pub id: i64,
    pub referral_id: Uuid,
    pub recipient_id: Uuid,
    pub rank: i32,
    pub state: OfferState,
    pub offered_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub reason: Option<DeclineReason>,
    pub note: Option<String>,
    pub reminded_at: Option<DateTime<Utc>>,
    /// When it stopped being pending (answered, lapsed or closed).
    pub closed_at: Option<DateTime<Utc>>,
}

/// An offer as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OfferView {
    pub recipient_id: Uuid,
    /// Order in a cascade (0 first).
    pub rank: i32,
    pub state: OfferState,
    pub offered_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub reason: Option<DeclineReason>,
    pub note: Option<String>,
}

impl From<&Offer> for OfferView {
    fn from(o: &Offer) -> Self {
        Self {
            recipient_id: o.recipient_id,
            rank: o.rank,
            state: o.state,
            offered_at: o.offered_at,
            deadline: o.deadline,
            responded_at: o.responded_at,
            reason: o.reason,
            note: o.note.clone(),
        }
    }
}

/// One step of a referral's timeline.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = referral_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct TimelineEvent {
    #[serde(skip_deserializing)]
    pub id: i64,
    #[serde(skip)]
    pub referral_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

crate::text_enum! {
    /// How a referral reaches colleagues.
    pub enum Mode {
        /// One named colleague.
        Direct = "direct",
        /// A ranked list, one colleague at a time until each deadline.
        Cascade = "cascade",
        /// Several at once; the first to accept wins.
        Broadcast = "broadcast",
    }
}

impl Mode {
    /// How many colleagues a referral of this mode may name.
    pub fn max_recipients(self) -> usize {
        match self {
            Mode::Direct => 1,
            Mode::Cascade => 20,
            Mode::Broadcast => 10,
        }
    }
}

crate::text_enum! {
    /// How soon the client needs care; sets each colleague's deadline.
    pub enum Urgency {
        Routine = "routine",
        Soon = "soon",
        Urgent = "urgent",
    }
}

crate::text_enum! {
    /// Where an accepting colleague takes the client.
    pub enum AcceptTarget {
        /// One of their open slots, taken in the same transaction.
        Slot = "slot",
        /// Their waitlist.
        Waitlist = "waitlist",
    }
}

impl Urgency {
    /// How long each colleague has to answer (by default urgent 4 h, soon 24 h, routine 72 h).
    pub fn response_time(self, hours: &crate::config::ResponseHours) -> chrono::Duration {
        chrono::Duration::hours(match self {
            Urgency::Urgent => hours.urgent,
            Urgency::Soon => hours.soon,
            Urgency::Routine => hours.routine,
        })
    }
}

/// The de-identified description of the client: nothing here names them.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Packet {
    pub age_band: AgeBand,
    /// The client's state (two letters).
    #[schema(value_type = crate::profiles::model::UsState)]
    pub state: String,
    /// Specialty slugs, 1 to 10.
    #[schema(value_type = Vec<crate::profiles::taxonomy::SpecialtySlug>, min_items = 1, max_items = 10)]
    pub concerns: Vec<String>,
    #[schema(value_type = Option<crate::profiles::taxonomy::ModalitySlug>)]
    pub modality: Option<String>,
    #[schema(value_type = Option<crate::profiles::taxonomy::InsuranceSlug>)]
    pub insurance: Option<String>,
    #[schema(value_type = Option<crate::profiles::taxonomy::LanguageSlug>)]
    pub language: Option<String>,
    #[serde(default = "yes")]
    pub telehealth_ok: bool,
    pub location: Option<Location>,
    pub urgency: Urgency,
    /// Clinical context without identifiers, at most 2,000 characters.
    #[serde(default)]
    pub note: ReferralNote,
}

crate::text_types! {
    /// Clinical context for a referral, without identifiers.
    pub ReferralNote = Limit::prose("note", 0, 2000);
    /// The client's name, released only to the accepter.
    pub ClientName = Limit::new("client's name", 1, 200);
    /// A phone number to reach the client.
    pub ClientPhone = Limit::new("phone", 0, 40);
    /// An email address to reach the client.
    pub ClientEmail = Limit::new("email", 0, 254);
    /// How and when the client prefers to be reached.
    pub PreferredContact = Limit::new("preferred contact", 0, 200);
    /// Why a colleague declined, for the sender.
    pub DeclineNote = Limit::prose("note", 0, 2000);
    /// How the first appointment went, for the sender.
    pub Outcome = Limit::prose("outcome", 1, 2000);
}

fn yes() -> bool {
    true
}

/// Who the client is and how to reach them: released only to the accepter.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub full_name: ClientName,
    pub phone: Option<ClientPhone>,
    pub email: Option<ClientEmail>,
    pub preferred_contact: Option<PreferredContact>,
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
    /// The sender confirms the note identifies no one, although the privacy
    /// guard found something that looks like an identifier (recorded in the
    /// audit log).
    #[serde(default)]
    pub confirm_no_identifiers: bool,
}

/// A referral as its sender or a colleague it was offered to sees it (what
/// each may see is decided in `referrals::view`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReferralView {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub mode: Mode,
    /// Absent for a colleague whose offer ended: what happened next is not theirs to see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    pub packet: Packet,
    /// Shown to the sender and to the accepter themselves.
    pub accepted_by: Option<Uuid>,
    pub accepted_onto: Option<AcceptTarget>,
    /// Shown to the sender and the accepter.
    pub first_appointment_at: Option<DateTime<Utc>>,
    /// Shown to the sender and the accepter.
    pub outcome: Option<String>,
    /// The sender sees every offer; a colleague sees only their own.
    pub offers: Vec<OfferView>,
    /// When the current offer runs out (the viewer's own, for a colleague).
    pub deadline: Option<DateTime<Utc>>,
    pub timeline: Vec<TimelineEvent>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

crate::text_enum! {
    /// Why a colleague declined.
    pub enum DeclineReason {
        NoCapacity = "no_capacity",
        NotAFit = "not_a_fit",
        Insurance = "insurance",
        Location = "location",
        Other = "other",
    }
}
