//! Sessions a group holds in its room: scheduled (optionally weekly), started
//! and ended by their host, attendance taken from the room, signed off into
//! each attendee's supervision-hours ledger.
//!
//! Files by action: `schedule` (scheduling, lists, one session),
//! `lifecycle` (start, end, cancel, lock, unlock), `attendance` (taking,
//! correcting and signing it off), `ledger` (my hours and their CSV),
//! `reminders`; `model` the rows, views and the status table, `store` the
//! queries they share, `stays` the arithmetic of time in the room.

mod attendance;
mod ledger;
mod lifecycle;
pub mod model;
mod reminders;
mod schedule;
pub mod stays;
mod store;

pub use reminders::{run_reminders, send_reminders};
pub use store::{LiveSession, live, may_enter, session_state};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(schedule::schedule_session)
        .service(schedule::group_sessions_list)
        .service(schedule::my_sessions)
        .service(schedule::view_session)
        .service(lifecycle::start_session)
        .service(lifecycle::end_session)
        .service(lifecycle::cancel_session)
        .service(lifecycle::lock_session)
        .service(lifecycle::unlock_session)
        .service(attendance::sign_off)
        .service(attendance::adjust_attendance);
    ledger::routes(cfg);
}
