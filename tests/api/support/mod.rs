//! Test harness: a real Kith server on a real PostgreSQL database of its own,
//! and clients that read like the people using it.
//!
//! `db` (a database per test), `app` (the server), `client` (a person and
//! their replies), `room` (websockets), `fixtures` (shared stories), `smtp` (a real mail server).

mod app;
mod client;
mod db;
mod fixtures;
mod room;
mod smtp;

pub use app::*;
pub use client::*;
pub use db::*;
pub use fixtures::*;
pub use room::*;
pub use smtp::*;
