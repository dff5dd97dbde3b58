//! Matching a de-identified client to colleagues: the client's description
//! (`MatchRequest`, shared with referrals), its one check against the
//! taxonomy, the ranked shortlist and why each colleague fits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    RankedId, SearchQuery,
    engine::unavailable,
    hits::{ClinicianHit, label},
    query::{Near, check_radius},
};
use crate::{
    error::{AppError, AppResult},
    profiles::{CapacityFreshness, Waitlist, taxonomy::Kind, validate::state_code},
    state::AppState,
};

crate::text_enum! {
    /// The client's age, as a band (never a birth date).
    pub enum AgeBand {
        EarlyChildhood = "early_childhood",
        Child = "child",
        Adolescent = "adolescent",
        YoungAdult = "young_adult",
        Adult = "adult",
        OlderAdult = "older_adult",
    }
}

impl AgeBand {
    /// The taxonomy population that serves this band.
    pub fn population(self) -> &'static str {
        match self {
            AgeBand::EarlyChildhood => "preschool",
            AgeBand::Child => "children",
            AgeBand::Adolescent => "adolescents",
            AgeBand::YoungAdult => "young-adults",
            AgeBand::Adult => "adults",
            AgeBand::OlderAdult => "older-adults",
        }
    }
}

/// Where the client is: for in-person care and distance.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
}

impl Location {
    /// A 422 at `field` unless the coordinates are on the globe.
    pub fn check(self, field: &str) -> AppResult<Self> {
        if (-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lng) {
            Ok(self)
        } else {
            Err(AppError::invalid_field(
                field,
                "Latitude must be within ±90 and longitude within ±180.",
            ))
        }
    }

    /// The point of its ~10 km grid cell (0.1 degree): as near as a colleague
    /// needs to know where a client lives, and what distances are ranked from.
    pub fn coarse(self) -> Self {
        let cell = |v: f64| (v * 10.0).round() / 10.0;
        Self {
            lat: cell(self.lat),
            lng: cell(self.lng),
        }
    }
}

/// A client's needs, checked against the taxonomy: the one check that both
/// matching and referrals apply to a client's description.
#[derive(Debug, Clone)]
pub struct Needs {
    pub concerns: Vec<String>,
    pub insurance: Option<String>,
    pub language: Option<String>,
    pub modality: Option<String>,
    /// The client's state, two upper-case letters.
    pub state: String,
}

impl Needs {
    /// Checks concerns (1 to 10 specialties), the optional insurance, language
    /// and modality, and the state. Within a larger body (`prefix` such as
    /// `packet.`) errors name `{prefix}{field}`; at the top level an unknown
    /// term names its taxonomy list (`specialties`), as profile edits do.
    pub fn check(
        taxonomy: &crate::profiles::taxonomy::Taxonomy,
        prefix: &str,
        request: &MatchRequest,
    ) -> AppResult<Self> {
        let field = |f: &str| format!("{prefix}{f}");
        let within = |f: &str, e: AppError| {
            if prefix.is_empty() {
                e
            } else {
                AppError {
                    field: Some(field(f)),
                    ..e
                }
            }
        };
        if request.concerns.is_empty() || request.concerns.len() > 10 {
            return Err(AppError::invalid_field(
                field("concerns"),
                "Give 1 to 10 concerns (specialty slugs).",
            ));
        }
        let concerns = taxonomy
            .check(Kind::Specialty, request.concerns.clone())
            .map_err(|e| within("concerns", e))?;
        let one = |kind: Kind, name: &str, value: &Option<String>| -> AppResult<Option<String>> {
            value
                .as_ref()
                .map(|v| {
                    taxonomy
                        .check(kind, vec![v.clone()])
                        .map(|mut checked| checked.remove(0))
                        .map_err(|e| within(name, e))
                })
                .transpose()
        };
        Ok(Self {
            insurance: one(Kind::Insurance, "insurance", &request.insurance)?,
            language: one(Kind::Language, "language", &request.language)?,
            modality: one(Kind::Modality, "modality", &request.modality)?,
            state: state_code(&field("state"), &request.state)?,
            concerns,
        })
    }
}

/// A de-identified description of a client to place.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Specialty slugs, 1 to 10.
    #[schema(value_type = Vec<crate::profiles::taxonomy::SpecialtySlug>, min_items = 1, max_items = 10)]
    pub concerns: Vec<String>,
    pub age_band: Option<AgeBand>,
    /// The client's state: only clinicians licensed there are offered.
    #[schema(value_type = crate::profiles::model::UsState)]
    pub state: String,
    /// An insurance slug; leave out for private pay.
    #[schema(value_type = Option<crate::profiles::taxonomy::InsuranceSlug>)]
    pub insurance: Option<String>,
    #[schema(value_type = Option<crate::profiles::taxonomy::LanguageSlug>)]
    pub language: Option<String>,
    /// A preferred modality slug (ranks, does not exclude).
    #[schema(value_type = Option<crate::profiles::taxonomy::ModalitySlug>)]
    pub modality: Option<String>,
    /// Whether telehealth is acceptable (default true).
    #[serde(default = "yes")]
    pub telehealth_ok: bool,
    /// Where the client is, for in-person care and distance.
    pub location: Option<Location>,
    /// In-person radius, default 40 km, at most 500.
    #[schema(exclusive_minimum = 0, maximum = 500)]
    pub radius_km: Option<f64>,
    /// How many to return, 1 to 50 (default 10).
    #[schema(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub clinician: ClinicianHit,
    /// Labels of the client's concerns this clinician treats.
    pub matched_concerns: Vec<String>,
    /// Short reasons, e.g. "Treats Trauma and PTSD, Grief", "3 open slots (confirmed 2 days ago)".
    pub why: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatchResponse {
    pub candidates: Vec<Candidate>,
}

