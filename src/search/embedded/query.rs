//! Turning a `SearchQuery` into a tantivy query, and running it.

use std::ops::Bound;

use tantivy::{
    DocAddress, TantivyDocument, Term,
    query::{
        AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query,
        RangeQuery, TermQuery,
    },
    schema::{IndexRecordOption, Value as _},
};

use super::{
    EmbeddedEngine,
    collect::ClinicianCollector,
    schema::{Fields, WAITLIST_BANDS, cells_around, err},
};
use crate::search::{
    document::Shown,
    embedded::bitfilter::BitsQuery,
    engine::{EngineResults, RankedId, SearchResult},
    query::{Near, SearchQuery},
};

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

impl EmbeddedEngine {
    pub(super) fn build_query(
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
            any_of(q.licence_attribute(), std::slice::from_ref(state));
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

    pub(super) fn search_now(&self, q: &SearchQuery) -> SearchResult<EngineResults> {
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
