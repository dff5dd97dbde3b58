//! Peer consultation groups: creating them, membership with roles
//! (host, moderator, member), invitations by email, requests to join a
//! listed group, leaving, and the moderation of members (mute, remove).
//! The room itself — messages, presence — lives in `rooms`.

pub mod attendance;
pub mod hours;
pub mod model;
pub mod sessions;

use std::collections::HashMap;

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use model::{Group, GroupRole, GroupView, Invite, InviteView, MemberView, Membership};

use crate::{
    audit,
    auth::{AuthUser, users},
    db::Reuse,
    db::schema::{group_invites, group_members, groups, users as users_t},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    signal::{self, Signal},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_group)
        .service(list_groups)
        .service(view_group)
        .service(edit_group)
        .service(list_members)
        .service(invite_member)
        .service(list_invites)
        .service(request_to_join)
        .service(accept_invite)
        .service(decline_invite)
        .service(leave_group)
        .service(change_role)
        .service(remove_member)
        .service(mute_member);
    sessions::routes(cfg);
    hours::routes(cfg);
}

fn no_group() -> AppError {
    AppError::not_found("No such group.")
}

/// Someone's role and mute in a group, or None when they are not a member.
pub async fn membership(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<Option<Membership>> {
    let row: Option<(String, Option<DateTime<Utc>>)> = group_members::table
        .find((group, user))
        .select((group_members::role, group_members::muted_until))
        .first(conn)
        .await
        .optional()?;
    row.map(|(role, muted_until)| {
        Ok(Membership {
            role: role.parse()?,
            muted_until,
        })
    })
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

async fn require_moderator(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
) -> AppResult<Membership> {
    let m = require_member(conn, group, user).await?;
    if m.role.moderates() {
        return Ok(m);
    }
    // The host of a live session moderates while it lasts.
    if sessions::hosts_live(conn, group, user).await? {
        return Ok(Membership {
            role: GroupRole::Moderator,
            muted_until: m.muted_until,
        });
    }
    Err(AppError::forbidden(
        "Only the group's hosts and moderators can do this.",
    ))
}

async fn require_host(
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

async fn load_group(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Group> {
    groups::table
        .find(id)
        .select(Group::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(no_group)
}

async fn member_count(conn: &mut AsyncPgConnection, group: Uuid) -> AppResult<i64> {
    Ok(group_members::table
        .filter(group_members::group_id.eq(group))
        .count()
        .get_result(conn)
        .await?)
}

async fn hosts(conn: &mut AsyncPgConnection, group: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(group_members::table
        .filter(
            group_members::group_id
                .eq(group)
                .and(group_members::role.eq("host")),
        )
        .select(group_members::user_id)
        .load(conn)
        .await?)
}

async fn view(conn: &mut AsyncPgConnection, group: Group, user: Uuid) -> AppResult<GroupView> {
    let mut shown = views(conn, vec![group], user).await?;
    shown.pop().ok_or_else(no_group)
}

/// Groups as `user` sees them, with three queries however many groups there are.
async fn views(
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
    let roles: HashMap<Uuid, String> = group_members::table
        .filter(
            group_members::group_id
                .eq_any(&ids)
                .and(group_members::user_id.eq(user)),
        )
        .select((group_members::group_id, group_members::role))
        .load::<(Uuid, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let requested: Vec<Uuid> = group_invites::table
        .filter(
            group_invites::group_id
                .eq_any(&ids)
                .and(group_invites::user_id.eq(user))
                .and(group_invites::kind.eq("request"))
                .and(group_invites::status.eq("pending")),
        )
        .select(group_invites::group_id)
        .load(conn)
        .await?;
    groups
        .into_iter()
        .map(|g| {
            let role = roles.get(&g.id).map(|r| r.parse()).transpose()?;
            let count = counts.get(&g.id).copied().unwrap_or(0);
            let asked = role.is_none() && requested.contains(&g.id);
            Ok(GroupView::new(g, count, role, asked))
        })
        .collect()
}

/// Trims a text field and checks its length in characters.
/// A group's or session's text field, trimmed and within its bounds.
pub(crate) fn text_field(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> AppResult<String> {
    crate::text::Limit::new(field, min, max).check(value)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupInput {
    pub name: String,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub description: String,
    /// Listed groups can be found and asked to join; default invite-only.
    #[serde(default)]
    pub listed: bool,
}

/// Creates a group; its creator is its first host.
#[utoipa::path(tag = "groups", request_body = NewGroupInput, security(("bearer" = [])),
    responses((status = 201, body = GroupView), (status = 422, body = ErrorBody)))]
#[post("/groups")]
async fn create_group(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<NewGroupInput>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let name = text_field("name", &input.name, 1, 120)?;
    let topic = text_field("topic", &input.topic, 0, 200)?;
    let description = text_field("description", &input.description, 0, 4000)?;
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let mut conn = state.pool.get().await?;
    let group = conn
        .transaction::<_, AppError, _>(async |conn| {
            let group: Group = diesel::insert_into(groups::table)
                .values((
                    groups::id.eq(id),
                    groups::name.eq(&name),
                    groups::topic.eq(&topic),
                    groups::description.eq(&description),
                    groups::listed.eq(input.listed),
                    groups::created_by.eq(auth.user_id),
                    groups::created_at.eq(now),
                    groups::updated_at.eq(now),
                ))
                .returning(Group::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(group_members::table)
                .values((
                    group_members::group_id.eq(id),
                    group_members::user_id.eq(auth.user_id),
                    group_members::role.eq(GroupRole::Host.as_str()),
                    group_members::joined_at.eq(now),
                ))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(auth.user_id), audit::Action::GroupCreated, "group", id),
            )
            .await?;
            Ok(group)
        })
        .await?;
    Ok(HttpResponse::Created().json(GroupView::new(group, 1, Some(GroupRole::Host), false)))
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GroupList {
    /// Groups you belong to.
    pub mine: Vec<GroupView>,
    /// Listed groups you do not belong to (you can ask to join).
    pub listed: Vec<GroupView>,
    /// Invitations waiting for your answer.
    pub invites: Vec<InviteView>,
}

/// My groups, listed groups I could join, and my pending invitations.
#[utoipa::path(tag = "groups", security(("bearer" = [])), responses((status = 200, body = GroupList)))]
#[get("/groups")]
async fn list_groups(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let member_of = group_members::table
        .filter(group_members::user_id.eq(auth.user_id))
        .select(group_members::group_id);
    let mine: Vec<Group> = groups::table
        .filter(groups::id.eq_any(member_of))
        .order(groups::name)
        .select(Group::as_select())
        .load(&mut conn)
        .await?;
    let listed: Vec<Group> = groups::table
        .filter(groups::listed.and(groups::id.ne_all(member_of)))
        .order(groups::name)
        .limit(200)
        .select(Group::as_select())
        .load(&mut conn)
        .await?;
    let mine_views = views(&mut conn, mine, auth.user_id).await?;
    let listed_views = views(&mut conn, listed, auth.user_id).await?;
    let email: String = users_t::table
        .find(auth.user_id)
        .select(users_t::email)
        .first(&mut conn)
        .await?;
    let invites = invites_where(&mut conn, Invites::To(email)).await?;
    Ok(HttpResponse::Ok().json(GroupList {
        mine: mine_views,
        listed: listed_views,
        invites,
    }))
}

/// Which invitations to show.
enum Invites {
    One(Uuid),
    /// Pending invitations to this address.
    To(String),
    /// Pending invitations and requests of a group.
    Of(Uuid),
}

async fn invites_where(conn: &mut AsyncPgConnection, which: Invites) -> AppResult<Vec<InviteView>> {
    let mut query = group_invites::table
        .inner_join(groups::table)
        .order(group_invites::created_at)
        .select((Invite::as_select(), groups::name))
        .into_boxed();
    query = match which {
        Invites::One(id) => query.filter(group_invites::id.eq(id)),
        Invites::To(email) => query.filter(
            group_invites::email
                .eq(email)
                .and(group_invites::kind.eq("invite"))
                .and(group_invites::status.eq("pending")),
        ),
        Invites::Of(group) => query.filter(
            group_invites::group_id
                .eq(group)
                .and(group_invites::status.eq("pending")),
        ),
    };
    let rows: Vec<(Invite, String)> = query.load(conn).await?;
    // For an invitation, who sent it; for a request, who asks. One lookup for all.
    let from = |i: &Invite| {
        if i.kind == "invite" {
            i.invited_by
        } else {
            i.user_id
        }
    };
    let people: Vec<Uuid> = rows.iter().filter_map(|(i, _)| from(i)).collect();
    let names: HashMap<Uuid, String> = users_t::table
        .filter(users_t::id.eq_any(&people))
        .select((users_t::id, users_t::display_name))
        .load::<(Uuid, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let views = rows
        .into_iter()
        .map(|(invite, group_name)| InviteView {
            from_name: from(&invite).and_then(|id| names.get(&id).cloned()),
            id: invite.id,
            group_id: invite.group_id,
            group_name,
            kind: invite.kind,
            email: invite.email,
            user_id: invite.user_id,
            status: invite.status,
            created_at: invite.created_at,
        })
        .collect();
    Ok(views)
}

/// One group: visible to its members, and to everyone when it is listed.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)))]
#[get("/groups/{id}")]
async fn view_group(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let group = load_group(&mut conn, path.into_inner()).await?;
    let shown = view(&mut conn, group, auth.user_id).await?;
    if shown.my_role.is_none() && !shown.listed {
        return Err(no_group());
    }
    Ok(HttpResponse::Ok().json(shown))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub description: Option<String>,
    pub listed: Option<bool>,
}

/// A host changes the group's name, topic, description or listing.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), request_body = GroupChanges, security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/groups/{id}")]
async fn edit_group(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<GroupChanges>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let changes = body.0;
    let name = changes
        .name
        .map(|v| text_field("name", &v, 1, 120))
        .transpose()?;
    let topic = changes
        .topic
        .map(|v| text_field("topic", &v, 0, 200))
        .transpose()?;
    let description = changes
        .description
        .map(|v| text_field("description", &v, 0, 4000))
        .transpose()?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let group = conn
        .transaction::<_, AppError, _>(async |conn| {
            require_host(conn, id, auth.user_id).await?;
            let current = load_group(conn, id).await?;
            diesel::update(groups::table.find(id))
                .set((
                    groups::name.eq(name.unwrap_or(current.name)),
                    groups::topic.eq(topic.unwrap_or(current.topic)),
                    groups::description.eq(description.unwrap_or(current.description)),
                    groups::listed.eq(changes.listed.unwrap_or(current.listed)),
                    groups::updated_at.eq(now),
                ))
                .reused()
                .execute(conn)
                .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(auth.user_id), audit::Action::GroupEdited, "group", id),
            )
            .await?;
            load_group(conn, id).await
        })
        .await?;
    let shown = view(&mut conn, group, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(shown))
}

/// The members of a group with their roles (members only).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<MemberView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/groups/{id}/members")]
async fn list_members(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    require_member(&mut conn, id, auth.user_id).await?;
    type MemberRow = (Uuid, String, String, DateTime<Utc>, Option<DateTime<Utc>>);
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
                role: role.parse()?,
                joined_at,
                muted_until: muted_until.filter(|u| *u > now),
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(members))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    /// The colleague's email address; they need not have an account yet.
    pub email: String,
}

/// A host or moderator invites a colleague by email. The invitation is
/// emailed, and shown in the app when the address has an account.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), request_body = InviteInput, security(("bearer" = [])),
    responses((status = 201, body = InviteView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/groups/{id}/invites")]
async fn invite_member(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<InviteInput>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let email = users::normalize_email(&body.0.email);
    if !users::valid_email(&email) {
        return Err(AppError::invalid_field(
            "email",
            "This is not an email address.",
        ));
    }
    let now = state.clock.now();
    let url = state.mailer.public_url.clone();
    let mut conn = state.pool.get().await?;
    let invite_id = Uuid::now_v7();
    conn.transaction::<_, AppError, _>(async |conn| {
        require_moderator(conn, id, auth.user_id).await?;
        let group = load_group(conn, id).await?;
        let invitee = users::find_by_email(conn, &email).await?;
        if let Some(user) = &invitee
            && membership(conn, id, user.id).await?.is_some()
        {
            return Err(AppError::conflict(
                Code::AlreadyMember,
                "This colleague is already a member of the group.",
            ));
        }
        let inserted = diesel::insert_into(group_invites::table)
            .values((
                group_invites::id.eq(invite_id),
                group_invites::group_id.eq(id),
                group_invites::kind.eq("invite"),
                group_invites::email.eq(&email),
                group_invites::user_id.eq(invitee.as_ref().map(|u| u.id)),
                group_invites::invited_by.eq(auth.user_id),
                group_invites::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 0 {
            return Err(AppError::conflict(
                Code::AlreadyInvited,
                "This address already has an invitation or request waiting for this group.",
            ));
        }
        let inviter: String = users_t::table
            .find(auth.user_id)
            .select(users_t::display_name)
            .first(conn)
            .await?;
        let message = format!(
            "{inviter} invited you to the peer consultation group \u{201c}{}\u{201d} on Kith.",
            group.name
        );
        let subject = format!("Invitation to \u{201c}{}\u{201d}", group.name);
        match &invitee {
            Some(user) => {
                notify::tell(
                    conn,
                    &url,
                    user.id,
                    notify::Notice {
                        kind: "group_invite",
                        referral: None,
                        group: Some(id),
                        session: None,
                        message,
                        email_subject: Some(subject),
                    },
                    now,
                )
                .await?
            }
            None => {
                let message =
                    format!("{message} Create an account with this email address to answer it.");
                notify::email_address(conn, &url, &email, &subject, &message, Some(id), now).await?
            }
        }
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::new(Some(auth.user_id), audit::Action::GroupInvited, "group", id)
                .detail(serde_json::json!({ "invite": invite_id })),
        )
        .await?;
        Ok(())
    })
    .await?;
    state.courier_wake.notify_one();
    let mut views = invites_where(&mut conn, Invites::One(invite_id)).await?;
    let shown = views
        .pop()
        .ok_or_else(|| AppError::internal("invite vanished"))?;
    Ok(HttpResponse::Created().json(shown))
}

/// Pending invitations and join requests of a group (hosts and moderators).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<InviteView>), (status = 403, body = ErrorBody)))]
#[get("/groups/{id}/invites")]
async fn list_invites(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    require_moderator(&mut conn, id, auth.user_id).await?;
    let views = invites_where(&mut conn, Invites::Of(id)).await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Asks to join a listed group; its hosts are told and one of them answers.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = InviteView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/groups/{id}/join-requests")]
async fn request_to_join(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let url = state.mailer.public_url.clone();
    let request_id = Uuid::now_v7();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let group = load_group(conn, id).await?;
        if membership(conn, id, auth.user_id).await?.is_some() {
            return Err(AppError::conflict(
                Code::AlreadyMember,
                "You are already a member of this group.",
            ));
        }
        if !group.listed {
            return Err(no_group());
        }
        let (email, name): (String, String) = users_t::table
            .find(auth.user_id)
            .select((users_t::email, users_t::display_name))
            .first(conn)
            .await?;
        let inserted = diesel::insert_into(group_invites::table)
            .values((
                group_invites::id.eq(request_id),
                group_invites::group_id.eq(id),
                group_invites::kind.eq("request"),
                group_invites::email.eq(&email),
                group_invites::user_id.eq(auth.user_id),
                group_invites::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 0 {
            return Err(AppError::conflict(
                Code::AlreadyRequested,
                "You already asked to join this group, or have an invitation waiting: answer that one.",
            ));
        }
        for host in hosts(conn, id).await? {
            notify::tell(
                conn,
                &url,
                host,
                notify::Notice {
                    kind: "group_join_request",
                    referral: None,
                    group: Some(id),
                    session: None,
                    message: format!("{name} asks to join \u{201c}{}\u{201d}.", group.name),
                    email_subject: Some(format!("A request to join \u{201c}{}\u{201d}", group.name)),
                },
                now,
            )
            .await?;
        }
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::new(Some(auth.user_id), audit::Action::GroupJoinRequested, "group", id)
                .detail(serde_json::json!({ "request": request_id })),
        )
        .await?;
        Ok(())
    })
    .await?;
    state.courier_wake.notify_one();
    let mut views = invites_where(&mut conn, Invites::One(request_id)).await?;
    let shown = views
        .pop()
        .ok_or_else(|| AppError::internal("request vanished"))?;
    Ok(HttpResponse::Created().json(shown))
}

/// Who may answer an invitation: the invitee for an invitation, a host for a request.
async fn answerable(
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
    let allowed = if invite.kind == "invite" {
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
    if invite.status != "pending" {
        return Err(AppError::conflict(
            Code::AlreadyAnswered,
            format!("This was already answered ({}).", invite.status),
        ));
    }
    Ok((invite, group))
}

async fn answer(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    invite_id: Uuid,
    accept: bool,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let url = state.mailer.public_url.clone();
    let mut conn = state.pool.get().await?;
    let group_id = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (invite, group) = answerable(conn, invite_id, auth.user_id).await?;
            diesel::update(group_invites::table.find(invite_id))
                .set((
                    group_invites::status.eq(if accept { "accepted" } else { "declined" }),
                    group_invites::responded_at.eq(now),
                    group_invites::responded_by.eq(auth.user_id),
                ))
                .execute(conn)
                .await?;
            // The new member: the invitee, or whoever asked.
            let joiner = if invite.kind == "invite" {
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
                        group_members::role.eq(GroupRole::Member.as_str()),
                        group_members::joined_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            // Tell the other side.
            let (to, message) = if invite.kind == "invite" {
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
            let action = match (invite.kind.as_str(), accept) {
                ("invite", true) => audit::Action::GroupInviteAccepted,
                ("invite", false) => audit::Action::GroupInviteDeclined,
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
        .await?;
    let group = load_group(&mut conn, group_id).await?;
    let shown = view(&mut conn, group, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(shown))
}

/// Accepts an invitation (the invitee) or approves a join request (a host).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/group-invites/{id}/accept")]
async fn accept_invite(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    answer(&state, &meta, &auth, path.into_inner(), true).await
}

/// Declines an invitation (the invitee) or a join request (a host).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/group-invites/{id}/decline")]
async fn decline_invite(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    answer(&state, &meta, &auth, path.into_inner(), false).await
}

/// Removes someone from a group and closes their connections to its room.
async fn drop_member(
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
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/groups/{id}/leave")]
async fn leave_group(
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
async fn member_view(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    user: Uuid,
    now: DateTime<Utc>,
) -> AppResult<MemberView> {
    let (display_name, role, joined_at, muted_until): (
        String,
        String,
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
        role: role.parse()?,
        joined_at,
        muted_until: muted_until.filter(|u| *u > now),
    })
}

/// Moderators act on members, not on hosts or other moderators.
fn outranks(actor: GroupRole, target: GroupRole) -> AppResult<()> {
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
async fn change_role(
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
    let view = conn
        .transaction::<_, AppError, _>(async |conn| {
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
                .set(group_members::role.eq(role.as_str()))
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
        .await?;
    signal::announce(&mut conn, &Signal::Member { group, user }).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A host or moderator removes a member; their open connections to the room close at once.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/groups/{id}/members/{user_id}")]
async fn remove_member(
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
    pub minutes: i64,
}

/// A host or moderator mutes a member for a time (0 minutes lifts it).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = MuteInput,
    security(("bearer" = [])),
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/groups/{id}/members/{user_id}/mute")]
async fn mute_member(
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
    let view = conn
        .transaction::<_, AppError, _>(async |conn| {
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
        .await?;
    signal::announce(&mut conn, &Signal::Member { group, user }).await?;
    Ok(HttpResponse::Ok().json(view))
}
