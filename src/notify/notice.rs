//! Telling a person: a notification in the app and, when the notice has a
//! subject, an email queued in the outbox, both inside the caller's transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{email_outbox, notifications, users};

/// What to tell a person: a line in the app, and optionally an email.
pub struct Notice<'a> {
    pub kind: &'a str,
    pub referral: Option<Uuid>,
    pub group: Option<Uuid>,
    pub session: Option<Uuid>,
    pub message: String,
    /// Subject of the email; None for in-app only.
    pub email_subject: Option<String>,
}

/// Records a notification for `user` and queues its email, inside the caller's transaction.
pub async fn tell(
    conn: &AsyncPgConnection,
    public_url: &str,
    user: Uuid,
    notice: Notice<'_>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let in_app = async {
        let mut c = conn;
        diesel::insert_into(notifications::table)
            .values((
                notifications::user_id.eq(user),
                notifications::kind.eq(notice.kind),
                notifications::referral_id.eq(notice.referral),
                notifications::group_id.eq(notice.group),
                notifications::session_id.eq(notice.session),
                notifications::message.eq(&notice.message),
                notifications::created_at.eq(now),
            ))
            .execute(&mut c)
            .await
    };
    let Some(subject) = notice.email_subject else {
        return in_app.await.map(drop);
    };
    let email = async {
        use diesel::sql_types::{Text, Timestamptz};
        let mut c = conn;
        let link = link(public_url, notice.referral, notice.group);
        let rest = format!(",\n\n{}{link}\n— Kith\n", notice.message);
        // One statement: the address and greeting come from the account.
        diesel::insert_into(email_outbox::table)
            .values(
                users::table.filter(users::id.eq(user)).select((
                    users::email,
                    subject.into_sql::<Text>(),
                    "Hello "
                        .into_sql::<Text>()
                        .concat(users::display_name)
                        .concat(rest.into_sql::<Text>()),
                    now.into_sql::<Timestamptz>(),
                    now.into_sql::<Timestamptz>(),
                )),
            )
            .into_columns((
                email_outbox::to_address,
                email_outbox::subject,
                email_outbox::body,
                email_outbox::enqueued_at,
                email_outbox::next_attempt_at,
            ))
            .execute(&mut c)
            .await
    };
    // Both sent at once: diesel-async pipelines futures polled together.
    futures_util::try_join!(in_app, email).map(drop)
}

fn link(public_url: &str, referral: Option<Uuid>, group: Option<Uuid>) -> String {
    match (referral, group) {
        (Some(id), _) => format!("\n\nOpen it in Kith: {public_url}/#/referrals/{id}\n"),
        (None, Some(id)) => format!("\n\nOpen it in Kith: {public_url}/#/groups/{id}\n"),
        (None, None) => String::new(),
    }
}

/// Queues an email to an address that may not have an account yet (an
/// invitation), inside the caller's transaction.
pub async fn email_address(
    conn: &mut AsyncPgConnection,
    public_url: &str,
    to: &str,
    subject: &str,
    message: &str,
    group: Option<Uuid>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let body = format!(
        "Hello,\n\n{message}{}\n— Kith\n",
        link(public_url, None, group)
    );
    diesel::insert_into(email_outbox::table)
        .values((
            email_outbox::to_address.eq(to),
            email_outbox::subject.eq(subject),
            email_outbox::body.eq(body),
            email_outbox::enqueued_at.eq(now),
            email_outbox::next_attempt_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
