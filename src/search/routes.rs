//! `GET /search/clinicians` and `POST /match`.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    Facets, RankedId, Responsiveness, SearchError, SearchQuery,
    config::SearchConfig,
    document::Shown,
    query::{Near, check_radius, words},
};
use crate::{
    auth::AuthUser,
    db::schema::users,
    error::{AppError, AppResult, Code, ErrorBody},
    http::ApiJson,
    profiles::{
        CapacityFreshness, Waitlist,
        taxonomy::{Kind, Taxonomy},
        validate::state_code,
    },
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(search).service(shortlist);
}

fn unavailable(error: SearchError) -> AppError {
    match error {
        SearchError::Rejected(reason) => AppError::internal(format!("search rejected: {reason}")),
        other => {
            tracing::warn!(error = %other, "search engine unavailable");
            AppError::unavailable(
                Code::SearchUnavailable,
                "Search is unavailable right now. Please try again in a moment.",
            )
        }
    }
}

/// A clinician as a search result shows them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClinicianHit {
    pub user_id: Uuid,
    pub display_name: String,
    pub credentials: Vec<String>,
    pub license_verified: bool,
    pub license_states: Vec<String>,
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

fn escape_into(out: &mut String, text: &str) {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The characters of a short word, on the stack; words longer than this are
/// matched exactly or by prefix only.
struct Chars {
    len: usize,
    chars: [char; 32],
}

impl Chars {
    fn of(word: &str) -> Option<Self> {
        let mut out = Self {
            len: 0,
            chars: ['\0'; 32],
        };
        for c in word.chars() {
            *out.chars.get_mut(out.len)? = c;
            out.len += 1;
        }
        Some(out)
    }

    /// The word in lower case (as `str::to_lowercase` would write it).
    fn lowercase(word: &str) -> Option<Self> {
        let mut out = Self {
            len: 0,
            chars: ['\0'; 32],
        };
        for c in word.chars().flat_map(char::to_lowercase) {
            *out.chars.get_mut(out.len)? = c;
            out.len += 1;
        }
        Some(out)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn as_slice(&self) -> &[char] {
        &self.chars[..self.len]
    }
}

/// Edits between two words of at most 32 characters (insertions, deletions,
/// substitutions and swaps of neighbours), without allocating. Stops as soon
/// as the distance must exceed `limit`, and then returns `limit + 1`.
fn typo_distance(a: &[char], b: &[char], limit: usize) -> usize {
    let n = b.len();
    if a.len().abs_diff(n) > limit {
        return limit + 1;
    }
    let (mut before, mut previous, mut current) = ([0usize; 33], [0usize; 33], [0usize; 33]);
    for (j, cell) in previous.iter_mut().enumerate().take(n + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_best = i;
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
            row_best = row_best.min(best);
        }
        // Every later cell is at least the best of this row or the one before
        // (a swap reaches back one row).
        if row_best > limit && previous[..=n].iter().all(|&d| d > limit) {
            return limit + 1;
        }
        before = previous;
        previous = current;
    }
    previous[n].min(limit + 1)
}

/// A query word, ready to compare.
struct QueryWord {
    text: String,
    chars: Option<Chars>,
    typos: usize,
    /// The ASCII letters and digits it holds (`letters`).
    letters: u64,
}

/// A bit per ASCII letter (either case) and digit in `word`, or None when the
/// word has other characters. Each edit brings at most one missing letter, so
/// a word lacking more of a query word's letters than its typos cannot match.
fn letters(word: &str) -> Option<u64> {
    word.bytes().try_fold(0u64, |mask, b| match b {
        b'a'..=b'z' => Some(mask | 1 << (b - b'a')),
        b'A'..=b'Z' => Some(mask | 1 << (b - b'A')),
        b'0'..=b'9' => Some(mask | 1 << (26 + b - b'0')),
        _ => None,
    })
}

/// Decides which words of a hit's text match the query: exactly, as the
/// prefix of the last query word, or within the typos the query word's length
/// allows. Works on the stack: a page of hits has thousands of words.
struct Highlighter {
    query: Vec<QueryWord>,
    /// No word shorter than this (in characters) can match any query word.
    shortest: usize,
}

impl Highlighter {
    fn new(config: &SearchConfig, query: &[String]) -> Self {
        let query: Vec<QueryWord> = query
            .iter()
            .map(|q| QueryWord {
                text: q.clone(),
                chars: Chars::of(q),
                typos: usize::from(config.typos_allowed(q)),
                letters: letters(q).unwrap_or(0),
            })
            .collect();
        let shortest = query
            .iter()
            .map(|q| q.text.chars().count().saturating_sub(q.typos).max(1))
            .min()
            .unwrap_or(usize::MAX);
        Self { query, shortest }
    }

    fn matches(&self, word: &str) -> bool {
        // Most words of a bio are too short to match anything: no need to
        // lowercase or compare them (fewer bytes means fewer characters).
        if word.len() < self.shortest {
            return false;
        }
        if let Some(have) = letters(word)
            && self
                .query
                .iter()
                .all(|q| (q.letters & !have).count_ones() as usize > q.typos)
        {
            return false;
        }
        let Some(w) = Chars::lowercase(word) else {
            // Longer than any real word: exact or prefix matches only.
            let lower = word.to_lowercase();
            return self.query.iter().enumerate().any(|(i, q)| {
                lower == q.text || (i + 1 == self.query.len() && lower.starts_with(&q.text))
            });
        };
        let w = w.as_slice();
        self.query.iter().enumerate().any(|(i, q)| {
            let last = i + 1 == self.query.len();
            let Some(qc) = &q.chars else {
                return false;
            };
            let qc = qc.as_slice();
            if w == qc || (last && qc.len() >= 2 && w.starts_with(qc)) {
                return true;
            }
            if q.typos == 0 {
                return false;
            }
            let (wl, ql) = (w.len(), qc.len());
            if typo_distance(w, qc, q.typos) <= q.typos {
                return true;
            }
            // The word being typed: its start within the typos.
            last && wl > ql && typo_distance(&w[..ql], qc, q.typos) <= q.typos
        })
    }

    /// Escapes `text` and wraps every matching word in `<em>`.
    fn highlight(&self, text: &str, matched: &mut Vec<String>) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        if self.query.is_empty() {
            escape_into(&mut out, text);
            return out;
        }
        let mut plain = 0; // start of text not yet written
        let mut start = None;
        for (i, c) in text
            .char_indices()
            .chain(std::iter::once((text.len(), ' ')))
        {
            if c.is_alphanumeric() && i < text.len() {
                start.get_or_insert(i);
                continue;
            }
            if let Some(s) = start.take() {
                let word = &text[s..i];
                if self.matches(word) {
                    let lower = word.to_lowercase();
                    if !matched.contains(&lower) {
                        matched.push(lower);
                    }
                    escape_into(&mut out, &text[plain..s]);
                    out.push_str("<em>");
                    escape_into(&mut out, word);
                    out.push_str("</em>");
                    plain = i;
                }
            }
        }
        escape_into(&mut out, &text[plain..]);
        out
    }
}

