//! The embedded engine: a tantivy index under the data directory, for a
//! single Kith instance (one `IndexWriter` per directory).
//!
//! Ranking follows the same rules as the Meilisearch settings: first how many
//! query words match (a word matched only with typos counts a little less),
//! then capacity tier, then responsiveness, then distance. Geo filtering is a
//! bounding box on fast fields, then the exact great-circle distance.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap, HashMap},
    ops::Bound,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Score,
    SegmentOrdinal, SegmentReader, TantivyDocument, Term,
    collector::{Collector, SegmentCollector},
    directory::MmapDirectory,
    index::SegmentId,
    indexer::NoMergePolicy,
    query::{
        AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query,
        RangeQuery, TermQuery,
    },
    schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value as _},
    store::Compressor,
};
use uuid::Uuid;

use super::{
    ClinicianDoc, EngineResults, FACETS, RankedId, SearchError, SearchIndex, SearchQuery,
    SearchResult,
    bitfilter::{BitsCache, BitsQuery},
    config::SearchConfig,
    document::Shown,
    query::{Near, haversine_km},
};

const WRITER_HEAP: usize = 50_000_000;
/// Bumped whenever `schema()` changes: directories of another version are
/// not opened but replaced (and refilled through the outbox).
const SCHEMA_VERSION: u32 = 5;
const POINTER: &str = "current";

/// Multi-valued keyword attributes (filters and facets): the first of the
/// API's facets; the rest are yes/no flags.
const KEYWORDS: &[&str] = FACETS.split_at(7).0;
/// Waitlist bands in `max_wait` order (their rank is the index).
const WAITLIST_BANDS: [&str; 4] = ["none", "short", "medium", "long"];

/// Boolean attributes stored as 0/1.
const FLAGS: [&str; 5] = [
    "telehealth",
    "in_person",
    "accepting_referrals",
    "verified",
    "sliding_scale",
];

#[derive(Clone)]
struct Fields {
    id: Field,
    /// The id again as two numbers: reading a hit's id from a string column
    /// decompresses a dictionary block per hit.
    id_hi: Field,
    id_lo: Field,
    text: Field,
    keywords: BTreeMap<&'static str, Field>,
    flags: BTreeMap<&'static str, Field>,
    capacity_tier: Field,
    responsiveness: Field,
    fee_min: Field,
    lat: Field,
    lng: Field,
    /// Grid cells (`GEO_CELL_DEGREES`) holding the location, for the radius prefilter.
    geo_cell: Field,
    /// What a hit shows (`Shown`) as JSON, returned with each hit.
    source: Field,
}

/// Size of the grid cells the geo prefilter uses (about 55 km of latitude).
const GEO_CELL_DEGREES: f64 = 0.5;

fn geo_cell(lat: f64, lng: f64) -> String {
    let row = (lat / GEO_CELL_DEGREES).floor() as i64;
    let col = (lng / GEO_CELL_DEGREES).floor() as i64;
    format!("{row}:{col}")
}

