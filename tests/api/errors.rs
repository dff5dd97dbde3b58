//! One error shape everywhere, with the right status, for every kind of bad input.

use reqwest::StatusCode;

use crate::support::TestApp;

async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = app
        .http
        .request(method, app.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.expect("a JSON error body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_mistyped_bodies_get_clear_json_errors() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let post = reqwest::Method::POST;

    let (status, body) = raw(
        &app,
        post.clone(),
        "/api/v1/auth/login",
        "application/json",
        b"{\"email\": ".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );

    let (status, body) = raw(
        &app,
        post.clone(),
        "/api/v1/auth/login",
        "application/json",
        b"[1, 2]".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );

    let (status, body) = raw(
        &app,
        post.clone(),
        "/api/v1/auth/login",
        "application/json",
        br#"{"email": "a@b.co"}"#.to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
    );

    let big = format!(
        r#"{{"email": "a@b.co", "password": "{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let (status, body) = raw(
        &app,
        post.clone(),
        "/api/v1/auth/login",
        "application/json",
        big.into_bytes(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );

    let (status, body) = raw(
        &app,
        post.clone(),
        "/api/v1/auth/login",
        "text/plain",
        b"hello".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );

    let (status, body) = raw(
        &app,
        reqwest::Method::PATCH,
        "/api/v1/profiles/me/capacity",
        "application/json",
        b"{\"open_slots\": }".to_vec(),
        Some(&ana.access),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    // The profile is untouched by all of that.
    assert_eq!(ana.profile().await["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_addresses_are_json_404s_and_health_and_ready_answer() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/nothing-here", "/nope", "/api/v2/profiles/me"] {
        app.call(reqwest::Method::GET, path, None)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    // A known route shape with a malformed id is a 404 too (once signed in).
    let ana = app.register("Ana").await;
    ana.get("/api/v1/profiles/not-a-uuid")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.call(reqwest::Method::GET, "/health", None)
            .await
            .assert(StatusCode::OK)["status"],
        "ok"
    );
    assert_eq!(
        app.call(reqwest::Method::GET, "/ready", None)
            .await
            .assert(StatusCode::OK)["status"],
        "ready"
    );

    // With the database gone, readiness says so (and liveness does not care).
    app.db.drop_now().await;
    let reply = app.call(reqwest::Method::GET, "/ready", None).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    app.call(reqwest::Method::GET, "/health", None)
        .await
        .assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn().await;
    let doc = app
        .call(reqwest::Method::GET, "/api/v1/openapi.json", None)
        .await;
    let doc = doc.assert(StatusCode::OK);
    let expected = [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/password-reset"),
        ("post", "/api/v1/auth/password-reset/confirm"),
        ("post", "/api/v1/auth/verify-email"),
        ("post", "/api/v1/me/email-verification"),
        ("put", "/api/v1/me/email"),
        ("post", "/api/v1/auth/login/code"),
        ("get", "/api/v1/me/second-factor"),
        ("post", "/api/v1/me/second-factor"),
        ("post", "/api/v1/me/second-factor/confirm"),
        ("post", "/api/v1/me/second-factor/recovery-codes"),
        ("post", "/api/v1/me/second-factor/disable"),
        ("get", "/api/v1/me/sign-ins"),
        ("delete", "/api/v1/me/sign-ins/{id}"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/me/password"),
        ("get", "/api/v1/taxonomy"),
        ("get", "/api/v1/profiles/me"),
        ("put", "/api/v1/profiles/me"),
        ("get", "/api/v1/profiles/{user_id}"),
        ("patch", "/api/v1/profiles/me/capacity"),
        ("post", "/api/v1/profiles/me/capacity/confirm"),
        ("put", "/api/v1/admin/users/{user_id}/role"),
        ("put", "/api/v1/admin/users/{user_id}/verification"),
        ("post", "/api/v1/admin/users/{user_id}/disable"),
        ("post", "/api/v1/admin/users/{user_id}/enable"),
        ("get", "/api/v1/admin/audit"),
        ("get", "/api/v1/admin/audit/verify"),
        ("get", "/api/v1/search/clinicians"),
        ("post", "/api/v1/match"),
        ("post", "/api/v1/referrals"),
        ("get", "/api/v1/referrals"),
        ("get", "/api/v1/referrals/{id}"),
        ("post", "/api/v1/referrals/{id}/accept"),
        ("post", "/api/v1/referrals/{id}/decline"),
        ("post", "/api/v1/referrals/{id}/withdraw"),
        ("post", "/api/v1/referrals/{id}/schedule"),
        ("post", "/api/v1/referrals/{id}/complete"),
        ("get", "/api/v1/referrals/{id}/contact"),
        ("get", "/api/v1/notifications"),
        ("post", "/api/v1/notifications/{id}/read"),
        ("post", "/api/v1/notifications/read-all"),
        ("post", "/api/v1/groups"),
        ("get", "/api/v1/groups"),
        ("get", "/api/v1/groups/{id}"),
        ("patch", "/api/v1/groups/{id}"),
        ("get", "/api/v1/groups/{id}/members"),
        ("post", "/api/v1/groups/{id}/invites"),
        ("delete", "/api/v1/groups/{id}/invites/{invite_id}"),
        ("get", "/api/v1/groups/{id}/invites"),
        ("post", "/api/v1/groups/{id}/join-requests"),
        ("post", "/api/v1/group-invites/{id}/accept"),
        ("post", "/api/v1/group-invites/{id}/decline"),
        ("post", "/api/v1/groups/{id}/leave"),
        ("patch", "/api/v1/groups/{id}/members/{user_id}"),
        ("delete", "/api/v1/groups/{id}/members/{user_id}"),
        ("post", "/api/v1/groups/{id}/members/{user_id}/mute"),
        ("post", "/api/v1/ws/ticket"),
        ("get", "/api/v1/ws"),
        ("get", "/api/v1/groups/{id}/messages"),
        ("delete", "/api/v1/groups/{id}/messages/{message_id}"),
        ("put", "/api/v1/me/time-zone"),
        ("post", "/api/v1/groups/{id}/sessions"),
        ("get", "/api/v1/groups/{id}/sessions"),
        ("get", "/api/v1/me/sessions"),
        ("get", "/api/v1/sessions/{id}"),
        ("post", "/api/v1/sessions/{id}/start"),
        ("post", "/api/v1/sessions/{id}/end"),
        ("post", "/api/v1/sessions/{id}/cancel"),
        ("post", "/api/v1/sessions/{id}/lock"),
        ("post", "/api/v1/sessions/{id}/unlock"),
        ("post", "/api/v1/sessions/{id}/sign-off"),
        ("patch", "/api/v1/sessions/{id}/attendance/{user_id}"),
        ("get", "/api/v1/me/supervision-hours"),
        ("get", "/api/v1/me/supervision-hours.csv"),
        ("post", "/api/v1/me/supervision-hours/{session_id}/confirm"),
        ("post", "/api/v1/me/supervision-hours/{session_id}/dispute"),
    ];
    for (method, path) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "a route is documented that this test does not know: {}",
        doc["paths"]
    );
    assert!(doc["components"]["schemas"]["ProfileView"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
