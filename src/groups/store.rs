//! The group queries every action shares: membership and the checks built
//! on it (member, moderator, host), loading a group and how a viewer sees it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{Group, GroupRole, GroupView, InviteKind, InviteStatus, Membership};
use crate::{
    db::schema::{group_invites, group_members, groups},
    error::{AppError, AppResult},
};

pub(super) fn no_group() -> AppError {
    AppError::not_found("No such group.")
}

/// Someone's role and mute in a group, or None when they are not a member.
pub async fn membership(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<Option<Membership>> {
    let row: Option<(GroupRole, Option<DateTime<Utc>>)> = group_members::table
        .find((group, user))
        .select((group_members::role, group_members::muted_until))
        .first(conn)
        .await
        .optional()?;
    row.map(|(role, muted_until)| Ok(Membership { role, muted_until }))
        .transpose()
}

/// The caller's membership, or 404 when the group is hidden from them
/// (invite-only and not a member) and 403 when it is listed.
pub async fn require_member(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<Membership> {
    if let Some(m) = membership(conn, group, user).await? {
        return Ok(m);
    }
    let listed: Option<bool> = groups::table
        .find(group)
        .select(groups::listed)
        .first(conn)
        .await
        .optional()?;
    match listed {
        Some(true) => Err(AppError::forbidden(
            "Only members of this group can do this. Ask to join first.",
        )),
        _ => Err(no_group()),
    }
}

pub(super) async fn require_moderator(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<Membership> {
    let m = require_member(conn, group, user).await?;
    if m.role.moderates() {
        return Ok(m);
    }
    // The host of a live session moderates while it lasts.
    if hosts_live(conn, group, user).await? {
        return Ok(Membership {
            role: GroupRole::Moderator,
            muted_until: m.muted_until,
        });
    }
    Err(AppError::forbidden(
        "Only the group's hosts and moderators can do this.",
    ))
}

pub(super) async fn require_host(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<Membership> {
    let m = require_member(conn, group, user).await?;
    if m.role == GroupRole::Host {
        Ok(m)
    } else {
        Err(AppError::forbidden("Only the group's hosts can do this."))
    }
}

pub(super) async fn load_group(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Group> {
    groups::table
        .find(id)
        .select(Group::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(no_group)
}

pub(super) async fn member_count(conn: &mut AsyncPgConnection, group: Uuid) -> AppResult<i64> {
    Ok(group_members::table
        .filter(group_members::group_id.eq(group))
        .count()
        .get_result(conn)
        .await?)
}

pub(super) async fn hosts(conn: &mut AsyncPgConnection, group: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(group_members::table
        .filter(
            group_members::group_id
                .eq(group)
                .and(group_members::role.eq(GroupRole::Host)),
        )
        .select(group_members::user_id)
        .load(conn)
        .await?)
}

pub(super) async fn view(
    conn: &mut AsyncPgConnection,
    group: Group,
    user: Uuid,
) -> AppResult<GroupView> {
    let mut shown = views(conn, vec![group], user).await?;
    shown.pop().ok_or_else(no_group)
}

/// Groups as `user` sees them, with three queries however many groups there are.
pub(super) async fn views(
    conn: &mut AsyncPgConnection,
    groups: Vec<Group>,
    user: Uuid,
) -> AppResult<Vec<GroupView>> {
    let ids: Vec<Uuid> = groups.iter().map(|g| g.id).collect();
    let counts: HashMap<Uuid, i64> = group_members::table
        .filter(group_members::group_id.eq_any(&ids))
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load::<(Uuid, i64)>(conn)
        .await?
        .into_iter()
        .collect();
    let roles: HashMap<Uuid, GroupRole> = group_members::table
        .filter(
            group_members::group_id
                .eq_any(&ids)
                .and(group_members::user_id.eq(user)),
        )
        .select((group_members::group_id, group_members::role))
        .load::<(Uuid, GroupRole)>(conn)
        .await?
        .into_iter()
        .collect();
    let requested: Vec<Uuid> = group_invites::table
        .filter(
            group_invites::group_id
                .eq_any(&ids)
                .and(group_invites::user_id.eq(user))
                .and(group_invites::kind.eq(InviteKind::Request))
                .and(group_invites::status.eq(InviteStatus::Pending)),
        )
        .select(group_invites::group_id)
        .load(conn)
        .await?;
    groups
        .into_iter()
        .map(|g| {
            let role = roles.get(&g.id).copied();
            let count = counts.get(&g.id).copied().unwrap_or(0);
            let asked = role.is_none() && requested.contains(&g.id);
            Ok(GroupView::new(g, count, role, asked))
        })
        .collect()
}

/// Whether `user` hosts the session that is live in `group` now.
pub async fn hosts_live(conn: &mut AsyncPgConnection, group: Uuid, user: Uuid) -> AppResult<bool> {
    use crate::db::schema::group_sessions;
    let hosting: i64 = group_sessions::table
        .filter(
            group_sessions::group_id
                .eq(group)
                .and(group_sessions::status.eq(super::sessions::model::SessionStatus::Live))
                .and(group_sessions::host_id.eq(user)),
        )
        .count()
        .get_result(conn)
        .await?;
    Ok(hosting > 0)
}
