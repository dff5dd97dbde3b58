//! Referrals as people live them: sent, opened, accepted with capacity taken,
//! contact released to the accepter only, declined down a cascade, expired,
//! and the races the database must settle.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Clinician, TestApp};

pub(crate) async fn colleague(app: &TestApp, name: &str, slots: i64) -> Clinician {
    let person = app.register(name).await;
    person
        .put(
            "/api/v1/profiles/me",
            json!({"version": 1, "license_states": ["NY"], "specialties": ["anxiety"], "populations": ["adults"], "insurance": ["aetna"], "accepting_referrals": true, "telehealth": true}),
        )
        .await
        .assert(StatusCode::OK);
    app.verify_licence(&person).await;
    person
        .set_capacity(json!({"open_slots": slots}))
        .await
        .assert(StatusCode::OK);
    person
}

pub(crate) fn referral(mode: &str, recipients: &[&Clinician]) -> Value {
    json!({
        "mode": mode,
        "recipients": recipients.iter().map(|c| c.id).collect::<Vec<_>>(),
        "packet": {"age_band": "adult", "state": "NY", "concerns": ["anxiety"], "insurance": "aetna",
                   "telehealth_ok": true, "urgency": "routine", "note": "Panic attacks since spring; prefers evenings."},
        "contact": {"full_name": "Jordan Example", "phone": "+1 212 555 0100"}
    })
}

