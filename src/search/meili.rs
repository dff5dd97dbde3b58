//! The Meilisearch engine (meilisearch-sdk), chosen when `MEILI_URL` is set.
//! Settings come from `search-config/` as they are; what this module sends
//! (filters, sort, documents) is pinned by unit tests, since no server runs
//! where those tests run.

use std::time::Duration;

use meilisearch_sdk::{
    client::{Client, SwapIndexes},
    errors::Error as MeiliError,
    search::Selectors,
    settings::Settings,
    task_info::TaskInfo,
    tasks::Task,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    ClinicianDoc, EngineResults, FACETS, RankedId, SearchError, SearchIndex, SearchQuery,
    SearchResult,
    config::{INDEX_UID, SearchConfig},
    document::Shown,
    query::Near,
};

/// Longest we wait for Meilisearch to answer a search.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest we wait for an indexing task to finish.
const TASK_TIMEOUT: Duration = Duration::from_secs(120);

pub struct MeiliEngine {
    client: Client,
    settings: Settings,
    uid: String,
}

fn classify(error: MeiliError) -> SearchError {
    match error {
        MeiliError::Meilisearch(e) => SearchError::Rejected(e.to_string()),
        MeiliError::Timeout => SearchError::Unavailable("timed out".into()),
        other => SearchError::Unavailable(other.to_string()),
    }
}

/// A string literal in Meilisearch's filter syntax.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn any_of(attribute: &str, values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| {
        let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
        format!("{attribute} IN [{}]", list.join(", "))
    })
}

