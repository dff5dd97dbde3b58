//! Filters of the embedded engine answered from cached bitsets.
//!
//! A filter such as `telehealth=true` or `language=english` matches a large
//! share of all clinicians. As a posting list it is decoded and sought on
//! every query; as a bitset (one bit per document, 12.5 KB per 100,000) it is
//! built once per segment and combined with the others in a few thousand word
//! operations. Segments never change, so a term's bitset stays valid for the
//! segment's life.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tantivy::{
    DocId, DocSet, Score, SegmentReader, TERMINATED, Term,
    index::SegmentId,
    query::{EnableScoring, Explanation, Query, Scorer, Weight},
    schema::IndexRecordOption,
};

/// One bit per document of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Bits {
    words: Vec<u64>,
}

impl Bits {
    fn empty(max_doc: u32) -> Self {
        Self {
            words: vec![0; (max_doc as usize).div_ceil(64)],
        }
    }

    fn full(max_doc: u32) -> Self {
        let mut bits = Self {
            words: vec![u64::MAX; (max_doc as usize).div_ceil(64)],
        };
        let tail = max_doc % 64;
        if tail != 0
            && let Some(last) = bits.words.last_mut()
        {
            *last = (1u64 << tail) - 1;
        }
        bits
    }

    fn insert(&mut self, doc: DocId) {
        self.words[doc as usize / 64] |= 1 << (doc % 64);
    }

    pub fn contains(&self, doc: DocId) -> bool {
        self.words
            .get(doc as usize / 64)
            .is_some_and(|w| w & (1 << (doc % 64)) != 0)
    }

    fn union_with(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    fn intersect_with(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    fn len(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }
}

/// Bitsets of single terms, per segment.
#[derive(Default)]
pub struct BitsCache {
    entries: Mutex<HashMap<(SegmentId, Term), Arc<Bits>>>,
}

/// Geo cells are many; past this many cached bitsets the cache starts over.
const MAX_ENTRIES: usize = 4_096;

impl BitsCache {
    fn term(&self, reader: &SegmentReader, term: &Term) -> tantivy::Result<Arc<Bits>> {
        let key = (reader.segment_id(), term.clone());
        if let Some(hit) = self.entries.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Ok(hit);
        }
        let mut bits = Bits::empty(reader.max_doc());
        let index = reader.inverted_index(term.field())?;
        if let Some(mut postings) = index.read_postings(term, IndexRecordOption::Basic)? {
            let mut doc = postings.doc();
            while doc != TERMINATED {
                bits.insert(doc);
                doc = postings.advance();
            }
        }
        let bits = Arc::new(bits);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, bits.clone());
        }
        Ok(bits)
    }

    /// Forgets segments that merges or a switch retired.
    pub fn retain_segments(&self, live: &std::collections::HashSet<SegmentId>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(segment, _), _| live.contains(segment));
        }
    }
}

/// Documents that hold, for every clause, at least one of its terms.
#[derive(Clone)]
pub struct BitsQuery {
    pub clauses: Vec<Vec<Term>>,
    pub cache: Arc<BitsCache>,
}

impl std::fmt::Debug for BitsQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitsQuery")
            .field("clauses", &self.clauses)
            .finish()
    }
}

impl Query for BitsQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl BitsQuery {
    /// The documents of this segment that pass every clause.
    pub fn bits(&self, reader: &SegmentReader) -> tantivy::Result<Bits> {
        let mut all = Bits::full(reader.max_doc());
        for clause in &self.clauses {
            match clause.as_slice() {
                [one] => all.intersect_with(&*self.cache.term(reader, one)?),
                many => {
                    let mut any = Bits::empty(reader.max_doc());
                    for term in many {
                        any.union_with(&*self.cache.term(reader, term)?);
                    }
                    all.intersect_with(&any);
                }
            }
        }
        Ok(all)
    }
}

impl Weight for BitsQuery {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(BitsDocSet::new(self.bits(reader)?)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        if self.bits(reader)?.contains(doc) {
            Ok(Explanation::new("BitsQuery", 0.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )))
        }
    }
}

/// The set bits in order, as a scorer that gives every document 0.
pub struct BitsDocSet {
    bits: Bits,
    len: u32,
    /// Index of the word holding `doc`, and that word's bits not yet visited.
    word: usize,
    rest: u64,
    doc: DocId,
}

impl BitsDocSet {
    fn new(bits: Bits) -> Self {
        let len = bits.len();
        let rest = bits.words.first().copied().unwrap_or(0);
        let mut set = Self {
            bits,
            len,
            word: 0,
            rest,
            doc: 0,
        };
        set.next_set_bit();
        set
    }

    fn next_set_bit(&mut self) -> DocId {
        loop {
            if self.rest != 0 {
                let bit = self.rest.trailing_zeros();
                self.rest &= self.rest - 1;
                self.doc = self.word as u32 * 64 + bit;
                return self.doc;
            }
            self.word += 1;
            match self.bits.words.get(self.word) {
                Some(&w) => self.rest = w,
                None => {
                    self.doc = TERMINATED;
                    return TERMINATED;
                }
            }
        }
    }
}

impl DocSet for BitsDocSet {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.next_set_bit()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if target <= self.doc {
            return self.doc;
        }
        let word = target as usize / 64;
        match self.bits.words.get(word) {
            None => {
                self.doc = TERMINATED;
                TERMINATED
            }
            Some(&w) => {
                self.word = word;
                self.rest = w & (u64::MAX << (target % 64));
                self.next_set_bit()
            }
        }
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.len
    }
}

impl Scorer for BitsDocSet {
    fn score(&mut self) -> Score {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(max_doc: u32, docs: &[u32]) -> Bits {
        let mut bits = Bits::empty(max_doc);
        for &d in docs {
            bits.insert(d);
        }
        bits
    }

    fn walk(set: &mut BitsDocSet) -> Vec<u32> {
        let mut out = Vec::new();
        let mut doc = set.doc();
        while doc != TERMINATED {
            out.push(doc);
            doc = set.advance();
        }
        out
    }

    #[test]
    fn a_bitset_walks_and_seeks_its_documents_in_order() {
        let docs = [0, 5, 63, 64, 130, 199];
        let mut set = BitsDocSet::new(of(200, &docs));
        assert_eq!(set.size_hint(), 6);
        assert_eq!(walk(&mut set), docs);

        let mut set = BitsDocSet::new(of(200, &docs));
        assert_eq!(set.seek(6), 63);
        assert_eq!(set.seek(63), 63, "seeking the current document stays");
        assert_eq!(set.seek(65), 130);
        assert_eq!(set.advance(), 199);
        assert_eq!(set.seek(250), TERMINATED);

        let empty = BitsDocSet::new(Bits::empty(100));
        assert_eq!(empty.doc(), TERMINATED);
    }

    #[test]
    fn clauses_intersect_and_values_within_a_clause_unite() {
        let mut all = Bits::full(130);
        assert_eq!(all.len(), 130);
        assert!(all.contains(129) && !all.contains(130));
        let mut either = of(130, &[1, 2]);
        either.union_with(&of(130, &[3, 129]));
        all.intersect_with(&either);
        all.intersect_with(&of(130, &[2, 3, 4, 129]));
        assert_eq!(walk(&mut BitsDocSet::new(all)), vec![2, 3, 129]);
    }
}
