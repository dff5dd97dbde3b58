//! Peer consultation groups: creating, inviting, asking to join, roles,
//! leaving, and who may do what.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_creates_a_group_invites_a_colleague_who_accepts() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;

    let created = ana
        .post(
            "/api/v1/groups",
            json!({"name": "  Trauma peer group ", "topic": "EMDR cases", "description": "Weekly", "listed": false}),
        )
        .await;
    let group = created.assert(StatusCode::CREATED).clone();
    assert_eq!(group["name"], "Trauma peer group");
    assert_eq!(group["my_role"], "host");
    assert_eq!(group["member_count"], 1);
    let id = group["id"].as_str().unwrap();

    // Invite-only: Ben cannot see it, nor its members.
    ben.get(&format!("/api/v1/groups/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ben.get(&format!("/api/v1/groups/{id}/members"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        ben.get("/api/v1/groups").await.assert(StatusCode::OK)["listed"],
        json!([])
    );

    let invite = ana
        .post(
            &format!("/api/v1/groups/{id}/invites"),
            json!({"email": "BEN@clinic.example"}),
        )
        .await;
    let invite = invite.assert(StatusCode::CREATED).clone();
    assert_eq!(invite["kind"], "invite");
    assert_eq!(invite["from_name"], "Ana");
    ana.post(
        &format!("/api/v1/groups/{id}/invites"),
        json!({"email": "ben@clinic.example"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "already_invited");

    // Ben sees the invitation in his list and in his notifications, and by email.
    let mine = ben.get("/api/v1/groups").await;
    let mine = mine.assert(StatusCode::OK);
    assert_eq!(mine["invites"][0]["group_name"], "Trauma peer group");
    let notes = ben.get("/api/v1/notifications").await;
    let note = &notes.assert(StatusCode::OK)["items"][0];
    assert_eq!(note["kind"], "group_invite");
    assert_eq!(note["group_id"], id);
    let mut db = app.db.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let subjects: Vec<String> = kith::db::schema::email_outbox::table
        .filter(kith::db::schema::email_outbox::to_address.eq("ben@clinic.example"))
        .filter(kith::db::schema::email_outbox::subject.like("Invitation%"))
        .select(kith::db::schema::email_outbox::subject)
        .load(&mut db)
        .await
        .unwrap();
    assert_eq!(
        subjects,
        vec!["Invitation to \u{201c}Trauma peer group\u{201d}"]
    );

    // Ana cannot answer Ben's invitation; Ben accepts it once.
    let invite_id = invite["id"].as_str().unwrap();
    ana.post(
        &format!("/api/v1/group-invites/{invite_id}/accept"),
        json!({}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    let joined = ben
        .post(
            &format!("/api/v1/group-invites/{invite_id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(joined.assert(StatusCode::OK)["my_role"], "member");
    ben.post(
        &format!("/api/v1/group-invites/{invite_id}/accept"),
        json!({}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "already_answered");

    let members = ben.get(&format!("/api/v1/groups/{id}/members")).await;
    let members = members.assert(StatusCode::OK).as_array().unwrap().clone();
    let roles: Vec<(&str, &str)> = members
        .iter()
        .map(|m| {
            (
                m["display_name"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(roles, vec![("Ana", "host"), ("Ben", "member")]);
    let listed = ben.get("/api/v1/groups").await;
    assert_eq!(listed.assert(StatusCode::OK)["mine"][0]["member_count"], 2);

    // Ana is told Ben accepted.
    let notes = ana.get("/api/v1/notifications").await;
    assert_eq!(
        notes.assert(StatusCode::OK)["items"][0]["kind"],
        "group_joined"
    );
    ana.post(
        &format!("/api/v1/groups/{id}/invites"),
        json!({"email": "ben@clinic.example"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "already_member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_reaches_an_address_without_an_account_and_waits_for_it() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let group = ana.create_group("Couples consultation", false).await;
    ana.post(
        &format!("/api/v1/groups/{group}/invites"),
        json!({"email": "dana@clinic.example"}),
    )
    .await
    .assert(StatusCode::CREATED);
    // Dana signs up later and finds the invitation waiting.
    let dana = app.register("Dana").await;
    let list = dana.get("/api/v1/groups").await;
    let invite = &list.assert(StatusCode::OK)["invites"][0];
    assert_eq!(invite["group_name"], "Couples consultation");
    let id = invite["id"].as_str().unwrap();
    let declined = dana
        .post(&format!("/api/v1/group-invites/{id}/decline"), json!({}))
        .await;
    assert_eq!(declined.assert(StatusCode::OK)["my_role"], json!(null));
    ana.post(
        &format!("/api/v1/groups/{group}/invites"),
        json!({"email": "not an address"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_asks_to_join_a_listed_group_and_a_host_approves() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let cleo = app.register("Cleo").await;
    let group = ana.create_group("Open DBT circle", true).await;
    ana.bring_in(group, &ben).await;

    let found = cleo.get("/api/v1/groups").await;
    let found = found.assert(StatusCode::OK);
    assert_eq!(found["listed"][0]["name"], "Open DBT circle");
    assert_eq!(found["listed"][0]["my_role"], json!(null));
    // Listed, so visible; but its members are for members.
    cleo.get(&format!("/api/v1/groups/{group}"))
        .await
        .assert(StatusCode::OK);
    cleo.get(&format!("/api/v1/groups/{group}/members"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let request = cleo
        .post(&format!("/api/v1/groups/{group}/join-requests"), json!({}))
        .await;
    let request = request.assert(StatusCode::CREATED).clone();
    assert_eq!(request["kind"], "request");
    cleo.post(&format!("/api/v1/groups/{group}/join-requests"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "already_requested");
    let view = cleo.get(&format!("/api/v1/groups/{group}")).await;
    assert_eq!(view.assert(StatusCode::OK)["join_requested"], true);

    // Hosts are told; a member cannot approve, a host can.
    let notes = ana.get("/api/v1/notifications").await;
    assert_eq!(
        notes.assert(StatusCode::OK)["items"][0]["kind"],
        "group_join_request"
    );
    let pending = ana.get(&format!("/api/v1/groups/{group}/invites")).await;
    assert_eq!(pending.assert(StatusCode::OK)[0]["from_name"], "Cleo");
    ben.get(&format!("/api/v1/groups/{group}/invites"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let id = request["id"].as_str().unwrap();
    ben.post(&format!("/api/v1/group-invites/{id}/accept"), json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ana.post(&format!("/api/v1/group-invites/{id}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
    let view = cleo.get(&format!("/api/v1/groups/{group}")).await;
    assert_eq!(view.assert(StatusCode::OK)["my_role"], "member");

    // An invite-only group cannot be asked to join (nor seen).
    let private = ana.create_group("Private", false).await;
    cleo.post(
        &format!("/api/v1/groups/{private}/join-requests"),
        json!({}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_who_moderates_and_a_group_keeps_a_host() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let cleo = app.register("Cleo").await;
    let group = ana.create_group("Grief consultation", false).await;
    ana.bring_in(group, &ben).await;
    ana.bring_in(group, &cleo).await;
    let member =
        |who: &crate::support::Clinician| format!("/api/v1/groups/{group}/members/{}", who.id);

    // Members cannot moderate.
    ben.post(&format!("{}/mute", member(&cleo)), json!({"minutes": 10}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ben.call(reqwest::Method::DELETE, &member(&cleo), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ben.patch(&member(&ben), json!({"role": "host"}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // The host makes Ben a moderator; he can mute Cleo but not the host.
    let promoted = ana.patch(&member(&ben), json!({"role": "moderator"})).await;
    assert_eq!(promoted.assert(StatusCode::OK)["role"], "moderator");
    let muted = ben
        .post(&format!("{}/mute", member(&cleo)), json!({"minutes": 30}))
        .await;
    assert!(muted.assert(StatusCode::OK)["muted_until"].is_string());
    ben.post(&format!("{}/mute", member(&ana)), json!({"minutes": 30}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ben.post(
        &format!("{}/mute", member(&cleo)),
        json!({"minutes": 99999}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    ana.patch(&member(&ben), json!({"role": "owner"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // The only host can neither leave nor step down while others remain.
    ana.post(&format!("/api/v1/groups/{group}/leave"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "last_host");
    ana.patch(&member(&ana), json!({"role": "member"}))
        .await
        .assert_error(StatusCode::CONFLICT, "last_host");

    // Removal and leaving.
    ben.call(reqwest::Method::DELETE, &member(&cleo), None)
        .await
        .assert(StatusCode::NO_CONTENT);
    cleo.get(&format!("/api/v1/groups/{group}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ben.post(&format!("/api/v1/groups/{group}/leave"), json!({}))
        .await
        .assert(StatusCode::NO_CONTENT);
    let members = ana.get(&format!("/api/v1/groups/{group}/members")).await;
    assert_eq!(members.assert(StatusCode::OK).as_array().unwrap().len(), 1);

    // Names are checked.
    ana.post("/api/v1/groups", json!({"name": "   "}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    ana.post("/api/v1/groups", json!({"name": "x".repeat(121)}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    ana.patch(
        &format!("/api/v1/groups/{group}"),
        json!({"listed": true, "topic": "Loss"}),
    )
    .await
    .assert(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_revokes_an_invitation_and_an_unanswered_one_expires_after_two_weeks() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let cleo = app.register("Cleo").await;
    let dan = app.register("Dan").await;
    let group = ana.create_group("Perinatal consultation", false).await;
    ana.bring_in(group, &cleo).await;
    let invite = |who: &str| {
        let who = who.to_string();
        let ana = ana.clone();
        async move {
            let reply = ana
                .post(
                    &format!("/api/v1/groups/{group}/invites"),
                    json!({"email": who}),
                )
                .await;
            reply.assert(StatusCode::CREATED)["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };

    // Revoked: it leaves Ben's list and cannot be accepted; only hosts revoke.
    let to_ben = invite(&ben.email).await;
    let mine = ben.get("/api/v1/groups").await;
    assert!(mine.assert(StatusCode::OK)["invites"][0]["expires_at"].is_string());
    cleo.delete(&format!("/api/v1/groups/{group}/invites/{to_ben}"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ana.delete(&format!("/api/v1/groups/{group}/invites/{to_ben}"))
        .await
        .assert(StatusCode::NO_CONTENT);
    let mine = ben.get("/api/v1/groups").await;
    assert_eq!(mine.assert(StatusCode::OK)["invites"], json!([]));
    ben.post(&format!("/api/v1/group-invites/{to_ben}/accept"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "already_answered");
    ana.delete(&format!("/api/v1/groups/{group}/invites/{to_ben}"))
        .await
        .assert_error(StatusCode::CONFLICT, "already_answered");

    // Expired: after 14 days it no longer shows and cannot be accepted; a new
    // invitation to the same address takes its place.
    let to_dan = invite(&dan.email).await;
    app.clock.advance(chrono::Duration::days(15));
    let dan = app.sign_in(&dan.email).await;
    let ana = app.sign_in(&ana.email).await;
    let mine = dan.get("/api/v1/groups").await;
    assert_eq!(mine.assert(StatusCode::OK)["invites"], json!([]));
    dan.post(&format!("/api/v1/group-invites/{to_dan}/accept"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "invitation_expired");
    let pending = ana.get(&format!("/api/v1/groups/{group}/invites")).await;
    assert_eq!(pending.assert(StatusCode::OK), &json!([]));
    let again = ana
        .post(
            &format!("/api/v1/groups/{group}/invites"),
            json!({"email": dan.email}),
        )
        .await;
    let again = again.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_string();
    dan.post(&format!("/api/v1/group-invites/{again}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
}
