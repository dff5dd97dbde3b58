//! A database of each test's own, cloned from a migrated template.

use std::sync::OnceLock;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| kith::config::DEFAULT_DATABASE_URL.to_string())
}

fn url_for(db: &str) -> String {
    let base = admin_url();
    let (prefix, _) = base.rsplit_once('/').expect("DATABASE_URL ends in /dbname");
    format!("{prefix}/{db}")
}

/// The application role's password in tests.
const APP_PASSWORD: &str = "kith_app";

/// `url` as the application's own role, which may only add to the audit log.
fn as_application(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!(
        "{scheme}://{}:{APP_PASSWORD}@{host}",
        kith::db::roles::APPLICATION_ROLE
    )
}

/// Makes the application role when the cluster has none (the admin role
/// needs CREATEROLE, which `scripts/test` gives it).
async fn ensure_application_role(conn: &mut AsyncPgConnection) {
    let role = kith::db::roles::APPLICATION_ROLE;
    if !kith::db::roles::exists(conn, role)
        .await
        .expect("look up role")
    {
        diesel::sql_query(format!("CREATE ROLE {role} LOGIN PASSWORD '{APP_PASSWORD}'"))
            .execute(conn)
            .await
            .expect("create the application role (the role in DATABASE_URL needs CREATEROLE; scripts/test gives it)");
    }
    // The owner may end the application's connections (dropping a test
    // database, the tests that cut a connection) and see what they wait on.
    diesel::sql_query(format!("GRANT {role} TO current_user"))
        .execute(conn)
        .await
        .expect("make the owner a member of the application role");
}

/// The migrated template, named after the migrations it holds so that a
/// changed migration set builds a new one.
async fn template() -> String {
    static NAME: OnceLock<String> = OnceLock::new();
    let name = NAME
        .get_or_init(|| {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            for name in kith::db::migration_names() {
                hasher.update(name.as_bytes());
            }
            for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .expect("migrations dir")
            {
                let dir = entry.expect("entry").path();
                for f in ["up.sql", "down.sql"] {
                    hasher.update(std::fs::read(dir.join(f)).unwrap_or_default());
                }
            }
            format!("kith_tpl_{}", &hex::encode(hasher.finalize())[..12])
        })
        .clone();
    let mut conn = AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to PostgreSQL (see README: scripts/test)");
    diesel::sql_query("SELECT pg_advisory_lock(727274)")
        .execute(&mut conn)
        .await
        .expect("lock");
    ensure_application_role(&mut conn).await;
    let exists: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "(SELECT count(*) FROM pg_database WHERE datname = '{name}')"
    )))
    .get_result(&mut conn)
    .await
    .expect("look up template");
    if exists == 0 {
        let building = format!("{name}_building");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop");
        diesel::sql_query(format!("CREATE DATABASE {building}"))
            .execute(&mut conn)
            .await
            .expect("create template");
        kith::db::run_migrations(&url_for(&building))
            .await
            .expect("migrate template");
        kith::db::grant_to(&url_for(&building), kith::db::roles::APPLICATION_ROLE)
            .await
            .expect("grant the application role");
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
            .execute(&mut conn)
            .await
            .expect("rename");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut conn)
        .await
        .expect("unlock");
    name
}

/// A database of the test's own, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    /// As the owner (migrations, and what a test does behind the API).
    pub url: String,
    /// As the application's role: what the server connects with.
    pub app_url: String,
}

impl TestDb {
    /// A copy of the migrated template.
    pub async fn migrated() -> Self {
        let template = template().await;
        Self::create(Some(&template)).await
    }

    /// An empty database (for the migration test).
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!("kith_test_{}", Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin_url())
            .await
            .expect("connect");
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("create test database");
        Self {
            url: url_for(&name),
            app_url: as_application(&url_for(&name)),
            name,
        }
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to test db")
    }

    /// Runs SQL statements on the test database (for what the API cannot do).
    pub async fn run_sql(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        self.conn().await.batch_execute(sql).await.expect(sql);
    }

    /// One number from SQL (counts in tests).
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "({sql})"
        )))
        .get_result(&mut self.conn().await)
        .await
        .expect(sql)
    }

    /// One text from SQL.
    pub async fn scalar_text(&self, sql: &str) -> String {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(&format!(
            "({sql})"
        )))
        .get_result(&mut self.conn().await)
        .await
        .expect(sql)
    }

    pub async fn drop_now(&self) {
        let mut conn = AsyncPgConnection::establish(&admin_url())
            .await
            .expect("connect");
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; use a small runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url()).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}