/// The filter expression for a query, or None when nothing is filtered.
pub fn filter(q: &SearchQuery) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(any_of("specialties", &q.specialties));
    parts.extend(any_of("modalities", &q.modalities));
    parts.extend(any_of("populations", &q.populations));
    parts.extend(any_of("insurance", &q.insurance));
    parts.extend(any_of("languages", &q.languages));
    parts.extend(
        q.all_specialties
            .iter()
            .map(|s| format!("specialties = {}", quote(s))),
    );
    if let Some(state) = &q.licensed_in {
        parts.push(format!("{} = {}", q.licence_attribute(), quote(state)));
    }
    for (attribute, value) in q.flag_filters() {
        if let Some(value) = value {
            parts.push(format!("{attribute} = {value}"));
        }
    }
    if let Some(max) = q.max_wait {
        parts.push(format!("waitlist_rank <= {max}"));
    }
    if let Some(fee) = q.fee_max {
        parts.push(format!("fee_min <= {fee}"));
    }
    if let Some(Near {
        lat,
        lng,
        radius_km: Some(radius),
        or_telehealth,
    }) = &q.near
    {
        let circle = format!(
            "_geoRadius({lat}, {lng}, {})",
            (radius * 1000.0).round() as u64
        );
        parts.push(if *or_telehealth {
            format!("(telehealth = true OR {circle})")
        } else {
            circle
        });
    }
    if !q.exclude.is_empty() {
        let ids: Vec<String> = q.exclude.iter().map(|id| quote(&id.to_string())).collect();
        parts.push(format!("id NOT IN [{}]", ids.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// Sort rules applied after words and typos (see `rankingRules`).
pub fn sort(q: &SearchQuery) -> Vec<String> {
    let mut sort = vec![
        "capacity_tier:asc".to_string(),
        "responsiveness:desc".to_string(),
    ];
    if let Some(near) = &q.near {
        sort.push(format!("_geoPoint({}, {}):asc", near.lat, near.lng));
    }
    sort
}

#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(flatten)]
    doc: Shown,
    /// Meters, present when sorting by `_geoPoint`.
    #[serde(rename = "_geoDistance")]
    geo_distance: Option<f64>,
}

impl MeiliEngine {
    pub fn new(url: &str, key: Option<&str>, config: &SearchConfig) -> SearchResult<Self> {
        Self::with_index(url, key, config, INDEX_UID)
    }

    /// An engine on another index uid (the contract tests use one each).
    pub fn with_index(
        url: &str,
        key: Option<&str>,
        config: &SearchConfig,
        uid: &str,
    ) -> SearchResult<Self> {
        let client = Client::new(url, key).map_err(classify)?;
        let settings: Settings = serde_json::from_value(config.raw.clone())
            .map_err(|e| SearchError::Rejected(format!("search-config: {e}")))?;
        Ok(Self {
            client,
            settings,
            uid: uid.to_string(),
        })
    }

    /// Waits for an indexing task and surfaces its failure.
    async fn finish(&self, task: Result<TaskInfo, MeiliError>) -> SearchResult<()> {
        let task = task.map_err(classify)?;
        match task
            .wait_for_completion(
                &self.client,
                Some(Duration::from_millis(50)),
                Some(TASK_TIMEOUT),
            )
            .await
            .map_err(classify)?
        {
            Task::Succeeded { .. } => Ok(()),
            Task::Failed { content } => Err(SearchError::Rejected(format!("{:?}", content.error))),
            other => Err(SearchError::Unavailable(format!(
                "task did not finish: {other:?}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl SearchIndex for MeiliEngine {
    fn name(&self) -> &'static str {
        "meilisearch"
    }

    async fn apply_settings(&self) -> SearchResult<()> {
        let index = self.client.index(&self.uid);
        self.finish(index.set_settings(&self.settings).await).await
    }

    async fn apply(&self, upserts: Vec<ClinicianDoc>, deletes: Vec<Uuid>) -> SearchResult<()> {
        let index = self.client.index(&self.uid);
        if !upserts.is_empty() {
            self.finish(index.add_or_replace(&upserts, Some("id")).await)
                .await?;
        }
        if !deletes.is_empty() {
            let ids: Vec<String> = deletes.iter().map(Uuid::to_string).collect();
            self.finish(index.delete_documents(&ids).await).await?;
        }
        Ok(())
    }

    async fn search(&self, q: &SearchQuery) -> SearchResult<EngineResults> {
        let index = self.client.index(&self.uid);
        let filter = filter(q);
        let sort = sort(q);
        let sort_refs: Vec<&str> = sort.iter().map(String::as_str).collect();
        let text = q.text.clone().unwrap_or_default();
        let mut request = index.search();
        request
            .with_query(&text)
            .with_offset(q.offset())
            .with_limit(q.per_page as usize)
            .with_sort(&sort_refs)
            .with_facets(Selectors::Some(&FACETS));
        if let Some(filter) = &filter {
            request.with_filter(filter);
        }
        let results = tokio::time::timeout(SEARCH_TIMEOUT, request.execute::<Hit>())
            .await
            .map_err(|_| SearchError::Unavailable("search timed out".into()))?
            .map_err(classify)?;
        Ok(EngineResults {
            hits: results
                .hits
                .into_iter()
                .map(|h| RankedId {
                    id: h.result.doc.id,
                    distance_km: h.result.geo_distance.map(|m| m / 1000.0),
                    doc: Some(Box::new(h.result.doc)),
                })
                .collect(),
            total: results
                .estimated_total_hits
                .or(results.total_hits)
                .unwrap_or(0) as u64,
            facets: results
                .facet_distribution
                .unwrap_or_default()
                .into_iter()
                .map(|(facet, values)| {
                    (
                        facet,
                        values.into_iter().map(|(v, c)| (v, c as u64)).collect(),
                    )
                })
                .collect(),
        })
    }

    async fn rebuild(&self, docs: Vec<ClinicianDoc>) -> SearchResult<()> {
        let fresh = format!("{}_{}", self.uid, Uuid::now_v7().simple());
        self.finish(self.client.create_index(&fresh, Some("id")).await)
            .await?;
        let index = self.client.index(&fresh);
        self.finish(index.set_settings(&self.settings).await)
            .await?;
        for chunk in docs.chunks(10_000) {
            self.finish(index.add_or_replace(chunk, Some("id")).await)
                .await?;
        }
        // Make sure the live index exists so the swap has two sides.
        let _ = self
            .finish(self.client.create_index(&self.uid, Some("id")).await)
            .await;
        let swap = SwapIndexes {
            indexes: (self.uid.clone(), fresh.clone()),
            rename: None,
        };
        self.finish(self.client.swap_indexes([&swap]).await).await?;
        self.finish(self.client.delete_index(&fresh).await).await
    }

    async fn all_ids(&self) -> SearchResult<Vec<Uuid>> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: Uuid,
        }
        let index = self.client.index(&self.uid);
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let page = meilisearch_sdk::documents::DocumentsQuery::new(&index)
                .with_offset(offset)
                .with_limit(1_000)
                .with_fields(["id"])
                .execute::<IdOnly>()
                .await
                .map_err(classify)?;
            let n = page.results.len();
            ids.extend(page.results.into_iter().map(|d| d.id));
            if n < 1_000 {
                break;
            }
            offset += n;
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::document::{Card, ClinicianDoc, Geo};

    #[test]
    fn filters_are_written_in_meilisearch_syntax() {
        let q = SearchQuery {
            specialties: vec!["trauma-ptsd".into(), "ocd".into()],
            insurance: vec!["medicaid".into()],
            licensed_in: Some("NY".into()),
            telehealth: Some(true),
            accepting: Some(true),
            max_wait: Some(1),
            fee_max: Some(150),
            near: Some(Near {
                lat: 40.7128,
                lng: -74.006,
                radius_km: Some(25.0),
                or_telehealth: false,
            }),
            ..SearchQuery::default()
        };
        assert_eq!(
            filter(&q).unwrap(),
            "specialties IN [\"trauma-ptsd\", \"ocd\"] AND insurance IN [\"medicaid\"] AND license_states = \"NY\" \
             AND telehealth = true AND accepting_referrals = true AND waitlist_rank <= 1 AND fee_min <= 150 \
             AND _geoRadius(40.7128, -74.006, 25000)"
        );
        assert_eq!(
            sort(&q),
            vec![
                "capacity_tier:asc",
                "responsiveness:desc",
                "_geoPoint(40.7128, -74.006):asc"
            ]
        );
    }

    #[test]
    fn match_filters_accept_telehealth_from_anywhere_and_exclude_the_asker() {
        let asker = Uuid::nil();
        let q = SearchQuery {
            all_specialties: vec!["grief".into(), "anxiety".into()],
            verified_only: true,
            near: Some(Near {
                lat: 30.0,
                lng: -97.5,
                radius_km: Some(40.0),
                or_telehealth: true,
            }),
            exclude: vec![asker],
            ..SearchQuery::default()
        };
        assert_eq!(
            filter(&q).unwrap(),
            "specialties = \"grief\" AND specialties = \"anxiety\" AND verified = true \
             AND (telehealth = true OR _geoRadius(30, -97.5, 40000)) \
             AND id NOT IN [\"00000000-0000-0000-0000-000000000000\"]"
        );
        assert_eq!(filter(&SearchQuery::default()), None);
    }

    #[test]
    fn quotes_in_values_cannot_break_out_of_the_filter() {
        assert_eq!(
            quote(r#"a" OR verified = false"#),
            r#""a\" OR verified = false""#
        );
    }

    #[test]
    fn settings_sent_are_the_config_file() {
        let config = SearchConfig::load().unwrap();
        let settings: Settings = serde_json::from_value(config.raw.clone()).unwrap();
        let sent = serde_json::to_value(&settings).unwrap();
        assert_eq!(
            sent["rankingRules"],
            serde_json::json!([
                "words",
                "typo",
                "sort",
                "proximity",
                "attribute",
                "exactness"
            ])
        );
        assert_eq!(sent["searchableAttributes"][0], "display_name");
        assert!(
            sent["filterableAttributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "_geo")
        );
        assert_eq!(
            sent["sortableAttributes"],
            serde_json::json!(["capacity_tier", "responsiveness", "_geo"])
        );
        assert_eq!(sent["typoTolerance"]["minWordSizeForTypos"]["oneTypo"], 5);
        assert_eq!(
            sent["synonyms"]["ptsd"],
            serde_json::json!(["trauma and ptsd"])
        );
    }

    #[test]
    fn documents_carry_geo_in_meilisearch_shape() {
        let doc = ClinicianDoc {
            id: Uuid::nil(),
            display_name: "Ana".into(),
            bio: String::new(),
            city: "Brooklyn".into(),
            specialty_terms: vec!["Trauma and PTSD".into(), "ptsd".into()],
            modality_terms: vec![],
            specialties: vec!["trauma-ptsd".into()],
            modalities: vec![],
            populations: vec![],
            languages: vec!["english".into()],
            insurance: vec![],
            license_states: vec!["NY".into()],
            verified_states: vec!["NY".into()],
            telehealth: true,
            in_person: false,
            accepting_referrals: true,
            verified: true,
            waitlist: crate::profiles::model::Waitlist::None,
            waitlist_rank: 0,
            capacity_tier: 0,
            responsiveness: 50,
            fee_min: 120,
            sliding_scale: false,
            geo: Some(Geo {
                lat: 40.68,
                lng: -73.94,
            }),
            card: Card {
                city: Some("Brooklyn".into()),
                open_slots: 2,
                ..Card::default()
            },
        };
        let sent = serde_json::to_value(&doc).unwrap();
        assert_eq!(sent["card"]["open_slots"], 2);
        // A hit comes back as the whole document plus the distance, and is
        // shown without reading PostgreSQL.
        let mut hit = sent.clone();
        hit["_geoDistance"] = serde_json::json!(1520);
        let hit: Hit = serde_json::from_value(hit).unwrap();
        assert_eq!(hit.doc, Shown::from(doc.clone()));
        assert_eq!(hit.geo_distance, Some(1520.0));
        assert_eq!(
            sent["_geo"],
            serde_json::json!({"lat": 40.68, "lng": -73.94})
        );
        assert_eq!(sent["id"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(sent["capacity_tier"], 0);
        let without_geo = serde_json::to_value(ClinicianDoc { geo: None, ..doc }).unwrap();
        assert!(without_geo.get("_geo").is_none());
    }
}
