//! Answering an invitation or a request to join: the invitee accepts or
//! declines an invitation (until it expires), a host approves or declines a
//! request, and a host withdraws either while it is pending.

use actix_web::{HttpResponse, delete, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{Group, GroupRole, GroupView, Invite, InviteKind, InviteStatus};
use super::store::*;
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{group_invites, group_members, users as users_t},
    error::{AppError, AppResult, Code, ErrorBody},
    http::RequestMeta,
    notify,
    state::AppState,
};

/// Moves a pending invitation to `to` (answered or withdrawn by `by`) with the
/// guarded update.
async fn settle(
    conn: &mut AsyncPgConnection,
    invite: &Invite,
    to: InviteStatus,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    crate::guarded_update!(
        conn,
        group_invites::table,
        invite.id,
        group_invites::status,
        invite.status,
        (
            group_invites::status.eq(to),
            group_invites::responded_at.eq(now),
            group_invites::responded_by.eq(by),
        ),
        "invitation"
    )
}

/// The invitation, locked, if `user` may answer it: the invitee for an
/// invitation, a host for a request; 404 for anyone else.
pub(super) async fn answerable(
    conn: &mut AsyncPgConnection,
    invite_id: Uuid,
    user: Uuid,
) -> AppResult<(Invite, Group)> {
    let invite: Invite = group_invites::table
        .find(invite_id)
        .select(Invite::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AppError::not_found("No such invitation."))?;
    let group = load_group(conn, invite.group_id).await?;
    let allowed = if invite.kind == InviteKind::Invite {
        let email: String = users_t::table
            .find(user)
            .select(users_t::email)
            .first(conn)
            .await?;
        email == invite.email
    } else {
        matches!(membership(conn, invite.group_id, user).await?, Some(m) if m.role == GroupRole::Host)
    };
    if !allowed {
        return Err(AppError::not_found("No such invitation."));
    }
    Ok((invite, group))
}

pub(super) async fn answer(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    invite_id: Uuid,
    accept: bool,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let url = state.mailer.public_url.clone();
    let mut conn = state.pool.get().await?;
    let group_id = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let (invite, group) = answerable(conn, invite_id, auth.user_id).await?;
            let to = invite.status.answer(accept)?;
            if invite.expires_at().is_some_and(|at| at <= now) {
                return Err(AppError::conflict(
                    Code::InvitationExpired,
                    "This invitation expired; ask the group's hosts to invite you again.",
                ));
            }
            settle(conn, &invite, to, auth.user_id, now).await?;
            // The new member: the invitee, or whoever asked.
            let joiner = if invite.kind == InviteKind::Invite {
                auth.user_id
            } else {
                invite
                    .user_id
                    .ok_or_else(|| AppError::internal("request without a user"))?
            };
            if accept {
                diesel::insert_into(group_members::table)
                    .values((
                        group_members::group_id.eq(group.id),
                        group_members::user_id.eq(joiner),
                        group_members::role.eq(GroupRole::Member),
                        group_members::joined_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            // Tell the other side.
            let (to, message) = if invite.kind == InviteKind::Invite {
                let name: String = users_t::table
                    .find(auth.user_id)
                    .select(users_t::display_name)
                    .first(conn)
                    .await?;
                let verb = if accept { "accepted" } else { "declined" };
                (
                    invite.invited_by,
                    format!(
                        "{name} {verb} your invitation to \u{201c}{}\u{201d}.",
                        group.name
                    ),
                )
            } else {
                let verb = if accept { "approved" } else { "declined" };
                (
                    invite.user_id,
                    format!(
                        "Your request to join \u{201c}{}\u{201d} was {verb}.",
                        group.name
                    ),
                )
            };
            if let Some(to) = to {
                notify::tell(
                    conn,
                    &url,
                    to,
                    notify::Notice {
                        kind: if accept {
                            "group_joined"
                        } else {
                            "group_declined"
                        },
                        referral: None,
                        group: Some(group.id),
                        session: None,
                        message,
                        email_subject: None,
                    },
                    now,
                )
                .await?;
            }
            let action = match (invite.kind, accept) {
                (InviteKind::Invite, true) => audit::Action::GroupInviteAccepted,
                (InviteKind::Invite, false) => audit::Action::GroupInviteDeclined,
                (_, true) => audit::Action::GroupRequestApproved,
                (_, false) => audit::Action::GroupRequestDeclined,
            };
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(Some(auth.user_id), action, "group", group.id)
                    .detail(serde_json::json!({ "invite": invite_id, "member": joiner })),
            )
            .await?;
            Ok(group.id)
        })
        .await
    })
    .await?;
    let group = load_group(&mut conn, group_id).await?;
    let shown = view(&mut conn, group, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(shown))
}

/// Accepts an invitation (the invitee) or approves a join request (a host).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/group-invites/{id}/accept")]
pub(super) async fn accept_invite(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_verified("answer invitations and join groups")?;
    answer(&state, &meta, &auth, path.into_inner(), true).await
}

/// Declines an invitation (the invitee) or a join request (a host).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/group-invites/{id}/decline")]
pub(super) async fn decline_invite(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_verified("answer invitations and join groups")?;
    answer(&state, &meta, &auth, path.into_inner(), false).await
}

/// A host withdraws a pending invitation or request to join; the invitee can
/// no longer accept it.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path), ("invite_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[delete("/groups/{id}/invites/{invite_id}")]
pub(super) async fn revoke_invite(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (group, invite_id) = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        require_host(conn, group, auth.user_id).await?;
        let invite: Invite = group_invites::table
            .find(invite_id)
            .filter(group_invites::group_id.eq(group))
            .select(Invite::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| AppError::not_found("No such invitation."))?;
        let to = invite.status.revoke()?;
        settle(conn, &invite, to, auth.user_id, now).await?;
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::new(
                Some(auth.user_id),
                audit::Action::GroupInviteRevoked,
                "group",
                group,
            )
            .detail(serde_json::json!({ "invite": invite_id })),
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
