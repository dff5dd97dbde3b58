//! Profile rows, the view every read returns, and the bodies clients send.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::profiles;

/// Capacity not confirmed for this long shows as stale.
pub const FRESH_FOR_DAYS: i64 = 14;

crate::text_enum! {
    /// How long a new client waits for a first appointment.
    pub enum Waitlist {
        /// Can start now.
        None = "none",
        /// Under 2 weeks.
        Short = "short",
        /// 2 to 6 weeks.
        Medium = "medium",
        /// Over 6 weeks.
        Long = "long",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapacityFreshness {
    /// Confirmed within the last 14 days.
    Fresh,
    /// Confirmed, but longer ago.
    Stale,
    /// Never confirmed.
    Unknown,
}

impl CapacityFreshness {
    pub fn of(confirmed_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match confirmed_at {
            None => Self::Unknown,
            Some(at) if now - at <= Duration::days(FRESH_FOR_DAYS) => Self::Fresh,
            Some(_) => Self::Stale,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = profiles)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Profile {
    pub user_id: Uuid,
    pub credentials: Vec<String>,
    pub license_states: Vec<String>,
    pub license_number: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<Uuid>,
    /// The claimed states an administrator verified (a subset of `license_states`).
    pub verified_states: Vec<String>,
    pub bio: String,
    pub specialties: Vec<String>,
    pub modalities: Vec<String>,
    pub populations: Vec<String>,
    pub languages: Vec<String>,
    pub insurance: Vec<String>,
    pub fee_min: Option<i32>,
    pub fee_max: Option<i32>,
    pub sliding_scale: bool,
    pub telehealth: bool,
    pub in_person: bool,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accepting_referrals: bool,
    pub open_slots: i32,
    pub waitlist: Waitlist,
    pub capacity_confirmed_at: Option<DateTime<Utc>>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Profile {
    /// A new clinician's profile: empty, not accepting referrals, capacity unknown.
    pub fn empty(user_id: Uuid, now: DateTime<Utc>) -> Self {
        Self {
            user_id,
            credentials: vec![],
            license_states: vec![],
            license_number: None,
            verified_at: None,
            verified_by: None,
            verified_states: vec![],
            bio: String::new(),
            specialties: vec![],
            modalities: vec![],
            populations: vec![],
            languages: vec![],
            insurance: vec![],
            fee_min: None,
            fee_max: None,
            sliding_scale: false,
            telehealth: false,
            in_person: false,
            city: None,
            state: None,
            postal_code: None,
            latitude: None,
            longitude: None,
            accepting_referrals: false,
            open_slots: 0,
            waitlist: Waitlist::None,
            capacity_confirmed_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A clinician's profile as every read returns it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    pub user_id: Uuid,
    pub display_name: String,
    pub credentials: Vec<String>,
    pub license_states: Vec<String>,
    pub license_number: Option<String>,
    /// Whether an administrator verified the licence in at least one state.
    pub license_verified: bool,
    /// The states of `license_states` an administrator verified; only these
    /// count for referrals and match.
    pub verified_states: Vec<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub bio: String,
    pub specialties: Vec<String>,
    pub modalities: Vec<String>,
    pub populations: Vec<String>,
    pub languages: Vec<String>,
    pub insurance: Vec<String>,
    /// Fee per session in whole US dollars.
    pub fee_min: Option<i32>,
    pub fee_max: Option<i32>,
    pub sliding_scale: bool,
    pub telehealth: bool,
    pub in_person: bool,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accepting_referrals: bool,
    pub open_slots: i32,
    pub waitlist: Waitlist,
    pub capacity_confirmed_at: Option<DateTime<Utc>>,
    /// Derived: fresh (confirmed within 14 days), stale, or unknown (never).
    pub capacity_freshness: CapacityFreshness,
    /// Send it back with the next update (or as `If-Match`).
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

impl ProfileView {
    pub fn new(p: Profile, display_name: String, now: DateTime<Utc>) -> Self {
        Self {
            user_id: p.user_id,
            display_name,
            license_verified: !p.verified_states.is_empty(),
            verified_states: p.verified_states,
            verified_at: p.verified_at,
            credentials: p.credentials,
            license_states: p.license_states,
            license_number: p.license_number,
            bio: p.bio,
            specialties: p.specialties,
            modalities: p.modalities,
            populations: p.populations,
            languages: p.languages,
            insurance: p.insurance,
            fee_min: p.fee_min,
            fee_max: p.fee_max,
            sliding_scale: p.sliding_scale,
            telehealth: p.telehealth,
            in_person: p.in_person,
            city: p.city,
            state: p.state,
            postal_code: p.postal_code,
            latitude: p.latitude,
            longitude: p.longitude,
            accepting_referrals: p.accepting_referrals,
            open_slots: p.open_slots,
            waitlist: p.waitlist,
            capacity_freshness: CapacityFreshness::of(p.capacity_confirmed_at, now),
            capacity_confirmed_at: p.capacity_confirmed_at,
            version: p.version,
            updated_at: p.updated_at,
        }
    }
}

/// The whole editable profile (PUT replaces it). Lists default to empty.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// The version this edit started from; or send `If-Match`.
    pub version: Option<i32>,
    pub display_name: Option<DisplayName>,
    /// At most 10.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub credentials: Vec<Credential>,
    /// Two-letter US state codes.
    #[serde(default)]
    #[schema(value_type = Vec<crate::profiles::model::UsState>)]
    pub license_states: Vec<String>,
    pub license_number: Option<LicenceNumber>,
    #[serde(default)]
    pub bio: Bio,
    #[serde(default)]
    #[schema(value_type = Vec<crate::profiles::taxonomy::SpecialtySlug>, max_items = 40)]
    pub specialties: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::profiles::taxonomy::ModalitySlug>, max_items = 40)]
    pub modalities: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::profiles::taxonomy::PopulationSlug>, max_items = 40)]
    pub populations: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::profiles::taxonomy::LanguageSlug>, max_items = 40)]
    pub languages: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::profiles::taxonomy::InsuranceSlug>, max_items = 40)]
    pub insurance: Vec<String>,
    #[schema(minimum = 0, maximum = 2000)]
    pub fee_min: Option<i32>,
    #[schema(minimum = 0, maximum = 2000)]
    pub fee_max: Option<i32>,
    #[serde(default)]
    pub sliding_scale: bool,
    #[serde(default)]
    pub telehealth: bool,
    #[serde(default)]
    pub in_person: bool,
    pub city: Option<City>,
    #[schema(value_type = Option<crate::profiles::model::UsState>)]
    pub state: Option<String>,
    /// A 5-digit ZIP code or ZIP+4.
    #[schema(pattern = "^[0-9]{5}(-[0-9]{4})?$")]
    pub postal_code: Option<String>,
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub accepting_referrals: bool,
}

