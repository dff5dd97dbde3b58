//! Two-step sign-in: turning it on with a QR code and a first code, the
//! code step after the password, a code accepted once and only in its
//! window, recovery codes once each, wrong codes throttled, and the second
//! factor administrators and supervisors must use.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{PASSWORD, Reply, TestApp};

async fn password_step(app: &TestApp, email: &str) -> String {
    let reply = app.login(email, PASSWORD).await;
    let body = reply.assert(StatusCode::ACCEPTED);
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the code: {body}"
    );
    body["challenge"].as_str().unwrap().to_string()
}

async fn code_step(app: &TestApp, challenge: &str, code: &str) -> Reply {
    app.call(
        Method::POST,
        "/api/v1/auth/login/code",
        Some(json!({"challenge": challenge, "code": code})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_turns_on_two_step_sign_in_and_signs_in_with_a_code() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let on_her_phone = app.sign_in(&ana.email).await;

    // Starting needs her password, and shows a key and its QR code.
    ana.post(
        "/api/v1/me/second-factor",
        json!({"current_password": "not her password at all"}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let enrolment = ana
        .post(
            "/api/v1/me/second-factor",
            json!({"current_password": PASSWORD}),
        )
        .await;
    let enrolment = enrolment.assert(StatusCode::CREATED).clone();
    assert!(
        enrolment["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || enrolment["qr_svg"].as_str().unwrap().contains("<svg")
    );
    assert!(
        enrolment["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Kith:ana%40clinic.example")
    );
    let secret = totp_rs::Secret::try_from_base32(enrolment["secret"].as_str().unwrap())
        .unwrap()
        .as_bytes()
        .to_vec();
    let totp = kith::auth::two_step::generator(&secret, &ana.email).unwrap();
    let code_at =
        |at: chrono::DateTime<chrono::Utc>| totp.generate(at.timestamp() as u64).to_string();

    // Not on until a first code confirms it.
    let status = ana.get("/api/v1/me/second-factor").await;
    assert_eq!(status.assert(StatusCode::OK)["enabled"], false);
    ana.post(
        "/api/v1/me/second-factor/confirm",
        json!({"code": "000000"}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    let confirmed = ana
        .post(
            "/api/v1/me/second-factor/confirm",
            json!({"code": code_at(app.clock.now())}),
        )
        .await;
    let codes: Vec<String> = confirmed.assert(StatusCode::OK)["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let status = ana.get("/api/v1/me/second-factor").await;
    let status = status.assert(StatusCode::OK);
    assert_eq!(
        (status["enabled"].clone(), status["this_sign_in"].clone()),
        (json!(true), json!(true))
    );
    // Every other sign-in ended.
    on_her_phone
        .get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");

    // The password alone no longer signs in; the code finishes it, once.
    app.clock.advance(chrono::Duration::seconds(30));
    let challenge = password_step(&app, &ana.email).await;
    let code = code_at(app.clock.now());
    let tokens = code_step(&app, &challenge, &code).await;
    assert!(tokens.assert(StatusCode::OK)["access_token"].is_string());
    code_step(&app, &challenge, &code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_challenge");
    let again = password_step(&app, &ana.email).await;
    code_step(&app, &again, &code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    // A code from two minutes ago is outside its window.
    let old = code_at(app.clock.now() - chrono::Duration::minutes(2));
    code_step(&app, &again, &old)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");

    // A recovery code works once, however it is typed.
    let typed = codes[0].to_uppercase().replace('-', " ");
    code_step(&app, &again, &typed).await.assert(StatusCode::OK);
    let third = password_step(&app, &ana.email).await;
    code_step(&app, &third, &codes[0])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    // A challenge lasts five minutes.
    app.clock.advance(chrono::Duration::minutes(6));
    let late = code_at(app.clock.now());
    code_step(&app, &third, &late)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_challenge");

    // New recovery codes replace the old ones.
    let fresh = password_step(&app, &ana.email).await;
    let signed = code_step(&app, &fresh, &late).await;
    let ana =
        crate::support::Clinician::from_tokens(&app, &ana.email, signed.assert(StatusCode::OK));
    app.clock.advance(chrono::Duration::seconds(30));
    let renewed = ana
        .post(
            "/api/v1/me/second-factor/recovery-codes",
            json!({"code": code_at(app.clock.now())}),
        )
        .await;
    let renewed = renewed.assert(StatusCode::OK)["recovery_codes"].clone();
    let fourth = password_step(&app, &ana.email).await;
    code_step(&app, &fourth, &codes[1])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_code");
    code_step(&app, &fourth, renewed[0].as_str().unwrap())
        .await
        .assert(StatusCode::OK);

    // She may turn it off with her password; sign-in is one step again.
    ana.post(
        "/api/v1/me/second-factor/disable",
        json!({"current_password": PASSWORD}),
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    app.login(&ana.email, PASSWORD).await.assert(StatusCode::OK);

    // Each change was mailed to her address.
    let mut conn = app.db.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use kith::db::schema::email_outbox;
    let notices: Vec<String> = email_outbox::table
        .filter(email_outbox::to_address.eq(&ana.email))
        .filter(email_outbox::subject.eq("Your Kith sign-in changed"))
        .select(email_outbox::body)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(notices[0].contains("Two-step sign-in was turned on"));
    assert!(notices[2].contains("Two-step sign-in was turned off"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_wrong_codes_in_a_row_are_throttled() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    app.turn_on_second_factor(&ana).await;
    let mut answers = Vec::new();
    let mut challenge = password_step(&app, &ana.email).await;
    for _ in 0..20 {
        let reply = code_step(&app, &challenge, "000000").await;
        if reply.error() == "invalid_challenge" {
            // Five wrong codes spend a challenge: the password again.
            challenge = password_step(&app, &ana.email).await;
        }
        answers.push(reply.error().to_string());
    }
    assert_eq!(answers[..5], ["invalid_code"; 5]);
    assert_eq!(answers[5], "invalid_challenge");
    assert!(answers.iter().any(|a| a == "rate_limited"), "{answers:?}");
    // While paused, even the right code waits.
    let right = app.next_code(&ana.email).await;
    let paused = code_step(&app, &challenge, &right).await;
    paused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(paused.headers.contains_key("retry-after"));
    app.clock.advance(chrono::Duration::minutes(16));
    app.sign_in(&ana.email).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_use_their_powers_only_after_a_second_factor() {
    let app = TestApp::spawn().await;
    let ben = app.register("Ben").await;
    let avery = app.register("Avery").await;
    app.db
        .run_sql(&format!(
            "UPDATE users SET role = 'admin' WHERE id = '{}'",
            avery.id
        ))
        .await;
    let avery = app.sign_in(&avery.email).await;
    let disable = format!("/api/v1/admin/users/{}/disable", ben.id);
    let refused = avery.post(&disable, json!({})).await;
    refused.assert_error(StatusCode::FORBIDDEN, "second_factor_required");
    avery
        .get("/api/v1/admin/audit")
        .await
        .assert_error(StatusCode::FORBIDDEN, "second_factor_required");
    let status = avery.get("/api/v1/me/second-factor").await;
    assert_eq!(status.assert(StatusCode::OK)["required"], true);

    app.turn_on_second_factor(&avery).await;
    avery.post(&disable, json!({})).await.assert(StatusCode::OK);
    // And she must keep it.
    avery
        .post(
            "/api/v1/me/second-factor/disable",
            json!({"current_password": PASSWORD}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "second_factor_required");
    // A sign-in with the password alone is not possible any more.
    app.login(&avery.email, PASSWORD)
        .await
        .assert(StatusCode::ACCEPTED);
}
