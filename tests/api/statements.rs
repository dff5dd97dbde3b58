//! Statements wrapped in `Reused` are prepared once per connection and give
//! the same answers as when diesel prepares them afresh.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kith::db::{Reuse, schema::email_outbox};

use crate::support::TestDb;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Statements this connection holds prepared whose text starts with `prefix`.
async fn prepared(conn: &mut AsyncPgConnection, prefix: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE starts_with(statement, $1)",
    )
    .bind::<diesel::sql_types::Text, _>(prefix)
    .get_result::<Count>(conn)
    .await
    .unwrap()
    .n
}

async fn queue(conn: &mut AsyncPgConnection, to: &[&str]) -> Vec<i64> {
    let now = Utc::now();
    let rows: Vec<_> = to
        .iter()
        .map(|to| {
            (
                email_outbox::to_address.eq(*to),
                email_outbox::subject.eq("Subject"),
                email_outbox::body.eq("Body"),
                email_outbox::enqueued_at.eq(now),
                email_outbox::next_attempt_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(email_outbox::table)
        .values(rows)
        .returning(email_outbox::id)
        .reused()
        .get_results(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_statements_are_prepared_once_and_answer_correctly() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;

    // Several rows in one insert: one prepared statement per row count.
    let first = queue(&mut conn, &["a@example.org", "b@example.org"]).await;
    let second = queue(&mut conn, &["c@example.org", "d@example.org"]).await;
    let third = queue(
        &mut conn,
        &["e@example.org", "f@example.org", "g@example.org"],
    )
    .await;
    assert_eq!((first.len(), second.len(), third.len()), (2, 2, 3));
    assert_eq!(prepared(&mut conn, "INSERT INTO \"email_outbox\"").await, 2);

    // An UPDATE, which diesel alone would prepare and close on every call.
    let now = Utc::now();
    for ids in [&first, &third] {
        let updated = diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(ids)))
            .set(email_outbox::sent_at.eq(now))
            .reused()
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(updated, ids.len());
    }
    assert_eq!(prepared(&mut conn, "UPDATE \"email_outbox\"").await, 1);
    let unsent: Vec<String> = email_outbox::table
        .filter(email_outbox::sent_at.is_null())
        .order(email_outbox::id)
        .select(email_outbox::to_address)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(unsent, ["c@example.org", "d@example.org"]);

    // Without the wrapper, diesel keeps no UPDATE prepared.
    diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&second)))
        .set(email_outbox::attempts.eq(1))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        prepared(&mut conn, "UPDATE \"email_outbox\" SET \"attempts\"").await,
        0
    );
    drop(conn);
    db.drop_now().await;
}
