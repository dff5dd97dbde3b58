//! Email at every step, through a real SMTP server on loopback (aiosmtpd),
//! retried when the server is away; in-app notifications beside it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Clinician, SmtpServer, TestApp, wait_for};

async fn colleague(app: &TestApp, name: &str) -> Clinician {
    let person = app.register(name).await;
    person
        .put("/api/v1/profiles/me", json!({"version": 1, "license_states": ["NY"], "specialties": ["grief"], "accepting_referrals": true}))
        .await
        .assert(StatusCode::OK);
    app.verify_licence(&person).await;
    person
        .set_capacity(json!({"open_slots": 2}))
        .await
        .assert(StatusCode::OK);
    person
}

fn referral(to: &Clinician) -> serde_json::Value {
    json!({
        "mode": "direct",
        "recipients": [to.id],
        "packet": {"age_band": "adult", "state": "NY", "concerns": ["grief"], "urgency": "soon"},
        "contact": {"full_name": "Riley Confidential", "email": "riley@example.net"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_is_emailed_without_client_identifiers() {
    let smtp = SmtpServer::start_on(SmtpServer::free_port());
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port).into())
    })
    .await;
    let ana = colleague(&app, "Ana").await;
    let ben = colleague(&app, "Ben").await;
    let sent = ana.post("/api/v1/referrals", referral(&ben)).await;
    let id = sent.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the offer email", || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("Subject: New referral for you"))
    })
    .await;
    ben.post(&format!("/api/v1/referrals/{id}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
    wait_for("the acceptance email", || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("Subject: Your referral was accepted"))
    })
    .await;

    let messages = smtp.messages();
    let offer = messages
        .iter()
        .find(|m| m.contains("New referral for you"))
        .unwrap();
    assert!(offer.contains("To: ben@clinic.example"), "{offer}");
    assert!(
        offer.contains(&format!("/#/referrals/{id}")),
        "the email links to the referral"
    );
    let accepted = messages
        .iter()
        .find(|m| m.contains("Your referral was accepted"))
        .unwrap();
    assert!(accepted.contains("To: ana@clinic.example"));
    for m in &messages {
        assert!(
            !m.contains("Riley") && !m.contains("riley@example.net"),
            "a client identifier leaked into: {m}"
        );
    }

    // The same events show in the app, unread first.
    let inbox = ana.get("/api/v1/notifications").await;
    let inbox = inbox.assert(StatusCode::OK).clone();
    assert_eq!(inbox["unread"], 1);
    assert_eq!(inbox["items"][0]["kind"], "referral_accepted");
    let nid = inbox["items"][0]["id"].as_i64().unwrap();
    ana.post(&format!("/api/v1/notifications/{nid}/read"), json!({}))
        .await
        .assert(StatusCode::NO_CONTENT);
    assert_eq!(
        ana.get("/api/v1/notifications")
            .await
            .assert(StatusCode::OK)["unread"],
        0
    );
    ben.post(&format!("/api/v1/notifications/{nid}/read"), json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waits_while_the_smtp_server_is_down_and_goes_out_when_it_returns() {
    let port = SmtpServer::free_port();
    let app =
        TestApp::spawn_with(|s| s.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into())).await;
    let ana = colleague(&app, "Ana").await;
    let ben = colleague(&app, "Ben").await;
    ana.post("/api/v1/referrals", referral(&ben))
        .await
        .assert(StatusCode::CREATED);
    let db = &app.db;
    let failed = async || {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use kith::db::schema::email_outbox;
        let rows: Vec<(i32, Option<String>, bool)> = email_outbox::table
            .filter(email_outbox::to_address.eq(&ben.email))
            .filter(email_outbox::subject.not_like("Confirm your email%"))
            .select((
                email_outbox::attempts,
                email_outbox::last_error,
                email_outbox::sent_at.is_not_null(),
            ))
            .load(&mut db.conn().await)
            .await
            .unwrap();
        rows.len() == 1 && rows[0].0 >= 1 && rows[0].1.is_some() && !rows[0].2
    };
    app.eventually("the failure is recorded", failed).await;

    let smtp = SmtpServer::start_on(port);
    app.clock.advance(chrono::Duration::minutes(10));
    app.state.courier().send_due().await.unwrap();
    wait_for("the delayed email", || {
        smtp.messages()
            .iter()
            .any(|m| m.contains("New referral for you"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_is_written_as_files_and_deadlines_send_reminders() {
    let app = TestApp::spawn().await;
    let ana = colleague(&app, "Ana").await;
    let ben = colleague(&app, "Ben").await;
    let sent = ana.post("/api/v1/referrals", referral(&ben)).await;
    sent.assert(StatusCode::CREATED);
    let mail_dir = app.data_dir.join("mail");
    let eml = || -> Vec<String> {
        std::fs::read_dir(&mail_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("an .eml file", || {
        eml().iter().any(|m| m.contains("New referral for you"))
    })
    .await;

    // 23 hours into a 24-hour ("soon") deadline: one reminder, once.
    app.clock.advance(chrono::Duration::hours(23));
    kith::referrals::sweep_deadlines(&app.state, app.clock.now())
        .await
        .unwrap();
    kith::referrals::sweep_deadlines(&app.state, app.clock.now())
        .await
        .unwrap();
    app.state.courier().send_due().await.unwrap();
    wait_for("one reminder", || {
        eml()
            .iter()
            .filter(|m| m.contains("Reminder: a referral is waiting"))
            .count()
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        eml()
            .iter()
            .filter(|m| m.contains("Reminder: a referral is waiting"))
            .count(),
        1
    );

    // The deadline passes: the referral expires and the sender hears of it.
    app.clock.advance(chrono::Duration::hours(2));
    kith::referrals::sweep_deadlines(&app.state, app.clock.now())
        .await
        .unwrap();
    app.state.courier().send_due().await.unwrap();
    wait_for("the expiry email", || {
        eml().iter().any(|m| m.contains("Your referral expired"))
    })
    .await;
}
