//! The embedded engine: a tantivy index under the data directory, for a
//! single Kith instance (one `IndexWriter` per directory).
//!
//! Ranking follows the same rules as the Meilisearch settings: first how many
//! query words match (a word matched only with typos counts a little less),
//! then capacity tier, then responsiveness, then distance. Geo filtering is a
//! bounding box on fast fields, then the exact great-circle distance.
//!
//! `schema` (fields and version), `store` (the directory on disk and
//! reindexing beside it), `query` (building and running a query), `collect`
//! (ranking, facets, top N); this file opens the engine and implements the
//! `SearchIndex` trait.

mod bitfilter;
mod collect;
mod query;
mod schema;
mod store;

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use tantivy::index::SegmentId;
use uuid::Uuid;

use self::{
    bitfilter::BitsCache,
    collect::ColumnCache,
    schema::err,
    store::{Live, dir_prefix, new_dir_name, read_pointer, write_pointer},
};
use crate::search::{
    config::SearchConfig,
    document::ClinicianDoc,
    engine::{EngineResults, SearchIndex, SearchResult},
    query::SearchQuery,
};

pub use store::build_beside;

pub struct EmbeddedEngine {
    /// True when `open` had to start an empty index (first run, or a schema
    /// change); the caller then queues every profile for indexing.
    pub started_empty: bool,
    root: PathBuf,
    config: Arc<SearchConfig>,
    live: RwLock<Arc<Live>>,
    columns: Arc<ColumnCache>,
    bits: Arc<BitsCache>,
}

impl EmbeddedEngine {
    /// Opens (or creates) the index under `root` (`$KITH_DATA_DIR/search`).
    pub fn open(root: PathBuf, config: Arc<SearchConfig>) -> SearchResult<Self> {
        std::fs::create_dir_all(&root).map_err(err)?;
        let (dir_name, started_empty) = match read_pointer(&root) {
            Some(name) if name.starts_with(&dir_prefix()) => (name, false),
            other => {
                if let Some(old) = other {
                    tracing::warn!(
                        old,
                        "the search index was built by another version; starting a new one"
                    );
                }
                let name = new_dir_name();
                write_pointer(&root, &name)?;
                (name, true)
            }
        };
        let live = Live::open(&root, &dir_name)?;
        let engine = Self {
            started_empty,
            root,
            config,
            live: RwLock::new(Arc::new(live)),
            columns: Arc::default(),
            bits: Arc::default(),
        };
        engine.remove_stale_dirs(&dir_name);
        Ok(engine)
    }

    fn live(&self) -> SearchResult<Arc<Live>> {
        self.live
            .read()
            .map(|l| l.clone())
            .map_err(|_| err("index state poisoned"))
    }

    /// Switches to the directory `kith reindex` built, if the pointer moved.
    /// Returns whether it switched.
    pub fn follow_pointer(&self) -> SearchResult<bool> {
        let Some(target) = read_pointer(&self.root) else {
            return Ok(false);
        };
        let current = self.live()?;
        if current.dir_name == target {
            return Ok(false);
        }
        let next = Arc::new(Live::open(&self.root, &target)?);
        *self.live.write().map_err(|_| err("index state poisoned"))? = next;
        drop(current);
        self.remove_stale_dirs(&target);
        Ok(true)
    }

    /// Forgets the columns and bitsets of segments that merges or a switch retired.
    fn prune_columns(&self, searcher: &tantivy::Searcher) {
        let Ok(mut cache) = self.columns.lock() else {
            return;
        };
        if cache.len() > searcher.segment_readers().len() {
            let live: std::collections::HashSet<SegmentId> = searcher
                .segment_readers()
                .iter()
                .map(|r| r.segment_id())
                .collect();
            cache.retain(|id, _| live.contains(id));
            drop(cache);
            self.bits.retain_segments(&live);
        }
    }

    fn remove_stale_dirs(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("clinicians-") && name != keep {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[async_trait::async_trait]
impl SearchIndex for EmbeddedEngine {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn apply_settings(&self) -> SearchResult<()> {
        // The schema is fixed in code; typo rules, synonyms and facet limits are
        // read from the same config file at query time.
        Ok(())
    }

    async fn apply(&self, upserts: Vec<ClinicianDoc>, deletes: Vec<Uuid>) -> SearchResult<()> {
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let live = self.live()?;
        tokio::task::spawn_blocking(move || live.write(&upserts, &deletes))
            .await
            .map_err(err)?
    }

    async fn search(&self, query: &SearchQuery) -> SearchResult<EngineResults> {
        self.search_now(query)
    }

    async fn rebuild(&self, docs: Vec<ClinicianDoc>) -> SearchResult<()> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || build_beside(&root, &docs))
            .await
            .map_err(err)??;
        self.follow_pointer().map(|_| ())
    }

    async fn all_ids(&self) -> SearchResult<Vec<Uuid>> {
        let live = self.live()?;
        let searcher = live.reader.searcher();
        let mut ids = Vec::new();
        for segment in searcher.segment_readers() {
            let (hi, lo) = (
                segment.fast_fields().u64("id_hi").map_err(err)?,
                segment.fast_fields().u64("id_lo").map_err(err)?,
            );
            for doc in segment.doc_ids_alive() {
                if let Some(pair) = hi.first(doc).zip(lo.first(doc)) {
                    ids.push(Uuid::from_u64_pair(pair.0, pair.1));
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}
