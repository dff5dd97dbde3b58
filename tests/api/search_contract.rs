//! The search contract: every engine must pass these. They always run against
//! the embedded engine, and against Meilisearch when `MEILI_URL` (and
//! `MEILI_MASTER_KEY`) point to a server.

use std::sync::Arc;

use chrono::{Duration, Utc};
use kith::{
    profiles::{Profile, taxonomy::Taxonomy},
    search::{
        ClinicianDoc, SearchIndex, SearchQuery, config::SearchConfig, embedded::EmbeddedEngine,
        meili::MeiliEngine, query::Near,
    },
};
use uuid::Uuid;

use crate::support::TestDb;

async fn taxonomy() -> Taxonomy {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    Taxonomy::load(&mut conn).await.unwrap()
}

struct Person {
    name: &'static str,
    specialties: &'static [&'static str],
    modalities: &'static [&'static str],
    insurance: &'static [&'static str],
    state: &'static str,
    at: (f64, f64),
    telehealth: bool,
    /// (open slots, waitlist, days since confirmed; None = never)
    capacity: (i32, &'static str, Option<i64>),
    fee_min: i32,
}

fn id_of(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

const BROOKLYN: (f64, f64) = (40.6782, -73.9442);
const MANHATTAN: (f64, f64) = (40.7831, -73.9712);
const BOSTON: (f64, f64) = (42.3601, -71.0589);

fn people() -> Vec<Person> {
    vec![
        Person {
            name: "Ana Trauma Open",
            specialties: &["trauma-ptsd", "anxiety"],
            modalities: &["emdr", "cbt"],
            insurance: &["aetna", "medicaid"],
            state: "NY",
            at: BROOKLYN,
            telehealth: true,
            capacity: (3, "none", Some(2)),
            fee_min: 120,
        },
        Person {
            name: "Ben Trauma Short",
            specialties: &["trauma-ptsd"],
            modalities: &["cpt"],
            insurance: &["cigna"],
            state: "NY",
            at: MANHATTAN,
            telehealth: false,
            capacity: (0, "short", Some(1)),
            fee_min: 200,
        },
        Person {
            name: "Cara Trauma Long",
            specialties: &["trauma-ptsd", "grief"],
            modalities: &["ifs"],
            insurance: &["aetna"],
            state: "NY",
            at: MANHATTAN,
            telehealth: true,
            capacity: (0, "long", Some(3)),
            fee_min: 150,
        },
        Person {
            name: "Dev Trauma Stale",
            specialties: &["trauma-ptsd"],
            modalities: &["pe"],
            insurance: &["medicaid"],
            state: "NY",
            at: BROOKLYN,
            telehealth: true,
            capacity: (4, "none", Some(40)),
            fee_min: 90,
        },
        Person {
            name: "Eve Obsessions",
            specialties: &["ocd"],
            modalities: &["erp"],
            insurance: &["bcbs"],
            state: "MA",
            at: BOSTON,
            telehealth: true,
            capacity: (2, "none", Some(5)),
            fee_min: 180,
        },
        Person {
            name: "Finn Grief",
            specialties: &["grief", "depression"],
            modalities: &["act"],
            insurance: &["medicare"],
            state: "MA",
            at: BOSTON,
            telehealth: false,
            capacity: (1, "none", None),
            fee_min: 100,
        },
    ]
}

fn docs(taxonomy: &Taxonomy) -> Vec<ClinicianDoc> {
    let now = Utc::now();
    people()
        .into_iter()
        .map(|p| {
            let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            let profile = Profile {
                specialties: s(p.specialties),
                modalities: s(p.modalities),
                insurance: s(p.insurance),
                languages: s(&["english"]),
                populations: s(&["adults"]),
                license_states: s(&[p.state]),
                state: Some(p.state.into()),
                latitude: Some(p.at.0),
                longitude: Some(p.at.1),
                telehealth: p.telehealth,
                in_person: true,
                accepting_referrals: true,
                open_slots: p.capacity.0,
                waitlist: kith::profiles::Waitlist::parse(p.capacity.1).unwrap(),
                capacity_confirmed_at: p.capacity.2.map(|d| now - Duration::days(d)),
                fee_min: Some(p.fee_min),
                // Everyone's licence is verified but Finn's.
                verified_at: (p.name != "Finn Grief").then_some(now),
                verified_states: if p.name == "Finn Grief" {
                    vec![]
                } else {
                    s(&[p.state])
                },
                bio: format!("{} sees adults.", p.name),
                ..Profile::empty(id_of(p.name), now)
            };
            ClinicianDoc::build(&profile, p.name, taxonomy, now)
        })
        .collect()
}

async fn names(engine: &dyn SearchIndex, query: SearchQuery) -> Vec<&'static str> {
    let results = engine.search(&query).await.unwrap();
    results
        .hits
        .iter()
        .map(|h| {
            people()
                .into_iter()
                .find(|p| id_of(p.name) == h.id)
                .map(|p| p.name)
                .expect("known person")
        })
        .collect()
}

