//! Groups, members and invitations as stored and as shown.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    db::schema::{group_invites, groups},
    error::{AppError, Code},
};

crate::text_enum! {
    /// A member's part in a group. Hosts run it; moderators keep the room in
    /// order; members talk.
    pub enum GroupRole {
        Host = "host",
        Moderator = "moderator",
        Member = "member",
    }
}

impl GroupRole {
    /// Hosts and moderators delete messages, mute and remove members.
    pub fn moderates(self) -> bool {
        matches!(self, GroupRole::Host | GroupRole::Moderator)
    }
}

crate::text_enum! {
    /// Which way an invitation goes.
    pub enum InviteKind {
        /// A host or moderator asked someone in.
        Invite = "invite",
        /// Someone asked to join a listed group.
        Request = "request",
    }
}

crate::text_enum! {
    /// Where an invitation or request stands.
    pub enum InviteStatus {
        Pending = "pending",
        Accepted = "accepted",
        Declined = "declined",
        Cancelled = "cancelled",
    }
}

/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME: chrono::Duration = chrono::Duration::days(14);

impl InviteStatus {
    /// The status after the invitee (or, for a request, a host) answers; a
    /// 409 `already_answered` once it is no longer pending.
    pub fn answer(self, accept: bool) -> Result<InviteStatus, AppError> {
        match (self, accept) {
            (InviteStatus::Pending, true) => Ok(InviteStatus::Accepted),
            (InviteStatus::Pending, false) => Ok(InviteStatus::Declined),
            (InviteStatus::Cancelled, _) => Err(AppError::conflict(
                Code::AlreadyAnswered,
                "The group's hosts withdrew this invitation.",
            )),
            (answered, _) => Err(AppError::conflict(
                Code::AlreadyAnswered,
                format!("This was already answered ({answered})."),
            )),
        }
    }

    /// A host withdraws a pending invitation or request.
    pub fn revoke(self) -> Result<InviteStatus, AppError> {
        match self {
            InviteStatus::Pending => Ok(InviteStatus::Cancelled),
            answered => Err(AppError::conflict(
                Code::AlreadyAnswered,
                format!("This was already answered ({answered})."),
            )),
        }
    }
}

impl Invite {
    /// When an invitation stops working; requests to join do not expire.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        (self.kind == InviteKind::Invite).then(|| self.created_at + INVITATION_LIFETIME)
    }
}

/// Someone's standing in a group.
#[derive(Debug, Clone)]
pub struct Membership {
    pub role: GroupRole,
    pub muted_until: Option<DateTime<Utc>>,
}

impl Membership {
    pub fn muted_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.muted_until.filter(|until| *until > now)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = groups)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Group {
    pub id: Uuid,
    pub name: String,
    pub topic: String,
    pub description: String,
    pub listed: bool,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub id: Uuid,
    pub name: String,
    pub topic: String,
    pub description: String,
    /// Listed groups can be found by anyone and asked to join; the others are invite-only.
    pub listed: bool,
    pub member_count: i64,
    /// Your role, or null when you are not a member.
    pub my_role: Option<GroupRole>,
    /// You asked to join and a host has not answered yet.
    pub join_requested: bool,
    pub created_at: DateTime<Utc>,
}

impl GroupView {
    pub fn new(
        group: Group,
        member_count: i64,
        my_role: Option<GroupRole>,
        join_requested: bool,
    ) -> Self {
        Self {
            id: group.id,
            name: group.name,
            topic: group.topic,
            description: group.description,
            listed: group.listed,
            member_count,
            my_role,
            join_requested,
            created_at: group.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: Uuid,
    pub display_name: String,
    pub role: GroupRole,
    pub joined_at: DateTime<Utc>,
    /// Set while the member may not post.
    pub muted_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = group_invites)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Invite {
    pub id: Uuid,
    pub group_id: Uuid,
    pub kind: InviteKind,
    pub email: String,
    pub user_id: Option<Uuid>,
    pub invited_by: Option<Uuid>,
    pub status: InviteStatus,
    pub created_at: DateTime<Utc>,
}

/// An invitation to a group, or a request to join one.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub id: Uuid,
    pub group_id: Uuid,
    pub group_name: String,
    pub kind: InviteKind,
    pub email: String,
    /// Who sent the invitation, or who asks to join.
    pub from_name: Option<String>,
    pub status: InviteStatus,
    pub created_at: DateTime<Utc>,
    /// When an invitation stops working (14 days after it was sent); null for requests.
    pub expires_at: Option<DateTime<Utc>>,
}
