//! Typed settings, read from environment variables with local defaults.
//! Secrets are `SecretString`s so they never reach a log line.

use std::{path::PathBuf, time::Duration};

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

pub const DEFAULT_DATABASE_URL: &str = "postgres://kith:kith@127.0.0.1:5432/kith";

/// Failed sign-in limits, shared by every instance through PostgreSQL.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Failures for one account from one address within `window` before that
    /// pair pauses for `lockout`: the attacker's address, not the owner's.
    pub per_pair: i32,
    /// Failures from one address within `window` (over any accounts) before
    /// it pauses for `lockout`.
    pub per_ip: i32,
    /// Failures for one account from all addresses within `window` before
    /// every further guess at it waits `ceiling_pause` — except from an
    /// address the account signed in from before, so a wide attack slows
    /// down without locking the owner out.
    pub per_account: i32,
    pub window: Duration,
    pub lockout: Duration,
    pub ceiling_pause: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_pair: 5,
            per_ip: 30,
            per_account: 50,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            ceiling_pause: Duration::from_secs(60),
        }
    }
}

/// How long each colleague has to answer a referral, by urgency.
#[derive(Clone, Debug)]
pub struct ResponseHours {
    pub urgent: i64,
    pub soon: i64,
    pub routine: i64,
}

impl Default for ResponseHours {
    fn default() -> Self {
        Self {
            urgent: 4,
            soon: 24,
            routine: 72,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: SecretString,
    /// Connections for requests, split between the worker threads (each
    /// opens its own); the background workers' pool may hold as many again.
    pub db_pool_size: usize,
    /// `host:port`; port 0 picks a free port (tests).
    pub addr: String,
    pub data_dir: PathBuf,
    pub jwt_secret: SecretString,
    /// Seals secrets kept in PostgreSQL (second-factor keys); every instance
    /// must share it.
    pub data_key: SecretString,
    /// Seals client contact details (`KITH_CONTACT_KEY`, older keys in
    /// `KITH_CONTACT_OLD_KEYS` still open what they sealed).
    pub contact_keys: ContactKeys,
    /// How long after a referral closes its contact details are kept.
    pub contact_retention: chrono::Duration,
    /// Keys the audit chain's HMAC (`KITH_AUDIT_KEY`); PostgreSQL never holds it.
    pub audit_key: SecretString,
    /// Where sealed audit checkpoints are also emailed, besides the data
    /// directory's checkpoint file.
    pub audit_checkpoint_email: Option<String>,
    /// A role that owns the schema, for migrations, when `DATABASE_URL` is
    /// the application's own, narrower role.
    pub migration_url: Option<SecretString>,
    pub allowed_origins: Vec<String>,
    /// Where links in emails point.
    pub public_url: String,
    pub meili_url: Option<String>,
    pub meili_master_key: Option<SecretString>,
    pub smtp_url: Option<SecretString>,
    /// The From: of every email.
    pub mail_from: String,
    /// Use `X-Forwarded-For` for the client address (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    pub workers: usize,
    pub access_token_ttl: Duration,
    /// A sign-in unused this long ends (the web client refreshes while active).
    pub refresh_idle_ttl: Duration,
    /// A sign-in ends this long after it started, however active.
    pub session_max_ttl: Duration,
    pub login_limits: LoginLimits,
    /// Registrations, links, invitations and referrals (see `limits`).
    pub limits: crate::limits::Limits,
    pub response_hours: ResponseHours,
    /// Directory with the web client; served at `/` when present.
    pub web_dir: PathBuf,
    /// Run background workers (audit sealer, later outboxes) in this process.
    pub run_workers: bool,
    pub rooms: RoomLimits,
    pub timeouts: Timeouts,
}

/// How long each stage of a request may take (the headers' own limit is
/// actix's, 5 seconds).
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// From the end of the headers to the last byte of the body; a slower
    /// body is answered 408 and its connection closed.
    pub body: Duration,
    /// From the start of the handler to its answer; a slower one is
    /// abandoned (its transaction rolled back) and answered 503.
    pub handler: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            body: Duration::from_secs(10),
            handler: Duration::from_secs(30),
        }
    }
}

