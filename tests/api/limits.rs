//! Limits that keep one address or one account from flooding what everyone
//! shares, each answered with 429 and `Retry-After`, and none of them a way
//! to learn who has an account.

use reqwest::StatusCode;
use serde_json::json;

use crate::referrals::{colleague, referral};
use crate::support::{PASSWORD, Reply, TestApp};

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_from_one_address_is_refused_before_any_work() {
    let app = TestApp::spawn_with(|s| {
        s.trust_forwarded_for = true;
        s.limits.registrations_per_address = (3, std::time::Duration::from_secs(20 * 60));
    })
    .await;
    let register = |ip: &'static str, n: usize, password: &'static str| {
        let app = &app;
        async move {
            app.post_from(
                ip,
                "/api/v1/auth/register",
                json!({"email": format!("flood{n}@clinic.example"), "password": password, "display_name": "Flood"}),
            )
            .await
        }
    };
    for n in 0..3 {
        register("192.0.2.1", n, PASSWORD)
            .await
            .assert(StatusCode::ACCEPTED);
    }
    // Refused before the body is even judged: a weak password is not a 422
    // here, because nothing about the request was looked at.
    let refused = register("192.0.2.1", 3, "weak").await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait = retry_after(&refused);
    assert!((1..=20 * 60).contains(&wait), "Retry-After {wait}");
    register("192.0.2.1", 4, PASSWORD)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Nothing was created by the refused ones; another address is unaffected.
    app.login("flood4@clinic.example", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    register("198.51.100.2", 5, PASSWORD)
        .await
        .assert(StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_limited_per_address_and_per_account_without_telling_who_has_one() {
    let app = TestApp::spawn_with(|s| {
        s.trust_forwarded_for = true;
        s.limits.reset_requests_per_address = (3, std::time::Duration::from_secs(20 * 60));
        s.limits.reset_links = kith::limits::Window::per_hour(1);
    })
    .await;
    app.register("Ana").await;
    let ask = |ip: &'static str, email: &'static str| {
        app.post_from(ip, "/api/v1/auth/password-reset", json!({ "email": email }))
    };
    let first = ask("192.0.2.1", "ana@clinic.example").await;
    // Her hourly link is spent: the same answer as for nobody, and no mail.
    let second = ask("192.0.2.1", "ana@clinic.example").await;
    let nobody = ask("192.0.2.1", "nobody@clinic.example").await;
    for reply in [&first, &second, &nobody] {
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(reply.body, first.body);
    }
    let mut conn = app.db.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use kith::db::schema::email_outbox;
    let resets: i64 = email_outbox::table
        .filter(email_outbox::subject.eq("Reset your Kith password"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(resets, 1);
    // The address's allowance is used up, whatever address it asks about.
    ask("192.0.2.1", "nobody@clinic.example")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    ask("198.51.100.2", "nobody@clinic.example")
        .await
        .assert(StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_limited_per_sender_and_per_group_each_day() {
    let app = TestApp::spawn_with(|s| {
        s.limits.invitations_per_sender = kith::limits::Window::per_day(2);
        s.limits.invitations_per_group = kith::limits::Window::per_day(3);
    })
    .await;
    let host = app.register("Host").await;
    let cohost = app.register("Cohost").await;
    let group = host.create_group("Case consult", false).await;
    host.bring_in(group, &cohost).await;
    host.patch(
        &format!("/api/v1/groups/{group}/members/{}", cohost.id),
        json!({"role": "host"}),
    )
    .await
    .assert(StatusCode::OK);
    let invite = |who: &crate::support::Clinician, n: usize| {
        let who = who.clone();
        async move {
            who.post(
                &format!("/api/v1/groups/{group}/invites"),
                json!({ "email": format!("guest{n}@elsewhere.example") }),
            )
            .await
        }
    };
    // bring_in sent one of the host's two.
    invite(&host, 1).await.assert(StatusCode::CREATED);
    let over = invite(&host, 2).await;
    over.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait = retry_after(&over);
    assert!((86_000..=86_400).contains(&wait), "Retry-After {wait}");
    // The co-host may still send one, then the group's three are used.
    invite(&cohost, 3).await.assert(StatusCode::CREATED);
    invite(&cohost, 4)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // A day later the allowances are back.
    app.clock
        .advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    let host = app.sign_in(&host.email).await;
    invite(&host, 5).await.assert(StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_are_limited_per_sender_each_hour() {
    let app = TestApp::spawn_with(|s| {
        s.limits.referrals_per_sender = kith::limits::Window::per_hour(2);
    })
    .await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 5).await;
    for _ in 0..2 {
        ana.post("/api/v1/referrals", referral("direct", &[&ben]))
            .await
            .assert(StatusCode::CREATED);
    }
    let over = ana
        .post("/api/v1/referrals", referral("direct", &[&ben]))
        .await;
    over.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!((3_500..=3_600).contains(&retry_after(&over)));
    // Nothing of the refused one was kept.
    let sent = ana.get("/api/v1/referrals?box=outbox").await;
    assert_eq!(sent.assert(StatusCode::OK).as_array().unwrap().len(), 2);
    // Others are not held back by her limit.
    ben.post("/api/v1/referrals", referral("direct", &[&ana]))
        .await
        .assert(StatusCode::CREATED);
}
