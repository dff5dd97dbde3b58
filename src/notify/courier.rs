//! The courier: claims due email from the outbox, sends it, and retries
//! failures with backoff. Several instances share the work.

use std::{sync::Arc, time::Duration};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use tokio::sync::Notify;

use super::mailer::Mailer;
use crate::{
    clock::Clock,
    db::{DbPool, Reuse, schema::email_outbox},
};

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
                                        .eq(now + crate::worker::backoff(attempts + 1)),
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