pub(super) fn why(
    state: &AppState,
    request: &MatchRequest,
    hit: &ClinicianHit,
    now: DateTime<Utc>,
) -> (Vec<String>, Vec<String>) {
    let matched: Vec<String> = request
        .concerns
        .iter()
        .filter(|c| hit.specialties.contains(c))
        .map(|c| label(&state.taxonomy, Kind::Specialty, c))
        .collect();
    let mut reasons = vec![format!("Treats {}", matched.join(", "))];
    if let Some(ins) = &request.insurance {
        reasons.push(format!(
            "In network with {}",
            label(&state.taxonomy, Kind::Insurance, ins)
        ));
    }
    if let Some(lang) = &request.language {
        reasons.push(format!(
            "Speaks {}",
            label(&state.taxonomy, Kind::Language, lang)
        ));
    }
    if let Some(m) = &request.modality
        && hit.modalities.contains(m)
    {
        reasons.push(format!(
            "Offers {}",
            label(&state.taxonomy, Kind::Modality, m)
        ));
    }
    let confirmed = hit.capacity_confirmed_at.map(|at| {
        let days = (now - at).num_days();
        match days {
            0 => "confirmed today".to_string(),
            1 => "confirmed yesterday".to_string(),
            d => format!("confirmed {d} days ago"),
        }
    });
    reasons.push(
        match (hit.capacity_freshness, hit.open_slots, hit.waitlist) {
            (CapacityFreshness::Fresh, n, _) if n > 0 => {
                format!(
                    "{n} open slot{} ({})",
                    if n == 1 { "" } else { "s" },
                    confirmed.unwrap_or_default()
                )
            }
            (CapacityFreshness::Fresh, _, w) => format!(
                "{} waitlist ({})",
                match w {
                    Waitlist::Long => "Long",
                    Waitlist::Medium => "Medium",
                    _ => "Short",
                },
                confirmed.unwrap_or_default()
            ),
            _ => "Capacity not confirmed in the last 14 days".to_string(),
        },
    );
    reasons.push(match (hit.distance_km, hit.telehealth) {
        (Some(d), _) if hit.in_person => format!("{d:.0} km away"),
        (_, true) => "Telehealth".to_string(),
        _ => "Location not given".to_string(),
    });
    reasons.push(
        match (
            hit.responsiveness.median_response_hours,
            hit.responsiveness.acceptance_rate,
        ) {
            (Some(hours), Some(rate)) => format!(
                "Usually answers within {hours:.0} h; accepts {:.0}% of referrals",
                rate * 100.0
            ),
            (None, Some(rate)) => format!("Accepts {:.0}% of referrals", rate * 100.0),
            _ => "No referral history yet".to_string(),
        },
    );
    (matched, reasons)
}

/// The ranked shortlist for a de-identified client (used by `POST /match` and
/// by cascades sent without a list): those who treat every concern first.
pub async fn ranked_candidates(
    state: &AppState,
    asker: Uuid,
    request: &MatchRequest,
) -> AppResult<Vec<RankedId>> {
    let needs = Needs::check(&state.taxonomy, "", request)?;
    let concerns = needs.concerns;
    let licensed_in = needs.state;
    let insurance: Vec<String> = needs.insurance.into_iter().collect();
    let languages: Vec<String> = needs.language.into_iter().collect();
    let limit = request.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            "`limit` must be from 1 to 50.",
        ));
    }
    let radius = check_radius("radius_km", request.radius_km.unwrap_or(40.0))?;
    let near = match request.location {
        Some(location) => {
            let Location { lat, lng } = location.check("location")?;
            Some(Near {
                lat,
                lng,
                radius_km: Some(radius),
                or_telehealth: request.telehealth_ok,
            })
        }
        None if !request.telehealth_ok => {
            return Err(AppError::invalid_field(
                "location",
                "Give the client's location when telehealth is not an option.",
            ));
        }
        None => None,
    };
    let base = SearchQuery {
        insurance,
        languages,
        populations: request
            .age_band
            .map(|a| vec![a.population().to_string()])
            .unwrap_or_default(),
        licensed_in: Some(licensed_in),
        accepting: Some(true),
        verified_only: true,
        telehealth: (near.is_none()).then_some(true),
        near,
        exclude: vec![asker],
        per_page: limit,
        ..SearchQuery::default()
    };
    // First those who treat every concern, then those who treat some.
    let full = state
        .search
        .search(&SearchQuery {
            all_specialties: concerns.clone(),
            ..base.clone()
        })
        .await
        .map_err(unavailable)?;
    let mut ranked = full.hits;
    if ranked.len() < limit as usize && concerns.len() > 1 {
        let mut exclude = base.exclude.clone();
        exclude.extend(ranked.iter().map(|r| r.id));
        let partial = state
            .search
            .search(&SearchQuery {
                specialties: concerns.clone(),
                exclude,
                per_page: limit - ranked.len() as u32,
                ..base.clone()
            })
            .await
            .map_err(unavailable)?;
        ranked.extend(partial.hits);
    }
    Ok(ranked)
}
