//! The append-only audit log: who did what to which record, when, from where.
//! Rows are written inside the business transaction and sealed afterwards
//! into a SHA-256 hash chain by one sealer at a time (see the migration).

mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    db::{Reuse, schema::audit_log},
    http::RequestMeta,
};

pub use routes::routes;

crate::text_enum! {
    /// Everything the audit log records, named `record.what_happened`.
    pub enum Action {
        AccountRegistered = "account.registered",
        AccountPasswordChanged = "account.password_changed",
        AccountEmailVerified = "account.email_verified",
        AccountSecondFactorOn = "account.second_factor_on",
        AccountSecondFactorOff = "account.second_factor_off",
        AccountRecoveryCodesRenewed = "account.recovery_codes_renewed",
        AccountEmailChangeRequested = "account.email_change_requested",
        AccountEmailChanged = "account.email_changed",
        AccountRegisteredAgain = "account.registered_again",
        AccountPasswordResetRequested = "account.password_reset_requested",
        AccountPasswordReset = "account.password_reset",
        AccountRoleChanged = "account.role_changed",
        AccountDisabled = "account.disabled",
        AccountEnabled = "account.enabled",
        LoginSucceeded = "login.succeeded",
        LoginFailed = "login.failed",
        LoginCodeFailed = "login.code_failed",
        LoginThrottled = "login.throttled",
        LoginRefusedDisabled = "login.refused_disabled",
        SignInEnded = "sign_in.ended",
        SignInRefreshReused = "sign_in.refresh_reused",
        ProfileUpdated = "profile.updated",
        ProfileLicenseVerified = "profile.license_verified",
        ProfileLicenseUnverified = "profile.license_unverified",
        ProfileLicenseChanged = "profile.license_changed",
        CapacityUpdated = "capacity.updated",
        CapacityConfirmed = "capacity.confirmed",
        ReferralSent = "referral.sent",
        ReferralRead = "referral.read",
        ReferralAccepted = "referral.accepted",
        ReferralDeclined = "referral.declined",
        ReferralWithdrawn = "referral.withdrawn",
        ReferralScheduled = "referral.scheduled",
        ReferralCompleted = "referral.completed",
        ReferralOfferExpired = "referral.offer_expired",
        ReferralContactReleased = "referral.contact_released",
        GroupCreated = "group.created",
        GroupEdited = "group.edited",
        GroupInvited = "group.invited",
        GroupInviteRevoked = "group.invite_revoked",
        GroupJoinRequested = "group.join_requested",
        GroupInviteAccepted = "group.invite_accepted",
        GroupInviteDeclined = "group.invite_declined",
        GroupRequestApproved = "group.request_approved",
        GroupRequestDeclined = "group.request_declined",
        GroupLeft = "group.left",
        GroupMemberRemoved = "group.member_removed",
        GroupRoleChanged = "group.role_changed",
        GroupMemberMuted = "group.member_muted",
        MessageDeleted = "message.deleted",
        SessionScheduled = "session.scheduled",
        SessionStarted = "session.started",
        SessionEnded = "session.ended",
        SessionCancelled = "session.cancelled",
        SessionLocked = "session.locked",
        SessionUnlocked = "session.unlocked",
        SessionSignedOff = "session.signed_off",
        SessionAttendanceAdjusted = "session.attendance_adjusted",
        DemoDataSeeded = "seed.demo_data",
    }
}

