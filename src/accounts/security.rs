//! The security email every change to how an account signs in sends to its
//! address: what happened, when, and what to do if it was not its owner.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::{error::AppResult, notify, state::AppState};

/// Emails `to` that `what` happened now, inside the caller's transaction.
pub(super) async fn tell(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    to: &str,
    subject: &str,
    what: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let url = &state.mailer.public_url;
    let message = format!(
        "{what} ({} UTC).\n\n\
         If this was not you, reset your password at {url}/#/forgot-password now and tell your administrator.",
        now.format("%a %e %b %Y %H:%M")
    );
    notify::email_address(conn, url, to, subject, &message, None, now).await?;
    Ok(())
}
