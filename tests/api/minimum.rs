//! Minimum necessary: what each colleague may see of a referral, the
//! client's contact sealed at rest and purged after the referral closes,
//! the location coarsened, reads audited once per visit.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    referrals::{colleague, referral},
    support::TestApp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_never_offered_it_gets_404_whatever_happens_and_one_whose_offer_ended_sees_only_that()
 {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 0).await;
    let cara = colleague(&app, "Cara", 0).await;
    let dev = colleague(&app, "Dev", 0).await;
    // Ben, then Cara, then Dev.
    let id = ana.refer(referral("cascade", &[&ben, &cara, &dev])).await;
    let path = format!("/api/v1/referrals/{id}");
    ben.post(
        &format!("{path}/decline"),
        json!({"reason": "not_a_fit", "note": "Outside my training."}),
    )
    .await
    .assert(StatusCode::OK);
    // Cara holds it now and accepts onto her waitlist; Dev's queued offer closes unseen.
    cara.get(&path).await.assert(StatusCode::OK);
    cara.post(&format!("{path}/accept"), json!({"onto": "waitlist"}))
        .await
        .assert(StatusCode::OK);
    cara.post(
        &format!("{path}/schedule"),
        json!({"first_appointment_at": "2026-12-20T15:00:00Z"}),
    )
    .await
    .assert(StatusCode::OK);

    for what in ["", "/contact"] {
        dev.get(&format!("{path}{what}"))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    assert!(
        dev.get("/api/v1/referrals")
            .await
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Ben declined: the packet he was offered and that his offer ended.
    let seen = ben.get(&path).await;
    let seen = seen.assert(StatusCode::OK);
    assert_eq!(
        seen["packet"]["note"],
        "Panic attacks since spring; prefers evenings."
    );
    assert!(seen.get("status").is_none(), "{seen}");
    assert_eq!(seen["offers"].as_array().unwrap().len(), 1);
    assert_eq!(seen["offers"][0]["state"], "declined");
    for hidden in ["accepted_by", "first_appointment_at", "outcome", "deadline"] {
        assert!(seen[hidden].is_null(), "{hidden}: {seen}");
    }
    let text = seen.to_string();
    assert!(
        !text.contains(&cara.id.to_string()),
        "no other colleague: {text}"
    );
    assert!(!text.contains("2026-12-20"), "no appointment date: {text}");
    let inbox = ben.get("/api/v1/referrals").await;
    let row = &inbox.assert(StatusCode::OK)[0];
    assert!(
        row.get("status").is_none() && row["offer_state"] == "declined",
        "{row}"
    );
    // Filtering his inbox by status does not tell him either.
    let by_status = ben.get("/api/v1/referrals?status=scheduled").await;
    assert!(
        by_status
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .is_empty()
    );
    ben.get(&format!("{path}/contact"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Cara, who accepted, sees the appointment; the sender sees everything.
    let hers = cara.get(&path).await;
    assert_eq!(
        hers.assert(StatusCode::OK)["first_appointment_at"],
        "2026-12-20T15:00:00Z"
    );
    assert!(
        !hers
            .assert(StatusCode::OK)
            .to_string()
            .contains(&ben.id.to_string())
    );
    let all = ana.get(&path).await;
    assert_eq!(
        all.assert(StatusCode::OK)["offers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Ben's refused look at the contact is in the audit log.
    let admin = app.admin("Avery").await;
    let refused = admin
        .get(&format!(
            "/api/v1/admin/audit?action=referral.contact_refused&entity_id={id}"
        ))
        .await;
    // Newest first: Ben's, then Dev's, who was only told 404.
    let actors: Vec<&str> = refused
        .assert(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor_id"].as_str().unwrap())
        .collect();
    assert_eq!(actors, [ben.id.to_string(), dev.id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_is_sealed_at_rest_the_location_coarsened_and_a_rotated_key_still_opens_it() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;
    let mut body = referral("direct", &[&ben]);
    body["packet"]["location"] = json!({"lat": 40.748_44, "lng": -73.985_66});
    body["contact"]["email"] = json!("jordan.example@mail.example");
    let id = ana.refer(body).await;
    let path = format!("/api/v1/referrals/{id}");

    // Ben, offered it, sees only the grid cell.
    let offered = ben.get(&path).await;
    assert_eq!(
        offered.assert(StatusCode::OK)["packet"]["location"],
        json!({"lat": 40.7, "lng": -74.0})
    );
    // In PostgreSQL: no name, phone, email or exact point in clear anywhere.
    let dump = app
        .db
        .scalar_text(&format!(
            "SELECT (SELECT row_to_json(r)::text FROM referrals r WHERE id = '{id}') || \
                    (SELECT row_to_json(c)::text FROM referral_contacts c WHERE referral_id = '{id}') || \
                    (SELECT coalesce(string_agg(row_to_json(a)::text, ''), '') FROM audit_log a)"
        ))
        .await;
    for secret in ["Jordan", "555 0100", "jordan.example", "40.748", "73.985"] {
        assert!(!dump.contains(secret), "{secret} is stored in clear");
    }

    ben.post(&format!("{path}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
    let contact = ben.get(&format!("{path}/contact")).await;
    let contact = contact.assert(StatusCode::OK);
    assert_eq!(contact["full_name"], "Jordan Example");
    assert_eq!(contact["email"], "jordan.example@mail.example");
    assert_eq!(
        contact["location"],
        json!({"lat": 40.748_44, "lng": -73.985_66})
    );

    // A server with a new key and the old one among the older keys opens it.
    let old = app.state.settings.contact_keys.current.clone();
    let rotated = app
        .sibling_with(|s| {
            s.contact_keys.current =
                secrecy::SecretString::from("a brand new contact key, rotated today".to_string());
            s.contact_keys.older = vec![old];
        })
        .await
        .expect("start with the rotated key");
    let again = ben.via(&rotated.base).get(&format!("{path}/contact")).await;
    assert_eq!(again.assert(StatusCode::OK)["full_name"], "Jordan Example");
    // Without the old key, the server refuses to start and says why.
    let refused = app
        .sibling_with(|s| {
            s.contact_keys.current =
                secrecy::SecretString::from("a brand new contact key, rotated today".to_string());
        })
        .await
        .err()
        .expect("a server without the key its contacts were sealed with does not start");
    assert!(
        refused.to_string().contains("KITH_CONTACT_OLD_KEYS"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_details_are_purged_after_the_retention_period_and_the_purge_is_audited() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;
    let id = ana.refer(referral("direct", &[&ben])).await;
    let path = format!("/api/v1/referrals/{id}");
    ben.post(&format!("{path}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
    ben.post(
        &format!("{path}/schedule"),
        json!({"first_appointment_at": "2026-12-20T15:00:00Z"}),
    )
    .await
    .assert(StatusCode::OK);
    ben.post(
        &format!("{path}/complete"),
        json!({"outcome": "Seen; continuing weekly."}),
    )
    .await
    .assert(StatusCode::OK);
    let retention = app.state.settings.contact_retention;
    let mut conn = app.state.pool.get().await.unwrap();
    // Still inside the retention period: kept.
    let now = app.clock.now();
    assert_eq!(
        kith::referrals::contact::purge_closed(&mut conn, retention, now)
            .await
            .unwrap(),
        0
    );
    ben.get(&format!("{path}/contact"))
        .await
        .assert(StatusCode::OK);
    // A day past it: gone, and said so.
    let later = now + retention + chrono::Duration::days(1);
    assert_eq!(
        kith::referrals::contact::purge_closed(&mut conn, retention, later)
            .await
            .unwrap(),
        1
    );
    ben.get(&format!("{path}/contact"))
        .await
        .assert_error(StatusCode::GONE, "contact_purged");
    assert_eq!(
        app.db
            .scalar_i64(&format!(
                "SELECT count(*) FROM referral_contacts WHERE referral_id = '{id}' AND sealed IS NULL AND full_name IS NULL AND purged_at IS NOT NULL"
            ))
            .await,
        1
    );
    let admin = app.admin("Avery").await;
    let purged = admin
        .get(&format!(
            "/api/v1/admin/audit?action=referral.contact_purged&entity_id={id}"
        ))
        .await;
    assert_eq!(
        purged.assert(StatusCode::OK)[0]["detail"]["retention_days"],
        90
    );
    // The referral itself stays for the sender.
    ana.get(&path).await.assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_page_polling_is_audited_once_per_visit() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;
    let id = ana.refer(referral("direct", &[&ben])).await;
    for _ in 0..10 {
        ana.get(&format!("/api/v1/referrals/{id}"))
            .await
            .assert(StatusCode::OK);
        ben.get(&format!("/api/v1/referrals/{id}"))
            .await
            .assert(StatusCode::OK);
    }
    let reads = format!(
        "SELECT count(*) FROM audit_log WHERE action = 'referral.read' AND entity_id = '{id}'"
    );
    assert_eq!(app.db.scalar_i64(&reads).await, 2, "one per viewer");
    // An hour on, the next look is a new visit.
    app.clock.advance(chrono::Duration::minutes(61));
    let ana = app.sign_in(&ana.email).await;
    ana.get(&format!("/api/v1/referrals/{id}"))
        .await
        .assert(StatusCode::OK);
    ana.get(&format!("/api/v1/referrals/{id}"))
        .await
        .assert(StatusCode::OK);
    assert_eq!(app.db.scalar_i64(&reads).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_that_travels_is_held_by_the_privacy_guard_unless_the_sender_confirms() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 1).await;

    // A referral's note with a phone number and a birth date.
    let mut body = referral("direct", &[&ben]);
    body["packet"]["note"] = json!("Call her mother on 312-555-0188; DOB 03/14/1989.");
    let held = ana.post("/api/v1/referrals", body.clone()).await;
    held.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "possible_identifier");
    assert_eq!(held.field(), "packet.note");
    let message = held.assert(StatusCode::UNPROCESSABLE_ENTITY)["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("a phone number") && message.contains("a date of birth"),
        "{message}"
    );
    assert!(
        ben.get("/api/v1/referrals")
            .await
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Confirmed: sent, and the override is in the audit log without the text.
    body["confirm_no_identifiers"] = json!(true);
    let id = ana.refer(body).await;
    let admin = app.admin("Avery").await;
    let audit = admin
        .get(&format!(
            "/api/v1/admin/audit?action=privacy.override&entity_id={id}"
        ))
        .await;
    let entry = &audit.assert(StatusCode::OK)[0];
    assert_eq!(entry["actor_id"], ana.id.to_string());
    assert_eq!(entry["detail"]["overridden"][0]["field"], "packet.note");
    assert_eq!(
        entry["detail"]["overridden"][0]["kinds"],
        json!(["phone", "date_of_birth"])
    );
    assert!(!entry.to_string().contains("312-555"), "{entry}");

    // A decline note naming the client's email.
    let path = format!("/api/v1/referrals/{id}");
    let held = ben
        .post(
            &format!("{path}/decline"),
            json!({"reason": "other", "note": "Ask jordan@mail.example instead"}),
        )
        .await;
    held.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "possible_identifier");
    assert_eq!(held.field(), "note");

    // A group named with a date, a session titled with a record number.
    let held = ana
        .post("/api/v1/groups", json!({"name": "J.D. intake 12/03/2026"}))
        .await;
    held.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "possible_identifier");
    assert_eq!(held.field(), "name");
    let group = ana.create_group("Consultation", false).await;
    let held = ana
        .post(
            &format!("/api/v1/groups/{group}/sessions"),
            json!({"title": "Review of MRN 4471923", "kind": "peer_consultation", "starts_at": "2030-01-07T09:00", "planned_minutes": 30}),
        )
        .await;
    held.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "possible_identifier");
    assert_eq!(held.field(), "title");
    let renamed = ana
        .patch(
            &format!("/api/v1/groups/{group}"),
            json!({"topic": "Call 312 555 0188"}),
        )
        .await;
    renamed.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "possible_identifier");
    ana.patch(
        &format!("/api/v1/groups/{group}"),
        json!({"topic": "Call 312 555 0188", "confirm_no_identifiers": true}),
    )
    .await
    .assert(StatusCode::OK);
}
