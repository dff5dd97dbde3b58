//! Clinician profiles: editing with optimistic concurrency, the taxonomy, and
//! capacity that carries its freshness.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

fn full_profile(version: i64) -> Value {
    json!({
        "version": version,
        "display_name": "Ana Lopez, LCSW",
        "credentials": ["LCSW"],
        "license_states": ["ny", "NJ"],
        "license_number": "NY-012345",
        "bio": "I work with adults after trauma, using EMDR and CBT.",
        "specialties": ["trauma-ptsd", "anxiety", "grief"],
        "modalities": ["emdr", "cbt"],
        "populations": ["adults"],
        "languages": ["english", "spanish"],
        "insurance": ["aetna", "medicaid"],
        "fee_min": 120,
        "fee_max": 180,
        "sliding_scale": true,
        "telehealth": true,
        "in_person": true,
        "city": "Brooklyn",
        "state": "NY",
        "postal_code": "11201",
        "latitude": 40.6782,
        "longitude": -73.9442,
        "accepting_referrals": true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_fills_in_a_profile_that_colleagues_can_read() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;

    let fresh = ana.profile().await;
    assert_eq!(fresh["version"], 1);
    assert_eq!(fresh["capacity_freshness"], "unknown");
    assert_eq!(fresh["accepting_referrals"], false);

    let saved = ana.put("/api/v1/profiles/me", full_profile(1)).await;
    let saved = saved.assert(StatusCode::OK);
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["license_states"], json!(["NY", "NJ"]));
    assert_eq!(saved["display_name"], "Ana Lopez, LCSW");

    let seen_by_ben = ben.get(&format!("/api/v1/profiles/{}", ana.id)).await;
    let seen_by_ben = seen_by_ben.assert(StatusCode::OK);
    assert_eq!(
        seen_by_ben["specialties"],
        json!(["trauma-ptsd", "anxiety", "grief"])
    );
    assert_eq!(seen_by_ben["insurance"], json!(["aetna", "medicaid"]));
    assert_eq!(seen_by_ben["fee_min"], 120);
    assert_eq!(seen_by_ben["city"], "Brooklyn");
    assert_eq!(seen_by_ben["latitude"], 40.6782);
    assert_eq!(seen_by_ben["license_verified"], false);

    // Only signed-in users can read profiles.
    app.call(Method::GET, &format!("/api/v1/profiles/{}", ana.id), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    ben.get(&format!("/api/v1/profiles/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_taxonomy_slug_names_the_field_and_the_slug_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    ana.put("/api/v1/profiles/me", full_profile(1))
        .await
        .assert(StatusCode::OK);
    for (field, bad) in [
        ("specialties", "astrology"),
        ("modalities", "crystal-healing"),
        ("insurance", "acme-health"),
        ("languages", "klingon"),
        ("populations", "martians"),
    ] {
        let mut body = full_profile(2);
        body[field] = json!([bad]);
        let reply = ana.put("/api/v1/profiles/me", body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field);
        assert!(
            reply.body["message"].as_str().unwrap().contains(bad),
            "{}",
            reply.body
        );
    }
    let stored = ana.profile().await;
    assert_eq!(stored["version"], 2);
    assert_eq!(
        stored["specialties"],
        json!(["trauma-ptsd", "anxiety", "grief"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_named() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    for (field, value) in [
        ("state", json!("Narnia")),
        ("license_states", json!(["ZZ"])),
        ("postal_code", json!("ABCDE")),
        ("latitude", json!(123.0)),
        ("fee_min", json!(-5)),
        ("fee_max", json!("lots")),
        ("telehealth", json!("yes")),
    ] {
        let mut body = full_profile(1);
        body[field] = value;
        let reply = ana.put("/api/v1/profiles/me", body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field, "{}", reply.body);
    }
    let mut body = full_profile(1);
    body["fee_min"] = json!(200);
    body["fee_max"] = json!(100);
    assert_eq!(
        ana.put("/api/v1/profiles/me", body).await.field(),
        "fee_max"
    );
    let mut body = full_profile(1);
    body["favourite_colour"] = json!("teal");
    let reply = ana.put("/api/v1/profiles/me", body).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "favourite_colour");
    assert_eq!(ana.profile().await["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_edit_is_refused_and_the_stored_profile_is_unchanged() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    // Two tabs load version 1; the first saves.
    ana.put("/api/v1/profiles/me", full_profile(1))
        .await
        .assert(StatusCode::OK);
    let mut second_tab = full_profile(1);
    second_tab["bio"] = json!("Overwritten?");
    let reply = ana.put("/api/v1/profiles/me", second_tab).await;
    reply.assert_error(StatusCode::CONFLICT, "version_conflict");
    let stored = ana.profile().await;
    assert_eq!(stored["version"], 2);
    assert_eq!(
        stored["bio"],
        "I work with adults after trauma, using EMDR and CBT."
    );

    // Without any version the edit is refused too.
    let mut no_version = full_profile(2);
    no_version.as_object_mut().unwrap().remove("version");
    ana.put("/api/v1/profiles/me", no_version.clone())
        .await
        .assert_error(StatusCode::PRECONDITION_REQUIRED, "version_required");

    // If-Match carries the ETag the read returned.
    let read = ana.get("/api/v1/profiles/me").await;
    let etag = read.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"2\"");
    let client = reqwest::Client::new();
    let response = client
        .put(app.url("/api/v1/profiles/me"))
        .bearer_auth(&ana.access)
        .header("If-Match", &etag)
        .json(&no_version)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .put(app.url("/api/v1/profiles/me"))
        .bearer_auth(&ana.access)
        .header("If-Match", &etag)
        .json(&no_version)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_updated_in_one_call_and_shows_how_fresh_it_is() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;

    let updated = ana
        .set_capacity(json!({"accepting_referrals": true, "open_slots": 3, "waitlist": "none"}))
        .await;
    let updated = updated.assert(StatusCode::OK);
    assert_eq!(updated["open_slots"], 3);
    assert_eq!(updated["accepting_referrals"], true);
    assert_eq!(updated["capacity_freshness"], "fresh");
    assert!(updated["capacity_confirmed_at"].is_string());

    // Partial update keeps the rest.
    let updated = ana
        .set_capacity(json!({"waitlist": "short", "open_slots": 0}))
        .await;
    let updated = updated.assert(StatusCode::OK);
    assert_eq!(updated["waitlist"], "short");
    assert_eq!(updated["accepting_referrals"], true);

    // Two weeks and a day later, nobody has confirmed: stale.
    app.clock.advance(chrono::Duration::days(15));
    let ana = app.sign_in(&ana.email).await;
    let before = ana.profile().await;
    assert_eq!(before["capacity_freshness"], "stale");

    // One click brings it back, without touching the version (an open edit stays valid).
    let confirmed = ana
        .post("/api/v1/profiles/me/capacity/confirm", json!({}))
        .await;
    let confirmed = confirmed.assert(StatusCode::OK);
    assert_eq!(confirmed["capacity_freshness"], "fresh");
    assert_eq!(confirmed["version"], before["version"]);
    assert_eq!(confirmed["waitlist"], "short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_capacity_is_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    ana.set_capacity(json!({"open_slots": 2}))
        .await
        .assert(StatusCode::OK);
    for (body, field) in [
        (json!({"open_slots": -1}), "open_slots"),
        (json!({"open_slots": 2.5}), "open_slots"),
        (json!({"waitlist": "forever"}), "waitlist"),
        (
            json!({"accepting_referrals": "maybe"}),
            "accepting_referrals",
        ),
    ] {
        let reply = ana.set_capacity(body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field);
    }
    let stale = ana
        .set_capacity(json!({"open_slots": 5, "version": 1}))
        .await;
    stale.assert_error(StatusCode::CONFLICT, "version_conflict");
    assert_eq!(ana.profile().await["open_slots"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_taxonomy_offers_a_realistic_vocabulary() {
    let app = TestApp::spawn().await;
    let taxonomy = app.call(Method::GET, "/api/v1/taxonomy", None).await;
    let taxonomy = taxonomy.assert(StatusCode::OK);
    let count = |k: &str| taxonomy[k].as_array().unwrap().len();
    assert!(count("specialties") >= 60, "{}", count("specialties"));
    assert!(count("modalities") >= 25);
    assert!(count("insurance") >= 40);
    assert!(count("languages") >= 20);
    assert!(count("populations") >= 10);
    let has = |k: &str, slug: &str| {
        taxonomy[k]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["slug"] == slug)
    };
    for slug in [
        "trauma-ptsd",
        "ocd",
        "eating-disorders",
        "perinatal",
        "substance-use",
        "grief",
    ] {
        assert!(has("specialties", slug), "{slug}");
    }
    for slug in ["cbt", "dbt", "emdr", "ifs", "act"] {
        assert!(has("modalities", slug), "{slug}");
    }
    assert!(has("insurance", "medicaid") && has("insurance", "medicare"));
    let ptsd = taxonomy["specialties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "trauma-ptsd")
        .unwrap();
    assert!(
        ptsd["synonyms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "ptsd")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_verification_sticks_only_to_what_the_administrator_checked() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ana = app.register("Ana").await;
    let ben = crate::referrals::colleague(&app, "Ben", 0).await;
    let edit = |version: i64, states: &[&str], number: &str| {
        ana.put(
            "/api/v1/profiles/me",
            json!({"version": version, "license_states": states, "license_number": number,
                   "specialties": ["anxiety"], "accepting_referrals": true, "telehealth": true}),
        )
    };
    edit(1, &["NY", "NJ"], "LCSW-1001")
        .await
        .assert(StatusCode::OK);
    ana.set_capacity(json!({"open_slots": 3}))
        .await
        .assert(StatusCode::OK);
    // Claimed but not verified: no referral can reach her there.
    let to_ana = |state: &str| {
        let mut r = crate::referrals::referral("direct", &[&ana]);
        r["packet"]["state"] = json!(state);
        r
    };
    let refused = ben.post("/api/v1/referrals", to_ana("NY")).await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("Ana has no verified licence in NY"),
        "{}",
        refused.body
    );
    admin
        .put(
            &format!("/api/v1/admin/users/{}/verification", ana.id),
            json!({"verified": true}),
        )
        .await
        .assert(StatusCode::OK);
    ben.post("/api/v1/referrals", to_ana("NJ"))
        .await
        .assert(StatusCode::CREATED);

    // She drops NJ and adds CA: NY stays verified, CA waits, NJ is gone.
    // (Version 2 was the capacity update.)
    let view = edit(3, &["NY", "CA"], "LCSW-1001").await;
    let view = view.assert(StatusCode::OK);
    assert_eq!(view["verified_states"], json!(["NY"]));
    assert_eq!(view["license_verified"], true);
    ben.post("/api/v1/referrals", to_ana("CA"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    ben.post("/api/v1/referrals", to_ana("NY"))
        .await
        .assert(StatusCode::CREATED);
    // Administrators are told what changed.
    let notes = admin.get("/api/v1/notifications").await;
    let notes = notes.assert(StatusCode::OK)["items"].to_string();
    assert!(notes.contains("Ana added CA, removed NJ"), "{notes}");
    assert!(notes.contains("no longer verified: NJ"), "{notes}");

    // A new licence number clears every state.
    let view = edit(4, &["NY", "CA"], "LCSW-2002").await;
    let view = view.assert(StatusCode::OK);
    assert_eq!(view["verified_states"], json!([]));
    assert_eq!(view["license_verified"], false);
    assert!(view["verified_at"].is_null());
    ben.post("/api/v1/referrals", to_ana("NY"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    // And the search index says so too.
    app.eventually("the index drops her verification", async || {
        let hits = admin
            .get("/api/v1/search/clinicians?verified=true&licensed_in=NY")
            .await;
        !hits.body.to_string().contains(&ana.id.to_string())
    })
    .await;
}
