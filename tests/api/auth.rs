//! Accounts: register, sign in, refresh, sign out, roles and the guards around them.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{PASSWORD, Reply, TestApp, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_clinician_registers_and_sees_their_account() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let me = ana.get("/api/v1/me").await;
    let me = me.assert(StatusCode::OK);
    assert_eq!(me["email"], "ana@clinic.example");
    assert_eq!(me["display_name"], "Ana");
    assert_eq!(me["role"], "clinician");
    assert_eq!(me["disabled"], false);
    // The password is never echoed back.
    assert!(!me.to_string().contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_and_bad_emails_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    for (email, password, field) in [
        ("ben@clinic.example", "short", "password"),
        ("ben@clinic.example", "password1234", "password"),
        ("ben@clinic.example", "qwertyuiop12345", "password"),
        ("not-an-email", PASSWORD, "email"),
        ("ben@nodot", PASSWORD, "email"),
    ] {
        let reply = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                Some(json!({"email": email, "password": password, "display_name": "Ben"})),
            )
            .await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(reply.field(), field, "{email} / {password}: {}", reply.body);
    }
    // Nothing was created along the way.
    app.login("ben@clinic.example", PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.register("Ana").await;
    let wrong_password = app
        .login("ana@clinic.example", "not the right one at all")
        .await;
    let unknown_email = app
        .login("nobody@clinic.example", "not the right one at all")
        .await;
    wrong_password.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.status, unknown_email.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_reused_token_ends_the_whole_sign_in() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;

    let first = ana.refresh_tokens().await;
    let first = first.assert(StatusCode::OK).clone();
    assert_ne!(first["refresh_token"], ana.refresh.as_str());
    let mut rotated = ana.clone();
    rotated.access = first["access_token"].as_str().unwrap().into();
    rotated.refresh = first["refresh_token"].as_str().unwrap().into();
    rotated.get("/api/v1/me").await.assert(StatusCode::OK);

    // Someone replays the old token: theft is assumed and the family is revoked.
    ana.refresh_tokens()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh_token_reused");
    rotated
        .refresh_tokens()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    rotated
        .get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");

    // Another sign-in of the same person is unaffected.
    let other = app.sign_in("ana@clinic.example").await;
    other.get("/api/v1/me").await.assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_ends_the_access_and_refresh_tokens() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    ana.post("/api/v1/auth/logout", json!({}))
        .await
        .assert(StatusCode::NO_CONTENT);
    ana.get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");
    ana.refresh_tokens()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sign_in_expires_and_access_tokens_last_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    app.clock.advance(chrono::Duration::minutes(16));
    ana.get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token_expired");
    // Refresh still works within the 30-minute idle window...
    ana.refresh_tokens().await.assert(StatusCode::OK);

    let ben = app.register("Ben").await;
    app.clock.advance(chrono::Duration::minutes(31));
    // ...but not after 30 minutes without activity.
    ben.refresh_tokens()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_and_wrong_algorithm_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let parts: Vec<&str> = ana.access.split('.').collect();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // alg: none with no signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // A valid HS512 signature with the right secret: still the wrong algorithm.
    let secret =
        kith::Settings::for_database("postgres://unused/db", std::env::temp_dir()).jwt_secret;
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(
            secrecy::ExposeSecret::expose_secret(&secret).as_bytes(),
        ),
    )
    .unwrap();
    // Claims changed to become an admin, signature kept.
    let mut elevated = claims.clone();
    elevated["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(elevated.to_string()),
        parts[2]
    );
    // Signed with another secret.
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"someone-elses-secret-someone-elses-secret"),
    )
    .unwrap();

    for (what, token) in [
        ("alg none", alg_none),
        ("HS512", hs512),
        ("tampered", tampered),
        ("foreign", foreign),
        ("garbage", "abc".into()),
    ] {
        let reply = send(
            &app.http,
            Method::GET,
            app.url("/api/v1/me"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what} token: {}",
            reply.body
        );
        assert_eq!(reply.error(), "invalid_token", "{what} token");
    }
    app.call(Method::GET, "/api/v1/me", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

/// A sign-in attempt from the address `ip` (behind a trusted proxy).
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password});
    app.post_from(ip, "/api/v1/auth/login", body).await
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_knows_her_email_cannot_keep_the_owner_out() {
    let app = TestApp::spawn_with(|s| s.trust_forwarded_for = true).await;
    app.register("Ana").await;
    let ana = "ana@clinic.example";
    // The owner has signed in from her office before.
    login_from(&app, "198.51.100.7", ana, PASSWORD)
        .await
        .assert(StatusCode::OK);

    // An attacker guesses from elsewhere: after five, that address pauses.
    for _ in 0..5 {
        login_from(&app, "192.0.2.66", ana, "wrong password, again")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let paused = login_from(&app, "192.0.2.66", ana, PASSWORD).await;
    paused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!((1..=15 * 60).contains(&retry_after(&paused)));

    // The owner signs in from her office, and from a new café too.
    login_from(&app, "198.51.100.7", ana, PASSWORD)
        .await
        .assert(StatusCode::OK);
    login_from(&app, "198.51.100.99", ana, PASSWORD)
        .await
        .assert(StatusCode::OK);

    // After the pause the attacker's address may try again.
    app.clock.advance(chrono::Duration::minutes(16));
    login_from(&app, "192.0.2.66", ana, "wrong password, again")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_attack_on_one_account_is_slowed_but_its_owner_still_gets_in() {
    let app = TestApp::spawn_with(|s| {
        s.trust_forwarded_for = true;
        s.login_limits.per_account = 6;
    })
    .await;
    app.register("Ana").await;
    let ana = "ana@clinic.example";
    login_from(&app, "198.51.100.7", ana, PASSWORD)
        .await
        .assert(StatusCode::OK);
    // Six addresses, one guess each: under every address's limit.
    for i in 0..6 {
        login_from(&app, &format!("192.0.2.{i}"), ana, "wrong password, again")
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    // The account now takes one guess a minute from anywhere new...
    let slowed = login_from(&app, "192.0.2.77", ana, "wrong password, again").await;
    slowed.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!((1..=60).contains(&retry_after(&slowed)), "{slowed:?}");
    // ...but not from where its owner signed in before.
    login_from(&app, "198.51.100.7", ana, PASSWORD)
        .await
        .assert(StatusCode::OK);
    // A minute later the next guess is heard (and pauses the account again).
    app.clock.advance(chrono::Duration::seconds(61));
    login_from(&app, "192.0.2.78", ana, "wrong password, again")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    login_from(&app, "192.0.2.79", ana, "wrong password, again")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_pause_password_and_email_changes() {
    let app = TestApp::spawn_with(|s| s.limits.wrong_passwords = 5).await;
    let ana = app.register("Ana").await;
    let change = || {
        ana.post(
            "/api/v1/me/password",
            json!({"current_password": "a guess at her password", "new_password": "harbour violet seventeen kites"}),
        )
    };
    for _ in 0..5 {
        change()
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let paused = change().await;
    paused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(retry_after(&paused) > 0);
    // The pause covers moving the address too, even with the right password.
    ana.put(
        "/api/v1/me/email",
        json!({"new_email": "ana@elsewhere.example", "current_password": PASSWORD}),
    )
    .await
    .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    app.clock.advance(chrono::Duration::minutes(16));
    let later = app.sign_in(&ana.email).await;
    later
        .put(
            "/api/v1/me/email",
            json!({"new_email": "ana@elsewhere.example", "current_password": PASSWORD}),
        )
        .await
        .assert(StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_many_accounts_is_limited() {
    let app = TestApp::spawn_with(|s| s.login_limits.per_ip = 6).await;
    for i in 0..6 {
        app.login(
            &format!("guess{i}@clinic.example"),
            "some password or other",
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    app.login("guess99@clinic.example", "some password or other")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_changes_roles_and_verifies_licenses() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ben = app.register("Ben").await;
    let ana = app.register("Ana").await;

    let path = format!("/api/v1/admin/users/{}/role", ben.id);
    ana.put(&path, json!({"role": "supervisor"}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ben.put(
        &format!("/api/v1/admin/users/{}/role", ben.id),
        json!({"role": "admin"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    admin
        .put(&path, json!({"role": "supervisor"}))
        .await
        .assert(StatusCode::OK);
    assert_eq!(
        ben.get("/api/v1/me").await.assert(StatusCode::OK)["role"],
        "supervisor"
    );
    admin
        .put(&path, json!({"role": "wizard"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    let verify = format!("/api/v1/admin/users/{}/verification", ana.id);
    // Nothing to verify before the profile names a licence state.
    admin
        .put(&verify, json!({"verified": true}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    ana.put(
        "/api/v1/profiles/me",
        json!({"version": 1, "license_states": ["NY", "NJ"], "license_number": "NY-123"}),
    )
    .await
    .assert(StatusCode::OK);
    ana.put(&verify, json!({"verified": true}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(ana.profile().await["license_verified"], false);
    // A state the profile does not claim cannot be verified.
    admin
        .put(&verify, json!({"verified": true, "states": ["CA"]}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let checked = admin
        .put(&verify, json!({"verified": true, "states": ["NY"]}))
        .await;
    assert_eq!(
        checked.assert(StatusCode::OK)["verified_states"],
        json!(["NY"])
    );
    let profile = ana.profile().await;
    assert_eq!(profile["license_verified"], true);
    assert_eq!(profile["verified_states"], json!(["NY"]));
    admin
        .put(
            &format!("/api/v1/admin/users/{}/verification", uuid::Uuid::new_v4()),
            json!({"verified": true}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_cannot_sign_in_refresh_or_keep_using_its_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ben = app.register("Ben").await;
    admin
        .post(
            &format!("/api/v1/admin/users/{}/disable", ben.id),
            json!({}),
        )
        .await
        .assert(StatusCode::OK);

    ben.get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");
    ben.refresh_tokens()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    app.login(&ben.email, PASSWORD)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // Nobody can see a disabled clinician's profile.
    admin
        .get(&format!("/api/v1/profiles/{}", ben.id))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    admin
        .post(&format!("/api/v1/admin/users/{}/enable", ben.id), json!({}))
        .await
        .assert(StatusCode::OK);
    app.login(&ben.email, PASSWORD).await.assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_every_other_sign_in() {
    let app = TestApp::spawn().await;
    let laptop = app.register("Ana").await;
    let phone = app.sign_in(&laptop.email).await;
    let reply = laptop
        .post(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "violet harbor quiet engine"}),
        )
        .await;
    reply.assert(StatusCode::OK);
    phone
        .get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");
    app.login(&laptop.email, PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    app.login(&laptop.email, "violet harbor quiet engine")
        .await
        .assert(StatusCode::OK);
}