/// Websocket rooms: heartbeats, flow control and rate limits.
#[derive(Clone, Debug)]
pub struct RoomLimits {
    /// How often the server pings each connection.
    pub heartbeat: Duration,
    /// A peer silent this long is dropped.
    pub peer_timeout: Duration,
    /// Frames waiting for one connection; a connection whose queue is full is
    /// dropped rather than slowing the room.
    pub queue: usize,
    /// Messages one person may post per `rate_window`, per instance.
    pub rate_messages: usize,
    pub rate_window: Duration,
    /// `join`, `resume` and `typing` frames one connection may send per
    /// `rate_window`.
    pub rate_control: usize,
    /// Most messages a `join` or `resume` replays; older ones are paged
    /// through `GET /groups/{id}/messages`.
    pub replay_cap: usize,
    /// Open room connections one person may hold on this instance.
    pub connections_per_person: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(10),
            peer_timeout: Duration::from_secs(30),
            queue: 256,
            rate_messages: 10,
            rate_window: Duration::from_secs(10),
            rate_control: 20,
            replay_cap: 200,
            connections_per_person: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("could not use the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

impl Settings {
    /// Reads the environment. The JWT secret, when not given, is generated
    /// once and kept in the data directory so restarts keep sessions valid.
    pub fn from_env() -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(var("KITH_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let addr = var("KITH_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = var("KITH_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        let allowed_origins = var("KITH_ALLOWED_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_else(|| {
                // A local run is opened as 127.0.0.1 or as localhost.
                let own = public_url.trim_end_matches('/').to_string();
                let mut origins = vec![own.clone()];
                if own.starts_with("http://127.0.0.1:") {
                    origins.push(own.replacen("127.0.0.1", "localhost", 1));
                }
                origins
            });
        let jwt_secret = secret_setting("KITH_JWT_SECRET", &data_dir, "jwt-secret")?;
        let data_key = secret_setting("KITH_DATA_KEY", &data_dir, "data-key")?;
        let contact_key = secret_setting("KITH_CONTACT_KEY", &data_dir, "contact-key")?;
        let older_contact_keys = var("KITH_CONTACT_OLD_KEYS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| long_enough("KITH_CONTACT_OLD_KEYS", k.to_string()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let audit_key = secret_setting("KITH_AUDIT_KEY", &data_dir, "audit-key")?;
        let contact_retention_days: i64 = parse_var("KITH_CONTACT_RETENTION_DAYS", 90)?;
        if !(1..=3650).contains(&contact_retention_days) {
            return Err(ConfigError::Invalid {
                name: "KITH_CONTACT_RETENTION_DAYS",
                reason: "must be from 1 to 3650 days".into(),
            });
        }
        let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let response_hours = ResponseHours {
            urgent: parse_var("KITH_RESPONSE_HOURS_URGENT", 4)?,
            soon: parse_var("KITH_RESPONSE_HOURS_SOON", 24)?,
            routine: parse_var("KITH_RESPONSE_HOURS_ROUTINE", 72)?,
        };
        if [
            response_hours.urgent,
            response_hours.soon,
            response_hours.routine,
        ]
        .iter()
        .any(|h| !(1..=24 * 30).contains(h))
        {
            return Err(ConfigError::Invalid {
                name: "KITH_RESPONSE_HOURS_*",
                reason: "each must be from 1 to 720 hours".into(),
            });
        }
        let referrals_per_hour = parse_var(
            "KITH_REFERRALS_PER_HOUR",
            crate::limits::Limits::default().referrals_per_sender.max,
        )?;
        if referrals_per_hour < 1 {
            return Err(ConfigError::Invalid {
                name: "KITH_REFERRALS_PER_HOUR",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            database_url: SecretString::from(
                var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            ),
            db_pool_size: parse_var("KITH_DB_POOL_SIZE", 16)?,
            addr,
            web_dir: PathBuf::from(var("KITH_WEB_DIR").unwrap_or_else(|| "web".into())),
            data_dir,
            jwt_secret,
            data_key,
            contact_keys: ContactKeys {
                current: contact_key,
                older: older_contact_keys,
            },
            contact_retention: chrono::Duration::days(contact_retention_days),
            audit_key,
            audit_checkpoint_email: var("KITH_AUDIT_CHECKPOINT_EMAIL"),
            migration_url: var("KITH_MIGRATION_URL").map(SecretString::from),
            allowed_origins,
            public_url,
            meili_url: var("MEILI_URL"),
            meili_master_key: var("MEILI_MASTER_KEY").map(SecretString::from),
            smtp_url: var("SMTP_URL").map(SecretString::from),
            mail_from: var("KITH_MAIL_FROM")
                .unwrap_or_else(|| "Kith <no-reply@kith.invalid>".into()),
            trust_forwarded_for: parse_var("KITH_TRUST_FORWARDED_FOR", false)?,
            workers: parse_var("KITH_WORKERS", default_workers)?,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_idle_ttl: Duration::from_secs(
                parse_var("KITH_IDLE_TIMEOUT_MINUTES", 30u64)? * 60,
            ),
            session_max_ttl: Duration::from_secs(12 * 60 * 60),
            login_limits: LoginLimits::default(),
            limits: crate::limits::Limits {
                referrals_per_sender: crate::limits::Window::per_hour(referrals_per_hour),
                ..Default::default()
            },
            response_hours,
            run_workers: parse_var("KITH_RUN_WORKERS", true)?,
            rooms: RoomLimits::default(),
            timeouts: Timeouts {
                body: Duration::from_secs(parse_var("KITH_BODY_TIMEOUT_SECONDS", 10u64)?),
                handler: Duration::from_secs(parse_var("KITH_HANDLER_TIMEOUT_SECONDS", 30u64)?),
            },
        })
    }

    /// Settings for a test or a tool: everything local, a fixed secret.
    pub fn for_database(database_url: &str, data_dir: PathBuf) -> Self {
        Self {
            database_url: SecretString::from(database_url.to_string()),
            db_pool_size: 8,
            addr: "127.0.0.1:0".into(),
            data_dir,
            jwt_secret: SecretString::from("test-secret-test-secret-test-secret-0123".to_string()),
            data_key: SecretString::from("test-data-key-test-data-key-test-data-key".to_string()),
            contact_keys: ContactKeys {
                current: SecretString::from("test-contact-key-test-contact-key-test".to_string()),
                older: vec![],
            },
            contact_retention: chrono::Duration::days(90),
            audit_key: SecretString::from("test-audit-key-test-audit-key-test-audit".to_string()),
            audit_checkpoint_email: None,
            migration_url: None,
            allowed_origins: vec!["http://127.0.0.1".into()],
            public_url: "http://127.0.0.1".into(),
            meili_url: None,
            meili_master_key: None,
            smtp_url: None,
            mail_from: "Kith <no-reply@kith.invalid>".into(),
            trust_forwarded_for: false,
            workers: 2,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_idle_ttl: Duration::from_secs(30 * 60),
            session_max_ttl: Duration::from_secs(12 * 60 * 60),
            login_limits: LoginLimits::default(),
            limits: crate::limits::Limits::default(),
            response_hours: ResponseHours::default(),
            web_dir: PathBuf::from("web"),
            run_workers: true,
            rooms: RoomLimits::default(),
            timeouts: Timeouts::default(),
        }
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

/// The current contact key and the older ones that still open.
#[derive(Clone, Debug)]
pub struct ContactKeys {
    pub current: SecretString,
    pub older: Vec<SecretString>,
}

fn long_enough(name: &'static str, value: String) -> Result<SecretString, ConfigError> {
    if value.len() < 32 {
        return Err(ConfigError::Invalid {
            name,
            reason: "use at least 32 characters".into(),
        });
    }
    Ok(SecretString::from(value))
}

/// A secret from the variable `name`, else from the data directory's `file`
/// (made when missing).
fn secret_setting(
    name: &'static str,
    data_dir: &std::path::Path,
    file: &str,
) -> Result<SecretString, ConfigError> {
    match var(name) {
        Some(value) => long_enough(name, value),
        None => load_or_create_secret(data_dir, file, name),
    }
}

/// A secret from the data directory's file `name`, made (48 random bytes,
/// hex) when missing: fine for one machine; set `variable` in production so
/// every instance shares it.
fn load_or_create_secret(
    data_dir: &std::path::Path,
    name: &str,
    variable: &str,
) -> Result<SecretString, ConfigError> {
    let path = data_dir.join(name);
    let io = |source| ConfigError::DataDir {
        path: path.clone(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 32 {
            return Ok(SecretString::from(existing));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, &secret).map_err(io)?;
    tracing::warn!(
        path = %path.display(),
        "{variable} is not set: generated one and kept it in the data directory; set it explicitly in production"
    );
    Ok(SecretString::from(secret))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
