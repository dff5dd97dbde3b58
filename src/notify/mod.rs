//! Telling people what happened: in-app notifications and email. Both are
//! written in the transaction of the change they announce; a courier sends
//! the email (SMTP when `SMTP_URL` is set, `.eml` files under the data
//! directory otherwise) and retries failures with backoff, so mail may be late
//! but is never lost. Emails carry no client identifiers, only a link.

pub mod courier;
pub mod mailer;
mod notice;
mod routes;

pub use courier::Courier;
pub use mailer::Mailer;
pub use notice::{Notice, email_address, tell};
pub use routes::routes;
