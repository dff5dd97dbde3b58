//! A search as both engines understand it, and its parsing from the query
//! string of `GET /search/clinicians` (repeatable parameters, 422 on anything
//! that does not make sense, naming the parameter).

use uuid::Uuid;

use super::document::waitlist_rank;
use crate::{
    error::{AppError, AppResult},
    profiles::{
        model::Waitlist,
        taxonomy::{Kind, Taxonomy},
        validate::state_code,
    },
};

pub const MAX_QUERY_CHARS: usize = 512;
pub const MAX_RADIUS_KM: f64 = 500.0;
pub const MAX_PER_PAGE: u32 = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    pub lat: f64,
    pub lng: f64,
    /// Only clinicians within this distance (else distance only ranks).
    pub radius_km: Option<f64>,
    /// Clinicians offering telehealth pass the radius wherever they are.
    pub or_telehealth: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub text: Option<String>,
    /// Any of these (per dimension); all dimensions must hold.
    pub specialties: Vec<String>,
    /// Every one of these specialties.
    pub all_specialties: Vec<String>,
    pub modalities: Vec<String>,
    pub populations: Vec<String>,
    pub insurance: Vec<String>,
    pub languages: Vec<String>,
    pub licensed_in: Option<String>,
    pub telehealth: Option<bool>,
    pub in_person: Option<bool>,
    pub accepting: Option<bool>,
    /// Waitlist band rank at most this (0 none … 3 long).
    pub max_wait: Option<u8>,
    pub fee_max: Option<i32>,
    pub sliding_scale: Option<bool>,
    pub verified_only: bool,
    pub near: Option<Near>,
    pub exclude: Vec<Uuid>,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            text: None,
            specialties: vec![],
            all_specialties: vec![],
            modalities: vec![],
            populations: vec![],
            insurance: vec![],
            languages: vec![],
            licensed_in: None,
            telehealth: None,
            in_person: None,
            accepting: None,
            max_wait: None,
            fee_max: None,
            sliding_scale: None,
            verified_only: false,
            near: None,
            exclude: vec![],
            page: 1,
            per_page: 20,
        }
    }
}

impl SearchQuery {
    pub fn offset(&self) -> usize {
        (self.page.saturating_sub(1) as usize) * self.per_page as usize
    }

    /// The attribute `licensed_in` filters on: a verified licence there when
    /// `verified_only`, else a claimed one.
    pub fn licence_attribute(&self) -> &'static str {
        if self.verified_only {
            "verified_states"
        } else {
            "license_states"
        }
    }

    /// The yes/no filters, by document attribute, as both engines apply them.
    pub fn flag_filters(&self) -> [(&'static str, Option<bool>); 5] {
        [
            ("telehealth", self.telehealth),
            ("in_person", self.in_person),
            ("accepting_referrals", self.accepting),
            ("sliding_scale", self.sliding_scale),
            ("verified", self.verified_only.then_some(true)),
        ]
    }

    /// The words of the text query as both engines tokenize them.
    pub fn words(&self) -> Vec<String> {
        self.text.as_deref().map(words).unwrap_or_default()
    }
}

/// Lower-cased alphanumeric words, as the index tokenizes text.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .take(32)
        .collect()
}

fn boolean(name: &str, value: &str) -> AppResult<bool> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(AppError::invalid_field(
            name,
            format!("`{name}` must be true or false."),
        )),
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> AppResult<T> {
    value
        .trim()
        .parse()
        .map_err(|_| AppError::invalid_field(name, format!("`{name}` must be a number.")))
}

/// Checks `lat,lng` and the radius.
pub fn parse_near(name: &str, value: &str) -> AppResult<(f64, f64)> {
    let bad = || {
        AppError::invalid_field(
            name,
            format!("`{name}` must be `latitude,longitude`, e.g. 40.71,-74.01."),
        )
    };
    let (lat, lng) = value.split_once(',').ok_or_else(bad)?;
    let (lat, lng): (f64, f64) = (
        lat.trim().parse().map_err(|_| bad())?,
        lng.trim().parse().map_err(|_| bad())?,
    );
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(bad());
    }
    Ok((lat, lng))
}

pub fn check_radius(name: &str, radius: f64) -> AppResult<f64> {
    if !(radius > 0.0 && radius <= MAX_RADIUS_KM) {
        return Err(AppError::invalid_field(
            name,
            format!("`{name}` must be more than 0 and at most {MAX_RADIUS_KM} km."),
        ));
    }
    Ok(radius)
}

pub fn check_text(name: &str, text: &str) -> AppResult<Option<String>> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::invalid_field(
            name,
            format!("`{name}` is longer than {MAX_QUERY_CHARS} characters."),
        ));
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

