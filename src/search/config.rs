//! `search-config/clinicians.json`: the index settings in Meilisearch's own
//! format, compiled into the binary. The Meilisearch engine applies it as it
//! is; the embedded engine reads its typo rules, synonyms and facet limit.
//! Its synonyms are generated from the taxonomy (`kith search-config`), and a
//! test keeps the file in step with the migrations.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::profiles::taxonomy::{Kind, Taxonomy};

pub const INDEX_UID: &str = "clinicians";
pub const CONFIG_PATH: &str = "search-config/clinicians.json";
const RAW: &str = include_str!("../../search-config/clinicians.json");

#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// The whole settings document as Meilisearch takes it.
    pub raw: Value,
    pub one_typo_min_chars: usize,
    pub two_typos_min_chars: usize,
    pub synonyms: HashMap<String, Vec<String>>,
    pub max_values_per_facet: usize,
}

impl SearchConfig {
    pub fn load() -> Result<Self, String> {
        Self::parse(RAW)
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw: Value = serde_json::from_str(raw).map_err(|e| format!("{CONFIG_PATH}: {e}"))?;
        let min = |k: &str, default: u64| {
            raw["typoTolerance"]["minWordSizeForTypos"][k]
                .as_u64()
                .unwrap_or(default) as usize
        };
        let synonyms = serde_json::from_value(raw["synonyms"].clone())
            .map_err(|e| format!("{CONFIG_PATH} synonyms: {e}"))?;
        Ok(Self {
            one_typo_min_chars: min("oneTypo", 5),
            two_typos_min_chars: min("twoTypos", 9),
            max_values_per_facet: raw["faceting"]["maxValuesPerFacet"].as_u64().unwrap_or(100)
                as usize,
            synonyms,
            raw,
        })
    }

    /// How many typos a query word of this length may carry.
    pub fn typos_allowed(&self, word: &str) -> u8 {
        let len = word.chars().count();
        if len >= self.two_typos_min_chars {
            2
        } else if len >= self.one_typo_min_chars {
            1
        } else {
            0
        }
    }
}

/// The synonyms section, from the taxonomy: each synonym finds its term's label.
pub fn synonyms_from(taxonomy: &Taxonomy) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for kind in [Kind::Specialty, Kind::Modality] {
        for term in taxonomy.terms(kind) {
            let label = term.label.to_lowercase();
            for synonym in &term.synonyms {
                let synonym = synonym.to_lowercase();
                if synonym != label {
                    let entry = map.entry(synonym).or_default();
                    if !entry.contains(&label) {
                        entry.push(label.clone());
                    }
                }
            }
        }
    }
    map
}

/// The settings file with its synonyms regenerated from `taxonomy`.
pub fn regenerate(taxonomy: &Taxonomy) -> Result<String, String> {
    let mut raw: Value = serde_json::from_str(RAW).map_err(|e| e.to_string())?;
    raw["synonyms"] = serde_json::to_value(synonyms_from(taxonomy)).map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&raw)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}
