//! The audit log records who did what, from where, and shows tampering.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Clinician, PASSWORD, TestApp};

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

/// A little history: a few audit entries, sealed, with their checkpoints written.
async fn history() -> (TestApp, Clinician) {
    let app = TestApp::spawn().await;
    let admin = app.admin("Avery").await;
    let ana = app.register("Ana").await;
    for slots in 1..=3 {
        ana.set_capacity(json!({"open_slots": slots}))
            .await
            .assert(StatusCode::OK);
    }
    app.seal_audit().await;
    let reply = admin.get("/api/v1/admin/audit/verify").await;
    let report = reply.assert(StatusCode::OK);
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["sealed"].as_i64().unwrap() >= 6);
    assert!(report["checkpoints_checked"].as_i64().unwrap() >= 1);
    (app, admin)
}

/// `kith audit-verify` against the test's database and data directory.
fn audit_verify(app: &TestApp) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("audit-verify")
        .env("DATABASE_URL", &app.db.app_url)
        .env("KITH_DATA_DIR", &app.data_dir)
        .env("KITH_AUDIT_KEY", "test-audit-key-test-audit-key-test-audit")
        .env(
            "KITH_JWT_SECRET",
            "test-secret-test-secret-test-secret-0123",
        )
        .env("KITH_DATA_KEY", "test-data-key-test-data-key-test-data-key")
        .env("KITH_CONTACT_KEY", "test-contact-key-test-contact-key-test")
        .output()
        .expect("run kith audit-verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn problems(admin: &Clinician) -> String {
    let reply = admin.get("/api/v1/admin/audit/verify").await;
    let report = reply.assert(StatusCode::OK);
    assert_eq!(report["intact"], false, "{report}");
    report["problems"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_may_only_add_to_the_audit_log() {
    let (app, _admin) = history().await;
    let (ok, out) = audit_verify(&app);
    assert!(ok, "an untouched log verifies: {out}");
    // Without the key, the command says so rather than call every entry forged.
    let keyless = std::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("audit-verify")
        .env("DATABASE_URL", &app.db.app_url)
        .env(
            "KITH_DATA_DIR",
            std::env::temp_dir().join(format!("kith-nokey-{}", uuid::Uuid::new_v4().simple())),
        )
        .env_remove("KITH_AUDIT_KEY")
        .output()
        .unwrap();
    assert!(!keyless.status.success());
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("no audit key"));
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(&app.db.app_url).await.unwrap();
    for sql in [
        "UPDATE audit_log SET action = 'nothing' WHERE action = 'capacity.updated'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log CASCADE",
        "UPDATE audit_chain SET hash = hash",
        "DELETE FROM audit_chain",
        "TRUNCATE audit_chain",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only",
        "DROP TRIGGER audit_log_append_only ON audit_log",
    ] {
        let err = diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect_err(sql)
            .to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    // Adding is what it may do.
    diesel::sql_query(
        "INSERT INTO audit_log (at, action, entity_type) VALUES (now(), 'test.added', 'test')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_who_disables_the_guard_and_edits_an_entry_is_caught_even_after_resealing() {
    let (app, admin) = history().await;
    // Edited in place, the link no longer matches.
    app.db
        .run_sql(
            "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; \
             UPDATE audit_log SET detail = '{\"open_slots\": 9}' WHERE action = 'capacity.updated' \
                 AND id = (SELECT min(id) FROM audit_log WHERE action = 'capacity.updated'); \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only; COMMIT;",
        )
        .await;
    assert!(problems(&admin).await.contains("does not match its row"));
    let (ok, out) = audit_verify(&app);
    assert!(!ok && out.contains("does not match its row"), "{out}");

    // Re-sealed: the owner removes the links from the edit on and lets the
    // server's sealer (which holds the key) chain the edited rows again.
    app.db
        .run_sql(
            "BEGIN; ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only; \
             INSERT INTO audit_pending SELECT entry_id FROM audit_chain \
                 WHERE entry_id >= (SELECT min(id) FROM audit_log WHERE action = 'capacity.updated'); \
             DELETE FROM audit_chain WHERE entry_id >= (SELECT min(id) FROM audit_log WHERE action = 'capacity.updated'); \
             ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only; COMMIT;",
        )
        .await;
    app.seal_audit().await;
    let found = problems(&admin).await;
    assert!(found.contains("differs from the checkpoint"), "{found}");
    let (ok, out) = audit_verify(&app);
    assert!(!ok && out.contains("differs from the checkpoint"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_deleted_entries_are_caught_and_so_is_a_shortened_tail() {
    let (app, admin) = history().await;
    let newest = app.db.scalar_i64("SELECT max(seq) FROM audit_chain").await;

    // Deleting the newest entries leaves an intact-looking chain, shorter
    // than the last checkpoint written outside PostgreSQL.
    app.db
        .run_sql(&format!(
            "BEGIN; ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only; \
             ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; \
             CREATE TEMP TABLE gone AS SELECT entry_id FROM audit_chain WHERE seq > {newest} - 2; \
             DELETE FROM audit_chain WHERE seq > {newest} - 2; \
             DELETE FROM audit_log WHERE id IN (SELECT entry_id FROM gone); \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only; \
             ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only; COMMIT;"
        ))
        .await;
    let found = problems(&admin).await;
    assert!(found.contains("entries were deleted at the end"), "{found}");
    let (ok, out) = audit_verify(&app);
    assert!(
        !ok && out.contains("entries were deleted at the end"),
        "{out}"
    );

    // Two entries swapped in the chain.
    app.db
        .run_sql(
            "BEGIN; ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only; \
             CREATE TEMP TABLE swapped AS SELECT * FROM audit_chain WHERE seq IN (2, 3); \
             DELETE FROM audit_chain WHERE seq IN (2, 3); \
             INSERT INTO audit_chain SELECT 5 - seq, entry_id, hash FROM swapped; \
             ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only; COMMIT;",
        )
        .await;
    assert!(problems(&admin).await.contains("Link 2 "));

    // One in the middle deleted.
    app.db
        .run_sql(
            "BEGIN; ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only; \
             DELETE FROM audit_chain WHERE seq = 1; \
             ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only; COMMIT;",
        )
        .await;
    let found = problems(&admin).await;
    assert!(found.contains("Link 1 is missing"), "{found}");

    // An entry slipped in past the sealer (its queue trigger disabled) is
    // neither sealed nor waiting, and is reported as such.
    app.db
        .run_sql(
            "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER audit_log_to_seal; \
             INSERT INTO audit_log (at, action, entity_type) VALUES (now(), 'account.role_changed', 'user'); \
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_to_seal; COMMIT;",
        )
        .await;
    // Two: this one, and the entry whose link was deleted above.
    let found = problems(&admin).await;
    assert!(
        found.contains("2 audit entries are neither sealed nor waiting"),
        "{found}"
    );

    // A line in the checkpoint file that the sealer never wrote is refused too.
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(app.data_dir.join("audit-checkpoints"))
        .unwrap();
    writeln!(file, "9 not-a-link").unwrap();
    let (ok, out) = audit_verify(&app);
    assert!(!ok && out.contains("is not a checkpoint"), "{out}");
}
