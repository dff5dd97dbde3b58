//! Demo data: deterministic, realistic and valid.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use kith::db::schema::{profiles, users};

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_is_deterministic_realistic_and_idempotent() {
    let app = TestApp::spawn().await;
    let pool = kith::db::pool(&app.db.url, 4).unwrap();
    let taxonomy = {
        let mut conn = pool.get().await.unwrap();
        kith::profiles::taxonomy::Taxonomy::load(&mut conn)
            .await
            .unwrap()
    };
    let now = app.clock.now();
    let options = kith::seed::SeedOptions {
        profiles: 400,
        seed: 7,
    };
    let first = kith::seed::run(&pool, &taxonomy, now, &options)
        .await
        .unwrap();
    assert_eq!(
        first.inserted, 404,
        "400 clinicians and the 4 demo accounts"
    );
    let again = kith::seed::run(&pool, &taxonomy, now, &options)
        .await
        .unwrap();
    assert_eq!((again.inserted, again.already_present), (0, 404));

    let mut conn = app.db.conn().await;
    let rows: Vec<kith::profiles::Profile> = profiles::table
        .select(kith::profiles::Profile::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 404);
    let states: std::collections::HashSet<_> =
        rows.iter().filter_map(|p| p.state.clone()).collect();
    assert!(
        states.len() >= 30,
        "clinicians in only {} states",
        states.len()
    );
    for p in &rows {
        for (kind, slugs) in [
            (kith::profiles::taxonomy::Kind::Specialty, &p.specialties),
            (kith::profiles::taxonomy::Kind::Modality, &p.modalities),
            (kith::profiles::taxonomy::Kind::Insurance, &p.insurance),
            (kith::profiles::taxonomy::Kind::Language, &p.languages),
        ] {
            assert!(
                slugs.iter().all(|s| taxonomy.contains(kind, s)),
                "{slugs:?}"
            );
        }
        assert!(
            p.latitude.is_some() && (p.telehealth || p.in_person),
            "every clinician has a place and a way to be seen"
        );
    }
    let freshness: Vec<_> = rows
        .iter()
        .map(|p| kith::profiles::CapacityFreshness::of(p.capacity_confirmed_at, now))
        .collect();
    for kind in [
        kith::profiles::CapacityFreshness::Fresh,
        kith::profiles::CapacityFreshness::Stale,
        kith::profiles::CapacityFreshness::Unknown,
    ] {
        assert!(
            freshness.iter().filter(|f| **f == kind).count() > 20,
            "too few {kind:?}"
        );
    }

    // Same seed, fresh database: the very same people.
    let other = crate::support::TestDb::migrated().await;
    let other_pool = kith::db::pool(&other.url, 4).unwrap();
    kith::seed::run(&other_pool, &taxonomy, now, &options)
        .await
        .unwrap();
    let emails = |url: String| async move {
        let mut conn =
            <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url)
                .await
                .unwrap();
        users::table
            .select(users::email)
            .order(users::email)
            .load::<String>(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(
        emails(app.db.url.clone()).await,
        emails(other.url.clone()).await
    );

    // The demo accounts can sign in with the documented password.
    app.login("ana@kith.test", kith::seed::DEMO_PASSWORD)
        .await
        .assert(reqwest::StatusCode::OK);
}
