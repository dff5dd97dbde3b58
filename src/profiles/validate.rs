//! Field rules for profile edits. Each failure is a 422 naming the field.

use super::{
    model::{ProfileChanges, ProfileInput},
    taxonomy::{Kind, Taxonomy},
};
use crate::error::{AppError, AppResult};

pub use super::model::US_STATES;

pub fn state_code(field: &str, raw: &str) -> AppResult<String> {
    let code = raw.trim().to_uppercase();
    if US_STATES.contains(&code.as_str()) {
        Ok(code)
    } else {
        Err(AppError::invalid_field(
            field,
            format!("`{raw}` is not a US state code (use two letters, e.g. NY)."),
        ))
    }
}

pub fn open_slots(value: i32) -> AppResult<i32> {
    if !(0..=500).contains(&value) {
        return Err(AppError::invalid_field(
            "open_slots",
            "Open slots must be a whole number from 0 to 500.",
        ));
    }
    Ok(value)
}

pub fn profile(input: ProfileInput, taxonomy: &Taxonomy) -> AppResult<ProfileChanges> {
    if input.credentials.len() > 10 {
        return Err(AppError::invalid_field(
            "credentials",
            "List at most 10 credentials.",
        ));
    }
    let credentials = input
        .credentials
        .into_iter()
        .map(String::from)
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>();
    let mut license_states = Vec::new();
    for s in input.license_states {
        let code = state_code("license_states", &s)?;
        if !license_states.contains(&code) {
            license_states.push(code);
        }
    }
    let bio = input.bio.into_inner();
    for (field, fee) in [("fee_min", input.fee_min), ("fee_max", input.fee_max)] {
        if fee.is_some_and(|f| !(0..=2000).contains(&f)) {
            return Err(AppError::invalid_field(
                field,
                "Fees are whole dollars from 0 to 2000.",
            ));
        }
    }
    if let (Some(min), Some(max)) = (input.fee_min, input.fee_max)
        && min > max
    {
        return Err(AppError::invalid_field(
            "fee_max",
            "The highest fee cannot be below the lowest.",
        ));
    }
    let state = input
        .state
        .filter(|s| !s.trim().is_empty())
        .map(|s| state_code("state", &s))
        .transpose()?;
    let postal_code =
        crate::text::Limit::new("postal_code", 0, 10).optional(input.postal_code.as_deref())?;
    if let Some(code) = &postal_code {
        let valid = code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit())
            || code.len() == 10
                && code.as_bytes()[5] == b'-'
                && code
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| i == 5 || b.is_ascii_digit());
        if !valid {
            return Err(AppError::invalid_field(
                "postal_code",
                "Use a 5-digit ZIP code (or ZIP+4).",
            ));
        }
    }
    match (input.latitude, input.longitude) {
        (Some(lat), Some(lng)) => {
            if !(-90.0..=90.0).contains(&lat) || !lat.is_finite() {
                return Err(AppError::invalid_field(
                    "latitude",
                    "Latitude must be between -90 and 90.",
                ));
            }
            if !(-180.0..=180.0).contains(&lng) || !lng.is_finite() {
                return Err(AppError::invalid_field(
                    "longitude",
                    "Longitude must be between -180 and 180.",
                ));
            }
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(AppError::invalid_field(
                "longitude",
                "Give both latitude and longitude, or neither.",
            ));
        }
        (None, Some(_)) => {
            return Err(AppError::invalid_field(
                "latitude",
                "Give both latitude and longitude, or neither.",
            ));
        }
    }
    Ok(ProfileChanges {
        credentials,
        license_states,
        license_number: input
            .license_number
            .map(String::from)
            .filter(|v| !v.is_empty()),
        bio,
        specialties: taxonomy.check(Kind::Specialty, input.specialties)?,
        modalities: taxonomy.check(Kind::Modality, input.modalities)?,
        populations: taxonomy.check(Kind::Population, input.populations)?,
        languages: taxonomy.check(Kind::Language, input.languages)?,
        insurance: taxonomy.check(Kind::Insurance, input.insurance)?,
        fee_min: input.fee_min,
        fee_max: input.fee_max,
        sliding_scale: input.sliding_scale,
        telehealth: input.telehealth,
        in_person: input.in_person,
        city: input.city.map(String::from).filter(|v| !v.is_empty()),
        state,
        postal_code,
        latitude: input.latitude,
        longitude: input.longitude,
        accepting_referrals: input.accepting_referrals,
    })
}
