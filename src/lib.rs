//! Kith: a referral network and peer-consultation platform for therapists.
//!
//! [`Application::build`] turns [`Settings`] into a running server; `main`
//! and every integration test start Kith the same way.

pub mod accounts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod groups;
mod health;
pub mod http;
pub mod limits;
pub mod notify;
pub mod openapi;
pub mod outbox;
pub mod privacy;
pub mod profiles;
pub mod referrals;
pub mod responsiveness;
pub mod rooms;
pub mod seal;
pub mod search;
pub mod seed;
pub mod signal;
pub mod startup;
pub mod state;
pub mod text;
pub mod visits;
pub mod worker;

pub use clock::Clock;
pub use config::Settings;
pub use startup::{Application, install_crypto_provider};
pub use state::AppState;
