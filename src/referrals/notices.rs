//! What people are told about a referral, in the app and by email. No
//! message carries a client identifier: only the packet's coarse facts and a
//! link to the referral.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::model::Referral;
use crate::{error::AppResult, notify};

/// A notification and an email about a referral.
pub struct ReferralNotice<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub message: String,
}

impl ReferralNotice<'_> {
    /// Tells `user`, inside the caller's transaction.
    pub async fn send(
        self,
        conn: &AsyncPgConnection,
        url: &str,
        user: Uuid,
        referral: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let notice = notify::Notice {
            kind: self.kind,
            referral: Some(referral),
            group: None,
            session: None,
            message: self.message,
            email_subject: Some(self.subject.to_string()),
        };
        notify::tell(conn, url, user, notice, now).await?;
        Ok(())
    }
}

/// Tells a colleague the referral is now theirs to answer.
pub async fn tell_new_offer(
    conn: &AsyncPgConnection,
    url: &str,
    referral: &Referral,
    recipient: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let deadline = now + referral.response_time();
    ReferralNotice {
        kind: "new_offer",
        subject: "New referral for you",
        message: format!(
            "A colleague has offered you a referral ({} urgency, {} concern(s), client in {}). Please accept or decline by {} UTC.",
            referral.urgency,
            referral.concerns.len(),
            referral.client_state,
            deadline.format("%a %e %b %H:%M")
        ),
    }
    .send(conn, url, recipient, referral.id, now)
    .await
}
