//! Invitations by email and requests to join a listed group, and answering
//! them: the invitee answers an invitation, a host answers a request.

use std::collections::HashMap;

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{INVITATION_LIFETIME, Invite, InviteKind, InviteStatus, InviteView};
use super::store::*;
use crate::{
    audit,
    auth::{AuthUser, users},
    db::schema::{group_invites, groups, users as users_t},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    state::AppState,
};

/// Which invitations to show.
pub(super) enum Invites {
    One(Uuid),
    /// Pending invitations to this address.
    To(String),
    /// Pending invitations and requests of a group.
    Of(Uuid),
}

/// The 201 answer with the invitation or request just written.
async fn created(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<HttpResponse> {
    let shown = invites_where(conn, Invites::One(id), now)
        .await?
        .pop()
        .ok_or_else(|| AppError::internal("an invitation vanished inside its transaction"))?;
    Ok(HttpResponse::Created().json(shown))
}

pub(super) async fn invites_where(
    conn: &mut AsyncPgConnection,
    which: Invites,
    now: DateTime<Utc>,
) -> AppResult<Vec<InviteView>> {
    // Invitations older than their lifetime no longer show; requests always do.
    let live = group_invites::kind
        .eq(InviteKind::Request)
        .or(group_invites::created_at.gt(now - INVITATION_LIFETIME));
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
                .and(group_invites::kind.eq(InviteKind::Invite))
                .and(group_invites::status.eq(InviteStatus::Pending))
                .and(live),
        ),
        Invites::Of(group) => query.filter(
            group_invites::group_id
                .eq(group)
                .and(group_invites::status.eq(InviteStatus::Pending))
                .and(live),
        ),
    };
    let rows: Vec<(Invite, String)> = query.load(conn).await?;
    // For an invitation, who sent it; for a request, who asks. One lookup for all.
    let from = |i: &Invite| {
        if i.kind == InviteKind::Invite {
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
            expires_at: invite.expires_at(),
            id: invite.id,
            group_id: invite.group_id,
            group_name,
            kind: invite.kind,
            email: invite.email,
            status: invite.status,
            created_at: invite.created_at,
        })
        .collect();
    Ok(views)
}

/// Invitations go to any address with text of the sender's choosing, so
/// each sender, and each group, may send only so many a day.
async fn within_invitation_limits(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    group: Uuid,
    sender: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let limits = &state.settings.limits;
    let invitations = || {
        group_invites::table
            .filter(group_invites::kind.eq(InviteKind::Invite))
            .order(group_invites::created_at.desc())
            .select(group_invites::created_at)
    };
    let (by_sender, for_group) = (limits.invitations_per_sender, limits.invitations_per_group);
    let nth: Option<DateTime<Utc>> = invitations()
        .filter(group_invites::invited_by.eq(sender))
        .filter(group_invites::created_at.gt(by_sender.since(now)))
        .offset(by_sender.skip())
        .first(conn)
        .await
        .optional()?;
    by_sender.check(nth, now)?;
    let nth: Option<DateTime<Utc>> = invitations()
        .filter(group_invites::group_id.eq(group))
        .filter(group_invites::created_at.gt(for_group.since(now)))
        .offset(for_group.skip())
        .first(conn)
        .await
        .optional()?;
    for_group.check(nth, now)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    /// The colleague's email address; they need not have an account yet.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// A host or moderator invites a colleague by email. The invitation is
/// emailed, and shown in the app when the address has an account.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), request_body = InviteInput, security(("bearer" = [])),
    responses((status = 201, body = InviteView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "over the sender's or the group's daily limit; see Retry-After")))]
#[post("/groups/{id}/invites")]
pub(super) async fn invite_member(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<InviteInput>,
) -> AppResult<HttpResponse> {
    auth.require_verified("invite colleagues")?;
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
        within_invitation_limits(conn, &state, id, auth.user_id, now).await?;
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
        // An expired invitation to the same address gives way to the new one.
        diesel::update(
            group_invites::table.filter(
                group_invites::group_id
                    .eq(id)
                    .and(group_invites::email.eq(&email))
                    .and(group_invites::kind.eq(InviteKind::Invite))
                    .and(group_invites::status.eq(InviteStatus::Pending))
                    .and(group_invites::created_at.le(now - INVITATION_LIFETIME)),
            ),
        )
        .set(group_invites::status.eq(InviteStatus::Cancelled))
        .execute(conn)
        .await?;
        let inserted = diesel::insert_into(group_invites::table)
            .values((
                group_invites::id.eq(invite_id),
                group_invites::group_id.eq(id),
                group_invites::kind.eq(InviteKind::Invite),
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
    created(&mut conn, invite_id, now).await
}

/// Pending invitations and join requests of a group (hosts and moderators).
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<InviteView>), (status = 403, body = ErrorBody)))]
#[get("/groups/{id}/invites")]
pub(super) async fn list_invites(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    require_moderator(&mut conn, id, auth.user_id).await?;
    let views = invites_where(&mut conn, Invites::Of(id), state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Asks to join a listed group; its hosts are told and one of them answers.
#[utoipa::path(tag = "groups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = InviteView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/groups/{id}/join-requests")]
pub(super) async fn request_to_join(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_verified("join groups")?;
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
                group_invites::kind.eq(InviteKind::Request),
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
    created(&mut conn, request_id, now).await
}
