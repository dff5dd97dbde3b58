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
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
    collector::{Collector, SegmentCollector},
    columnar::{Column, StrColumn},
    directory::MmapDirectory,
    index::SegmentId,
    query::{
        AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query,
        RangeQuery, TermQuery, TermSetQuery,
    },
    schema::{FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT},
};
use uuid::Uuid;

use super::{
    ClinicianDoc, EngineResults, FACETS, RankedId, SearchError, SearchIndex, SearchQuery,
    SearchResult,
    config::SearchConfig,
    query::{Near, haversine_km},
};

const WRITER_HEAP: usize = 50_000_000;
/// Bumped whenever `schema()` changes: directories of another version are
/// not opened but replaced (and refilled through the outbox).
const SCHEMA_VERSION: u32 = 2;
const POINTER: &str = "current";

/// Multi-valued keyword attributes (filters and facets).
const KEYWORDS: [&str; 7] = [
    "specialties",
    "modalities",
    "populations",
    "insurance",
    "languages",
    "license_states",
    "waitlist",
];
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
    waitlist_rank: Field,
    capacity_tier: Field,
    responsiveness: Field,
    fee_min: Field,
    lat: Field,
    lng: Field,
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
        waitlist_rank: b.add_u64_field("waitlist_rank", INDEXED | FAST),
        capacity_tier: b.add_u64_field("capacity_tier", INDEXED | FAST),
        responsiveness: b.add_u64_field("responsiveness", FAST),
        fee_min: b.add_i64_field("fee_min", INDEXED | FAST),
        lat: b.add_f64_field("lat", INDEXED | FAST),
        lng: b.add_f64_field("lng", INDEXED | FAST),
    };
    (b.build(), fields)
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
        let index = Index::open_or_create(directory, schema).map_err(err)?;
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

    fn document(&self, doc: &ClinicianDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
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
        d.add_u64(f.waitlist_rank, u64::from(doc.waitlist_rank));
        d.add_u64(f.capacity_tier, u64::from(doc.capacity_tier));
        d.add_u64(f.responsiveness, u64::from(doc.responsiveness));
        d.add_i64(f.fee_min, i64::from(doc.fee_min));
        if let Some(geo) = doc.geo {
            d.add_f64(f.lat, geo.lat);
            d.add_f64(f.lng, geo.lng);
        }
        d
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
            writer.add_document(self.document(doc)).map_err(err)?;
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
        for doc in docs {
            writer.add_document(fresh.document(doc)).map_err(err)?;
        }
        writer.commit().map_err(err)?;
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

    /// Forgets the columns of segments that merges or a switch retired.
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

    fn build_query(&self, fields: &Fields, q: &SearchQuery) -> Box<dyn Query> {
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
                    let exact: Box<dyn Query> = if prefix {
                        Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, true))
                    } else {
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic))
                    };
                    let mut alternatives: Vec<Box<dyn Query>> =
                        vec![Box::new(ConstScoreQuery::new(exact, 1.0))];
                    for synonym in self.config.synonyms.get(word).into_iter().flatten() {
                        if !synonym.contains(' ') {
                            let t = Term::from_field_text(fields.text, synonym);
                            alternatives.push(Box::new(ConstScoreQuery::new(
                                Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                                1.0,
                            )));
                        }
                    }
                    let typos = self.config.typos_allowed(word);
                    if typos > 0 {
                        let fuzzy = if prefix {
                            FuzzyTermQuery::new_prefix(term, typos, true)
                        } else {
                            FuzzyTermQuery::new(term, typos, true)
                        };
                        alternatives.push(Box::new(ConstScoreQuery::new(Box::new(fuzzy), 0.9)));
                    }
                    (
                        Occur::Should,
                        Box::new(DisjunctionMaxQuery::new(alternatives)) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(per_word))));
        }

        let any_of = |name: &str, values: &[String]| -> Option<(Occur, Box<dyn Query>)> {
            (!values.is_empty()).then(|| {
                let terms = values
                    .iter()
                    .map(|v| Term::from_field_text(fields.keywords[name], v));
                filter(Box::new(TermSetQuery::new(terms)))
            })
        };
        clauses.extend(any_of("specialties", &q.specialties));
        clauses.extend(any_of("modalities", &q.modalities));
        clauses.extend(any_of("populations", &q.populations));
        clauses.extend(any_of("insurance", &q.insurance));
        clauses.extend(any_of("languages", &q.languages));
        for s in &q.all_specialties {
            let t = Term::from_field_text(fields.keywords["specialties"], s);
            clauses.push(filter(Box::new(TermQuery::new(
                t,
                IndexRecordOption::Basic,
            ))));
        }
        if let Some(state) = &q.licensed_in {
            let t = Term::from_field_text(fields.keywords["license_states"], state);
            clauses.push(filter(Box::new(TermQuery::new(
                t,
                IndexRecordOption::Basic,
            ))));
        }
        for (name, value) in [
            ("telehealth", q.telehealth),
            ("in_person", q.in_person),
            ("accepting_referrals", q.accepting),
            ("sliding_scale", q.sliding_scale),
            ("verified", q.verified_only.then_some(true)),
        ] {
            if let Some(value) = value {
                let t = Term::from_field_u64(fields.flags[name], u64::from(value));
                clauses.push(filter(Box::new(TermQuery::new(
                    t,
                    IndexRecordOption::Basic,
                ))));
            }
        }
        if let Some(max) = q.max_wait {
            let upper = Term::from_field_u64(fields.waitlist_rank, u64::from(max));
            clauses.push(filter(Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Included(upper),
            ))));
        }
        if let Some(fee) = q.fee_max {
            let upper = Term::from_field_i64(fields.fee_min, i64::from(fee));
            clauses.push(filter(Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Included(upper),
            ))));
        }
        if let Some(Near {
            lat,
            lng,
            radius_km: Some(radius),
            or_telehealth: false,
        }) = q.near
        {
            // Bounding box first (cheap, on fast fields); the collector checks the circle.
            let dlat = radius / 111.32;
            let dlng = radius / (111.32 * lat.to_radians().cos().max(0.01));
            let range = |field: Field, lo: f64, hi: f64| -> Box<dyn Query> {
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_f64(field, lo)),
                    Bound::Included(Term::from_field_f64(field, hi)),
                ))
            };
            clauses.push(filter(range(fields.lat, lat - dlat, lat + dlat)));
            if lng - dlng > -180.0 && lng + dlng < 180.0 {
                clauses.push(filter(range(fields.lng, lng - dlng, lng + dlng)));
            }
        }
        if !q.exclude.is_empty() {
            let terms = q
                .exclude
                .iter()
                .map(|id| Term::from_field_text(fields.id, &id.to_string()));
            clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(terms))));
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
        let query = self.build_query(&live.fields, q);
        let searcher = live.reader.searcher();
        let collector = ClinicianCollector {
            near: q.near.clone(),
            keep: q.offset() + q.per_page as usize,
            scoring: !q.words().is_empty(),
            max_facet_values: self.config.max_values_per_facet,
            columns: self.columns.clone(),
        };
        let fruit = searcher.search(&*query, &collector).map_err(err)?;
        self.prune_columns(&searcher);
        let hits = fruit
            .top
            .into_iter()
            .skip(q.offset())
            .map(|(key, id)| RankedId {
                id,
                distance_km: key
                    .distance
                    .is_finite()
                    .then_some(f64::from(key.distance))
                    .filter(|_| q.near.is_some()),
            })
            .collect();
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

