//! The connection pool, the embedded migrations and helpers shared by features.

pub mod enums;
pub mod guard;
pub mod roles;
pub mod schema;

use crate::error::AppResult;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, QueryableByName};
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

/// A statement prepared once per connection and reused, keyed by its SQL text.
///
/// diesel prepares afresh, every time, any statement whose text could vary at
/// run time: every UPDATE, inserts of several rows or of optional values, and
/// raw SQL. PostgreSQL then parses and plans it on every call, and the
/// preparation holds the connection's statement cache for a round trip, which
/// stalls every query pipelined beside it. Keyed by the text itself, each
/// distinct text is one prepared statement, so a statement whose text depends
/// on a value is still answered correctly; wrap only statements with a few
/// distinct texts (never one that lists an unbounded number of values).
#[derive(Debug, Clone, Copy)]
pub struct Reused<Q>(pub Q);

/// `.reused()` on any statement: see [`Reused`].
pub trait Reuse: Sized {
    fn reused(self) -> Reused<Self> {
        Reused(self)
    }
}

impl<Q> Reuse for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Reused<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Reused<Q> {
    type QueryId = ();
    // No type id: the statement cache keys this statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Reused<Q> {
    type SqlType = Q::SqlType;
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

/// The role a URL connects as.
pub async fn current_role(database_url: &str) -> Result<String, DbSetupError> {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| DbSetupError::Migration(e.to_string()))?;
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "current_user::text",
    ))
    .get_result(&mut conn)
    .await
    .map_err(|e| DbSetupError::Migration(e.to_string()))
}

/// Gives `role` the application's privileges, connected as the owner.
pub async fn grant_to(owner_url: &str, role: &str) -> Result<(), DbSetupError> {
    use diesel_async::AsyncConnection;
    let mut conn = AsyncPgConnection::establish(owner_url)
        .await
        .map_err(|e| DbSetupError::Migration(e.to_string()))?;
    roles::grant_application(&mut conn, role)
        .await
        .map_err(|e| DbSetupError::Migration(e.to_string()))
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
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, RunQueryDsl};
    // Read, not set up: the application's role may not create tables (the
    // harness's own check would create its bookkeeping table). A database
    // without the table has every migration pending.
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| DbSetupError::Migration(e.to_string()))?;
    let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(&mut conn)
        .await
        .or_else(|e| match e {
            diesel::result::Error::DatabaseError(_, ref info)
                if info.message().contains("does not exist") =>
            {
                Ok(vec![])
            }
            e => Err(DbSetupError::Migration(e.to_string())),
        })?;
    let pending: Vec<String> = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(|e| DbSetupError::Migration(e.to_string()))?
        .iter()
        .filter(|m| {
            !applied
                .iter()
                .any(|a| a.version == m.name().version().to_string())
        })
        .map(|m| m.name().to_string())
        .collect();
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

/// How many times `retrying` runs work that keeps meeting contention.
pub const ATTEMPTS: u32 = 4;

/// Runs `work` (a whole transaction) again when PostgreSQL aborted it for a
/// serialisation failure or a deadlock, after a short jittered pause; the
/// error stands (409 `concurrent_update`) only if every attempt met one.
pub async fn retrying<T>(mut work: impl AsyncFnMut() -> AppResult<T>) -> AppResult<T> {
    let mut attempt = 1;
    loop {
        match work().await {
            Err(error) if error.transient && attempt < ATTEMPTS => {
                let jitter = rand::random::<u64>() % 20;
                tracing::info!(attempt, "contention: trying the transaction again");
                tokio::time::sleep(std::time::Duration::from_millis(
                    10 * u64::from(attempt) + jitter,
                ))
                .await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
