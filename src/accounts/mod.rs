//! Accounts: register, sign in, refresh, sign out, read and change one's own
//! account, and what only administrators may do.

pub mod admin;
mod routes;

pub use routes::{AuthTokens, LoginRequest, RegisterRequest};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    routes::routes(cfg);
    admin::routes(cfg);
}