/// Every cell that a circle of `radius_km` around (lat, lng) touches, or
/// None when that would be too many (a wide radius is then checked exactly).
fn cells_around(lat: f64, lng: f64, radius_km: f64) -> Option<Vec<String>> {
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

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let id_hi = b.add_u64_field("id_hi", FAST);
    let id_lo = b.add_u64_field("id_lo", FAST);
    let text = b.add_text_field("text", TEXT);
    let keywords = KEYWORDS
        .iter()
        .map(|name| (*name, b.add_text_field(name, STRING | FAST)))
        .collect();
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

/// Documents holding any of `terms` (the excluded ids). A union of term
/// queries rather than tantivy's `TermSetQuery`, which builds an FST with a
/// 10,000-cell registry on every query.
fn any_term(terms: impl IntoIterator<Item = Term>) -> Box<dyn Query> {
    let mut terms: Vec<Box<dyn Query>> = terms
        .into_iter()
        .map(|t| Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>)
        .collect();
    if terms.len() == 1 {
        return terms.remove(0);
    }
    Box::new(BooleanQuery::union(terms))
}

fn err(e: impl std::fmt::Display) -> SearchError {
    SearchError::Index(e.to_string())
}

/// One open index directory.
struct Live {
    dir_name: String,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl Live {
    fn open(root: &Path, dir_name: &str) -> SearchResult<Self> {
        let path = root.join(dir_name);
        std::fs::create_dir_all(&path).map_err(err)?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(&path).map_err(err)?;
        // Hits are read from the document store on every search: uncompressed,
        // reading one is a copy rather than decompressing a 16 KiB block.
        // Small blocks, so that a hit copies little more than itself.
        let settings = IndexSettings {
            docstore_compression: Compressor::None,
            docstore_blocksize: 4096,
            ..IndexSettings::default()
        };
        let index = Index::builder()
            .schema(schema)
            .settings(settings)
            .open_or_create(directory)
            .map_err(err)?;
        let writer = index.writer(WRITER_HEAP).map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(Self {
            dir_name: dir_name.to_string(),
            reader,
            writer: Mutex::new(writer),
            fields,
        })
    }

    fn document(&self, doc: &ClinicianDoc) -> SearchResult<TantivyDocument> {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        let shown = serde_json::to_string(&Shown::from(doc.clone())).map_err(err)?;
        d.add_text(f.source, shown);
        d.add_text(f.id, doc.id.to_string());
        let (hi, lo) = doc.id.as_u64_pair();
        d.add_u64(f.id_hi, hi);
        d.add_u64(f.id_lo, lo);
        for text in [&doc.display_name, &doc.bio, &doc.city]
            .into_iter()
            .chain(&doc.specialty_terms)
            .chain(&doc.modality_terms)
        {
            d.add_text(f.text, text);
        }
        let lists: [(&str, &Vec<String>); 6] = [
            ("specialties", &doc.specialties),
            ("modalities", &doc.modalities),
            ("populations", &doc.populations),
            ("insurance", &doc.insurance),
            ("languages", &doc.languages),
            ("license_states", &doc.license_states),
        ];
        for (name, values) in lists {
            for v in values {
                d.add_text(f.keywords[name], v);
            }
        }
        d.add_text(f.keywords["waitlist"], &doc.waitlist);
        for (name, value) in [
            ("telehealth", doc.telehealth),
            ("in_person", doc.in_person),
            ("accepting_referrals", doc.accepting_referrals),
            ("verified", doc.verified),
            ("sliding_scale", doc.sliding_scale),
        ] {
            d.add_u64(f.flags[name], u64::from(value));
        }
        d.add_u64(f.capacity_tier, u64::from(doc.capacity_tier));
        d.add_u64(f.responsiveness, u64::from(doc.responsiveness));
        d.add_i64(f.fee_min, i64::from(doc.fee_min));
        if let Some(geo) = doc.geo {
            d.add_f64(f.lat, geo.lat);
            d.add_f64(f.lng, geo.lng);
            d.add_text(f.geo_cell, geo_cell(geo.lat, geo.lng));
        }
        Ok(d)
    }

    fn write(&self, upserts: &[ClinicianDoc], deletes: &[Uuid]) -> SearchResult<()> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| err("index writer poisoned"))?;
        for id in deletes.iter().chain(upserts.iter().map(|d| &d.id)) {
            writer.delete_term(Term::from_field_text(self.fields.id, &id.to_string()));
        }
        for doc in upserts {
            writer.add_document(self.document(doc)?).map_err(err)?;
        }
        writer.commit().map_err(err)?;
        drop(writer);
        self.reader.reload().map_err(err)
    }
}

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

fn read_pointer(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join(POINTER))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn write_pointer(root: &Path, dir_name: &str) -> SearchResult<()> {
    let tmp = root.join(format!("{POINTER}.tmp"));
    std::fs::write(&tmp, dir_name).map_err(err)?;
    std::fs::rename(&tmp, root.join(POINTER)).map_err(err)
}

fn dir_prefix() -> String {
    format!("clinicians-v{SCHEMA_VERSION}-")
}