fn text(q: &str) -> SearchQuery {
    SearchQuery {
        text: Some(q.into()),
        ..SearchQuery::default()
    }
}

/// Runs every contract check against `engine`, freshly filled.
async fn contract(engine: Arc<dyn SearchIndex>) {
    let taxonomy = taxonomy().await;
    engine.apply_settings().await.unwrap();
    engine.apply(docs(&taxonomy), vec![]).await.unwrap();
    let e = engine.as_ref();
    let all: Vec<Uuid> = {
        let mut ids: Vec<Uuid> = people().iter().map(|p| id_of(p.name)).collect();
        ids.sort();
        ids
    };
    assert_eq!(e.all_ids().await.unwrap(), all);

    // Text that forgives typos and knows synonyms; capacity orders equal matches.
    assert_eq!(
        names(e, text("traumma")).await,
        [
            "Ana Trauma Open",
            "Ben Trauma Short",
            "Cara Trauma Long",
            "Dev Trauma Stale"
        ]
    );
    assert_eq!(
        names(e, text("PTSD")).await,
        [
            "Ana Trauma Open",
            "Ben Trauma Short",
            "Cara Trauma Long",
            "Dev Trauma Stale"
        ]
    );
    assert_eq!(names(e, text("OCD")).await, ["Eve Obsessions"]);
    assert_eq!(
        names(e, text("obsessive compulsive")).await,
        ["Eve Obsessions"]
    );
    assert_eq!(names(e, text("emdr")).await, ["Ana Trauma Open"]);
    assert_eq!(names(e, text("EMDR trauma")).await[0], "Ana Trauma Open");
    // As-you-type: the last word is a prefix.
    assert!(names(e, text("gri")).await.contains(&"Finn Grief"));
    assert!(names(e, text("zebra")).await.is_empty());

    // Filters combine (any-of within one, all across).
    let q = SearchQuery {
        specialties: vec!["trauma-ptsd".into(), "ocd".into()],
        insurance: vec!["medicaid".into()],
        ..SearchQuery::default()
    };
    assert_eq!(names(e, q).await, ["Ana Trauma Open", "Dev Trauma Stale"]);
    let q = SearchQuery {
        licensed_in: Some("MA".into()),
        telehealth: Some(true),
        ..SearchQuery::default()
    };
    assert_eq!(names(e, q).await, ["Eve Obsessions"]);
    // Licensed there, and verified there.
    let q = SearchQuery {
        licensed_in: Some("MA".into()),
        ..SearchQuery::default()
    };
    let mut in_ma = names(e, q).await;
    in_ma.sort();
    assert_eq!(in_ma, ["Eve Obsessions", "Finn Grief"]);
    let q = SearchQuery {
        licensed_in: Some("MA".into()),
        verified_only: true,
        ..SearchQuery::default()
    };
    assert_eq!(names(e, q).await, ["Eve Obsessions"]);
    let q = SearchQuery {
        specialties: vec!["trauma-ptsd".into()],
        max_wait: Some(1),
        ..SearchQuery::default()
    };
    assert_eq!(
        names(e, q).await,
        ["Ana Trauma Open", "Ben Trauma Short", "Dev Trauma Stale"]
    );
    let q = SearchQuery {
        fee_max: Some(120),
        ..SearchQuery::default()
    };
    let mut cheap = names(e, q).await;
    cheap.sort();
    assert_eq!(cheap, ["Ana Trauma Open", "Dev Trauma Stale", "Finn Grief"]);
    let q = SearchQuery {
        all_specialties: vec!["trauma-ptsd".into(), "grief".into()],
        ..SearchQuery::default()
    };
    assert_eq!(names(e, q).await, ["Cara Trauma Long"]);
    let q = SearchQuery {
        exclude: vec![id_of("Ana Trauma Open")],
        specialties: vec!["trauma-ptsd".into()],
        ..SearchQuery::default()
    };
    assert!(!names(e, q).await.contains(&"Ana Trauma Open"));

    // Distance: within 25 km of lower Manhattan, nearest first within a tier; Boston is out.
    let near = |radius: Option<f64>, or_telehealth: bool| Near {
        lat: 40.7128,
        lng: -74.0060,
        radius_km: radius,
        or_telehealth,
    };
    let q = SearchQuery {
        near: Some(near(Some(25.0), false)),
        ..SearchQuery::default()
    };
    let results = e.search(&q).await.unwrap();
    assert_eq!(results.total, 4);
    let ana = results
        .hits
        .iter()
        .find(|h| h.id == id_of("Ana Trauma Open"))
        .unwrap();
    let km = ana.distance_km.unwrap();
    assert!(
        (6.0..12.0).contains(&km),
        "Brooklyn is ~8.6 km from lower Manhattan, got {km}"
    );
    // Telehealth passes the radius when the query allows it.
    let q = SearchQuery {
        near: Some(near(Some(25.0), true)),
        licensed_in: Some("MA".into()),
        ..SearchQuery::default()
    };
    assert_eq!(names(e, q).await, ["Eve Obsessions"]);

    // Facets count the matches, per value.
    let results = e.search(&text("trauma")).await.unwrap();
    assert_eq!(results.total, 4);
    assert_eq!(results.facets["specialties"]["trauma-ptsd"], 4);
    assert_eq!(results.facets["specialties"]["grief"], 1);
    assert_eq!(results.facets["insurance"]["aetna"], 2);
    assert_eq!(results.facets["telehealth"]["true"], 3);
    assert_eq!(results.facets["waitlist"]["long"], 1);

    // Pages.
    let page = |n| SearchQuery {
        specialties: vec!["trauma-ptsd".into()],
        per_page: 3,
        page: n,
        ..SearchQuery::default()
    };
    let first = e.search(&page(1)).await.unwrap();
    let second = e.search(&page(2)).await.unwrap();
    assert_eq!(
        (first.total, first.hits.len(), second.hits.len()),
        (4, 3, 1)
    );
    assert!(!first.hits.iter().any(|h| h.id == second.hits[0].id));

    // Updates replace, deletes remove.
    let mut changed = docs(&taxonomy);
    changed.retain(|d| d.id == id_of("Finn Grief"));
    changed[0].specialties = vec!["ocd".into()];
    e.apply(changed, vec![id_of("Eve Obsessions")])
        .await
        .unwrap();
    let q = SearchQuery {
        specialties: vec!["ocd".into()],
        ..SearchQuery::default()
    };
    assert_eq!(names(e, q).await, ["Finn Grief"]);
    assert_eq!(e.all_ids().await.unwrap().len(), 5);

    // A rebuild holds exactly what it was given.
    let mut rebuilt = docs(&taxonomy);
    rebuilt.truncate(2);
    e.rebuild(rebuilt).await.unwrap();
    let mut expected = vec![id_of("Ana Trauma Open"), id_of("Ben Trauma Short")];
    expected.sort();
    assert_eq!(e.all_ids().await.unwrap(), expected);
    assert_eq!(
        names(e, text("trauma")).await,
        ["Ana Trauma Open", "Ben Trauma Short"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_engine_keeps_the_search_contract() {
    let dir = std::env::temp_dir().join(format!("kith-contract-{}", Uuid::new_v4().simple()));
    let engine =
        EmbeddedEngine::open(dir.clone(), Arc::new(SearchConfig::load().unwrap())).unwrap();
    contract(Arc::new(engine)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meilisearch_engine_keeps_the_search_contract() {
    let Ok(url) = std::env::var("MEILI_URL") else {
        eprintln!(
            "SKIPPED: the Meilisearch contract run needs MEILI_URL (and MEILI_MASTER_KEY) pointing to a server"
        );
        return;
    };
    kith::install_crypto_provider();
    let key = std::env::var("MEILI_MASTER_KEY").ok();
    let uid = format!("kith_contract_{}", Uuid::new_v4().simple());
    let engine =
        MeiliEngine::with_index(&url, key.as_deref(), &SearchConfig::load().unwrap(), &uid)
            .unwrap();
    contract(Arc::new(engine)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_config_synonyms_are_generated_from_the_taxonomy() {
    let fresh = kith::search::config::regenerate(&taxonomy().await).unwrap();
    let current = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/search-config/clinicians.json"
    ))
    .unwrap();
    assert!(
        current == fresh,
        "search-config/clinicians.json is out of date with the taxonomy: run `kith search-config`"
    );
}
