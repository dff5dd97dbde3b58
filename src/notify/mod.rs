//! Telling people what happened: in-app notifications and email. Both are
//! written in the transaction of the change they announce; a courier sends
//! the email (SMTP when `SMTP_URL` is set, `.eml` files under the data
//! directory otherwise) and retries failures with backoff, so mail may be late
//! but is never lost. Emails carry no client identifiers, only a link.

mod routes;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    Clock, Settings,
    db::{
        DbPool, Reuse,
        schema::{email_outbox, notifications, users},
    },
};

pub use routes::routes;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// Where links in emails point.
    pub public_url: String,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => {
                let dir = settings.data_dir.join("mail");
                std::fs::create_dir_all(&dir)?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
        };
        Ok(Self {
            transport,
            from: settings.mail_from.parse()?,
            public_url: settings.public_url.trim_end_matches('/').to_string(),
        })
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to
                .parse::<Mailbox>()
                .map_err(|e| format!("bad recipient: {e}"))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| e.to_string())?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Files(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

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

/// Sends queued email.
#[derive(Clone)]
pub struct Courier {
    pub pool: DbPool,
    pub mailer: Arc<Mailer>,
    pub clock: Clock,
    pub wake: Arc<Notify>,
}

impl Courier {
    /// Claims due emails (`FOR UPDATE SKIP LOCKED`, so instances share the
    /// work), sends them, and marks each sent or schedules its retry.
    pub async fn send_due(&self) -> anyhow::Result<(usize, usize)> {
        let now = self.clock.now();
        let mut conn = self.pool.get().await?;
        let counts = conn
            .transaction::<_, anyhow::Error, _>(async |conn| {
                let due: Vec<(i64, String, String, String, i32)> = email_outbox::table
                    .filter(
                        email_outbox::sent_at
                            .is_null()
                            .and(email_outbox::next_attempt_at.le(now)),
                    )
                    // The due index's own order: the claim reads 50 rows, never the whole backlog.
                    .order((email_outbox::next_attempt_at, email_outbox::id))
                    .limit(50)
                    .select((
                        email_outbox::id,
                        email_outbox::to_address,
                        email_outbox::subject,
                        email_outbox::body,
                        email_outbox::attempts,
                    ))
                    .for_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
                let (mut sent, mut failed) = (Vec::new(), 0);
                for (id, to, subject, body, attempts) in due {
                    match self.mailer.send(&to, &subject, &body).await {
                        Ok(()) => sent.push(id),
                        Err(error) => {
                            tracing::warn!(%error, attempts, "email not sent; will retry");
                            diesel::update(email_outbox::table.find(id))
                                .set((
                                    email_outbox::attempts.eq(attempts + 1),
                                    email_outbox::next_attempt_at
                                        .eq(now + crate::search::outbox::backoff(attempts + 1)),
                                    email_outbox::last_error.eq(error),
                                ))
                                .reused()
                                .execute(conn)
                                .await?;
                            failed += 1;
                        }
                    }
                }
                if !sent.is_empty() {
                    // Committed with the claim: one statement for the whole batch.
                    diesel::update(email_outbox::table.filter(email_outbox::id.eq_any(&sent)))
                        .set(email_outbox::sent_at.eq(now))
                        .reused()
                        .execute(conn)
                        .await?;
                }
                Ok((sent.len(), failed))
            })
            .await?;
        Ok(counts)
    }

    pub async fn run(self) {
        loop {
            match self.send_due().await {
                Ok((sent, _)) if sent > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "email courier pass failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