fn statuses(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_referral_goes_from_sent_to_completed_and_only_the_accepter_sees_contact() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 2).await;
    let cara = colleague(&app, "Cara", 1).await;

    let sent = ana
        .post("/api/v1/referrals", referral("direct", &[&ben]))
        .await;
    let sent = sent.assert(StatusCode::CREATED).clone();
    let id = sent["id"].as_str().unwrap().to_string();
    assert_eq!(sent["status"], "requested");
    assert!(sent["deadline"].is_string());
    assert!(
        !sent.to_string().contains("Jordan"),
        "the packet carries no identifiers"
    );

    let inbox = ben.get("/api/v1/referrals?box=inbox").await;
    assert_eq!(inbox.assert(StatusCode::OK)[0]["offer_state"], "offered");
    assert_eq!(
        cara.get(&format!("/api/v1/referrals/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    let opened = ben.get(&format!("/api/v1/referrals/{id}")).await;
    assert_eq!(opened.assert(StatusCode::OK)["status"], "received");
    ben.get(&format!("/api/v1/referrals/{id}/contact"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let accepted = ben
        .post(&format!("/api/v1/referrals/{id}/accept"), json!({}))
        .await;
    let accepted = accepted.assert(StatusCode::OK).clone();
    assert_eq!(
        (
            accepted["status"].as_str(),
            accepted["accepted_onto"].as_str()
        ),
        (Some("accepted"), Some("slot"))
    );
    assert_eq!(ben.profile().await["open_slots"], 1);
    let contact = ben.get(&format!("/api/v1/referrals/{id}/contact")).await;
    assert_eq!(
        contact.assert(StatusCode::OK)["full_name"],
        "Jordan Example"
    );
    ana.get(&format!("/api/v1/referrals/{id}/contact"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    ben.post(
        &format!("/api/v1/referrals/{id}/complete"),
        json!({"outcome": "seen"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "invalid_transition");
    ana.post(
        &format!("/api/v1/referrals/{id}/schedule"),
        json!({"first_appointment_at": "2026-12-01T15:00:00Z"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ben.post(
        &format!("/api/v1/referrals/{id}/schedule"),
        json!({"first_appointment_at": "2026-12-01T15:00:00Z"}),
    )
    .await
    .assert(StatusCode::OK);
    let done = ben
        .post(
            &format!("/api/v1/referrals/{id}/complete"),
            json!({"outcome": "First session held; weekly care."}),
        )
        .await;
    done.assert(StatusCode::OK);

    // The sender sees the whole story.
    let seen = ana.get(&format!("/api/v1/referrals/{id}")).await;
    let seen = seen.assert(StatusCode::OK);
    assert_eq!(
        statuses(seen),
        [
            "requested",
            "received",
            "accepted",
            "scheduled",
            "completed"
        ]
    );
    assert_eq!(seen["first_appointment_at"], "2026-12-01T15:00:00Z");
    ana.post(&format!("/api/v1/referrals/{id}/withdraw"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "invalid_transition");
    let outbox = ana
        .get("/api/v1/referrals?box=outbox&status=completed")
        .await;
    assert_eq!(outbox.assert(StatusCode::OK).as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_with_the_same_key_creates_nothing_new() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;
    let send = || async {
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/referrals"))
            .bearer_auth(&ana.access)
            .header("Idempotency-Key", "ref-2026-11-23-a")
            .json(&referral("direct", &[&ben]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["id"].clone()
    };
    assert_eq!(send().await, send().await);
    assert_eq!(
        ana.get("/api/v1/referrals?box=outbox")
            .await
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_moves_on_after_a_decline_and_expires_when_no_one_is_left() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 0).await;
    let cara = colleague(&app, "Cara", 0).await;
    let sent = ana
        .post("/api/v1/referrals", referral("cascade", &[&ben, &cara]))
        .await;
    let id = sent.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Only the first colleague holds it.
    assert!(
        cara.get("/api/v1/referrals")
            .await
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .is_empty()
    );
    cara.post(&format!("/api/v1/referrals/{id}/accept"), json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ben.post(
        &format!("/api/v1/referrals/{id}/decline"),
        json!({"reason": "no_capacity"}),
    )
    .await
    .assert(StatusCode::OK);
    ben.post(&format!("/api/v1/referrals/{id}/accept"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "offer_closed");

    let cara_inbox = cara.get("/api/v1/referrals").await;
    assert_eq!(
        cara_inbox.assert(StatusCode::OK)[0]["offer_state"],
        "offered"
    );
    let view = ana.get(&format!("/api/v1/referrals/{id}")).await;
    let offers = view.assert(StatusCode::OK)["offers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(offers[0]["reason"], "no_capacity");

    // Cara's 72 hours pass without an answer: nobody is left, so it expires.
    app.clock.advance(chrono::Duration::hours(73));
    assert_eq!(
        kith::referrals::sweep_deadlines(&app.state, app.clock.now())
            .await
            .unwrap(),
        1
    );
    let ana = app.sign_in(&ana.email).await;
    let view = ana.get(&format!("/api/v1/referrals/{id}")).await;
    let view = view.assert(StatusCode::OK);
    assert_eq!(view["status"], "expired");
    assert_eq!(
        statuses(view),
        ["requested", "requested", "requested", "expired"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_colleagues_accepting_one_broadcast_at_once_make_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let mut others = Vec::new();
    for i in 0..50 {
        others.push(colleague(&app, &format!("Colleague{i}"), 1).await);
    }
    // A broadcast goes to at most ten colleagues at once.
    let first_ten: Vec<&Clinician> = others.iter().take(10).collect();
    let sent = ana
        .post("/api/v1/referrals", referral("broadcast", &first_ten))
        .await;
    let id = sent.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // All fifty try at the same moment; only the ten offered can, and only one wins.
    let attempts = others.iter().map(|c| {
        let c = c.clone();
        let id = id.clone();
        async move {
            c.post(&format!("/api/v1/referrals/{id}/accept"), json!({}))
                .await
        }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let winners = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let taken = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    let strangers = replies
        .iter()
        .filter(|r| r.status == StatusCode::NOT_FOUND)
        .count();
    assert_eq!(
        (winners, taken, strangers),
        (1, 9, 40),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let view = ana.get(&format!("/api/v1/referrals/{id}")).await;
    let offers = view.assert(StatusCode::OK)["offers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        offers.iter().filter(|o| o["state"] == "accepted").count(),
        1
    );
    assert_eq!(
        offers.iter().filter(|o| o["state"] == "withdrawn").count(),
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_accepts_at_once_take_exactly_five_open_slots() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 5).await;
    let mut ids = Vec::new();
    for _ in 0..200 {
        let sent = ana
            .post("/api/v1/referrals", referral("direct", &[&ben]))
            .await;
        ids.push(
            sent.assert(StatusCode::CREATED)["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let attempts = ids.iter().map(|id| {
        let ben = ben.clone();
        async move {
            ben.post(
                &format!("/api/v1/referrals/{id}/accept"),
                json!({"onto": "slot"}),
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let took = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let refused = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.error() == "no_open_slot")
        .count();
    assert_eq!((took, refused), (5, 195));
    assert_eq!(ben.profile().await["open_slots"], 0);
    // With no slot left, the waitlist is the honest answer.
    let waitlisted = ben
        .post(
            &format!("/api/v1/referrals/{}/accept", ids[199]),
            json!({"onto": "waitlist"}),
        )
        .await;
    let waitlisted = waitlisted.assert(StatusCode::OK);
    assert_eq!(waitlisted["accepted_onto"], "waitlist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_referral_is_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;
    let outsider = app.register("Outsider").await;
    let mut cases = vec![];
    let mut r = referral("direct", &[&ben]);
    r["packet"].as_object_mut().unwrap().remove("concerns");
    cases.push((r, "packet.concerns"));
    let mut r = referral("direct", &[&ben]);
    r["packet"]["concerns"] = json!(["astrology"]);
    cases.push((r, "packet.concerns"));
    let mut r = referral("direct", &[&ben]);
    r["packet"]["state"] = json!("ZZ");
    cases.push((r, "packet.state"));
    cases.push((referral("direct", &[&ben, &ana]), "recipients"));
    cases.push((referral("direct", &[&ana]), "recipients"));
    cases.push((referral("direct", &[&outsider]), "recipients"));
    let mut r = referral("direct", &[&ben]);
    r["contact"] = json!({"full_name": "Jordan Example"});
    cases.push((r, "contact"));
    for (body, field) in cases {
        let reply = ana.post("/api/v1/referrals", body).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field);
    }
    assert!(
        ana.get("/api/v1/referrals?box=outbox")
            .await
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .is_empty()
    );
    ana.get("/api/v1/referrals?box=spam")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn how_colleagues_answer_shows_in_search_and_ranks_the_responsive_first() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 3).await;
    let cara = colleague(&app, "Cara", 3).await;
    let to_ben = ana
        .post("/api/v1/referrals", referral("direct", &[&ben]))
        .await;
    let to_ben = to_ben.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();
    ben.post(&format!("/api/v1/referrals/{to_ben}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
    let to_cara = ana
        .post("/api/v1/referrals", referral("direct", &[&cara]))
        .await;
    let to_cara = to_cara.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.clock.advance(chrono::Duration::hours(10));
    let cara = app.sign_in(&cara.email).await;
    cara.post(
        &format!("/api/v1/referrals/{to_cara}/decline"),
        json!({"reason": "not_a_fit"}),
    )
    .await
    .assert(StatusCode::OK);

    let ana = app.sign_in(&ana.email).await;
    let ranked = async || {
        let found = ana
            .get("/api/v1/search/clinicians?specialty=anxiety&accepting=true")
            .await;
        let hits = found.assert(StatusCode::OK)["hits"]
            .as_array()
            .unwrap()
            .clone();
        hits.iter()
            .filter(|h| h["display_name"] != "Ana")
            .cloned()
            .collect::<Vec<_>>()
    };
    // Search shows what the index holds, which follows each answer within a second.
    app.eventually(
        "Ben ranks first for answering fast and accepting",
        async || {
            let hits = ranked().await;
            hits.len() == 2
                && hits[0]["display_name"] == "Ben"
                && hits
                    .iter()
                    .all(|h| !h["responsiveness"]["acceptance_rate"].is_null())
        },
    )
    .await;
    let hits = ranked().await;
    assert_eq!(hits[0]["responsiveness"]["acceptance_rate"], 1.0);
    assert_eq!(hits[1]["responsiveness"]["acceptance_rate"], 0.0);
    assert_eq!(hits[1]["responsiveness"]["median_response_hours"], 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_without_a_list_follows_the_match_shortlist() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ana = colleague(&app, "Ana", 0).await;
    let open = colleague(&app, "Open", 3).await;
    let waiting = colleague(&app, "Waiting", 0).await;
    waiting
        .set_capacity(json!({"waitlist": "medium"}))
        .await
        .assert(StatusCode::OK);
    let unverified = colleague(&app, "Unverified", 5).await;
    for person in [&ana, &open, &waiting] {
        admin
            .put(
                &format!("/api/v1/admin/users/{}/verification", person.id),
                json!({"verified": true}),
            )
            .await
            .assert(StatusCode::OK);
    }
    app.eventually("all indexed", async || {
        admin
            .get("/api/v1/search/clinicians?specialty=anxiety&verified=true")
            .await
            .body["total"]
            == 3
    })
    .await;
    let mut body = referral("cascade", &[]);
    body["recipients"] = json!([]);
    let sent = ana.post("/api/v1/referrals", body).await;
    let sent = sent.assert(StatusCode::CREATED);
    let order: Vec<String> = sent["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["recipient_id"].as_str().unwrap().to_string())
        .collect();
    // Open slots first, then the waitlist; never the sender, never the unverified.
    assert_eq!(order, [open.id.to_string(), waiting.id.to_string()]);
    assert!(!order.contains(&unverified.id.to_string()));
    assert_eq!(sent["offers"][0]["state"], "offered");
    assert_eq!(sent["offers"][1]["state"], "queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_deadlines_follow_the_configured_hours() {
    let app = TestApp::spawn_with(|s| s.response_hours.routine = 10).await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;
    let sent = ana
        .post("/api/v1/referrals", referral("direct", &[&ben]))
        .await;
    let sent = sent.assert(StatusCode::CREATED);
    let created: chrono::DateTime<chrono::Utc> =
        sent["created_at"].as_str().unwrap().parse().unwrap();
    let deadline: chrono::DateTime<chrono::Utc> =
        sent["deadline"].as_str().unwrap().parse().unwrap();
    assert_eq!(deadline - created, chrono::Duration::hours(10));
}
