//! `GET /search/clinicians` and `POST /match`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    SearchQuery,
    engine::unavailable,
    hits::{SearchResponse, hydrate},
    matching::{Candidate, MatchRequest, MatchResponse, ranked_candidates, why},
    query::words,
};
use crate::{
    auth::AuthUser,
    error::{AppResult, ErrorBody},
    http::ApiJson,
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(search).service(shortlist);
}

/// Parameters of `GET /search/clinicians` (list parameters repeat: `specialty=a&specialty=b` means either).
// Only its description is used: the parser reads the query string itself
// (repeatable parameters), and a test holds the two to one list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchParams {
    /// Free text over names, bio, specialties and modalities; forgives typos; at most 512 characters.
    #[param(max_length = 512)]
    q: Option<String>,
    #[param(value_type = Option<Vec<crate::profiles::taxonomy::SpecialtySlug>>)]
    specialty: Option<Vec<String>>,
    #[param(value_type = Option<Vec<crate::profiles::taxonomy::ModalitySlug>>)]
    modality: Option<Vec<String>>,
    #[param(value_type = Option<Vec<crate::profiles::taxonomy::PopulationSlug>>)]
    population: Option<Vec<String>>,
    #[param(value_type = Option<Vec<crate::profiles::taxonomy::InsuranceSlug>>)]
    insurance: Option<Vec<String>>,
    #[param(value_type = Option<Vec<crate::profiles::taxonomy::LanguageSlug>>)]
    language: Option<Vec<String>>,
    /// Two-letter state code.
    #[param(value_type = Option<crate::profiles::model::UsState>)]
    licensed_in: Option<String>,
    telehealth: Option<bool>,
    in_person: Option<bool>,
    /// `lat,lng`.
    #[param(pattern = "^ *-?[0-9]+(\\.[0-9]+)? *, *-?[0-9]+(\\.[0-9]+)? *$")]
    near: Option<String>,
    /// Up to 500; needs `near`.
    #[param(exclusive_minimum = 0, maximum = 500)]
    radius_km: Option<f64>,
    accepting: Option<bool>,
    /// none | short | medium | long: waitlist no longer than this.
    #[param(value_type = Option<crate::profiles::Waitlist>)]
    max_wait: Option<String>,
    /// Lowest fee at most this many dollars.
    #[param(minimum = 0, maximum = 2000)]
    fee_max: Option<i32>,
    sliding_scale: Option<bool>,
    /// Only clinicians whose licence an administrator verified; with
    /// `licensed_in`, verified in that state.
    verified: Option<bool>,
    #[param(minimum = 1, maximum = 500)]
    page: Option<u32>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
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

#[cfg(test)]
mod tests {
    use utoipa::IntoParams;

    use super::SearchParams;
    use crate::{profiles::taxonomy::Taxonomy, search::SearchQuery, search::query::PARAMETERS};

    #[test]
    fn the_documented_parameters_are_the_ones_the_parser_takes() {
        let documented: Vec<String> = SearchParams::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(documented, PARAMETERS);
        let taxonomy = Taxonomy::default();
        for name in PARAMETERS {
            // A bad value may be refused, but never as an unknown parameter.
            let refused = SearchQuery::from_query_string(&format!("{name}=1"), &taxonomy)
                .err()
                .map(|e| e.message);
            assert!(
                !refused.is_some_and(|m| m.contains("is not a search parameter")),
                "{name}"
            );
        }
        let unknown = SearchQuery::from_query_string("colour=blue", &taxonomy).unwrap_err();
        assert_eq!(unknown.field.as_deref(), Some("colour"));
    }
}
