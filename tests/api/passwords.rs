//! A forgotten password: the emailed single-use link, read out of the mail a
//! real SMTP server received, and every way a link can be dead.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{PASSWORD, SmtpServer, TestApp, link_in, wait_for};

const NEW_PASSWORD: &str = "harbour violet seventeen kites";

async fn app_with_mail() -> (SmtpServer, TestApp) {
    let smtp = SmtpServer::start_on(SmtpServer::free_port());
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port).into())
    })
    .await;
    (smtp, app)
}

async fn ask_reset(app: &TestApp, email: &str) -> serde_json::Value {
    let reply = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            Some(json!({ "email": email })),
        )
        .await;
    reply.assert(StatusCode::ACCEPTED).clone()
}

/// Every reset token that reached `to`, read from the links in the mail.
fn reset_tokens(smtp: &SmtpServer, to: &str) -> Vec<String> {
    smtp.messages()
        .iter()
        .filter(|m| m.contains(&format!("To: {to}")) && m.contains("Reset your Kith password"))
        .filter_map(|m| link_in(m, "http"))
        .filter_map(|link| {
            link.split("#/reset-password?token=")
                .nth(1)
                .map(str::to_string)
        })
        .collect()
}

/// The token of the reset email that reached `to` after those in `known`.
async fn new_reset_token(smtp: &SmtpServer, to: &str, known: &[&str]) -> String {
    let fresh = || {
        reset_tokens(smtp, to)
            .into_iter()
            .find(|t| !known.contains(&t.as_str()))
    };
    wait_for("the reset email", || fresh().is_some()).await;
    fresh().unwrap()
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> crate::support::Reply {
    app.call(
        Method::POST,
        "/api/v1/auth/password-reset/confirm",
        Some(json!({ "token": token, "new_password": password })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_once_from_the_emailed_link_and_every_sign_in_ends() {
    let (smtp, app) = app_with_mail().await;
    let ana = app.register("Ana").await;
    let on_her_phone = app.sign_in(&ana.email).await;

    // The same answer for an account and for nobody; only the account gets mail.
    let answer = ask_reset(&app, &ana.email).await;
    assert_eq!(ask_reset(&app, "nobody@clinic.example").await, answer);
    let token = new_reset_token(&smtp, &ana.email, &[]).await;
    assert!(
        !smtp
            .messages()
            .iter()
            .any(|m| m.contains("To: nobody@clinic.example")),
        "no mail goes to an address without an account"
    );

    // A weak password is refused and does not spend the link.
    let weak = confirm(&app, &token, "password").await;
    weak.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(weak.field(), "new_password");

    confirm(&app, &token, NEW_PASSWORD)
        .await
        .assert(StatusCode::NO_CONTENT);
    // Every sign-in ended; the old password is dead, the new one works.
    ana.get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");
    on_her_phone
        .get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");
    app.login(&ana.email, PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    app.login(&ana.email, NEW_PASSWORD)
        .await
        .assert(StatusCode::OK);

    // The link works once.
    confirm(&app, &token, "another long passphrase here")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_reset_link");
    // And the account's address is told its password changed.
    wait_for("the security email", || {
        smtp.messages().iter().any(|m| {
            m.contains(&format!("To: {}", ana.email))
                && m.contains("Your Kith password was changed")
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tampered_and_superseded_links_are_refused_and_change_nothing() {
    let (smtp, app) = app_with_mail().await;
    let ana = app.register("Ana").await;

    // Expired: 31 minutes later the link is dead.
    ask_reset(&app, &ana.email).await;
    let expired = new_reset_token(&smtp, &ana.email, &[]).await;
    app.clock.advance(chrono::Duration::minutes(31));
    confirm(&app, &expired, NEW_PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_reset_link");

    // Tampered: one character off is unknown; the genuine link still works after.
    ask_reset(&app, &ana.email).await;
    let genuine = new_reset_token(&smtp, &ana.email, &[&expired]).await;
    let mut tampered = genuine.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    confirm(&app, &tampered, NEW_PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_reset_link");
    app.login(&ana.email, PASSWORD).await.assert(StatusCode::OK);

    // Superseded: a password change kills the links asked for before it.
    let signed_in = app.sign_in(&ana.email).await;
    signed_in
        .post(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "copper meadow lantern drift"}),
        )
        .await
        .assert(StatusCode::OK);
    confirm(&app, &genuine, NEW_PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_reset_link");
    app.login(&ana.email, "copper meadow lantern drift")
        .await
        .assert(StatusCode::OK);
}
