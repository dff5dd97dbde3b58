//! Creating, listing, viewing and editing groups.

use actix_web::{HttpResponse, get, patch, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{Group, GroupRole, GroupView, InviteView};
use super::{invites::*, store::*};
use crate::{
    audit,
    auth::AuthUser,
    db::Reuse,
    db::schema::{group_members, groups, users as users_t},
    error::{AppError, AppResult, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
    text::Limit,
};

crate::text_types! {
    /// A group's name.
    pub GroupName = Limit::new("name", 1, 120);
    /// What a group is about, in a line.
    pub GroupTopic = Limit::new("topic", 0, 200);
    /// A group's description.
    pub GroupDescription = Limit::prose("description", 0, 4000);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupInput {
    pub name: GroupName,
    #[serde(default)]
    pub topic: GroupTopic,
    #[serde(default)]
    pub description: GroupDescription,
    /// Listed groups can be found and asked to join; default invite-only.
    #[serde(default)]
    pub listed: bool,
    /// The texts identify no client, although the privacy guard found
    /// something like an identifier (recorded in the audit log): group
    /// names and topics reach members and invitation emails.
    #[serde(default)]
    pub confirm_no_identifiers: bool,
}

/// Creates a group; its creator is its first host.
#[utoipa::path(tag = "groups", request_body = NewGroupInput, security(("bearer" = [])),
    responses((status = 201, body = GroupView), (status = 422, body = ErrorBody)))]
#[post("/groups")]
pub(super) async fn create_group(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<NewGroupInput>,
) -> AppResult<HttpResponse> {
    auth.require_verified("start groups")?;
    let input = body.0;
    let name = input.name.into_inner();
    let topic = input.topic.into_inner();
    let description = input.description.into_inner();
    let overridden = crate::privacy::Travelling::new()
        .field("name", Some(&name))
        .field("topic", Some(&topic))
        .field("description", Some(&description))
        .check(input.confirm_no_identifiers)?;
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let mut conn = state.pool.get().await?;
    let group = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
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
                    group_members::role.eq(GroupRole::Host),
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
            crate::privacy::record_override(
                conn,
                now,
                &meta,
                auth.user_id,
                ("group", id.to_string()),
                overridden.clone(),
            )
            .await?;
            Ok(group)
        })
        .await
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
pub(super) async fn list_groups(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
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
    // Invitations go to an address, so only its proved owner sees them.
    let invites = if auth.verified {
        invites_where(&mut conn, Invites::To(email), state.clock.now()).await?
    } else {
        Vec::new()
    };
    Ok(HttpResponse::Ok().json(GroupList {
        mine: mine_views,
        listed: listed_views,
        invites,
    }))
}

/// One group: visible to its members, and to everyone when it is listed.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)))]
#[get("/groups/{id}")]
pub(super) async fn view_group(
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
    pub name: Option<GroupName>,
    pub topic: Option<GroupTopic>,
    pub description: Option<GroupDescription>,
    pub listed: Option<bool>,
    /// The texts identify no client, although the privacy guard found
    /// something like an identifier (recorded in the audit log): group
    /// names and topics reach members and invitation emails.
    #[serde(default)]
    pub confirm_no_identifiers: bool,
}

/// A host changes the group's name, topic, description or listing.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), request_body = GroupChanges, security(("bearer" = [])),
    responses((status = 200, body = GroupView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/groups/{id}")]
pub(super) async fn edit_group(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<GroupChanges>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let changes = body.0;
    let name = changes.name.map(String::from);
    let topic = changes.topic.map(String::from);
    let description = changes.description.map(String::from);
    let overridden = crate::privacy::Travelling::new()
        .field("name", name.as_deref())
        .field("topic", topic.as_deref())
        .field("description", description.as_deref())
        .check(changes.confirm_no_identifiers)?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let group = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            require_host(conn, id, auth.user_id).await?;
            let current = load_group(conn, id).await?;
            diesel::update(groups::table.find(id))
                .set((
                    groups::name.eq(name.clone().unwrap_or(current.name)),
                    groups::topic.eq(topic.clone().unwrap_or(current.topic)),
                    groups::description.eq(description.clone().unwrap_or(current.description)),
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
            crate::privacy::record_override(
                conn,
                now,
                &meta,
                auth.user_id,
                ("group", id.to_string()),
                overridden.clone(),
            )
            .await?;
            load_group(conn, id).await
        })
        .await
    })
    .await?;
    let shown = view(&mut conn, group, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(shown))
}
