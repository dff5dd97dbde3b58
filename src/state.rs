//! `AppState`: everything a request handler or worker may need, cheap to
//! clone. It is built at start-up (`startup`); features only read it.

use std::sync::Arc;

use crate::{
    auth::{sessions::SessionCache, tokens::TokenKeys},
    clock::Clock,
    config::Settings,
    db::DbPool,
    notify::mailer::Mailer,
    profiles::taxonomy::Taxonomy,
    rooms::hub::Hub,
    search::{config::SearchConfig, embedded::EmbeddedEngine, engine::SearchIndex},
};

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub tokens: Arc<TokenKeys>,
    pub sessions: SessionCache,
    /// Seals second-factor keys with `KITH_DATA_KEY`.
    pub sealer: crate::seal::Sealer,
    /// Seals client contact details with `KITH_CONTACT_KEY` (and opens what older keys sealed).
    pub contact_keys: crate::seal::Keyring,
    /// Keys the audit chain.
    pub audit_key: crate::audit::chain::ChainKey,
    /// This instance's per-address limits (registration, reset requests).
    pub address_limits: crate::limits::AddressLimits,
    pub taxonomy: Arc<Taxonomy>,
    /// Verified against when an email is unknown, so both cases cost the same.
    pub dummy_password_hash: Arc<str>,
    pub search: Arc<dyn SearchIndex>,
    pub search_config: Arc<SearchConfig>,
    /// Wakes this instance's indexer right after a change commits.
    pub indexer_wake: Arc<tokio::sync::Notify>,
    pub mailer: Arc<Mailer>,
    /// Wakes this instance's email courier right after mail is queued.
    pub courier_wake: Arc<tokio::sync::Notify>,
    /// The embedded engine, when that is the one in use (it follows `kith reindex`).
    pub embedded: Option<Arc<EmbeddedEngine>>,
    /// This instance's websocket rooms.
    pub hub: Arc<Hub>,
}
