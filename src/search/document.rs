//! The document both engines index for a clinician, built from PostgreSQL.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    db::schema::{profiles, users},
    profiles::{
        model::{CapacityFreshness, Profile, Waitlist},
        taxonomy::{Kind, Taxonomy},
    },
};

/// Capacity ranks: lower is better.
pub mod tier {
    pub const OPEN_NOW: u8 = 0;
    pub const SHORT_WAIT: u8 = 1;
    pub const MEDIUM_WAIT: u8 = 2;
    pub const LONG_WAIT: u8 = 3;
    /// Capacity never confirmed, or not within 14 days.
    pub const UNKNOWN: u8 = 4;
    pub const NOT_ACCEPTING: u8 = 5;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClinicianDoc {
    pub id: Uuid,
    pub display_name: String,
    pub bio: String,
    pub city: String,
    /// Labels and synonyms of the clinician's specialties, for text search.
    pub specialty_terms: Vec<String>,
    /// Labels and synonyms of the clinician's modalities, for text search.
    pub modality_terms: Vec<String>,
    pub specialties: Vec<String>,
    pub modalities: Vec<String>,
    pub populations: Vec<String>,
    pub languages: Vec<String>,
    pub insurance: Vec<String>,
    pub license_states: Vec<String>,
    /// The licence states an administrator verified.
    pub verified_states: Vec<String>,
    pub telehealth: bool,
    pub in_person: bool,
    pub accepting_referrals: bool,
    /// Verified in at least one state.
    pub verified: bool,
    pub waitlist: Waitlist,
    /// 0 none, 1 short, 2 medium, 3 long: for `max_wait`.
    pub waitlist_rank: u8,
    pub capacity_tier: u8,
    /// 0–100, higher answers faster and accepts more; 50 until there is history.
    pub responsiveness: u8,
    /// Lowest fee in dollars (0 when not given).
    pub fee_min: i32,
    pub sliding_scale: bool,
    #[serde(rename = "_geo", skip_serializing_if = "Option::is_none")]
    pub geo: Option<Geo>,
    /// The rest of what a search result shows, so that a page of hits is read
    /// from the index alone.
    pub card: Card,
}

/// The part of an indexed document that a hit shows, as engines return it
/// (the search terms and ranking numbers are skipped, not allocated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub id: Uuid,
    pub display_name: String,
    pub bio: String,
    pub specialties: Vec<String>,
    pub modalities: Vec<String>,
    pub populations: Vec<String>,
    pub languages: Vec<String>,
    pub insurance: Vec<String>,
    pub license_states: Vec<String>,
    #[serde(default)]
    pub verified_states: Vec<String>,
    pub telehealth: bool,
    pub in_person: bool,
    pub accepting_referrals: bool,
    pub verified: bool,
    pub waitlist: Waitlist,
    pub sliding_scale: bool,
    pub card: Card,
}

impl From<ClinicianDoc> for Shown {
    fn from(d: ClinicianDoc) -> Self {
        Self {
            id: d.id,
            display_name: d.display_name,
            bio: d.bio,
            specialties: d.specialties,
            modalities: d.modalities,
            populations: d.populations,
            languages: d.languages,
            insurance: d.insurance,
            license_states: d.license_states,
            verified_states: d.verified_states,
            telehealth: d.telehealth,
            in_person: d.in_person,
            accepting_referrals: d.accepting_referrals,
            verified: d.verified,
            waitlist: d.waitlist,
            sliding_scale: d.sliding_scale,
            card: d.card,
        }
    }
}

/// What a hit shows beyond the searchable attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub credentials: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub fee_min: Option<i32>,
    pub fee_max: Option<i32>,
    pub open_slots: i32,
    pub capacity_confirmed_at: Option<DateTime<Utc>>,
    pub median_response_hours: Option<f64>,
    pub acceptance_rate: Option<f64>,
}

pub fn waitlist_rank(w: Waitlist) -> u8 {
    match w {
        Waitlist::None => 0,
        Waitlist::Short => 1,
        Waitlist::Medium => 2,
        Waitlist::Long => 3,
    }
}

/// Where capacity ranks: open slots now, then short, medium and long waits,
/// then unknown or stale, then not accepting.
pub fn capacity_tier(p: &Profile, now: DateTime<Utc>) -> u8 {
    if !p.accepting_referrals {
        return tier::NOT_ACCEPTING;
    }
    if CapacityFreshness::of(p.capacity_confirmed_at, now) != CapacityFreshness::Fresh {
        return tier::UNKNOWN;
    }
    match p.waitlist {
        _ if p.open_slots > 0 => tier::OPEN_NOW,
        Waitlist::None | Waitlist::Short => tier::SHORT_WAIT,
        Waitlist::Medium => tier::MEDIUM_WAIT,
        Waitlist::Long => tier::LONG_WAIT,
    }
}