crate::text_types! {
    /// The name colleagues see.
    pub DisplayName = crate::text::Limit::new("display_name", 1, 120);
    /// A credential after the name, such as LCSW.
    pub Credential = crate::text::Limit::new("credentials", 0, 24);
    pub LicenceNumber = crate::text::Limit::new("license_number", 0, 64);
    /// About the clinician, in their words.
    pub Bio = crate::text::Limit::prose("bio", 0, 4000);
    pub City = crate::text::Limit::new("city", 0, 120);
}

/// The validated form of `ProfileInput`.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = profiles, treat_none_as_null = true)]
pub struct ProfileChanges {
    pub credentials: Vec<String>,
    pub license_states: Vec<String>,
    pub license_number: Option<String>,
    pub bio: String,
    pub specialties: Vec<String>,
    pub modalities: Vec<String>,
    pub populations: Vec<String>,
    pub languages: Vec<String>,
    pub insurance: Vec<String>,
    pub fee_min: Option<i32>,
    pub fee_max: Option<i32>,
    pub sliding_scale: bool,
    pub telehealth: bool,
    pub in_person: bool,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub accepting_referrals: bool,
}

/// A capacity update; fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityInput {
    pub accepting_referrals: Option<bool>,
    /// Open slots for new clients, 0 to 500.
    #[schema(minimum = 0, maximum = 500)]
    pub open_slots: Option<i32>,
    pub waitlist: Option<Waitlist>,
    /// Optional: refuse the change if the profile moved on.
    pub version: Option<i32>,
}

/// US states, DC and the territories where clinicians are licensed.
pub const US_STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

/// The schema of a state code: one of `US_STATES`.
pub struct UsState;

impl utoipa::PartialSchema for UsState {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::db::enums::text_schema(&US_STATES)
    }
}

impl utoipa::ToSchema for UsState {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("UsState")
    }
}

/// The schema of a time zone: an IANA name the server knows.
pub struct TimeZoneName;

impl utoipa::PartialSchema for TimeZoneName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        crate::db::enums::text_schema(&names)
    }
}

impl utoipa::ToSchema for TimeZoneName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("TimeZoneName")
    }
}
