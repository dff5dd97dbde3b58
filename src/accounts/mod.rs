//! Accounts: register, sign in, refresh, sign out, read and change one's own
//! account (`register`, `sign_in`, `me`, `reset` for a forgotten password,
//! `sign_ins` to see and end them, `verify` to prove an address,
//! `second_factor` and `code_step` for two-step sign-in;
//! `tokens` issues a sign-in's tokens),
//! and what only administrators may do (`admin`).

pub mod admin;
mod code_step;
pub mod housekeeping;
mod me;
mod register;
mod reset;
mod second_factor;
mod security;
mod sign_in;
mod sign_ins;
mod tokens;
mod verify;

pub use register::{RegisterRequest, Registered};
pub use sign_in::LoginRequest;
pub use tokens::AuthTokens;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(register::register)
        .service(sign_in::login)
        .service(sign_in::refresh)
        .service(sign_in::logout)
        .service(me::me)
        .service(me::change_password)
        .service(me::set_time_zone)
        .service(reset::request_reset)
        .service(reset::confirm_reset)
        .service(sign_ins::list_sign_ins)
        .service(sign_ins::end_sign_in)
        .service(verify::verify)
        .service(verify::resend)
        .service(verify::change_email)
        .service(code_step::code_step)
        .service(second_factor::status)
        .service(second_factor::start)
        .service(second_factor::confirm)
        .service(second_factor::renew_codes)
        .service(second_factor::disable);
    admin::routes(cfg);
}
