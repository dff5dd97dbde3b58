//! The index schema: its fields, the keyword and flag attributes, the
//! geo cells, and its version (a new version rebuilds the index).

use std::collections::BTreeMap;

use tantivy::schema::{FAST, Field, INDEXED, STORED, STRING, Schema, TEXT};

use crate::search::engine::{FACETS, SearchError};

pub(super) const WRITER_HEAP: usize = 50_000_000;
/// Bumped whenever `schema()` changes: directories of another version are
/// not opened but replaced (and refilled through the outbox).
pub(super) const SCHEMA_VERSION: u32 = 6;
pub(super) const POINTER: &str = "current";

/// Multi-valued keyword attributes (filters and facets): the first of the
/// API's facets; the rest are yes/no flags.
pub(super) const KEYWORDS: &[&str] = FACETS.split_at(7).0;
/// Waitlist bands in `max_wait` order (their rank is the index).
pub(super) const WAITLIST_BANDS: [&str; 4] = ["none", "short", "medium", "long"];

/// Boolean attributes stored as 0/1.
pub(super) const FLAGS: [&str; 5] = [
    "telehealth",
    "in_person",
    "accepting_referrals",
    "verified",
    "sliding_scale",
];

#[derive(Clone)]
pub(super) struct Fields {
    pub(super) id: Field,
    /// The id again as two numbers: reading a hit's id from a string column
    /// decompresses a dictionary block per hit.
    pub(super) id_hi: Field,
    pub(super) id_lo: Field,
    pub(super) text: Field,
    pub(super) keywords: BTreeMap<&'static str, Field>,
    pub(super) flags: BTreeMap<&'static str, Field>,
    pub(super) capacity_tier: Field,
    pub(super) responsiveness: Field,
    pub(super) fee_min: Field,
    pub(super) lat: Field,
    pub(super) lng: Field,
    /// Grid cells (`GEO_CELL_DEGREES`) holding the location, for the radius prefilter.
    pub(super) geo_cell: Field,
    /// What a hit shows (`Shown`) as JSON, returned with each hit.
    pub(super) source: Field,
}

/// Size of the grid cells the geo prefilter uses (about 55 km of latitude).
pub(super) const GEO_CELL_DEGREES: f64 = 0.5;

pub(super) fn geo_cell(lat: f64, lng: f64) -> String {
    let row = (lat / GEO_CELL_DEGREES).floor() as i64;
    let col = (lng / GEO_CELL_DEGREES).floor() as i64;
    format!("{row}:{col}")
}

/// Every cell that a circle of `radius_km` around (lat, lng) touches, or
/// None when that would be too many (a wide radius is then checked exactly).
pub(super) fn cells_around(lat: f64, lng: f64, radius_km: f64) -> Option<Vec<String>> {
    let dlat = radius_km / 111.32;
    let dlng = radius_km / (111.32 * lat.to_radians().cos().max(0.01));
    let rows = ((lat - dlat) / GEO_CELL_DEGREES).floor() as i64
        ..=((lat + dlat) / GEO_CELL_DEGREES).floor() as i64;
    let cols = ((lng - dlng) / GEO_CELL_DEGREES).floor() as i64
        ..=((lng + dlng) / GEO_CELL_DEGREES).floor() as i64;
    let count = (rows.end() - rows.start() + 1) * (cols.end() - cols.start() + 1);
    (count <= 400).then(|| {
        rows.flat_map(|r| cols.clone().map(move |c| format!("{r}:{c}")))
            .collect()
    })
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let id_hi = b.add_u64_field("id_hi", FAST);
    let id_lo = b.add_u64_field("id_lo", FAST);
    let text = b.add_text_field("text", TEXT);
    let mut keywords: BTreeMap<&'static str, Field> = KEYWORDS
        .iter()
        .map(|name| (*name, b.add_text_field(name, STRING | FAST)))
        .collect();
    // A filter only (never a facet): `licensed_in` with `verified`.
    keywords.insert(
        "verified_states",
        b.add_text_field("verified_states", STRING),
    );
    let flags = FLAGS
        .iter()
        .map(|name| (*name, b.add_u64_field(name, INDEXED | FAST)))
        .collect();
    let fields = Fields {
        id,
        id_hi,
        id_lo,
        text,
        keywords,
        flags,
        capacity_tier: b.add_u64_field("capacity_tier", INDEXED | FAST),
        responsiveness: b.add_u64_field("responsiveness", FAST),
        fee_min: b.add_i64_field("fee_min", INDEXED | FAST),
        lat: b.add_f64_field("lat", INDEXED | FAST),
        lng: b.add_f64_field("lng", INDEXED | FAST),
        geo_cell: b.add_text_field("geo_cell", STRING),
        // Text rather than bytes: tantivy reads stored bytes back one by one.
        source: b.add_text_field("source", STORED),
    };
    (b.build(), fields)
}

pub(super) fn err(e: impl std::fmt::Display) -> SearchError {
    SearchError::Index(e.to_string())
}
