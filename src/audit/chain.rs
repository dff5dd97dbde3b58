//! The audit chain: each audit row, in the order it was sealed, gets a link
//! `HMAC-SHA-256(key, previous link ‖ sequence number ‖ row)` in
//! `audit_chain`. The key (`KITH_AUDIT_KEY`) never enters PostgreSQL, so
//! nobody who holds only the database can edit, insert, reorder or re-seal
//! an entry without the chain breaking; and every sealed head is also
//! written outside PostgreSQL (a checkpoint: an append-only file in the data
//! directory and, hourly, an email), so deleting entries at the tail is
//! caught against the last checkpoint.
//!
//! The application's own database role may only INSERT and SELECT on the
//! audit tables (`db::roles`); the triggers refuse UPDATE, DELETE and
//! TRUNCATE to the owner as well, unless the owner first disables them,
//! which the chain then shows.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::AuditEntry;
use crate::db::schema::{audit_chain, audit_log, audit_pending};

/// The chain's key, from `KITH_AUDIT_KEY`.
#[derive(Clone)]
pub struct ChainKey(Hmac<Sha256>);

impl ChainKey {
    pub fn new(key: &SecretString) -> Self {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length
        Self(Hmac::new_from_slice(key.expose_secret().as_bytes()).expect("any key length"))
    }

    /// The link of `entry` at `seq` after `prev`.
    pub fn link(&self, prev: &[u8], seq: i64, entry: &AuditEntry) -> [u8; 32] {
        let content = serde_json::json!([
            entry.id,
            entry.at.timestamp_micros(),
            entry.actor_id,
            entry.action,
            entry.entity_type,
            entry.entity_id,
            entry.ip,
            entry.request_id,
            entry.detail,
        ]);
        let mut mac = self.0.clone();
        mac.update(prev);
        mac.update(&seq.to_be_bytes());
        mac.update(content.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The link before the first.
const GENESIS: [u8; 32] = [0; 32];
const SEAL_LOCK: i64 = 0x6b69_7468_0001;

/// The newest link: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Head {
    pub seq: i64,
    /// The link, hex.
    pub hash: String,
}

/// Seals up to `batch` pending rows onto the chain, in id order. Returns the
/// new head when it sealed any; `None` when nothing was pending or another
/// instance holds the sealer lock.
pub async fn seal_pending(
    conn: &mut AsyncPgConnection,
    key: &ChainKey,
    batch: i64,
) -> QueryResult<Option<(Head, usize)>> {
    conn.transaction(async |conn| {
        let locked: bool = diesel::select(
            diesel::dsl::sql::<diesel::sql_types::Bool>("pg_try_advisory_xact_lock(")
                .bind::<diesel::sql_types::BigInt, _>(SEAL_LOCK)
                .sql(")"),
        )
        .get_result(conn)
        .await?;
        if !locked {
            return Ok(None);
        }
        let pending: Vec<AuditEntry> = audit_pending::table
            .inner_join(audit_log::table.on(audit_log::id.eq(audit_pending::entry_id)))
            .order(audit_pending::entry_id.asc())
            .limit(batch)
            .select(AuditEntry::as_select())
            .load(conn)
            .await?;
        if pending.is_empty() {
            return Ok(None);
        }
        let last: Option<(i64, Vec<u8>)> = audit_chain::table
            .order(audit_chain::seq.desc())
            .select((audit_chain::seq, audit_chain::hash))
            .first(conn)
            .await
            .optional()?;
        let (mut seq, mut prev) = last.unwrap_or((0, GENESIS.to_vec()));
        let (mut seqs, mut ids, mut hashes) = (vec![], vec![], vec![]);
        for entry in &pending {
            seq += 1;
            let hash = key.link(&prev, seq, entry);
            seqs.push(seq);
            ids.push(entry.id);
            hashes.push(hash.to_vec());
            prev = hash.to_vec();
        }
        use diesel::sql_types::{Array, BigInt, Bytea};
        diesel::sql_query(
            "INSERT INTO audit_chain (seq, entry_id, hash) SELECT * FROM unnest($1, $2, $3)",
        )
        .bind::<Array<BigInt>, _>(&seqs)
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Bytea>, _>(&hashes)
        .execute(conn)
        .await?;
        diesel::delete(audit_pending::table.filter(audit_pending::entry_id.eq_any(&ids)))
            .execute(conn)
            .await?;
        Ok(Some((
            Head {
                seq,
                hash: hex::encode(&prev),
            },
            pending.len(),
        )))
    })
    .await
}

/// The sealed checkpoints: one line per sealed head, `seq hash at`, only
/// ever appended to.
pub struct Checkpoints {
    path: PathBuf,
}

impl Checkpoints {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("audit-checkpoints"),
        }
    }

    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, head: &Head, at: DateTime<Utc>) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{} {} {}", head.seq, head.hash, at.to_rfc3339())
    }

    /// Every checkpoint in the file (none when there is no file yet).
    pub fn read(&self) -> std::io::Result<Vec<Head>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut heads = vec![];
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line?;
            let mut parts = line.split_whitespace();
            let head = match (parts.next().map(str::parse), parts.next()) {
                (Some(Ok(seq)), Some(hash)) if hash.len() == 64 => Head {
                    seq,
                    hash: hash.to_string(),
                },
                // A line nobody wrote is itself a sign of tampering.
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} line {} is not a checkpoint (`seq hash time`)",
                            self.path.display(),
                            n + 1
                        ),
                    ));
                }
            };
            heads.push(head);
        }
        Ok(heads)
    }
}