fn label(taxonomy: &Taxonomy, kind: Kind, slug: &str) -> String {
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
async fn hydrate(
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
    let disabled: Vec<Uuid> = users::table
        .filter(users::id.eq_any(&ids))
        .filter(users::disabled_at.is_not_null())
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
        waitlist: Waitlist::parse(&doc.waitlist).unwrap_or(Waitlist::None),
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

/// Parameters of `GET /search/clinicians` (list parameters repeat: `specialty=a&specialty=b` means either).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchParams {
    /// Free text over names, bio, specialties and modalities; forgives typos; at most 512 characters.
    q: Option<String>,
    specialty: Option<Vec<String>>,
    modality: Option<Vec<String>>,
    population: Option<Vec<String>>,
    insurance: Option<Vec<String>>,
    language: Option<Vec<String>>,
    /// Two-letter state code.
    licensed_in: Option<String>,
    telehealth: Option<bool>,
    in_person: Option<bool>,
    /// `lat,lng`.
    near: Option<String>,
    /// Up to 500; needs `near`.
    radius_km: Option<f64>,
    accepting: Option<bool>,
    /// none | short | medium | long: waitlist no longer than this.
    max_wait: Option<String>,
    /// Lowest fee at most this many dollars.
    fee_max: Option<i32>,
    sliding_scale: Option<bool>,
    /// Only license-verified clinicians.
    verified: Option<bool>,
    page: Option<u32>,
    /// 1 to 100, default 20.
    per_page: Option<u32>,
}

/// Finds colleagues: text that forgives typos and knows synonyms, filters,
/// distance, ranked by fit, capacity, responsiveness and distance.
#[utoipa::path(tag = "search", params(SearchParams), security(("bearer" = [])),
    responses((status = 200, body = SearchResponse), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/search/clinicians")]
async fn search(
    state: web::Data<AppState>,
    _auth: AuthUser,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let query = SearchQuery::from_query_string(req.query_string(), &state.taxonomy)?;
    let results = state.search.search(&query).await.map_err(unavailable)?;
    let words = query.words();
    let hits = hydrate(&state, results.hits, &words).await?;
    Ok(HttpResponse::Ok().json(SearchResponse {
        hits,
        total: results.total,
        page: query.page,
        per_page: query.per_page,
        facets: results.facets,
        engine: state.search.name().to_string(),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum AgeBand {
    EarlyChildhood,
    Child,
    Adolescent,
    YoungAdult,
    Adult,
    OlderAdult,
}

impl AgeBand {
    fn population(self) -> &'static str {
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

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
}

/// A de-identified description of a client to place.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Specialty slugs, 1 to 10.
    pub concerns: Vec<String>,
    pub age_band: Option<AgeBand>,
    /// The client's state: only clinicians licensed there are offered.
    pub state: String,
    /// An insurance slug; leave out for private pay.
    pub insurance: Option<String>,
    pub language: Option<String>,
    /// A preferred modality slug (ranks, does not exclude).
    pub modality: Option<String>,
    /// Whether telehealth is acceptable (default true).
    #[serde(default = "yes")]
    pub telehealth_ok: bool,
    /// Where the client is, for in-person care and distance.
    pub location: Option<Location>,
    /// In-person radius, default 40 km, at most 500.
    pub radius_km: Option<f64>,
    /// How many to return, 1 to 50 (default 10).
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

fn why(
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

/// A ranked shortlist of colleagues for a de-identified client, with why each fits.
/// Excludes the asker, unverified and disabled accounts, those not licensed in
/// the client's state and those not accepting referrals. Clinicians who treat
/// every concern come before those who treat some.
#[utoipa::path(tag = "search", request_body = MatchRequest, security(("bearer" = [])),
    responses((status = 200, body = MatchResponse), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/match")]
async fn shortlist(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: ApiJson<MatchRequest>,
) -> AppResult<HttpResponse> {
    let request = body.0;
    let ranked = ranked_candidates(&state, auth.user_id, &request).await?;
    let hits = hydrate(&state, ranked, &words("")).await?;
    let now = state.clock.now();
    let candidates = hits
        .into_iter()
        .map(|hit| {
            let (matched_concerns, why) = why(&state, &request, &hit, now);
            Candidate {
                clinician: hit,
                matched_concerns,
                why,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(MatchResponse { candidates }))
}

/// The ranked shortlist for a de-identified client (used by `POST /match` and
/// by cascades sent without a list): those who treat every concern first.
pub async fn ranked_candidates(
    state: &AppState,
    asker: Uuid,
    request: &MatchRequest,
) -> AppResult<Vec<RankedId>> {
    if request.concerns.is_empty() || request.concerns.len() > 10 {
        return Err(AppError::invalid_field(
            "concerns",
            "Give 1 to 10 concerns (specialty slugs).",
        ));
    }
    let concerns = state
        .taxonomy
        .check(Kind::Specialty, request.concerns.clone())?;
    let licensed_in = state_code("state", &request.state)?;
    let insurance = request
        .insurance
        .clone()
        .map(|i| state.taxonomy.check(Kind::Insurance, vec![i]))
        .transpose()?
        .unwrap_or_default();
    let languages = request
        .language
        .clone()
        .map(|l| state.taxonomy.check(Kind::Language, vec![l]))
        .transpose()?
        .unwrap_or_default();
    if let Some(m) = &request.modality {
        state.taxonomy.check(Kind::Modality, vec![m.clone()])?;
    }
    let limit = request.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(AppError::invalid_field(
            "limit",
            "`limit` must be from 1 to 50.",
        ));
    }
    let radius = check_radius("radius_km", request.radius_km.unwrap_or(40.0))?;
    let near = match request.location {
        Some(Location { lat, lng }) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(AppError::invalid_field(
                    "location",
                    "Latitude must be within ±90 and longitude within ±180.",
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_distance_counts_edits_and_swaps() {
        let d = |a: &str, b: &str| {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            typo_distance(&a, &b, 9)
        };
        assert_eq!(d("trauma", "trauma"), 0);
        assert_eq!(d("traumma", "trauma"), 1);
        assert_eq!(d("depresion", "depression"), 1);
        assert_eq!(d("anxeity", "anxiety"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        let (a, b): (Vec<char>, Vec<char>) =
            ("kitten".chars().collect(), "sitting".chars().collect());
        assert_eq!(typo_distance(&a, &b, 1), 2, "stops early past the limit");
        let (a, b): (Vec<char>, Vec<char>) =
            ("abcdef".chars().collect(), "bacdfe".chars().collect());
        assert_eq!(typo_distance(&a, &b, 2), 2, "two swaps");
        assert_eq!(d("ñandú", "nandu"), 2);
        assert_eq!(Chars::of(&"a".repeat(33)).map(|c| c.len()), None);
        assert_eq!(Chars::of(&"a".repeat(32)).map(|c| c.len()), Some(32));
    }

    #[test]
    fn highlighting_marks_exact_prefix_and_typo_matches_and_escapes_the_rest() {
        let config = SearchConfig::load().unwrap();
        let query = vec![
            "depresion".to_string(),
            "cbt".to_string(),
            "teen".to_string(),
        ];
        let mut matched = Vec::new();
        let out = Highlighter::new(&config, &query).highlight(
            "Depression & <CBT> for teenagers, not adults.",
            &mut matched,
        );
        assert_eq!(
            out,
            "<em>Depression</em> &amp; &lt;<em>CBT</em>&gt; for <em>teenagers</em>, not adults."
        );
        assert_eq!(matched, vec!["depression", "cbt", "teenagers"]);
        let none = Highlighter::new(&config, &[]).highlight("<b>", &mut Vec::new());
        assert_eq!(none, "&lt;b&gt;");
    }
}
