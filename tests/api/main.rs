//! Kith's integration tests: the real HTTP API of a real server on a real
//! PostgreSQL, one database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod errors;
mod groups;
mod hardening;
mod housekeeping;
mod identifiers;
mod limits;
mod mail;
mod migrations;
mod minimum;
mod passwords;
mod profiles;
mod referrals;
mod rooms;
mod search;
mod search_contract;
mod seed;
mod sessions;
mod sign_ins;
mod statements;
mod support;
mod two_step;
mod verification;