/// What verification found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainReport {
    /// The chain is whole, every checkpoint matches, and nothing is stranded.
    pub intact: bool,
    /// Links checked.
    pub sealed: i64,
    /// Rows waiting for the sealer.
    pub unsealed: i64,
    /// The first sequence number whose link or row does not match.
    pub first_broken_seq: Option<i64>,
    /// Checkpoints compared with the chain.
    pub checkpoints_checked: usize,
    /// Audit rows neither sealed nor waiting to be (inserted past the sealer,
    /// or their place in the queue removed).
    pub stranded: i64,
    /// Sentences a person can read: what is wrong, where.
    pub problems: Vec<String>,
}

/// One link as stored, with its row.
type Link = (i64, Vec<u8>, AuditEntry);

/// Walks the whole chain from the start, and compares it with `checkpoints`.
pub async fn verify(
    conn: &mut AsyncPgConnection,
    key: &ChainKey,
    checkpoints: &[Head],
) -> QueryResult<ChainReport> {
    let unsealed: i64 = audit_pending::table.count().get_result(conn).await?;
    let stranded: i64 = audit_log::table
        .left_join(audit_chain::table.on(audit_chain::entry_id.eq(audit_log::id)))
        .left_join(audit_pending::table.on(audit_pending::entry_id.eq(audit_log::id)))
        .filter(
            audit_chain::seq
                .is_null()
                .and(audit_pending::entry_id.is_null()),
        )
        .count()
        .get_result(conn)
        .await?;
    let mut problems = vec![];
    if stranded > 0 {
        let noun = if stranded == 1 {
            "entry is"
        } else {
            "entries are"
        };
        problems.push(format!(
            "{stranded} audit {noun} neither sealed nor waiting to be sealed (inserted past the sealer)."
        ));
    }
    let mut wanted = checkpoints.iter().peekable();
    let mut checked = 0;
    let mut prev = GENESIS.to_vec();
    let mut expected = 0i64;
    let mut first_broken = None;
    let mut after = 0i64;
    'pages: loop {
        let page: Vec<Link> = audit_chain::table
            .inner_join(audit_log::table.on(audit_log::id.eq(audit_chain::entry_id)))
            .filter(audit_chain::seq.gt(after))
            .order(audit_chain::seq.asc())
            .limit(20_000)
            .select((audit_chain::seq, audit_chain::hash, AuditEntry::as_select()))
            .load(conn)
            .await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = *last;
        for (seq, hash, entry) in &page {
            expected += 1;
            if *seq != expected {
                problems.push(format!(
                    "Link {expected} is missing: the chain jumps to {seq} (entries deleted)."
                ));
                first_broken = Some(expected);
                break 'pages;
            }
            if key.link(&prev, *seq, entry).as_slice() != hash.as_slice() {
                problems.push(format!(
                    "Link {seq} (audit entry {}) does not match its row: edited, inserted, reordered or re-sealed.",
                    entry.id
                ));
                first_broken = Some(*seq);
                break 'pages;
            }
            while let Some(point) = wanted.next_if(|c| c.seq <= *seq) {
                checked += 1;
                if point.seq == *seq && point.hash != hex::encode(hash) {
                    problems.push(format!(
                        "Link {seq} differs from the checkpoint written when it was sealed: the chain was rebuilt from there."
                    ));
                    first_broken = Some(*seq);
                    break 'pages;
                }
            }
            prev.clone_from(hash);
        }
    }
    let sealed = if first_broken.is_some() {
        expected - 1
    } else {
        expected
    };
    if first_broken.is_none()
        && let Some(point) = wanted.next()
    {
        checked += 1;
        problems.push(format!(
            "The last checkpoint names link {}, but the chain ends at {sealed}: entries were deleted at the end.",
            point.seq
        ));
        first_broken = Some(sealed + 1);
    }
    Ok(ChainReport {
        intact: problems.is_empty(),
        sealed,
        unsealed,
        first_broken_seq: first_broken,
        checkpoints_checked: checked,
        stranded,
        problems,
    })
}

