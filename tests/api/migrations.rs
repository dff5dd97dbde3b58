//! Every migration applies, really undoes, and applies again.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::support::TestDb;

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
}

async fn tables(db: &TestDb) -> Vec<String> {
    let mut conn = db.conn().await;
    let rows: Vec<TableName> = diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.table_name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_up_down_and_up_again() {
    let db = TestDb::empty().await;
    let applied = kith::db::run_migrations(&db.url).await.unwrap();
    assert_eq!(applied.len(), kith::db::migration_names().len());
    let after_up = tables(&db).await;
    for table in [
        "users",
        "profiles",
        "taxonomy_terms",
        "audit_log",
        "refresh_tokens",
        "auth_sessions",
    ] {
        assert!(
            after_up.contains(&table.to_string()),
            "{table} missing after up: {after_up:?}"
        );
    }
    kith::db::ensure_migrated(&db.url).await.unwrap();

    let reverted = kith::db::revert_all_migrations(&db.url).await.unwrap();
    assert_eq!(reverted, applied.len());
    assert_eq!(
        tables(&db).await,
        Vec::<String>::new(),
        "down.sql left tables behind"
    );
    assert!(
        kith::db::ensure_migrated(&db.url).await.is_err(),
        "serve must refuse an unmigrated database"
    );

    kith::db::run_migrations(&db.url).await.unwrap();
    assert_eq!(tables(&db).await, after_up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_unmigrated_database_and_says_what_to_run() {
    let db = TestDb::empty().await;
    let settings = kith::Settings::for_database(&db.url, std::env::temp_dir());
    let error = kith::Application::build(settings, kith::Clock::system())
        .await
        .err()
        .expect("must refuse");
    assert!(error.to_string().contains("kith migrate"), "{error}");
}
