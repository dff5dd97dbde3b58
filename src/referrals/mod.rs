//! Closed-loop referrals: a de-identified packet offered to colleagues
//! (direct, cascade or broadcast), each offer with a deadline; accept (taking
//! an open slot in the same transaction, or a waitlist place), decline with a
//! reason (a cascade moves on), withdraw, schedule, complete; a timeline of
//! every transition; client contact released only to the accepter.
//!
//! One file per action: `create` (sending), `inbox` (lists and opening one),
//! `respond` (accept, decline), `lifecycle` (withdraw, schedule, complete),
//! `contact` (releasing the client's details), `worker` (deadlines and
//! reminders). `store` holds the queries they share, `view` what each viewer
//! may see, `notices` what people are told, `state` the transition tables.

pub mod contact;
mod create;
mod inbox;
mod lifecycle;
pub mod model;
mod notices;
mod respond;
pub mod state;
mod store;
mod view;
mod worker;

pub use worker::{run_worker, sweep_deadlines};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create::create_referral)
        .service(inbox::list_referral)
        .service(inbox::view_referral)
        .service(respond::accept_referral)
        .service(respond::decline_referral)
        .service(lifecycle::withdraw_referral)
        .service(lifecycle::schedule_referral)
        .service(lifecycle::complete_referral)
        .service(contact::contact_referral);
}
