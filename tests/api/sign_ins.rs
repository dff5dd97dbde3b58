//! Seeing and ending one's own sign-ins.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Clinician, TestApp};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_sees_her_sign_ins_and_ends_one_which_closes_its_room_connection() {
    let app = TestApp::spawn_with(|s| {
        s.rooms.heartbeat = Duration::from_millis(100);
    })
    .await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let group = ana.create_group("Grief consultation", false).await;
    ana.bring_in(group, &ben).await;
    let laptop = app.sign_in(&ana.email).await;

    let listed = ana.get("/api/v1/me/sign-ins").await;
    let listed = listed.assert(StatusCode::OK);
    assert_eq!(ids(listed).len(), 2, "{listed}");
    let current: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["ip"], "127.0.0.1");
    assert!(
        current[0]["browser"]
            .as_str()
            .is_some_and(|b| !b.is_empty())
    );
    let other = ids(listed)
        .into_iter()
        .find(|id| id != current[0]["id"].as_str().unwrap())
        .unwrap();

    // Nobody else sees or ends them.
    assert!(
        ids(ben.get("/api/v1/me/sign-ins").await.assert(StatusCode::OK))
            .iter()
            .all(|id| *id != other)
    );
    ben.delete(&format!("/api/v1/me/sign-ins/{other}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // The laptop is in the room; ending its sign-in closes that connection.
    let mut room = laptop.enter(group).await;
    ana.delete(&format!("/api/v1/me/sign-ins/{other}"))
        .await
        .assert(StatusCode::NO_CONTENT);
    let last = room.closed().await;
    assert!(
        last.iter().any(|f| f["code"] == "session_ended"),
        "{last:?}"
    );
    laptop
        .get("/api/v1/me")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "session_ended");
    let left = ana.get("/api/v1/me/sign-ins").await;
    assert_eq!(ids(left.assert(StatusCode::OK)).len(), 1);
    // Ended twice is not found; the current one still works.
    ana.delete(&format!("/api/v1/me/sign-ins/{other}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ana.get("/api/v1/me").await.assert(StatusCode::OK);
}

/// Refreshes `person`'s tokens, as the browser does while they work.
async fn refreshed(app: &TestApp, person: &Clinician) -> Clinician {
    let reply = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({"refresh_token": person.refresh})),
        )
        .await;
    Clinician::from_tokens(app, &person.email, reply.assert(StatusCode::OK))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_left_idle_past_its_refresh_window_is_no_longer_listed() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let _idle = app.sign_in(&ana.email).await;
    // Ana keeps working (her browser refreshes); the other sign-in does not.
    app.clock.advance(chrono::Duration::minutes(20));
    let ana = refreshed(&app, &ana).await;
    app.clock.advance(chrono::Duration::minutes(20));
    let ana = refreshed(&app, &ana).await;
    let listed = ana.get("/api/v1/me/sign-ins").await;
    let listed = listed.assert(StatusCode::OK);
    assert_eq!(ids(listed).len(), 1, "{listed}");
    assert_eq!(listed[0]["current"], true);
}