fn new_dir_name() -> String {
    format!("{}{}", dir_prefix(), Uuid::now_v7().simple())
}

/// Builds a complete index in a new directory under `root` and points
/// `current` at it. The live index is not touched (its writer may be held by
/// a running server, which follows the pointer within a second).
pub fn build_beside(root: &Path, docs: &[ClinicianDoc]) -> SearchResult<()> {
    std::fs::create_dir_all(root).map_err(err)?;
    let name = new_dir_name();
    let fresh = Live::open(root, &name)?;
    {
        let mut writer = fresh.writer.lock().map_err(|_| err("writer poisoned"))?;
        // Merged once below, by hand: a background merge of the same segments
        // would race with it.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        for doc in docs {
            writer.add_document(fresh.document(doc)?).map_err(err)?;
        }
        writer.commit().map_err(err)?;
        // The indexing threads leave several segments; one segment makes every
        // query prepare one set of scorers and count facets once.
        let segments = writer.index().searchable_segment_ids().map_err(err)?;
        if segments.len() > 1 {
            writer.merge(&segments).wait().map_err(err)?;
        }
        writer.garbage_collect_files().wait().map_err(err)?;
    }
    drop(fresh);
    write_pointer(root, &name)
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

    fn build_query(
        &self,
        fields: &Fields,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
    ) -> Box<dyn Query> {
        // A word found in at least 1 % of documents needs no typo expansion:
        // its own postings are the answer, and expanding it would materialise
        // them all instead of intersecting lazily with the filters.
        let common = (searcher.num_docs() / 100).max(50);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let filter = |query: Box<dyn Query>| -> (Occur, Box<dyn Query>) {
            (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
        };

        let words = q.words();
        if !words.is_empty() {
            let last = words.len() - 1;
            let per_word: Vec<(Occur, Box<dyn Query>)> = words
                .iter()
                .enumerate()
                .map(|(i, word)| {
                    let term = Term::from_field_text(fields.text, word);
                    // The last word is a prefix, so results follow typing.
                    let prefix = i == last && word.chars().count() >= 2;
                    let typos = self.config.typos_allowed(word);
                    // The whole word, exactly: full credit (one posting list, cheap).
                    let exact = TermQuery::new(term.clone(), IndexRecordOption::Basic);
                    let mut alternatives: Vec<Box<dyn Query>> =
                        vec![Box::new(ConstScoreQuery::new(Box::new(exact), 1.0))];
                    for synonym in self.config.synonyms.get(word).into_iter().flatten() {
                        if !synonym.contains(' ') {
                            let t = Term::from_field_text(fields.text, synonym);
                            alternatives.push(Box::new(ConstScoreQuery::new(
                                Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                                1.0,
                            )));
                        }
                    }
                    // Typos and unfinished words: one automaton, slightly less credit.
                    let frequent = searcher.doc_freq(&term).is_ok_and(|df| df >= common);
                    if (typos > 0 || prefix) && !frequent {
                        let loose = if prefix {
                            FuzzyTermQuery::new_prefix(term, typos, true)
                        } else {
                            FuzzyTermQuery::new(term, typos, true)
                        };
                        alternatives.push(Box::new(ConstScoreQuery::new(Box::new(loose), 0.9)));
                    }
                    (
                        Occur::Should,
                        Box::new(DisjunctionMaxQuery::new(alternatives)) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(per_word))));
        }

        // Keyword, flag, waitlist and area filters: cached bitsets, one
        // clause per filter, any of a clause's terms.
        let mut bit_clauses: Vec<Vec<Term>> = Vec::new();
        let mut any_of = |name: &str, values: &[String]| {
            if !values.is_empty() {
                bit_clauses.push(
                    values
                        .iter()
                        .map(|v| Term::from_field_text(fields.keywords[name], v))
                        .collect(),
                );
            }
        };
        any_of("specialties", &q.specialties);
        any_of("modalities", &q.modalities);
        any_of("populations", &q.populations);
        any_of("insurance", &q.insurance);
        any_of("languages", &q.languages);
        for s in &q.all_specialties {
            any_of("specialties", std::slice::from_ref(s));
        }
        if let Some(state) = &q.licensed_in {
            any_of("license_states", std::slice::from_ref(state));
        }
        if let Some(max) = q.max_wait {
            let bands: Vec<String> = WAITLIST_BANDS
                .iter()
                .take(usize::from(max) + 1)
                .map(|b| b.to_string())
                .collect();
            any_of("waitlist", &bands);
        }
        for (name, value) in q.flag_filters() {
            if let Some(value) = value {
                bit_clauses.push(vec![Term::from_field_u64(
                    fields.flags[name],
                    u64::from(value),
                )]);
            }
        }
        if let Some(Near {
            lat,
            lng,
            radius_km: Some(radius),
            or_telehealth: false,
        }) = q.near
            && let Some(cells) = cells_around(lat, lng, radius)
        {
            // Grid cells first; the collector checks the circle exactly.
            bit_clauses.push(
                cells
                    .iter()
                    .map(|c| Term::from_field_text(fields.geo_cell, c))
                    .collect(),
            );
        }
        if !bit_clauses.is_empty() {
            clauses.push((
                Occur::Must,
                Box::new(BitsQuery {
                    clauses: bit_clauses,
                    cache: self.bits.clone(),
                }),
            ));
        }
        if let Some(fee) = q.fee_max {
            let upper = Term::from_field_i64(fields.fee_min, i64::from(fee));
            clauses.push(filter(Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Included(upper),
            ))));
        }
        if !q.exclude.is_empty() {
            let terms = q
                .exclude
                .iter()
                .map(|id| Term::from_field_text(fields.id, &id.to_string()));
            clauses.push((Occur::MustNot, any_term(terms)));
        }
        if !clauses.iter().any(|(occur, _)| *occur == Occur::Must) {
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)),
            ));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    fn search_now(&self, q: &SearchQuery) -> SearchResult<EngineResults> {
        let live = self.live()?;
        let searcher = live.reader.searcher();
        let query = self.build_query(&live.fields, &searcher, q);
        let collector = ClinicianCollector {
            near: q.near.clone(),
            keep: q.offset() + q.per_page as usize,
            scoring: !q.words().is_empty(),
            max_facet_values: self.config.max_values_per_facet,
            columns: self.columns.clone(),
        };
        let fruit = searcher.search(&*query, &collector).map_err(err)?;
        self.prune_columns(&searcher);
        let mut hits = Vec::with_capacity(q.per_page as usize);
        for (key, id) in fruit.top.into_iter().skip(q.offset()) {
            let stored: TantivyDocument = searcher
                .doc(DocAddress::new(key.segment, key.doc))
                .map_err(err)?;
            let doc = stored
                .get_first(live.fields.source)
                .and_then(|v| v.as_str())
                .map(serde_json::from_str::<Shown>)
                .transpose()
                .map_err(err)?;
            hits.push(RankedId {
                id,
                distance_km: key
                    .distance
                    .is_finite()
                    .then_some(f64::from(key.distance))
                    .filter(|_| q.near.is_some()),
                doc: doc.map(Box::new),
            });
        }
        Ok(EngineResults {
            hits,
            total: fruit.total,
            facets: fruit.facets,
        })
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

/// Sorts better hits first.
#[derive(Debug, Clone, Copy)]
struct RankKey {
    words: f32,
    tier: u8,
    responsiveness: u8,
    distance: f32,
    segment: SegmentOrdinal,
    doc: DocId,
}

impl RankKey {
    fn cmp_better_first(&self, other: &Self) -> Ordering {
        other
            .words
            .total_cmp(&self.words)
            .then(self.tier.cmp(&other.tier))
            .then(other.responsiveness.cmp(&self.responsiveness))
            .then(self.distance.total_cmp(&other.distance))
            .then(self.segment.cmp(&other.segment))
            .then(self.doc.cmp(&other.doc))
    }
}

/// Heap entry whose maximum is the worst kept hit.
struct Worst(RankKey);
impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp_better_first(&other.0)
    }
}

