//! The `kith` command: serve, migrate, seed and the operator tools.

use clap::{Parser, Subcommand};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use kith::{Application, Clock, Settings, db, seed};
use secrecy::ExposeSecret;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// mimalloc hands large freed blocks (argon2's 19 MiB work memory) back to
/// the system, where glibc's per-thread arenas would keep them for good.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kith",
    version,
    about = "Referral network and peer consultation for therapists"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the web client (needs a migrated database).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Insert demo accounts and N synthetic clinicians (deterministic per seed).
    Seed {
        #[arg(long, default_value_t = 300)]
        profiles: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Give an existing account a role (e.g. make the first administrator).
    SetRole {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["clinician", "supervisor", "admin"])]
        role: String,
    },
    /// Rebuild the search index from PostgreSQL beside the live one, then switch.
    Reindex,
    /// Regenerate the synonyms in search-config/clinicians.json from the taxonomy.
    SearchConfig {
        /// Only check that the file is current (exit 1 if not).
        #[arg(long)]
        check: bool,
    },
    /// Check the audit log's keyed chain against the checkpoints kept
    /// outside PostgreSQL (the data directory's file, and any head given).
    AuditVerify {
        /// A checkpoint file other than the data directory's.
        #[arg(long)]
        checkpoints: Option<std::path::PathBuf>,
        /// A head from a checkpoint email: its sequence number and link.
        #[arg(long, num_args = 2, value_names = ["SEQ", "HASH"])]
        checkpoint: Option<Vec<String>>,
    },
    /// Print the OpenAPI document.
    Openapi,
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("KITH_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let json = std::env::var("KITH_LOG_FORMAT").is_ok_and(|f| f == "json");
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt::layer().json()).init();
    } else {
        registry.with(fmt::layer().compact()).init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kith: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn load_taxonomy(pool: &db::DbPool) -> anyhow::Result<kith::profiles::taxonomy::Taxonomy> {
    let mut conn = pool.get().await?;
    Ok(kith::profiles::taxonomy::Taxonomy::load(&mut conn).await?)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    kith::install_crypto_provider();
    if let Command::Openapi = cli.command {
        println!(
            "{}",
            serde_json::to_string_pretty(&kith::openapi::document())?
        );
        return Ok(());
    }
    if matches!(cli.command, Command::AuditVerify { .. })
        && std::env::var_os("KITH_AUDIT_KEY").is_none()
    {
        // Checking with a key made up now would call every entry forged.
        let dir = std::env::var_os("KITH_DATA_DIR")
            .map_or_else(|| "./data".into(), std::path::PathBuf::from);
        anyhow::ensure!(
            dir.join("audit-key").exists(),
            "no audit key: set KITH_AUDIT_KEY, or KITH_DATA_DIR to the server's data directory ({} has no audit-key)",
            dir.display()
        );
    }
    let settings = Settings::from_env()?;
    match cli.command {
        Command::Serve => {
            let started = std::time::Instant::now();
            let app = Application::build(settings, Clock::system()).await?;
            tracing::info!(addr = %app.addr(), ready_in_ms = started.elapsed().as_millis() as u64, "Kith is serving");
            let handle = app.handle();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                handle.stop(true).await;
            });
            app.run().await?;
        }
        Command::Migrate => {
            // With KITH_MIGRATION_URL the owner migrates, and DATABASE_URL's
            // role gets the application's privileges (and no more).
            let owner = settings
                .migration_url
                .as_ref()
                .map_or(settings.database_url(), |u| u.expose_secret());
            let applied = db::run_migrations(owner).await?;
            if settings.migration_url.is_some() {
                let role = db::current_role(settings.database_url()).await?;
                db::grant_to(owner, &role).await?;
                println!("The role {role} may read and write, and only add to the audit log.");
            }
            if applied.is_empty() {
                println!("The database is up to date.");
            } else {
                println!(
                    "Applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                );
            }
        }
        Command::Seed { profiles, seed } => {
            db::ensure_migrated(settings.database_url()).await?;
            let pool = db::pool(settings.database_url(), 5)?;
            let taxonomy = load_taxonomy(&pool).await?;
            let started = std::time::Instant::now();
            let report = seed::run(
                &pool,
                &taxonomy,
                Clock::system().now(),
                &seed::SeedOptions { profiles, seed },
            )
            .await?;
            println!(
                "Seeded {} account(s) ({} already present) in {:.1} s. Demo sign-ins ({}): {}",
                report.inserted,
                report.already_present,
                started.elapsed().as_secs_f64(),
                seed::DEMO_PASSWORD,
                seed::DEMO_ACCOUNTS
                    .iter()
                    .map(|a| a.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Command::SetRole { email, role } => {
            use kith::db::schema::users;
            let mut conn =
                diesel_async::AsyncPgConnection::establish_conn(settings.database_url()).await?;
            let n =
                diesel::update(users::table.filter(users::email.eq(email.trim().to_lowercase())))
                    .set(users::role.eq(&role))
                    .execute(&mut conn)
                    .await?;
            anyhow::ensure!(n == 1, "no account with the email {email}");
            kith::audit::record(
                &conn,
                Clock::system().now(),
                &kith::http::RequestMeta::default(),
                kith::audit::Event::new(
                    None,
                    kith::audit::Action::AccountRoleChanged,
                    "user",
                    &email,
                )
                .detail(serde_json::json!({"to": role, "via": "cli"})),
            )
            .await?;
            println!("{email} is now {role}.");
        }
        Command::Reindex => {
            use kith::search::{
                SearchIndex, config::SearchConfig, embedded, indexer, meili::MeiliEngine,
            };
            db::ensure_migrated(settings.database_url()).await?;
            let pool = db::pool(settings.database_url(), 4)?;
            let taxonomy = load_taxonomy(&pool).await?;
            let clock = Clock::system();
            let started = std::time::Instant::now();
            let (count, engine) = match &settings.meili_url {
                Some(url) => {
                    use secrecy::ExposeSecret;
                    let key = settings
                        .meili_master_key
                        .as_ref()
                        .map(|k| k.expose_secret().to_string());
                    let engine = MeiliEngine::new(
                        url,
                        key.as_deref(),
                        &SearchConfig::load().map_err(anyhow::Error::msg)?,
                    )?;
                    let count = indexer::reindex(&pool, &taxonomy, &clock, async |docs| {
                        engine.apply_settings().await?;
                        engine.rebuild(docs).await
                    })
                    .await?;
                    (count, "meilisearch")
                }
                None => {
                    let root = settings.data_dir.join("search");
                    let count = indexer::reindex(&pool, &taxonomy, &clock, async |docs| {
                        tokio::task::spawn_blocking(move || embedded::build_beside(&root, &docs))
                            .await
                            .map_err(|e| kith::search::SearchError::Index(e.to_string()))?
                    })
                    .await?;
                    (count, "embedded")
                }
            };
            println!(
                "Indexed {count} clinicians with the {engine} engine in {:.1} s.",
                started.elapsed().as_secs_f64()
            );
        }
        Command::SearchConfig { check } => {
            use kith::search::config::{CONFIG_PATH, regenerate};
            let pool = db::pool(settings.database_url(), 2)?;
            let taxonomy = load_taxonomy(&pool).await?;
            let fresh = regenerate(&taxonomy).map_err(anyhow::Error::msg)?;
            let current = std::fs::read_to_string(CONFIG_PATH).unwrap_or_default();
            if check {
                anyhow::ensure!(
                    current == fresh,
                    "{CONFIG_PATH} is out of date: run `kith search-config`"
                );
                println!("{CONFIG_PATH} is current.");
            } else {
                std::fs::write(CONFIG_PATH, fresh)?;
                println!("Wrote {CONFIG_PATH}; rebuild so the binary carries it.");
            }
        }
        Command::AuditVerify {
            checkpoints,
            checkpoint,
        } => {
            use kith::audit::chain;
            let pool = db::pool(settings.database_url(), 2)?;
            let mut conn = pool.get().await?;
            let key = chain::ChainKey::new(&settings.audit_key);
            let file = match checkpoints {
                Some(path) => chain::Checkpoints::at(path),
                None => chain::Checkpoints::in_data_dir(&settings.data_dir),
            };
            let mut heads = file.read()?;
            if let Some([seq, hash]) = checkpoint.as_deref() {
                heads.push(chain::Head {
                    seq: seq.parse().map_err(|_| {
                        anyhow::anyhow!("--checkpoint: `{seq}` is not a sequence number")
                    })?,
                    hash: hash.to_ascii_lowercase(),
                });
            }
            heads.sort_by_key(|h| h.seq);
            let started = std::time::Instant::now();
            let report = chain::verify(&mut conn, &key, &heads).await?;
            eprintln!(
                "checked {} links against {} checkpoints ({}) in {:.2} s",
                report.sealed,
                report.checkpoints_checked,
                file.path().display(),
                started.elapsed().as_secs_f64()
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(
                report.intact,
                "the audit log does not verify: {}",
                report.problems.join(" ")
            );
        }
        Command::Openapi => {}
    }
    Ok(())
}

trait EstablishConn: Sized {
    async fn establish_conn(url: &str) -> anyhow::Result<Self>;
}

impl EstablishConn for diesel_async::AsyncPgConnection {
    async fn establish_conn(url: &str) -> anyhow::Result<Self> {
        use diesel_async::AsyncConnection;
        Ok(diesel_async::AsyncPgConnection::establish(url).await?)
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