/// One thing to record.
pub struct Event<'a> {
    pub actor_id: Option<Uuid>,
    pub action: Action,
    pub entity_type: &'a str,
    pub entity_id: Option<String>,
    pub detail: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(
        actor_id: Option<Uuid>,
        action: Action,
        entity_type: &'a str,
        entity_id: impl ToString,
    ) -> Self {
        Self {
            actor_id,
            action,
            entity_type,
            entity_id: Some(entity_id.to_string()),
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    /// What a person did to their own account (signing in, changing a
    /// password, an address or a second factor).
    pub fn own_account(user: Uuid, action: Action) -> Self {
        Self::new(Some(user), action, "user", user)
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

pub async fn record(
    mut conn: &AsyncPgConnection,
    at: DateTime<Utc>,
    meta: &RequestMeta,
    event: Event<'_>,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(at),
            audit_log::actor_id.eq(event.actor_id),
            audit_log::action.eq(event.action),
            audit_log::entity_type.eq(event.entity_type),
            audit_log::entity_id.eq(event.entity_id),
            audit_log::ip.eq(meta.ip.as_deref()),
            audit_log::request_id.eq(meta.request_id.as_deref()),
            audit_log::detail.eq(event.detail),
        ))
        // Absent values change the text (DEFAULT): a few texts, each prepared once.
        .reused()
        .execute(&mut conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
    pub seq: Option<i64>,
    #[serde(skip)]
    pub prev_hash: Option<Vec<u8>>,
    #[serde(skip)]
    pub hash: Option<Vec<u8>>,
}

impl AuditEntry {
    /// The chain link: SHA-256 over the previous hash and this row's content.
    fn link(&self, prev: &[u8]) -> Vec<u8> {
        let content = serde_json::json!([
            self.id,
            self.at.timestamp_micros(),
            self.actor_id,
            self.action,
            self.entity_type,
            self.entity_id,
            self.ip,
            self.request_id,
            self.detail,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(prev);
        hasher.update(content.to_string().as_bytes());
        hasher.finalize().to_vec()
    }
}

const SEAL_LOCK: i64 = 0x6b69_7468_0001;

/// Seals up to `batch` unsealed rows onto the chain. Returns how many; 0 when
/// another instance holds the sealer lock.
pub async fn seal_pending(conn: &mut AsyncPgConnection, batch: i64) -> QueryResult<usize> {
    use diesel_async::AsyncConnection;
    conn.transaction(async |conn| {
        let locked: bool = diesel::select(
            diesel::dsl::sql::<diesel::sql_types::Bool>("pg_try_advisory_xact_lock(")
                .bind::<diesel::sql_types::BigInt, _>(SEAL_LOCK)
                .sql(")"),
        )
        .get_result(conn)
        .await?;
        if !locked {
            return Ok(0);
        }
        let last: Option<(Option<i64>, Option<Vec<u8>>)> = audit_log::table
            .filter(audit_log::seq.is_not_null())
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first(conn)
            .await
            .optional()?;
        let (mut seq, mut prev) = match last {
            Some((Some(seq), Some(hash))) => (seq, hash),
            _ => (0, vec![0u8; 32]),
        };
        let pending: Vec<AuditEntry> = audit_log::table
            .filter(audit_log::seq.is_null())
            .order(audit_log::id.asc())
            .limit(batch)
            .select(AuditEntry::as_select())
            .for_update()
            .load(conn)
            .await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let (mut ids, mut seqs, mut prevs, mut hashes) = (vec![], vec![], vec![], vec![]);
        for entry in &pending {
            seq += 1;
            let hash = entry.link(&prev);
            ids.push(entry.id);
            seqs.push(seq);
            prevs.push(prev.clone());
            hashes.push(hash.clone());
            prev = hash;
        }
        use diesel::sql_types::{Array, BigInt, Bytea};
        diesel::sql_query(
            "UPDATE audit_log a SET seq = v.seq, prev_hash = v.prev, hash = v.hash \
                 FROM unnest($1, $2, $3, $4) AS v(id, seq, prev, hash) WHERE a.id = v.id",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<BigInt>, _>(seqs)
        .bind::<Array<Bytea>, _>(prevs)
        .bind::<Array<Bytea>, _>(hashes)
        .execute(conn)
        .await?;
        Ok(pending.len())
    })
    .await
}

/// The result of walking the chain from the start.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ChainReport {
    pub intact: bool,
    pub sealed: i64,
    pub unsealed: i64,
    /// The first sequence number whose row or link does not match.
    pub first_broken_seq: Option<i64>,
}

pub async fn verify_chain(conn: &mut AsyncPgConnection) -> QueryResult<ChainReport> {
    let unsealed: i64 = audit_log::table
        .filter(audit_log::seq.is_null())
        .count()
        .get_result(conn)
        .await?;
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 0i64;
    let mut after = 0i64;
    loop {
        let page: Vec<AuditEntry> = audit_log::table
            .filter(audit_log::seq.gt(after))
            .order(audit_log::seq.asc())
            .limit(5_000)
            .select(AuditEntry::as_select())
            .load(conn)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq.unwrap_or(after);
        for entry in &page {
            expected_seq += 1;
            let seq = entry.seq.unwrap_or_default();
            let ok = seq == expected_seq
                && entry.prev_hash.as_deref() == Some(prev.as_slice())
                && entry.hash.as_deref() == Some(entry.link(&prev).as_slice());
            if !ok {
                return Ok(ChainReport {
                    intact: false,
                    sealed: expected_seq - 1,
                    unsealed,
                    first_broken_seq: Some(seq.min(expected_seq)),
                });
            }
            prev = entry.hash.clone().unwrap_or_default();
        }
    }
    Ok(ChainReport {
        intact: true,
        sealed: expected_seq,
        unsealed,
        first_broken_seq: None,
    })
}

/// Background sealer: runs until the process ends.
pub async fn run_sealer(pool: crate::db::DbPool) {
    let period = std::time::Duration::from_millis(500);
    crate::worker::every(period, "audit sealing", || async {
        let mut conn = pool.get().await?;
        while seal_pending(&mut conn, 2_000).await? == 2_000 {}
        Ok::<_, anyhow::Error>(())
    })
    .await;
}
