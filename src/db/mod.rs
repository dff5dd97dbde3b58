//! The connection pool, the embedded migrations and helpers shared by features.

pub mod schema;

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::{
    AsyncPgConnection,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, deadpool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub type DbPool = deadpool::Pool<AsyncPgConnection>;
pub type DbConn = deadpool::Object<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("could not build the connection pool: {0}")]
    Pool(String),
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("the database is not migrated; run `kith migrate` first (pending: {0})")]
    Pending(String),
}

pub fn pool(database_url: &str, size: usize) -> Result<DbPool, DbSetupError> {
    // No test query on every checkout (the default costs a round trip per
    // request): a connection whose socket closed is still recognised and
    // replaced, through `is_closed`, without asking the server.
    let mut config = diesel_async::pooled_connection::ManagerConfig::default();
    config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    deadpool::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbSetupError::Pool(e.to_string()))
}

fn blocking_harness<T: Send + 'static>(
    database_url: &str,
    work: impl FnOnce(&mut AsyncConnectionWrapper<AsyncPgConnection>) -> Result<T, DbSetupError>
    + Send
    + 'static,
) -> impl Future<Output = Result<T, DbSetupError>> {
    let url = database_url.to_string();
    async move {
        tokio::task::spawn_blocking(move || {
            use diesel::Connection;
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
            work(&mut conn)
        })
        .await
        .map_err(|e| DbSetupError::Migration(e.to_string()))?
    }
}

/// Applies every pending migration; returns the versions applied.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, DbSetupError> {
    blocking_harness(database_url, |conn| {
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| DbSetupError::Migration(e.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Reverts every applied migration, newest first (used by the migration test).
pub async fn revert_all_migrations(database_url: &str) -> Result<usize, DbSetupError> {
    blocking_harness(database_url, |conn| {
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| DbSetupError::Migration(e.to_string()))?;
        Ok(reverted.len())
    })
    .await
}

/// Refuses to go on against a database that is behind this binary.
pub async fn ensure_migrated(database_url: &str) -> Result<(), DbSetupError> {
    let pending = blocking_harness(database_url, |conn| {
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| DbSetupError::Migration(e.to_string()))?;
        Ok(pending
            .iter()
            .map(|m| m.name().to_string())
            .collect::<Vec<_>>())
    })
    .await?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(DbSetupError::Pending(pending.join(", ")))
    }
}

/// Every migration this binary carries, by name (the test template is keyed on them).
pub fn migration_names() -> Vec<String> {
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map(|ms| ms.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}
