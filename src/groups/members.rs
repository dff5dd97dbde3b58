//! Members: the member list, leaving, removal, roles and mutes.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{GroupRole, MemberView};
use super::store::*;
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{group_members, users as users_t},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    signal::{self, Signal},
    state::AppState,
};

/// The members of a group with their roles (members only).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<MemberView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/groups/{id}/members")]
pub(super) async fn list_members(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    require_member(&mut conn, id, auth.user_id).await?;
    type MemberRow = (
        Uuid,
        String,
        GroupRole,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<MemberRow> = group_members::table
        .inner_join(users_t::table)
        .filter(group_members::group_id.eq(id))
        .order((group_members::joined_at, users_t::display_name))
        .select((
            group_members::user_id,
            users_t::display_name,
            group_members::role,
            group_members::joined_at,
            group_members::muted_until,
        ))
        .load(&mut conn)
        .await?;
    let now = state.clock.now();
    let members = rows
        .into_iter()
        .map(|(user_id, display_name, role, joined_at, muted_until)| {
            Ok(MemberView {
                user_id,
                display_name,
                role,
                joined_at,
                muted_until: muted_until.filter(|u| *u > now),
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(members))
}

/// Removes someone from a group and closes their connections to its room.
pub(super) async fn drop_member(
    state: &AppState,
    meta: &RequestMeta,
    actor: Uuid,
    group: Uuid,
    user: Uuid,
    action: audit::Action,
) -> AppResult<()> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let target = membership(conn, group, user)
            .await?
            .ok_or_else(|| AppError::not_found("This person is not a member of the group."))?;
        if target.role == GroupRole::Host {
            let hosts = hosts(conn, group).await?;
            let others = member_count(conn, group).await? - 1;
            if hosts.len() == 1 && others > 0 {
                return Err(AppError::conflict(
                    Code::LastHost,
                    "The group needs a host: make another member host first.",
                ));
            }
        }
        diesel::delete(group_members::table.find((group, user)))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            now,
            meta,
            audit::Event::new(Some(actor), action, "group", group)
                .detail(serde_json::json!({ "member": user })),
        )
        .await?;
        Ok(())
    })
    .await?;
    signal::announce(&mut conn, &Signal::Member { group, user }).await?;
    Ok(())
}

/// Leaves a group.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody, description = "not a member of this listed group"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/groups/{id}/leave")]
pub(super) async fn leave_group(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    {
        let mut conn = state.pool.get().await?;
        require_member(&mut conn, id, auth.user_id).await?;
    }
    drop_member(
        &state,
        &meta,
        auth.user_id,
        id,
        auth.user_id,
        audit::Action::GroupLeft,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One member as the member list shows them.
pub(super) async fn member_view(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
    now: DateTime<Utc>,
) -> AppResult<MemberView> {
    let (display_name, role, joined_at, muted_until): (
        String,
        GroupRole,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    ) = group_members::table
        .inner_join(users_t::table)
        .filter(
            group_members::group_id
                .eq(group)
                .and(group_members::user_id.eq(user)),
        )
        .select((
            users_t::display_name,
            group_members::role,
            group_members::joined_at,
            group_members::muted_until,
        ))
        .first(conn)
        .await?;
    Ok(MemberView {
        user_id: user,
        display_name,
        role,
        joined_at,
        muted_until: muted_until.filter(|u| *u > now),
    })
}

/// Moderators act on members, not on hosts or other moderators.
pub(super) fn outranks(actor: GroupRole, target: GroupRole) -> AppResult<()> {
    if actor == GroupRole::Host || target == GroupRole::Member {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "Moderators can act on members only; ask a host.",
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub role: GroupRole,
}

/// A host makes a member host, moderator or member.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = RoleInput,
    security(("bearer" = [])),
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[patch("/groups/{id}/members/{user_id}")]
pub(super) async fn change_role(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<RoleInput>,
) -> AppResult<HttpResponse> {
    let (group, user) = path.into_inner();
    let role = body.0.role;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            require_host(conn, group, auth.user_id).await?;
            let target = membership(conn, group, user)
                .await?
                .ok_or_else(|| AppError::not_found("This person is not a member of the group."))?;
            if target.role == GroupRole::Host
                && role != GroupRole::Host
                && hosts(conn, group).await?.len() == 1
            {
                return Err(AppError::conflict(
                    Code::LastHost,
                    "The group needs a host: make another member host first.",
                ));
            }
            diesel::update(group_members::table.find((group, user)))
                .set(group_members::role.eq(role))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::GroupRoleChanged,
                    "group",
                    group,
                )
                .detail(serde_json::json!({ "member": user, "role": role.as_str() })),
            )
            .await?;
            member_view(conn, group, user, now).await
        })
        .await
    })
    .await?;
    signal::announce(&mut conn, &Signal::Member { group, user }).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A host or moderator removes a member; their open connections to the room close at once.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the last host, or yourself (leave instead)")))]
#[delete("/groups/{id}/members/{user_id}")]
pub(super) async fn remove_member(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (group, user) = path.into_inner();
    if user == auth.user_id {
        return Err(AppError::conflict(
            Code::UseLeave,
            "To leave a group yourself, use leave.",
        ));
    }
    {
        let mut conn = state.pool.get().await?;
        let actor = require_moderator(&mut conn, group, auth.user_id).await?;
        if let Some(target) = membership(&mut conn, group, user).await? {
            outranks(actor.role, target.role)?;
        }
    }
    drop_member(
        &state,
        &meta,
        auth.user_id,
        group,
        user,
        audit::Action::GroupMemberRemoved,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteInput {
    /// How long the member may not post, in minutes (at most a week); 0 lifts a mute.
    #[schema(minimum = 0, maximum = 10080)]
    pub minutes: i64,
}

/// A host or moderator mutes a member for a time (0 minutes lifts it).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = MuteInput,
    security(("bearer" = [])),
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "nobody can mute themselves"), (status = 422, body = ErrorBody)))]
#[post("/groups/{id}/members/{user_id}/mute")]
pub(super) async fn mute_member(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<MuteInput>,
) -> AppResult<HttpResponse> {
    let (group, user) = path.into_inner();
    let minutes = body.0.minutes;
    if !(0..=7 * 24 * 60).contains(&minutes) {
        return Err(AppError::invalid_field(
            "minutes",
            "A mute lasts from 0 (lift it) to 10080 minutes (a week).",
        ));
    }
    let now = state.clock.now();
    let until = (minutes > 0).then(|| now + Duration::minutes(minutes));
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let actor = require_moderator(conn, group, auth.user_id).await?;
            let target = membership(conn, group, user)
                .await?
                .ok_or_else(|| AppError::not_found("This person is not a member of the group."))?;
            if user == auth.user_id {
                return Err(AppError::conflict(
                    Code::MuteSelf,
                    "You cannot mute yourself.",
                ));
            }
            outranks(actor.role, target.role)?;
            diesel::update(group_members::table.find((group, user)))
                .set(group_members::muted_until.eq(until))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::GroupMemberMuted,
                    "group",
                    group,
                )
                .detail(serde_json::json!({ "member": user, "until": until })),
            )
            .await?;
            member_view(conn, group, user, now).await
        })
        .await
    })
    .await?;
    signal::announce(&mut conn, &Signal::Member { group, user }).await?;
    Ok(HttpResponse::Ok().json(view))
}
