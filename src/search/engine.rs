//! The one trait both engines implement, and what they answer: ranked ids,
//! a total and facet counts. Engines never read PostgreSQL.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::{AppError, Code};

use super::{
    document::{self, ClinicianDoc},
    query::SearchQuery,
};

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

/// What a route answers when an engine fails: a 503 the client may retry,
/// or a 500 when the engine refused a request Kith built.
pub fn unavailable(error: SearchError) -> AppError {
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
