//! Input no request can break the server with: NUL and other characters that
//! cannot be stored or mislead a reader, bodies that never finish, handlers
//! that run too long, a database that drops the connection, contention, and
//! the wrong method on a known address.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::referrals::referral;
use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_or_a_misleading_character_is_a_422_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;

    // Signed out: the sign-in form itself.
    let reply = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": "ana\u{0}@clinic.example", "password": "whatever it is"})),
        )
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "email");

    let register = |name: &str| json!({"email": "new@clinic.example", "password": "lantern orbit cobalt rain", "display_name": name});
    for (name, why) in [
        ("Ana\u{0}", "NUL"),
        ("Ana\nLopez", "newline"),
        ("Ana\u{7}", "BEL"),
        ("Ana\u{7f}", "DEL"),
        ("Ana\u{9b}", "a C1 control"),
        ("\u{202e}zepoL anA", "a right-to-left override"),
        ("\u{200b}\u{200d}", "only zero-width characters"),
    ] {
        let reply = app
            .call(Method::POST, "/api/v1/auth/register", Some(register(name)))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        assert_eq!(reply.field(), "display_name", "{why}");
    }

    // A group name may not carry a newline (it reaches email subjects); a
    // description may.
    let reply = ana
        .post("/api/v1/groups", json!({"name": "Anxiety\nconsultation"}))
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "name");
    ana.post(
        "/api/v1/groups",
        json!({"name": "Anxiety consultation", "description": "Mondays.\nBring one case."}),
    )
    .await
    .assert(StatusCode::CREATED);
    let groups = ana.get("/api/v1/groups").await;
    let names: Vec<&str> = groups.assert(StatusCode::OK)["mine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Anxiety consultation"]);

    // A NUL deep in a referral, in a query parameter, in a search.
    let mut body = referral("direct", &[&ben]);
    body["packet"]["note"] = json!("Panic attacks\u{0}");
    let reply = ana.post("/api/v1/referrals", body).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "packet.note");
    let mut body = referral("direct", &[&ben]);
    body["contact"]["full_name"] = json!("Jordan\u{0}");
    let reply = ana.post("/api/v1/referrals", body).await;
    assert_eq!(reply.field(), "contact.full_name");
    let reply = ana.get("/api/v1/referrals?box=outbox&status=%00").await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "status");
    let reply = ana.get("/api/v1/search/clinicians?q=anx%00iety").await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "q");
    // A retry key that is not visible ASCII is refused, not ignored.
    let reply = app
        .http
        .post(app.url("/api/v1/referrals"))
        .bearer_auth(&ana.access)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"key-\xe9").unwrap(),
        )
        .json(&referral("direct", &[&ben]))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["field"], "Idempotency-Key");
    let outbox = ana.get("/api/v1/referrals?box=outbox").await;
    assert_eq!(outbox.assert(StatusCode::OK).as_array().unwrap().len(), 0);

    // An administrator's audit filter.
    let admin = app.admin("Avery").await;
    let reply = admin.get("/api/v1/admin/audit?action=x%00y").await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "action");
    // Named states are state codes, even when the verification is withdrawn.
    let reply = admin
        .put(
            &format!("/api/v1/admin/users/{}/verification", ben.id),
            json!({"verified": false, "states": ["AAA"]}),
        )
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(reply.field(), "states");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_number_written_as_a_float_is_taken_as_the_schema_says() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let reply = ana.set_capacity(json!({"open_slots": 3.0})).await;
    assert_eq!(reply.assert(StatusCode::OK)["open_slots"], 3);
    let reply = ana.set_capacity(json!({"open_slots": 2.5})).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(ana.profile().await["open_slots"], 3);
}

