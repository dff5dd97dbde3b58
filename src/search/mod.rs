//! Finding colleagues: one `SearchIndex` trait with two engines (embedded
//! tantivy by default, Meilisearch when `MEILI_URL` is set), the documents they
//! index, the outbox worker that keeps them in step with PostgreSQL, and the
//! search and match routes.
//!
//! Engines retrieve, rank, count and facet; they return ids. Routes then read
//! the profiles themselves from PostgreSQL, so what a person sees (capacity,
//! freshness, names) is always current and a disabled account never shows.

mod bitfilter;
pub mod config;
pub mod document;
pub mod embedded;
pub mod meili;
pub mod outbox;
pub mod query;
mod routes;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use document::ClinicianDoc;
pub use query::SearchQuery;
pub use routes::{AgeBand, Location as MatchLocation, MatchRequest, ranked_candidates, routes};

/// What went wrong inside an engine. A route turns any of these into a 503.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the search engine is unreachable: {0}")]
    Unavailable(String),
    #[error("the search engine refused the request: {0}")]
    Rejected(String),
    #[error("search index failure: {0}")]
    Index(String),
}

pub type SearchResult<T> = Result<T, SearchError>;

/// One ranked hit: which clinician, and how far away when `near` was given.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedId {
    pub id: Uuid,
    pub distance_km: Option<f64>,
    /// The indexed document, when the engine returns it with the hit.
    pub doc: Option<Box<document::Shown>>,
}

/// Facet name (a filter parameter) → value → number of hits.
pub type Facets = BTreeMap<String, BTreeMap<String, u64>>;

#[derive(Debug, Clone, Default)]
pub struct EngineResults {
    pub hits: Vec<RankedId>,
    pub total: u64,
    pub facets: Facets,
}

/// The facets every search reports, by document attribute: the multi-valued
/// keyword attributes first (7), then the yes/no flags (the embedded engine
/// relies on this order).
pub const FACETS: [&str; 11] = [
    "specialties",
    "modalities",
    "populations",
    "insurance",
    "languages",
    "license_states",
    "waitlist",
    "telehealth",
    "in_person",
    "accepting_referrals",
    "sliding_scale",
];

#[async_trait::async_trait]
pub trait SearchIndex: Send + Sync {
    /// `embedded` or `meilisearch`.
    fn name(&self) -> &'static str;
    /// Makes the index's settings match `search-config/` (idempotent).
    async fn apply_settings(&self) -> SearchResult<()>;
    /// Adds or replaces documents and removes ids, as one batch.
    async fn apply(&self, upserts: Vec<ClinicianDoc>, deletes: Vec<Uuid>) -> SearchResult<()>;
    async fn search(&self, query: &SearchQuery) -> SearchResult<EngineResults>;
    /// Rebuilds from scratch beside the live index and switches to it.
    async fn rebuild(&self, docs: Vec<ClinicianDoc>) -> SearchResult<()>;
    /// Everything indexed (for the contract tests and the consistency check).
    async fn all_ids(&self) -> SearchResult<Vec<Uuid>>;
}

/// Meilisearch when `MEILI_URL` is set, else the embedded engine under
/// `$KITH_DATA_DIR/search`.
#[allow(clippy::type_complexity)]
pub fn open_engine(
    settings: &crate::Settings,
    config: std::sync::Arc<config::SearchConfig>,
) -> anyhow::Result<(
    std::sync::Arc<dyn SearchIndex>,
    Option<std::sync::Arc<embedded::EmbeddedEngine>>,
)> {
    use secrecy::ExposeSecret;
    match &settings.meili_url {
        Some(url) => {
            let key = settings
                .meili_master_key
                .as_ref()
                .map(|k| k.expose_secret().to_string());
            let engine = meili::MeiliEngine::new(url, key.as_deref(), &config)?;
            Ok((std::sync::Arc::new(engine), None))
        }
        None => {
            let engine = std::sync::Arc::new(embedded::EmbeddedEngine::open(
                settings.data_dir.join("search"),
                config,
            )?);
            Ok((engine.clone(), Some(engine)))
        }
    }
}

/// Responsiveness as search and match show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Responsiveness {
    /// Median hours from offer to answer; null until there is history.
    pub median_response_hours: Option<f64>,
    /// Share of answered offers that were accepted (0–1); null until there is history.
    pub acceptance_rate: Option<f64>,
}
