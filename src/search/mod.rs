//! Finding colleagues: one `SearchIndex` trait with two engines (embedded
//! tantivy by default, Meilisearch when `MEILI_URL` is set), the documents they
//! index, the outbox worker that keeps them in step with PostgreSQL, and the
//! search and match routes.
//!
//! Engines retrieve, rank, count and facet; they return ids. Routes then read
//! the profiles themselves from PostgreSQL, so what a person sees (capacity,
//! freshness, names) is always current and a disabled account never shows.

pub mod config;
pub mod document;
pub mod embedded;
pub mod engine;
mod highlight;
pub mod hits;
pub mod indexer;
pub mod matching;
pub mod meili;
pub mod query;
mod routes;

pub use document::ClinicianDoc;
pub use engine::{EngineResults, FACETS, Facets, RankedId, SearchError, SearchIndex, SearchResult};
pub use matching::{AgeBand, Location, MatchRequest, ranked_candidates};
pub use query::SearchQuery;
pub use routes::routes;

/// Meilisearch when `MEILI_URL` is set, else the embedded engine under
/// `$KITH_DATA_DIR/search`.
#[allow(clippy::type_complexity)]
pub fn open_engine(
    settings: &crate::config::Settings,
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

pub use crate::responsiveness::Responsiveness;