/// Sends `head` and `body` on a raw connection and reads what comes back
/// until the server closes it (or `within` passes).
async fn raw_exchange(app: &TestApp, head: &str, body: &[u8], within: Duration) -> (String, bool) {
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(within, socket.read_to_end(&mut answer))
        .await
        .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_is_answered_408_and_its_connection_closed() {
    let app = TestApp::spawn_with(|s| s.timeouts.body = Duration::from_secs(1)).await;
    let ana = app.register("Ana").await;
    let started = std::time::Instant::now();
    let head = format!(
        "POST /api/v1/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        ana.access
    );
    let (answer, closed) = raw_exchange(&app, &head, b"{\"na", Duration::from_secs(8)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"body_timeout\""), "{answer}");
    assert!(closed, "the connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(6));
    let groups = ana.get("/api/v1/groups").await;
    assert_eq!(groups.assert(StatusCode::OK)["mine"], json!([]));
}

/// Another session that holds the profiles table until it rolls back: a
/// profile edit meanwhile waits on its lock.
async fn lock_profiles(app: &TestApp) -> diesel_async::AsyncPgConnection {
    use diesel_async::SimpleAsyncConnection;
    let mut blocker = app.db.conn().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    blocker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_deadline_is_abandoned_with_503_and_keeps_nothing() {
    let app = TestApp::spawn_with(|s| s.timeouts.handler = Duration::from_secs(1)).await;
    let ana = app.register("Ana").await;
    let version = ana.profile().await["version"].clone();
    let mut blocker = lock_profiles(&app).await;
    let reply = ana
        .put(
            "/api/v1/profiles/me",
            json!({"version": version, "bio": "Written while the table was locked."}),
        )
        .await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "timed_out");
    assert!(reply.headers.contains_key("retry-after"));
    diesel_async::SimpleAsyncConnection::batch_execute(&mut blocker, "ROLLBACK")
        .await
        .unwrap();
    let profile = ana.profile().await;
    assert_eq!(profile["version"], version);
    assert_eq!(profile["bio"], "");
    // The server goes on answering, on healthy connections.
    ana.put(
        "/api/v1/profiles/me",
        json!({"version": version, "bio": "Written afterwards."}),
    )
    .await
    .assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_postgres_terminates_mid_request_is_a_503_with_retry_after() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let version = ana.profile().await["version"].clone();
    let mut blocker = lock_profiles(&app).await;
    let edit = {
        let ana = ana.clone();
        let version = version.clone();
        tokio::spawn(async move {
            ana.put(
                "/api/v1/profiles/me",
                json!({"version": version, "bio": "Interrupted."}),
            )
            .await
        })
    };
    // The edit's backend, waiting on the lock, is ended by an administrator.
    let sql = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND wait_event_type = 'Lock'",
        app.db.name
    );
    let mut terminated = false;
    for _ in 0..100 {
        let mut admin = app.db.conn().await;
        use diesel_async::RunQueryDsl;
        let rows = diesel::sql_query(&sql).execute(&mut admin).await.unwrap();
        if rows > 0 {
            terminated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(terminated, "the edit never waited on the lock");
    let reply = edit.await.unwrap();
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    diesel_async::SimpleAsyncConnection::batch_execute(&mut blocker, "ROLLBACK")
        .await
        .unwrap();
    // Nothing half-done, and the next request gets a healthy connection.
    assert_eq!(ana.profile().await["bio"], "");
    ana.put(
        "/api/v1/profiles/me",
        json!({"version": version, "bio": "Retried."}),
    )
    .await
    .assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_is_tried_again_inside_the_server_before_it_becomes_a_409() {
    let app = TestApp::spawn().await;
    // PostgreSQL's own serialisation failure (SQLSTATE 40001), raised by a
    // real transaction: the first two attempts meet it, the third commits.
    let mut attempts = 0;
    let outcome = kith::db::retrying(async || {
        attempts += 1;
        let mut conn = app.state.pool.get().await?;
        let fail = attempts < 3;
        use diesel_async::AsyncConnection;
        conn.transaction::<_, kith::error::AppError, _>(async |conn| {
            use diesel_async::RunQueryDsl;
            diesel::sql_query("CREATE TEMP TABLE IF NOT EXISTS tried (n int)")
                .execute(conn)
                .await?;
            if fail {
                diesel::sql_query(
                    "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
                )
                .execute(conn)
                .await?;
            }
            Ok(())
        })
        .await
    })
    .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(attempts, 3);

    // Contention that never ends is a 409 after the last attempt.
    let mut attempts = 0;
    let outcome: kith::error::AppResult<()> = kith::db::retrying(async || {
        attempts += 1;
        let mut conn = app.state.pool.get().await?;
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$",
        )
        .execute(&mut conn)
        .await?;
        Ok(())
    })
    .await;
    let error = outcome.unwrap_err();
    assert_eq!(error.code.as_str(), "concurrent_update");
    assert_eq!(error.status.as_u16(), 409);
    assert_eq!(attempts, kith::db::ATTEMPTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_address_asked_with_another_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let reply = app.call(Method::DELETE, "/api/v1/referrals", None).await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.headers["allow"], "GET, POST");
    let reply = app.call(Method::TRACE, "/api/v1/taxonomy", None).await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.headers["allow"], "GET");
    let group = uuid::Uuid::now_v7();
    let reply = app
        .call(Method::PUT, &format!("/api/v1/groups/{group}/leave"), None)
        .await;
    assert_eq!(reply.headers["allow"], "POST");
    // An address the API does not have is still a 404.
    let reply = app.call(Method::GET, "/api/v1/nothing-here", None).await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_status_an_operation_answers_with_its_codes() {
    let app = TestApp::spawn().await;
    let doc = app.call(Method::GET, "/api/v1/openapi.json", None).await;
    let doc = doc.assert(StatusCode::OK);
    let create = &doc["paths"]["/api/v1/referrals"]["post"]["responses"];
    for status in [
        "201", "400", "401", "403", "408", "413", "415", "422", "429", "500", "503",
    ] {
        assert!(
            create.get(status).is_some(),
            "POST /referrals documents no {status}"
        );
    }
    assert_eq!(
        create["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error401"
    );
    let codes = &doc["components"]["schemas"]["Error401"]["properties"]["error"]["enum"];
    assert!(codes.as_array().unwrap().contains(&json!("token_expired")));
    assert!(!codes.as_array().unwrap().contains(&json!("not_found")));
    assert!(create["503"]["headers"].get("Retry-After").is_some());
    // Enums are documented as the JSON spells them.
    let roles = &doc["components"]["schemas"]["Role"]["enum"];
    assert_eq!(roles, &json!(["clinician", "supervisor", "admin"]));
    // The vocabulary and the bounds the server enforces are in the schema.
    let slugs = &doc["components"]["schemas"]["SpecialtySlug"]["enum"];
    assert!(slugs.as_array().unwrap().contains(&json!("anxiety")));
    let history = doc["paths"]["/api/v1/groups/{id}/messages"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(history["in"], "query");
    assert_eq!(history["schema"]["maximum"], 100);
    let name = &doc["components"]["schemas"]["GroupName"];
    assert_eq!(name["maxLength"], 120);
    assert!(name["pattern"].as_str().unwrap().contains("\\u202a"));
    // A body the server does not need is not required.
    assert_ne!(
        doc["paths"]["/api/v1/ws/ticket"]["post"]["requestBody"]["required"],
        true
    );
}
