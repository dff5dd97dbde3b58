//! What sign-in leaves behind is pruned in time, and answers carrying
//! personal data are never cached.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use kith::db::schema::{auth_sessions, email_outbox, password_resets, refresh_tokens};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_answers_are_never_cached_and_https_deployments_send_hsts() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let me = ana.get("/api/v1/me").await;
    assert_eq!(me.headers["cache-control"], "no-store");
    let profile = ana.get(&format!("/api/v1/profiles/{}", ana.id)).await;
    assert_eq!(profile.headers["cache-control"], "no-store");
    // Errors too: they can name what exists.
    let missing = ana
        .get("/api/v1/referrals/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(missing.headers["cache-control"], "no-store");
    // The public vocabulary stays cacheable.
    let taxonomy = app.call(Method::GET, "/api/v1/taxonomy", None).await;
    assert_eq!(taxonomy.headers["cache-control"], "public, max-age=3600");
    assert!(!me.headers.contains_key("strict-transport-security"));

    let behind_tls = TestApp::spawn_with(|s| s.public_url = "https://kith.example".into()).await;
    let health = behind_tls.call(Method::GET, "/health", None).await;
    assert_eq!(
        health.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sign_ins_and_spent_links_are_pruned_after_a_week_and_live_ones_kept() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let other = app.sign_in(&ana.email).await;
    other
        .post(
            "/api/v1/auth/logout",
            json!({"refresh_token": other.refresh}),
        )
        .await
        .assert(StatusCode::NO_CONTENT);
    app.call(
        Method::POST,
        "/api/v1/auth/password-reset",
        Some(json!({"email": ana.email})),
    )
    .await
    .assert(StatusCode::ACCEPTED);
    // A password step whose code never came.
    app.turn_on_second_factor(&ana).await;
    app.login(&ana.email, crate::support::PASSWORD)
        .await
        .assert(StatusCode::ACCEPTED);
    // Her verification, reset and security emails go out (to files here).
    app.eventually("the mail is sent", async || {
        email_outbox::table
            .filter(email_outbox::sent_at.is_null())
            .count()
            .get_result::<i64>(&mut app.db.conn().await)
            .await
            .unwrap()
            == 0
    })
    .await;

    app.clock.advance(chrono::Duration::days(8));
    let today = app.sign_in(&ana.email).await;
    let pruned = kith::accounts::housekeeping::prune(&app.state.pool, app.clock.now())
        .await
        .unwrap();
    assert!(pruned.sign_ins >= 2, "{pruned:?}");
    assert_eq!(pruned.reset_links, 1, "{pruned:?}");
    assert_eq!(pruned.verification_links, 1, "{pruned:?}");
    assert_eq!(pruned.code_challenges, 1, "{pruned:?}");
    assert_eq!(
        pruned.sent_mail, 3,
        "the links went with the mail: {pruned:?}"
    );

    let mut conn = app.db.conn().await;
    let sign_ins: Vec<uuid::Uuid> = auth_sessions::table
        .select(auth_sessions::id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(sign_ins.len(), 1, "only today's sign-in is left");
    let links: i64 = password_resets::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(links, 0);
    let tokens: i64 = refresh_tokens::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(tokens, 1);
    today.get("/api/v1/me").await.assert(StatusCode::OK);
}
