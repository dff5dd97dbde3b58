//! Collecting hits: rank keys (word matches, capacity tier, responsiveness,
//! distance), per-segment fast-field columns, facet counts and the top N.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap, HashMap},
    sync::{Arc, Mutex},
};

use tantivy::{
    DocId, Score, SegmentOrdinal, SegmentReader,
    collector::{Collector, SegmentCollector},
    index::SegmentId,
};
use uuid::Uuid;

use super::schema::KEYWORDS;
use crate::search::{
    engine::FACETS,
    query::{Near, haversine_km},
};

/// Sorts better hits first.
#[derive(Debug, Clone, Copy)]
pub(super) struct RankKey {
    pub(super) words: f32,
    pub(super) tier: u8,
    pub(super) responsiveness: u8,
    pub(super) distance: f32,
    pub(super) segment: SegmentOrdinal,
    pub(super) doc: DocId,
}

impl RankKey {
    pub(super) fn cmp_better_first(&self, other: &Self) -> Ordering {
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
pub(super) struct Worst(RankKey);
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
pub(super) struct SegmentColumns {
    pub(super) ids: Vec<Uuid>,
    pub(super) tier: Vec<u8>,
    pub(super) responsiveness: Vec<u8>,
    /// NaN when the clinician has no location.
    pub(super) geo: Vec<(f64, f64)>,
    pub(super) telehealth: Vec<bool>,
    /// Facet values of document `d`: `facet_ords[facet_offsets[d]..facet_offsets[d + 1]]`,
    /// indexes into `facet_values`.
    pub(super) facet_offsets: Vec<u32>,
    pub(super) facet_ords: Vec<u16>,
    /// (facet, value) for each facet index.
    pub(super) facet_values: Vec<(&'static str, String)>,
}

/// Boolean attributes reported as facets (`"true"`/`"false"`).
pub(super) const FLAG_FACETS: &[&str] = FACETS.split_at(7).1;

impl SegmentColumns {
    pub(super) fn open(reader: &SegmentReader) -> tantivy::Result<Self> {
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

pub(super) type ColumnCache = Mutex<HashMap<SegmentId, Arc<SegmentColumns>>>;

pub(super) struct ClinicianCollector {
    pub(super) near: Option<Near>,
    pub(super) keep: usize,
    pub(super) scoring: bool,
    pub(super) max_facet_values: usize,
    pub(super) columns: Arc<ColumnCache>,
}

pub(super) struct Fruit {
    pub(super) total: u64,
    pub(super) facets: crate::search::engine::Facets,
    pub(super) top: Vec<(RankKey, Uuid)>,
}

pub(super) struct SegmentState {
    pub(super) segment: SegmentOrdinal,
    pub(super) near: Option<Near>,
    pub(super) keep: usize,
    pub(super) columns: Arc<SegmentColumns>,
    pub(super) facet_counts: Vec<u64>,
    pub(super) total: u64,
    pub(super) heap: BinaryHeap<Worst>,
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
        let mut facets: crate::search::engine::Facets = BTreeMap::new();
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