/// One segment's values as plain arrays, read once: segments never change,
/// and reading tantivy's column indexes per matched document (seven
/// multi-valued facet columns among them) cost more than the search itself.
struct SegmentColumns {
    ids: Vec<Uuid>,
    tier: Vec<u8>,
    responsiveness: Vec<u8>,
    /// NaN when the clinician has no location.
    geo: Vec<(f64, f64)>,
    telehealth: Vec<bool>,
    /// Facet values of document `d`: `facet_ords[facet_offsets[d]..facet_offsets[d + 1]]`,
    /// indexes into `facet_values`.
    facet_offsets: Vec<u32>,
    facet_ords: Vec<u16>,
    /// (facet, value) for each facet index.
    facet_values: Vec<(&'static str, String)>,
}

/// Boolean attributes reported as facets (`"true"`/`"false"`).
const FLAG_FACETS: &[&str] = FACETS.split_at(7).1;

impl SegmentColumns {
    fn open(reader: &SegmentReader) -> tantivy::Result<Self> {
        let ff = reader.fast_fields();
        let max_doc = reader.max_doc();
        let u64s = |name: &str| ff.u64(name);
        let (id_hi, id_lo) = (u64s("id_hi")?, u64s("id_lo")?);
        let (tier, responsiveness, telehealth) = (
            u64s("capacity_tier")?,
            u64s("responsiveness")?,
            u64s("telehealth")?,
        );
        let (lat, lng) = (ff.f64("lat")?, ff.f64("lng")?);

        let mut facet_values: Vec<(&'static str, String)> = Vec::new();
        let mut keyword_columns = Vec::new();
        for &name in KEYWORDS {
            let base = facet_values.len();
            if let Some(column) = ff.str(name)? {
                let mut buf = String::new();
                for ord in 0..column.num_terms() as u64 {
                    buf.clear();
                    column.ord_to_str(ord, &mut buf)?;
                    facet_values.push((name, buf.clone()));
                }
                keyword_columns.push((base, column));
            }
        }
        let mut flag_columns = Vec::new();
        for &name in FLAG_FACETS {
            let base = facet_values.len();
            facet_values.push((name, "false".into()));
            facet_values.push((name, "true".into()));
            flag_columns.push((base, ff.u64(name)?));
        }
        if facet_values.len() > usize::from(u16::MAX) {
            return Err(tantivy::TantivyError::InternalError(
                "too many facet values in one segment".into(),
            ));
        }

        let n = max_doc as usize;
        let mut facet_offsets = Vec::with_capacity(n + 1);
        let mut facet_ords = Vec::with_capacity(n * 16);
        facet_offsets.push(0u32);
        for doc in 0..max_doc {
            for (base, column) in &keyword_columns {
                facet_ords.extend(
                    column
                        .term_ords(doc)
                        .map(|ord| (base + ord as usize) as u16),
                );
            }
            for (base, column) in &flag_columns {
                if let Some(v) = column.first(doc) {
                    facet_ords.push((base + usize::from(v == 1)) as u16);
                }
            }
            facet_offsets.push(facet_ords.len() as u32);
        }
        Ok(Self {
            ids: (0..max_doc)
                .map(|d| {
                    Uuid::from_u64_pair(id_hi.first(d).unwrap_or(0), id_lo.first(d).unwrap_or(0))
                })
                .collect(),
            tier: (0..max_doc)
                .map(|d| tier.first(d).unwrap_or(5) as u8)
                .collect(),
            responsiveness: (0..max_doc)
                .map(|d| responsiveness.first(d).unwrap_or(50) as u8)
                .collect(),
            geo: (0..max_doc)
                .map(|d| {
                    lat.first(d)
                        .zip(lng.first(d))
                        .unwrap_or((f64::NAN, f64::NAN))
                })
                .collect(),
            telehealth: (0..max_doc)
                .map(|d| telehealth.first(d) == Some(1))
                .collect(),
            facet_offsets,
            facet_ords,
            facet_values,
        })
    }
}

type ColumnCache = Mutex<HashMap<SegmentId, Arc<SegmentColumns>>>;

struct ClinicianCollector {
    near: Option<Near>,
    keep: usize,
    scoring: bool,
    max_facet_values: usize,
    columns: Arc<ColumnCache>,
}

struct Fruit {
    total: u64,
    facets: super::Facets,
    top: Vec<(RankKey, Uuid)>,
}

struct SegmentState {
    segment: SegmentOrdinal,
    near: Option<Near>,
    keep: usize,
    columns: Arc<SegmentColumns>,
    facet_counts: Vec<u64>,
    total: u64,
    heap: BinaryHeap<Worst>,
}

impl Collector for ClinicianCollector {
    type Fruit = Fruit;
    type Child = SegmentState;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentState> {
        let key = reader.segment_id();
        let cached = self.columns.lock().ok().and_then(|c| c.get(&key).cloned());
        let columns = match cached {
            Some(columns) => columns,
            None => {
                let columns = Arc::new(SegmentColumns::open(reader)?);
                if let Ok(mut cache) = self.columns.lock() {
                    cache.insert(key, columns.clone());
                }
                columns
            }
        };
        Ok(SegmentState {
            segment,
            near: self.near.clone(),
            keep: self.keep,
            facet_counts: vec![0; columns.facet_values.len()],
            columns,
            total: 0,
            heap: BinaryHeap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scoring
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let mut merged = Fruit {
            total: 0,
            facets: FACETS
                .iter()
                .map(|f| (f.to_string(), BTreeMap::new()))
                .collect(),
            top: Vec::new(),
        };
        for fruit in fruits {
            merged.total += fruit.total;
            for (facet, values) in fruit.facets {
                let entry = merged.facets.entry(facet).or_default();
                for (value, count) in values {
                    *entry.entry(value).or_default() += count;
                }
            }
            merged.top.extend(fruit.top);
        }
        merged.top.sort_by(|a, b| a.0.cmp_better_first(&b.0));
        merged.top.truncate(self.keep);
        for values in merged.facets.values_mut() {
            if values.len() > self.max_facet_values {
                let mut by_count: Vec<_> = std::mem::take(values).into_iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                by_count.truncate(self.max_facet_values);
                *values = by_count.into_iter().collect();
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for SegmentState {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let c = &*self.columns;
        let d = doc as usize;
        let mut distance = f32::INFINITY;
        if let Some(near) = &self.near {
            let point = c.geo[d];
            if !point.0.is_nan() {
                distance = haversine_km((near.lat, near.lng), point) as f32;
            }
            if let Some(radius) = near.radius_km {
                // A clinician with no location (infinite distance) is outside.
                let outside = f64::from(distance) > radius;
                if outside && !(near.or_telehealth && c.telehealth[d]) {
                    return;
                }
            }
        }
        self.total += 1;
        let (start, end) = (c.facet_offsets[d] as usize, c.facet_offsets[d + 1] as usize);
        for &f in &c.facet_ords[start..end] {
            self.facet_counts[usize::from(f)] += 1;
        }
        let key = RankKey {
            words: score,
            tier: c.tier[d],
            responsiveness: c.responsiveness[d],
            distance,
            segment: self.segment,
            doc,
        };
        if self.heap.len() < self.keep {
            self.heap.push(Worst(key));
        } else if let Some(worst) = self.heap.peek()
            && key.cmp_better_first(&worst.0) == Ordering::Less
        {
            self.heap.pop();
            self.heap.push(Worst(key));
        }
    }

    fn harvest(self) -> Fruit {
        let c = &*self.columns;
        let mut facets: super::Facets = BTreeMap::new();
        for ((facet, value), count) in c.facet_values.iter().zip(&self.facet_counts) {
            if *count > 0 {
                facets
                    .entry(facet.to_string())
                    .or_default()
                    .insert(value.clone(), *count);
            }
        }
        let top = self
            .heap
            .into_vec()
            .into_iter()
            .map(|Worst(key)| (key, c.ids[key.doc as usize]))
            .collect();
        Fruit {
            total: self.total,
            facets,
            top,
        }
    }
}
