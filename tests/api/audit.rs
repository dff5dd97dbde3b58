//! The audit log records who did what, from where, and shows tampering.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{PASSWORD, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_role_changes_and_profile_edits_are_audited_with_address_and_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ana = app.register("Ana").await;
    app.login(&ana.email, "definitely not it!").await;
    app.login(&ana.email, PASSWORD).await.assert(StatusCode::OK);
    ana.set_capacity(json!({"open_slots": 2}))
        .await
        .assert(StatusCode::OK);
    admin
        .put(
            &format!("/api/v1/admin/users/{}/role", ana.id),
            json!({"role": "supervisor"}),
        )
        .await
        .assert(StatusCode::OK);
    let version = ana.profile().await["version"].clone();
    ana.put(
        "/api/v1/profiles/me",
        json!({"version": version, "license_states": ["NY"]}),
    )
    .await
    .assert(StatusCode::OK);
    admin
        .put(
            &format!("/api/v1/admin/users/{}/verification", ana.id),
            json!({"verified": true}),
        )
        .await
        .assert(StatusCode::OK);

    let entries = admin.get("/api/v1/admin/audit?limit=500").await;
    let entries = entries.assert(StatusCode::OK).as_array().unwrap().clone();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:?}"))
            .clone()
    };

    let failed = find("login.failed");
    assert_eq!(failed["actor_id"], ana.id.to_string());
    assert_eq!(failed["ip"], "127.0.0.1");
    assert!(failed["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(failed["at"].is_string());
    assert_eq!(find("login.succeeded")["entity_id"], ana.id.to_string());
    let role = find("account.role_changed");
    assert_eq!(role["actor_id"], admin.id.to_string());
    assert_eq!(
        role["detail"],
        json!({"from": "clinician", "to": "supervisor"})
    );
    assert_eq!(
        find("profile.license_verified")["entity_id"],
        ana.id.to_string()
    );
    assert_eq!(find("capacity.updated")["detail"]["open_slots"], 2);

    // Filtered by entity, only Ana's records come back.
    let for_ana = admin
        .get(&format!("/api/v1/admin/audit?entity_id={}", ana.id))
        .await;
    assert!(
        for_ana
            .assert(StatusCode::OK)
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["entity_id"] == ana.id.to_string())
    );
    ana.get("/api/v1/admin/audit")
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_append_only_and_tampering_breaks_the_chain() {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ana = app.register("Ana").await;
    ana.set_capacity(json!({"open_slots": 1}))
        .await
        .assert(StatusCode::OK);
    app.seal_audit().await;

    let report = admin.get("/api/v1/admin/audit/verify").await;
    let report = report.assert(StatusCode::OK);
    assert_eq!(report["intact"], true);
    assert!(report["sealed"].as_i64().unwrap() >= 4);

    // The application's own role cannot rewrite or delete history...
    let mut conn = app.db.conn().await;
    use diesel_async::RunQueryDsl;
    assert!(
        diesel::sql_query(
            "UPDATE audit_log SET action = 'nothing' WHERE action = 'capacity.updated'"
        )
        .execute(&mut conn)
        .await
        .is_err()
    );
    assert!(
        diesel::sql_query("DELETE FROM audit_log")
            .execute(&mut conn)
            .await
            .is_err()
    );

    // ...and someone who disables the guard to do it anyway is caught.
    app.db
        .run_sql(
            "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; \
             UPDATE audit_log SET detail = '{\"open_slots\": 9}' WHERE action = 'capacity.updated'; \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only; COMMIT;",
        )
        .await;
    let report = admin.get("/api/v1/admin/audit/verify").await;
    let report = report.assert(StatusCode::OK);
    assert_eq!(report["intact"], false);
    assert!(report["first_broken_seq"].as_i64().is_some());
}