/// Where each sealed head goes besides the chain itself.
pub struct Sinks {
    pub checkpoints: Checkpoints,
    /// The compliance address the head is emailed to, at most hourly.
    pub email: Option<String>,
    /// Where the email's links point.
    pub public_url: String,
}

/// Background sealer: seals what is pending every half second, writes each
/// new head to the checkpoint file, and emails the head hourly when an
/// address is set. Runs until the process ends.
pub async fn run_sealer(
    pool: crate::db::DbPool,
    key: ChainKey,
    sinks: Sinks,
    clock: crate::clock::Clock,
) {
    let period = std::time::Duration::from_millis(500);
    let emailed: std::sync::Mutex<Option<DateTime<Utc>>> = std::sync::Mutex::new(None);
    crate::worker::every(period, "audit sealing", || async {
        let mut conn = pool.get().await?;
        loop {
            let Some((head, sealed)) = seal_pending(&mut conn, &key, 2_000).await? else {
                break;
            };
            let now = clock.now();
            sinks.checkpoints.append(&head, now)?;
            if let Some(to) = &sinks.email {
                let due = {
                    let mut last = emailed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let due = last.is_none_or(|t| now - t >= chrono::Duration::hours(1));
                    if due {
                        *last = Some(now);
                    }
                    due
                };
                if due {
                    checkpoint_email(&mut conn, &sinks.public_url, to, &head, now).await?;
                }
            }
            if sealed < 2_000 {
                break;
            }
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
}

/// Queues the head to the compliance address: a copy no one with the
/// database alone can take back.
pub async fn checkpoint_email(
    conn: &mut AsyncPgConnection,
    public_url: &str,
    to: &str,
    head: &Head,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    crate::notify::email_address(
        conn,
        public_url,
        to,
        &format!("Kith audit checkpoint {}", head.seq),
        &format!(
            "The audit log was sealed up to entry {} at {}.\n\nHead link: {}\n\nKeep this message: `kith audit-verify --checkpoint {} {}` proves the log still holds every entry up to it.",
            head.seq,
            at.to_rfc3339(),
            head.hash,
            head.seq,
            head.hash
        ),
        None,
        at,
    )
    .await
}
