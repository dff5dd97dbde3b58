//! The append-only audit log: who did what to which record, when, from where.
//! Rows are written inside the business transaction and sealed afterwards
//! onto a keyed hash chain by one sealer at a time (`chain`).

pub mod chain;
mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
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
        ReferralContactRefused = "referral.contact_refused",
        ReferralContactPurged = "referral.contact_purged",
        /// Free text sent although the privacy guard found a possible identifier.
        PrivacyOverride = "privacy.override",
        AuditRead = "audit.read",
        AttendanceRead = "session.attendance_read",
        LedgerRead = "supervision.ledger_read",
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
        SessionLineConfirmed = "session.line_confirmed",
        SessionLineDisputed = "session.line_disputed",
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
}
