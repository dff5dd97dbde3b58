//! The index on disk: the live directory with its one writer and reader,
//! the pointer that names it, and building a new one beside it (reindex).

use std::{path::Path, sync::Mutex};

use tantivy::{
    Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument, Term,
    directory::MmapDirectory, indexer::NoMergePolicy, store::Compressor,
};
use uuid::Uuid;

use super::schema::{Fields, POINTER, SCHEMA_VERSION, WRITER_HEAP, err, geo_cell, schema};
use crate::search::{
    document::{ClinicianDoc, Shown},
    engine::SearchResult,
};

/// One open index directory.
pub(super) struct Live {
    pub(super) dir_name: String,
    pub(super) reader: IndexReader,
    pub(super) writer: Mutex<IndexWriter>,
    pub(super) fields: Fields,
}

impl Live {
    pub(super) fn open(root: &Path, dir_name: &str) -> SearchResult<Self> {
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

    pub(super) fn document(&self, doc: &ClinicianDoc) -> SearchResult<TantivyDocument> {
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
        let lists: [(&str, &Vec<String>); 7] = [
            ("specialties", &doc.specialties),
            ("modalities", &doc.modalities),
            ("populations", &doc.populations),
            ("insurance", &doc.insurance),
            ("languages", &doc.languages),
            ("license_states", &doc.license_states),
            ("verified_states", &doc.verified_states),
        ];
        for (name, values) in lists {
            for v in values {
                d.add_text(f.keywords[name], v);
            }
        }
        d.add_text(f.keywords["waitlist"], doc.waitlist.as_str());
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

    pub(super) fn write(&self, upserts: &[ClinicianDoc], deletes: &[Uuid]) -> SearchResult<()> {
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

pub(super) fn read_pointer(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join(POINTER))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(super) fn write_pointer(root: &Path, dir_name: &str) -> SearchResult<()> {
    let tmp = root.join(format!("{POINTER}.tmp"));
    std::fs::write(&tmp, dir_name).map_err(err)?;
    std::fs::rename(&tmp, root.join(POINTER)).map_err(err)
}

pub(super) fn dir_prefix() -> String {
    format!("clinicians-v{SCHEMA_VERSION}-")
}

pub(super) fn new_dir_name() -> String {
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