fn terms(taxonomy: &Taxonomy, kind: Kind, slugs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for slug in slugs {
        if let Some(term) = taxonomy.terms(kind).iter().find(|t| &t.slug == slug) {
            out.push(term.label.clone());
            out.extend(term.synonyms.iter().cloned());
        }
    }
    out
}

impl ClinicianDoc {
    pub fn build(p: &Profile, display_name: &str, taxonomy: &Taxonomy, now: DateTime<Utc>) -> Self {
        let waitlist = p.waitlist;
        Self {
            id: p.user_id,
            display_name: display_name.to_string(),
            bio: p.bio.clone(),
            city: p.city.clone().unwrap_or_default(),
            specialty_terms: terms(taxonomy, Kind::Specialty, &p.specialties),
            modality_terms: terms(taxonomy, Kind::Modality, &p.modalities),
            specialties: p.specialties.clone(),
            modalities: p.modalities.clone(),
            populations: p.populations.clone(),
            languages: p.languages.clone(),
            insurance: p.insurance.clone(),
            license_states: p.license_states.clone(),
            verified_states: p.verified_states.clone(),
            telehealth: p.telehealth,
            in_person: p.in_person,
            accepting_referrals: p.accepting_referrals,
            verified: !p.verified_states.is_empty(),
            waitlist,
            waitlist_rank: waitlist_rank(waitlist),
            capacity_tier: capacity_tier(p, now),
            responsiveness: 50,
            fee_min: p.fee_min.unwrap_or(0),
            sliding_scale: p.sliding_scale,
            geo: p
                .latitude
                .zip(p.longitude)
                .map(|(lat, lng)| Geo { lat, lng }),
            card: Card {
                credentials: p.credentials.clone(),
                city: p.city.clone(),
                state: p.state.clone(),
                fee_min: p.fee_min,
                fee_max: p.fee_max,
                open_slots: p.open_slots,
                capacity_confirmed_at: p.capacity_confirmed_at,
                median_response_hours: None,
                acceptance_rate: None,
            },
        }
    }
}

/// Documents for these users as PostgreSQL has them now. Users missing from
/// the answer (deleted, disabled or not yet verified) are to be removed from
/// the index.
pub async fn load(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> QueryResult<Vec<ClinicianDoc>> {
    let rows: Vec<(Profile, String)> = profiles::table
        .inner_join(users::table.on(users::id.eq(profiles::user_id)))
        .filter(profiles::user_id.eq_any(ids))
        .filter(users::disabled_at.is_null())
        .filter(users::email_verified_at.is_not_null())
        .select((Profile::as_select(), users::display_name))
        .load(conn)
        .await?;
    let docs = rows
        .iter()
        .map(|(p, name)| ClinicianDoc::build(p, name, taxonomy, now))
        .collect();
    with_responsiveness(conn, docs).await
}

/// Fills in each document's responsiveness from referral history.
async fn with_responsiveness(
    conn: &mut AsyncPgConnection,
    mut docs: Vec<ClinicianDoc>,
) -> QueryResult<Vec<ClinicianDoc>> {
    let ids: Vec<Uuid> = docs.iter().map(|d| d.id).collect();
    let history = crate::responsiveness::of(conn, &ids).await?;
    for doc in &mut docs {
        let record = history.get(&doc.id);
        doc.responsiveness = crate::responsiveness::score(record);
        if let Some(r) = record {
            doc.card.median_response_hours = r.median_response_hours;
            doc.card.acceptance_rate = r.acceptance_rate;
        }
    }
    Ok(docs)
}

/// Every searchable clinician, in pages (for `kith reindex`).
pub async fn load_all(
    conn: &mut AsyncPgConnection,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> QueryResult<Vec<ClinicianDoc>> {
    let mut docs = Vec::new();
    let mut after = Uuid::nil();
    loop {
        let rows: Vec<(Profile, String)> = profiles::table
            .inner_join(users::table.on(users::id.eq(profiles::user_id)))
            .filter(users::disabled_at.is_null())
            .filter(users::email_verified_at.is_not_null())
            .filter(profiles::user_id.gt(after))
            .order(profiles::user_id)
            .limit(5_000)
            .select((Profile::as_select(), users::display_name))
            .load(conn)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.0.user_id;
        let page = rows
            .iter()
            .map(|(p, name)| ClinicianDoc::build(p, name, taxonomy, now))
            .collect();
        docs.extend(with_responsiveness(conn, page).await?);
    }
    Ok(docs)
}