/// The columns a search reads from one segment, opened once: segments never
/// change, and reopening columns and decoding facet strings on every query
/// cost more than the search itself.
struct SegmentColumns {
    id_hi: Column<u64>,
    id_lo: Column<u64>,
    tier: Column<u64>,
    responsiveness: Column<u64>,
    lat: Column<f64>,
    lng: Column<f64>,
    telehealth: Column<u64>,
    /// Facet column and its values by term ordinal.
    keywords: Vec<(&'static str, Option<StrColumn>, Vec<String>)>,
    flags: Vec<(&'static str, Column<u64>)>,
}

impl SegmentColumns {
    fn open(reader: &SegmentReader) -> tantivy::Result<Self> {
        let ff = reader.fast_fields();
        let mut keywords = Vec::with_capacity(KEYWORDS.len());
        for name in KEYWORDS {
            let column = ff.str(name)?;
            let mut values = Vec::new();
            if let Some(column) = &column {
                let mut buf = String::new();
                for ord in 0..column.num_terms() as u64 {
                    buf.clear();
                    column.ord_to_str(ord, &mut buf)?;
                    values.push(buf.clone());
                }
            }
            keywords.push((name, column, values));
        }
        let flags = ["telehealth", "in_person", "accepting_referrals"]
            .iter()
            .map(|name| Ok((*name, ff.u64(name)?)))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Self {
            id_hi: ff.u64("id_hi")?,
            id_lo: ff.u64("id_lo")?,
            tier: ff.u64("capacity_tier")?,
            responsiveness: ff.u64("responsiveness")?,
            lat: ff.f64("lat")?,
            lng: ff.f64("lng")?,
            telehealth: ff.u64("telehealth")?,
            keywords,
            flags,
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
    keyword_counts: Vec<Vec<u64>>,
    flag_counts: Vec<[u64; 2]>,
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
            keyword_counts: columns
                .keywords
                .iter()
                .map(|(_, _, values)| vec![0; values.len()])
                .collect(),
            flag_counts: vec![[0, 0]; columns.flags.len()],
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
        let mut distance = f32::INFINITY;
        if let Some(near) = &self.near {
            if let Some(point) = c.lat.first(doc).zip(c.lng.first(doc)) {
                distance = haversine_km((near.lat, near.lng), point) as f32;
            }
            if let Some(radius) = near.radius_km {
                // A clinician with no location (infinite distance) is outside.
                let outside = f64::from(distance) > radius;
                let by_telehealth = near.or_telehealth && c.telehealth.first(doc) == Some(1);
                if outside && !by_telehealth {
                    return;
                }
            }
        }
        self.total += 1;
        for ((_, column, _), counts) in c.keywords.iter().zip(&mut self.keyword_counts) {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    if let Some(n) = counts.get_mut(ord as usize) {
                        *n += 1;
                    }
                }
            }
        }
        for ((_, column), counts) in c.flags.iter().zip(&mut self.flag_counts) {
            if let Some(v) = column.first(doc) {
                counts[usize::from(v == 1)] += 1;
            }
        }
        let key = RankKey {
            words: score,
            tier: c.tier.first(doc).unwrap_or(5) as u8,
            responsiveness: c.responsiveness.first(doc).unwrap_or(50) as u8,
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
        for ((name, _, values), counts) in c.keywords.iter().zip(&self.keyword_counts) {
            let entry = facets.entry(name.to_string()).or_default();
            for (value, count) in values.iter().zip(counts).filter(|(_, n)| **n > 0) {
                entry.insert(value.clone(), *count);
            }
        }
        for ((name, _), counts) in c.flags.iter().zip(&self.flag_counts) {
            let entry = facets.entry(name.to_string()).or_default();
            for (label, count) in [("false", counts[0]), ("true", counts[1])] {
                if count > 0 {
                    entry.insert(label.to_string(), count);
                }
            }
        }
        let top = self
            .heap
            .into_vec()
            .into_iter()
            .filter_map(|Worst(key)| {
                let id = Uuid::from_u64_pair(c.id_hi.first(key.doc)?, c.id_lo.first(key.doc)?);
                Some((key, id))
            })
            .collect();
        Fruit {
            total: self.total,
            facets,
            top,
        }
    }
}