fn slug(taxonomy: &Taxonomy, kind: Kind, name: &str, value: &str) -> AppResult<String> {
    let value = value.trim().to_lowercase();
    if taxonomy.contains(kind, &value) {
        Ok(value)
    } else {
        Err(AppError::invalid_field(
            name,
            format!("Unknown {} `{value}` in `{name}`.", kind.as_str()),
        ))
    }
}

/// Every parameter `GET /search/clinicians` takes. The parser refuses any
/// other, and a test holds the OpenAPI description (`routes::SearchParams`)
/// to this list, so neither can drift from the other.
pub const PARAMETERS: &[&str] = &[
    "q",
    "specialty",
    "modality",
    "population",
    "insurance",
    "language",
    "licensed_in",
    "telehealth",
    "in_person",
    "near",
    "radius_km",
    "accepting",
    "max_wait",
    "fee_max",
    "sliding_scale",
    "verified",
    "page",
    "per_page",
];

fn not_a_parameter(key: &str) -> AppError {
    AppError::invalid_field(key, format!("`{key}` is not a search parameter."))
}

impl SearchQuery {
    /// Parses `GET /search/clinicians` parameters.
    pub fn from_query_string(raw: &str, taxonomy: &Taxonomy) -> AppResult<Self> {
        let mut q = SearchQuery::default();
        let mut near = None;
        let mut radius = None;
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let (key, value) = (key.as_ref(), value.as_ref());
            crate::text::parameter_without_nul(key, value)?;
            if !PARAMETERS.contains(&key) {
                return Err(not_a_parameter(key));
            }
            match key {
                "q" => q.text = check_text("q", value)?,
                "specialty" => q
                    .specialties
                    .push(slug(taxonomy, Kind::Specialty, key, value)?),
                "modality" => q
                    .modalities
                    .push(slug(taxonomy, Kind::Modality, key, value)?),
                "population" => q
                    .populations
                    .push(slug(taxonomy, Kind::Population, key, value)?),
                "insurance" => q
                    .insurance
                    .push(slug(taxonomy, Kind::Insurance, key, value)?),
                "language" => q
                    .languages
                    .push(slug(taxonomy, Kind::Language, key, value)?),
                "licensed_in" => q.licensed_in = Some(state_code(key, value)?),
                "telehealth" => q.telehealth = Some(boolean(key, value)?),
                "in_person" => q.in_person = Some(boolean(key, value)?),
                "accepting" => q.accepting = Some(boolean(key, value)?),
                "sliding_scale" => q.sliding_scale = Some(boolean(key, value)?),
                "verified" => q.verified_only = boolean(key, value)?,
                "max_wait" => {
                    let band = Waitlist::parse(value).ok_or_else(|| {
                        AppError::invalid_field(
                            key,
                            "`max_wait` must be none, short, medium or long.",
                        )
                    })?;
                    q.max_wait = Some(waitlist_rank(band));
                }
                "fee_max" => {
                    let fee: i32 = number(key, value)?;
                    if !(0..=2000).contains(&fee) {
                        return Err(AppError::invalid_field(
                            key,
                            "`fee_max` must be from 0 to 2000 dollars.",
                        ));
                    }
                    q.fee_max = Some(fee);
                }
                "near" => near = Some(parse_near(key, value)?),
                "radius_km" => radius = Some(check_radius(key, number(key, value)?)?),
                "page" => {
                    q.page = number(key, value)?;
                    if !(1..=500).contains(&q.page) {
                        return Err(AppError::invalid_field(
                            key,
                            "`page` must be from 1 to 500.",
                        ));
                    }
                }
                "per_page" => {
                    q.per_page = number(key, value)?;
                    if !(1..=MAX_PER_PAGE).contains(&q.per_page) {
                        return Err(AppError::invalid_field(
                            key,
                            format!("`per_page` must be from 1 to {MAX_PER_PAGE}."),
                        ));
                    }
                }
                other => return Err(not_a_parameter(other)),
            }
        }
        match (near, radius) {
            (Some((lat, lng)), radius_km) => {
                q.near = Some(Near {
                    lat,
                    lng,
                    radius_km,
                    or_telehealth: false,
                })
            }
            (None, Some(_)) => {
                return Err(AppError::invalid_field(
                    "radius_km",
                    "`radius_km` needs `near`.",
                ));
            }
            (None, None) => {}
        }
        Ok(q)
    }
}

/// Great-circle distance in kilometres.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_KM: f64 = 6371.0088;
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = lat2 - lat1;
    let dlng = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_between_new_york_and_boston_is_about_306_km() {
        let d = haversine_km((40.7128, -74.0060), (42.3601, -71.0589));
        assert!((d - 306.0).abs() < 3.0, "{d}");
    }

    #[test]
    fn query_words_are_lowercased_alphanumeric() {
        assert_eq!(words("Trauma-PTSD, EMDR!"), vec!["trauma", "ptsd", "emdr"]);
    }
}
