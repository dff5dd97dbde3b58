//! Finding colleagues through the API: updates show up by themselves, bad
//! input is named, disabled accounts never show, the match shortlist, and an
//! engine that goes away loses nothing.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Clinician, TestApp};

pub(crate) fn profile(version: i64, specialties: &[&str], state: &str, at: (f64, f64)) -> Value {
    json!({
        "version": version,
        "credentials": ["LCSW"],
        "license_states": [state],
        "bio": "Warm, practical therapy for adults.",
        "specialties": specialties,
        "modalities": ["cbt"],
        "populations": ["adults"],
        "languages": ["english"],
        "insurance": ["aetna"],
        "telehealth": true,
        "in_person": true,
        "city": "Brooklyn",
        "state": state,
        "latitude": at.0,
        "longitude": at.1,
        "accepting_referrals": true
    })
}

pub(crate) async fn search(who: &Clinician, query: &str) -> Value {
    who.get(&format!("/api/v1/search/clinicians?{query}"))
        .await
        .assert(StatusCode::OK)
        .clone()
}

pub(crate) fn names(results: &Value) -> Vec<String> {
    results["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["display_name"].as_str().unwrap().to_string())
        .collect()
}

async fn set_up(
    app: &TestApp,
    name: &str,
    specialties: &[&str],
    slots: i64,
    waitlist: &str,
) -> Clinician {
    let person = app.register(name).await;
    person
        .put(
            "/api/v1/profiles/me",
            profile(1, specialties, "NY", (40.68, -73.94)),
        )
        .await
        .assert(StatusCode::OK);
    person
        .set_capacity(json!({"open_slots": slots, "waitlist": waitlist}))
        .await
        .assert(StatusCode::OK);
    person
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_change_is_searchable_without_anyone_reindexing() {
    let app = TestApp::spawn().await;
    let ana = set_up(&app, "Anabel", &["trauma-ptsd"], 2, "none").await;
    let ben = app.register("Benedikt").await;
    app.eventually("Anabel is found by a misspelt specialty", async || {
        names(&search(&ben, "q=traumma").await) == ["Anabel"]
    })
    .await;

    let hit = &search(&ben, "q=PTSD").await["hits"][0];
    assert_eq!(hit["open_slots"], 2);
    assert_eq!(hit["capacity_freshness"], "fresh");
    assert!(
        hit["highlights"]["specialties"][0]
            .as_str()
            .unwrap()
            .contains("<em>PTSD</em>"),
        "{hit}"
    );

    // She changes her specialties: the old term stops finding her, the new one does.
    ana.put(
        "/api/v1/profiles/me",
        profile(3, &["grief"], "NY", (40.68, -73.94)),
    )
    .await
    .assert(StatusCode::OK);
    app.eventually("Anabel moved to grief", async || {
        names(&search(&ben, "q=bereavement").await) == ["Anabel"]
    })
    .await;
    assert!(names(&search(&ben, "q=trauma").await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_orders_equally_good_matches_and_staleness_demotes() {
    let app = TestApp::spawn().await;
    let open = set_up(&app, "Olive", &["ocd"], 3, "none").await;
    app.clock.advance(chrono::Duration::days(10));
    set_up(&app, "Wanda", &["ocd"], 0, "short").await;
    set_up(&app, "Lorna", &["ocd"], 0, "long").await;
    let asker = app.register("Asker").await;
    app.eventually("all three indexed", async || {
        search(&asker, "q=ocd").await["total"] == 3
    })
    .await;
    assert_eq!(
        names(&search(&asker, "q=ocd").await),
        ["Olive", "Wanda", "Lorna"]
    );

    // Five days later Olive's capacity is 15 days old: unknown ranks below any confirmed wait.
    app.clock.advance(chrono::Duration::days(5));
    let asker = app.sign_in(&asker.email).await;
    app.state.indexer().sweep_freshness().await.unwrap();
    app.eventually("Olive demoted", async || {
        names(&search(&asker, "q=ocd").await) == ["Wanda", "Lorna", "Olive"]
    })
    .await;
    assert_eq!(
        search(&asker, "q=ocd").await["hits"][2]["capacity_freshness"],
        "stale"
    );

    // One click puts her back on top.
    let open = app.sign_in(&open.email).await;
    open.post("/api/v1/profiles/me/capacity/confirm", json!({}))
        .await
        .assert(StatusCode::OK);
    app.eventually("Olive restored", async || {
        names(&search(&asker, "q=ocd").await)[0] == "Olive"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_facets_distance_and_pages_through_the_api() {
    let app = TestApp::spawn().await;
    set_up(&app, "Brooklyn", &["grief", "anxiety"], 1, "none").await;
    let boston = app.register("Boston").await;
    boston
        .put(
            "/api/v1/profiles/me",
            profile(1, &["grief"], "MA", (42.36, -71.06)),
        )
        .await
        .assert(StatusCode::OK);
    let asker = app.register("Asker").await;
    app.eventually("both indexed", async || {
        search(&asker, "specialty=grief").await["total"] == 2
    })
    .await;

    let near = search(&asker, "specialty=grief&near=40.7128,-74.0060&radius_km=50").await;
    assert_eq!(names(&near), ["Brooklyn"]);
    let km = near["hits"][0]["distance_km"].as_f64().unwrap();
    assert!((3.0..12.0).contains(&km), "{km}");
    assert_eq!(names(&search(&asker, "licensed_in=MA").await), ["Boston"]);
    let all = search(&asker, "specialty=grief&specialty=anxiety").await;
    assert_eq!(all["facets"]["specialties"]["grief"], 2);
    assert_eq!(all["facets"]["specialties"]["anxiety"], 1);
    assert_eq!(all["facets"]["license_states"]["NY"], 1);
    let page2 = search(&asker, "specialty=grief&per_page=1&page=2").await;
    assert_eq!(
        (
            page2["total"].as_u64(),
            page2["hits"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    assert_eq!(all["engine"], "embedded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_search_input_is_a_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let asker = app.register("Asker").await;
    let long = "a".repeat(513);
    for (query, field) in [
        ("specialty=astrology", "specialty"),
        ("insurance=acme", "insurance"),
        ("near=north", "near"),
        ("near=95,10", "near"),
        ("near=40,-74&radius_km=501", "radius_km"),
        ("radius_km=10", "radius_km"),
        ("per_page=101", "per_page"),
        ("page=0", "page"),
        (&format!("q={long}") as &str, "q"),
        ("telehealth=perhaps", "telehealth"),
        ("max_wait=forever", "max_wait"),
        ("licensed_in=XX", "licensed_in"),
        ("colour=blue", "colour"),
    ] {
        let reply = asker
            .get(&format!("/api/v1/search/clinicians?{query}"))
            .await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field, "{query}");
    }
    app.call(reqwest::Method::GET, "/api/v1/search/clinicians?q=x", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_clinician_never_appears() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let gone = set_up(&app, "Gone", &["adhd"], 1, "none").await;
    app.eventually("indexed", async || {
        search(&admin, "q=adhd").await["total"] == 1
    })
    .await;
    admin
        .post(
            &format!("/api/v1/admin/users/{}/disable", gone.id),
            json!({}),
        )
        .await
        .assert(StatusCode::OK);
    // Not shown even before the index catches up, then gone from the index too.
    assert!(names(&search(&admin, "q=adhd").await).is_empty());
    app.eventually("removed from the index", async || {
        search(&admin, "q=adhd").await["total"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_shortlists_licensed_verified_colleagues_with_reasons() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let both = set_up(&app, "Both", &["trauma-ptsd", "grief"], 2, "none").await;
    let one = set_up(&app, "One", &["grief"], 5, "none").await;
    let unverified = set_up(&app, "Unverified", &["trauma-ptsd", "grief"], 5, "none").await;
    let asker = set_up(&app, "Asker", &["trauma-ptsd", "grief"], 5, "none").await;
    let elsewhere = app.register("Elsewhere").await;
    elsewhere
        .put(
            "/api/v1/profiles/me",
            profile(1, &["trauma-ptsd", "grief"], "CA", (34.05, -118.24)),
        )
        .await
        .assert(StatusCode::OK);
    for person in [&both, &one, &asker, &elsewhere] {
        admin
            .put(
                &format!("/api/v1/admin/users/{}/verification", person.id),
                json!({"verified": true}),
            )
            .await
            .assert(StatusCode::OK);
    }
    let _ = unverified;
    app.eventually("all indexed", async || {
        search(&admin, "specialty=grief&verified=true").await["total"] == 4
    })
    .await;

    let reply = asker
        .post("/api/v1/match", json!({"concerns": ["trauma-ptsd", "grief"], "state": "NY", "age_band": "adult", "insurance": "aetna", "location": {"lat": 40.7, "lng": -74.0}}))
        .await;
    let candidates = reply.assert(StatusCode::OK)["candidates"]
        .as_array()
        .unwrap()
        .clone();
    let who: Vec<&str> = candidates
        .iter()
        .map(|c| c["clinician"]["display_name"].as_str().unwrap())
        .collect();
    // Treats both concerns first, even with fewer open slots; no asker, no unverified, no one unlicensed in NY.
    assert_eq!(who, ["Both", "One"]);
    let why = candidates[0]["why"].as_array().unwrap();
    assert_eq!(why[0], "Treats Trauma and PTSD, Grief and loss");
    assert!(why.iter().any(|w| w == "In network with Aetna"));
    assert!(
        why.iter()
            .any(|w| w.as_str().unwrap().starts_with("2 open slots (confirmed"))
    );
    assert!(why.iter().any(|w| w.as_str().unwrap().ends_with("km away")));
    assert_eq!(candidates[1]["matched_concerns"], json!(["Grief and loss"]));

    for (body, field) in [
        (json!({"concerns": [], "state": "NY"}), "concerns"),
        (
            json!({"concerns": ["astrology"], "state": "NY"}),
            "specialties",
        ),
        (json!({"concerns": ["grief"], "state": "Atlantis"}), "state"),
        (
            json!({"concerns": ["grief"], "state": "NY", "telehealth_ok": false}),
            "location",
        ),
        (json!({"concerns": ["grief"]}), "state"),
    ] {
        let reply = asker.post("/api/v1/match", body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_meilisearch_is_a_503_and_changes_wait_in_the_outbox() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_with(|s| s.meili_url = Some(format!("http://{closed}"))).await;
    let ana = app.register("Ana").await;
    let reply = ana.get("/api/v1/search/clinicians?q=trauma").await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "search_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    // Editing still works; the change waits, with the failure recorded.
    ana.put(
        "/api/v1/profiles/me",
        profile(1, &["grief"], "NY", (40.68, -73.94)),
    )
    .await
    .assert(StatusCode::OK);
    let db = &app.db;
    app.eventually("the outbox records the failure", async || {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use kith::db::schema::search_outbox;
        let rows: Vec<(i32, Option<String>)> = search_outbox::table
            .select((search_outbox::attempts, search_outbox::last_error))
            .load(&mut db.conn().await)
            .await
            .unwrap();
        // Registration, the verified address and the edit each queued one.
        rows.len() == 3
            && rows
                .iter()
                .all(|(attempts, error)| *attempts >= 1 && error.is_some())
    })
    .await;
}

/// The real embedded engine behind a switch that makes it fail like a
/// server that went away.
struct Switchable {
    inner: kith::search::embedded::EmbeddedEngine,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> kith::search::SearchResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(kith::search::SearchError::Unavailable(
                "switched off by the test".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl kith::search::SearchIndex for Switchable {
    fn name(&self) -> &'static str {
        "embedded"
    }
    async fn apply_settings(&self) -> kith::search::SearchResult<()> {
        self.check()
    }
    async fn apply(
        &self,
        upserts: Vec<kith::search::ClinicianDoc>,
        deletes: Vec<Uuid>,
    ) -> kith::search::SearchResult<()> {
        self.check()?;
        self.inner.apply(upserts, deletes).await
    }
    async fn search(
        &self,
        q: &kith::search::SearchQuery,
    ) -> kith::search::SearchResult<kith::search::EngineResults> {
        self.check()?;
        self.inner.search(q).await
    }
    async fn rebuild(
        &self,
        docs: Vec<kith::search::ClinicianDoc>,
    ) -> kith::search::SearchResult<()> {
        self.check()?;
        self.inner.rebuild(docs).await
    }
    async fn all_ids(&self) -> kith::search::SearchResult<Vec<Uuid>> {
        self.inner.all_ids().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_comes_back_catches_up_exactly_with_postgresql() {
    let dir = std::env::temp_dir().join(format!("kith-switch-{}", Uuid::new_v4().simple()));
    let engine = Arc::new(Switchable {
        inner: kith::search::embedded::EmbeddedEngine::open(
            dir.clone(),
            Arc::new(kith::search::config::SearchConfig::load().unwrap()),
        )
        .unwrap(),
        down: AtomicBool::new(true),
    });
    let app = TestApp::spawn_with_engine(|_| {}, Some(engine.clone())).await;
    let admin = app.admin("Avery").await;
    let mut people = Vec::new();
    for name in ["Ada", "Bo", "Cy", "Di"] {
        people.push(set_up(&app, name, &["anxiety"], 1, "none").await);
    }
    admin
        .post(
            &format!("/api/v1/admin/users/{}/disable", people[3].id),
            json!({}),
        )
        .await
        .assert(StatusCode::OK);
    admin
        .get("/api/v1/search/clinicians?q=anxiety")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "search_unavailable");

    // Back up: once the backoff has passed, the outbox drains by itself.
    engine.down.store(false, Ordering::SeqCst);
    app.clock.advance(chrono::Duration::minutes(10));
    let db = &app.db;
    app.eventually("the outbox drains", async || {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let pending: i64 = kith::db::schema::search_outbox::table
            .count()
            .get_result(&mut db.conn().await)
            .await
            .unwrap();
        pending == 0
    })
    .await;

    // The index holds exactly the enabled accounts PostgreSQL has.
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use kith::db::schema::users;
    let mut expected: Vec<Uuid> = users::table
        .filter(users::disabled_at.is_null())
        .select(users::id)
        .load(&mut app.db.conn().await)
        .await
        .unwrap();
    expected.sort();
    assert_eq!(
        kith::search::SearchIndex::all_ids(engine.as_ref())
            .await
            .unwrap(),
        expected
    );
    let found = names(&search(&admin, "q=anxiety").await);
    assert_eq!(found.len(), 3);
    assert!(!found.contains(&"Di".to_string()));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_builds_beside_the_live_index_and_the_server_switches_to_it() {
    let app = TestApp::spawn().await;
    let ana = set_up(&app, "Ana", &["grief"], 1, "none").await;
    app.eventually("indexed", async || {
        search(&ana, "q=grief").await["total"] == 1
    })
    .await;
    // A change that bypassed the outbox (as after a restore from backup) is invisible...
    app.db
        .run_sql("UPDATE profiles SET bio = 'Now also offers equine therapy.'")
        .await;
    assert_eq!(search(&ana, "q=equine").await["total"], 0);

    // ...until `kith reindex` (what it runs, from outside the server) rebuilds from PostgreSQL.
    let root = app.data_dir.join("search");
    let count = kith::search::indexer::reindex(
        &app.state.pool,
        &app.state.taxonomy,
        &app.clock,
        async |docs| {
            tokio::task::spawn_blocking(move || kith::search::embedded::build_beside(&root, &docs))
                .await
                .unwrap()
        },
    )
    .await
    .unwrap();
    assert_eq!(count, 1);
    app.eventually("the server follows the new index", async || {
        search(&ana, "q=equine").await["total"] == 1
    })
    .await;
    // Searches kept working throughout, and the old directory is gone.
    assert_eq!(search(&ana, "q=grief").await["total"], 1);
    let dirs = std::fs::read_dir(app.data_dir.join("search"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(dirs, 1);
}
