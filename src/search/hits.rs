//! What a search result shows of a clinician, and how ranked ids become
//! those results: the engine's documents, checked against PostgreSQL for
//! accounts disabled since, labelled and highlighted.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Facets, RankedId, Responsiveness, document::Shown, highlight::Highlighter};
use crate::{
    db::schema::users,
    error::AppResult,
    profiles::{
        CapacityFreshness, Waitlist,
        taxonomy::{Kind, Taxonomy},
    },
    state::AppState,
};

/// A clinician as a search result shows them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClinicianHit {
    pub user_id: Uuid,
    pub display_name: String,
    pub credentials: Vec<String>,
    /// An administrator verified the licence in at least one state.
    pub license_verified: bool,
    pub license_states: Vec<String>,
    /// The states of `license_states` an administrator verified.
    pub verified_states: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
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
    pub accepting_referrals: bool,
    pub open_slots: i32,
    pub waitlist: Waitlist,
    pub capacity_confirmed_at: Option<DateTime<Utc>>,
    pub capacity_freshness: CapacityFreshness,
    /// Kilometres from `near`, when it was given and the clinician has a location.
    pub distance_km: Option<f64>,
    pub responsiveness: Responsiveness,
    /// HTML-escaped text with matched words wrapped in `<em>`.
    pub highlights: Highlights,
    /// The clinician's words that matched the query (after typos and prefixes).
    pub matched_terms: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Highlights {
    pub display_name: String,
    pub bio: String,
    /// Specialty labels, highlighted where they matched.
    pub specialties: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub hits: Vec<ClinicianHit>,
    /// Every match, not just this page.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    /// Per filter: value → number of matches, e.g. `specialties.trauma-ptsd: 124`.
    #[schema(value_type = Object)]
    pub facets: Facets,
    /// `embedded` or `meilisearch`.
    pub engine: String,
}

pub(super) fn label(taxonomy: &Taxonomy, kind: Kind, slug: &str) -> String {
    taxonomy
        .terms(kind)
        .iter()
        .find(|t| t.slug == slug)
        .map_or_else(|| slug.to_string(), |t| t.label.clone())
}

/// Turns ranked hits into what the client shows, in rank order. The engines
/// return each hit's document, so a page needs one small PostgreSQL read: the
/// index trails commits by up to a second, and an account disabled in that
/// second is left out. A hit whose document the engine did not return is read
/// from PostgreSQL.
pub(super) async fn hydrate(
    state: &AppState,
    ranked: Vec<RankedId>,
    query_words: &[String],
) -> AppResult<Vec<ClinicianHit>> {
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ranked.iter().map(|r| r.id).collect();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    // Disabled since it was indexed (or, never indexed, not yet verified).
    let disabled: Vec<Uuid> = users::table
        .filter(users::id.eq_any(&ids))
        .filter(
            users::disabled_at
                .is_not_null()
                .or(users::email_verified_at.is_null()),
        )
        .select(users::id)
        .load(&mut conn)
        .await?;
    let missing: Vec<Uuid> = ranked
        .iter()
        .filter(|r| r.doc.is_none())
        .map(|r| r.id)
        .collect();
    let mut loaded: HashMap<Uuid, Shown> = if missing.is_empty() {
        HashMap::new()
    } else {
        super::document::load(&mut conn, &missing, &state.taxonomy, now)
            .await?
            .into_iter()
            .map(|d| (d.id, Shown::from(d)))
            .collect()
    };
    drop(conn);
    let highlighter = Highlighter::new(&state.search_config, query_words);
    Ok(ranked
        .into_iter()
        .filter(|r| !disabled.contains(&r.id))
        .filter_map(|r| {
            let doc = match r.doc {
                Some(doc) => *doc,
                None => loaded.remove(&r.id)?,
            };
            Some(hit(state, &highlighter, doc, r.distance_km, now))
        })
        .collect())
}

fn hit(
    state: &AppState,
    highlighter: &Highlighter,
    doc: Shown,
    distance_km: Option<f64>,
    now: DateTime<Utc>,
) -> ClinicianHit {
    let mut matched = Vec::new();
    let highlights = Highlights {
        display_name: highlighter.highlight(&doc.display_name, &mut matched),
        bio: highlighter.highlight(&doc.bio, &mut matched),
        specialties: doc
            .specialties
            .iter()
            .map(|s| {
                highlighter.highlight(&label(&state.taxonomy, Kind::Specialty, s), &mut matched)
            })
            .collect(),
    };
    let card = doc.card;
    ClinicianHit {
        user_id: doc.id,
        display_name: doc.display_name,
        credentials: card.credentials,
        license_verified: doc.verified,
        license_states: doc.license_states,
        verified_states: doc.verified_states,
        city: card.city,
        state: card.state,
        specialties: doc.specialties,
        modalities: doc.modalities,
        populations: doc.populations,
        languages: doc.languages,
        insurance: doc.insurance,
        fee_min: card.fee_min,
        fee_max: card.fee_max,
        sliding_scale: doc.sliding_scale,
        telehealth: doc.telehealth,
        in_person: doc.in_person,
        accepting_referrals: doc.accepting_referrals,
        open_slots: card.open_slots,
        waitlist: doc.waitlist,
        capacity_confirmed_at: card.capacity_confirmed_at,
        capacity_freshness: CapacityFreshness::of(card.capacity_confirmed_at, now),
        distance_km: distance_km.map(|d| (d * 10.0).round() / 10.0),
        responsiveness: Responsiveness {
            median_response_hours: card.median_response_hours,
            acceptance_rate: card.acceptance_rate,
        },
        highlights,
        matched_terms: matched,
    }
}
