//! Opening a room connection (ticket, then upgrade), the message history,
//! and deleting a message.

use actix_web::{HttpRequest, HttpResponse, delete, get, http::header, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    Signal,
    protocol::MessageView,
    socket::{self, Caller},
};
use crate::{
    audit,
    auth::{AuthUser, tokens},
    db::Reuse,
    db::schema::{messages, users, ws_tickets},
    error::{AppError, AppResult, Code, ErrorBody},
    http::RequestMeta,
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(issue_ticket)
        .service(connect)
        .service(history)
        .service(delete_message);
}

/// How long a ticket can be redeemed.
const TICKET_SECONDS: i64 = 30;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketInput {
    /// The room to enter on connecting; membership is checked before the upgrade.
    pub group_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    /// Single use, valid for 30 seconds.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
    /// Where to open the websocket, relative to the server.
    pub url: String,
}

/// A single-use ticket for opening a websocket (the access token never goes in a URL).
#[utoipa::path(tag = "rooms", request_body(content = Option<TicketInput>, description = "Optional"), security(("bearer" = [])),
    responses((status = 201, body = Ticket), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/ws/ticket")]
async fn issue_ticket(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: crate::http::OptionalJson<TicketInput>,
) -> AppResult<HttpResponse> {
    let input = body.0.unwrap_or_default();
    let mut conn = state.pool.get().await?;
    if let Some(group) = input.group_id {
        crate::groups::require_member(&mut conn, group, auth.user_id).await?;
    }
    let ticket = tokens::new_opaque_token();
    let expires_at = state.clock.now() + chrono::Duration::seconds(TICKET_SECONDS);
    diesel::insert_into(ws_tickets::table)
        .values((
            ws_tickets::ticket_hash.eq(tokens::hash_opaque_token(&ticket)),
            ws_tickets::user_id.eq(auth.user_id),
            ws_tickets::session_id.eq(auth.session_id),
            ws_tickets::group_id.eq(input.group_id),
            ws_tickets::expires_at.eq(expires_at),
        ))
        .execute(&mut conn)
        .await?;
    Ok(HttpResponse::Created().json(Ticket {
        url: format!("/api/v1/ws?ticket={ticket}"),
        ticket,
        expires_at,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// From `POST /ws/ticket`.
    pub ticket: String,
}

/// Browsers always send `Origin` on a websocket upgrade; a page on another
/// site must not open a room with the user's ticket.
fn check_origin(req: &HttpRequest, state: &AppState) -> AppResult<()> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_end_matches('/'));
    match origin {
        Some(origin)
            if state
                .settings
                .allowed_origins
                .iter()
                .any(|allowed| allowed.trim_end_matches('/') == origin) =>
        {
            Ok(())
        }
        Some(_) => Err(AppError::forbidden(
            "This page's origin may not open Kith rooms.",
        )),
        None => Err(AppError::forbidden(
            "An Origin header is required to open a room.",
        )),
    }
}

/// Opens the room websocket (protocol in the README). Refused before the
/// upgrade when the origin is not allowed, the ticket is not valid, or the
/// ticket names a group the caller is not a member of.
#[utoipa::path(tag = "rooms", params(ConnectQuery),
    responses((status = 101, description = "Switching to the websocket protocol"),
        (status = 400, body = ErrorBody, description = "not a websocket upgrade"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "this person holds the most room connections one may")))]
#[get("/ws")]
async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    query: crate::http::ApiQuery<ConnectQuery>,
) -> AppResult<HttpResponse> {
    check_origin(&req, &state)?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let redeemed: Option<(Uuid, Uuid, Option<Uuid>)> = diesel::delete(
        ws_tickets::table.filter(
            ws_tickets::ticket_hash
                .eq(tokens::hash_opaque_token(&query.ticket))
                .and(ws_tickets::expires_at.gt(now)),
        ),
    )
    .returning((
        ws_tickets::user_id,
        ws_tickets::session_id,
        ws_tickets::group_id,
    ))
    .get_result(&mut conn)
    .await
    .optional()?;
    // Not held while the sign-in is checked, which may take a connection of its own.
    drop(conn);
    let Some((user, session, group)) = redeemed else {
        return Err(AppError::new(
            Code::InvalidTicket,
            "This ticket is unknown, used or expired. Ask for a new one.",
        ));
    };
    let active = state
        .sessions
        .status(&state.pool, session)
        .await?
        .is_some_and(|s| s.active && s.user_id == user);
    if !active {
        return Err(AppError::new(
            Code::SessionEnded,
            "This sign-in has ended. Sign in again.",
        ));
    }
    let mut conn = state.pool.get().await?;
    if let Some(group) = group
        && crate::groups::membership(&mut conn, group, user)
            .await?
            .is_none()
    {
        return Err(AppError::new(
            Code::NotAMember,
            "Only members of this group can enter its room.",
        ));
    }
    let name: String = users::table
        .find(user)
        .select(users::display_name)
        .first(&mut conn)
        .await?;
    drop(conn);
    let limit = state.settings.rooms.connections_per_person;
    let Some(slot) = state.hub.open_socket(user, limit) else {
        return Err(AppError {
            message: format!(
                "You have {limit} room connections open already; close one (another tab or device) first."
            ),
            ..AppError::rate_limited(5)
        });
    };
    let (response, session_handle, stream) = actix_ws::handle(&req, body)
        .map_err(|e| AppError::bad_request(format!("Not a websocket upgrade: {e}")))?;
    let caller = Caller {
        user,
        session,
        name,
    };
    actix_web::rt::spawn(socket::serve(
        state.get_ref().clone(),
        caller,
        session_handle,
        stream,
        group,
        slot,
    ));
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages older than this id; the newest when absent.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// 1 to 100; default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<MessageView>,
    /// Pass as `before` for the page before this one; null at the beginning.
    pub next_before: Option<i64>,
}

/// A page of a group's messages, going back in time (members only).
#[utoipa::path(tag = "rooms", params(("id" = Uuid, Path), HistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = HistoryPage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/groups/{id}/messages")]
async fn history(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
    query: crate::http::ApiQuery<HistoryQuery>,
) -> AppResult<HttpResponse> {
    let group = path.into_inner();
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(AppError::invalid_field("limit", "limit is 1 to 100."));
    }
    let before = query.before.unwrap_or(i64::MAX);
    if before < 1 {
        return Err(AppError::invalid_field(
            "before",
            "before is a message id (1 or more).",
        ));
    }
    let mut conn = state.pool.get().await?;
    crate::groups::require_member(&mut conn, group, auth.user_id).await?;
    let messages = super::messages_before(&mut conn, group, before, limit + 1).await?;
    let (messages, next_before) = if messages.len() as i64 > limit {
        let page = messages[1..].to_vec();
        let next = <[MessageView]>::first(&page).map(|m| m.id);
        (page, next)
    } else {
        (messages, None)
    };
    Ok(HttpResponse::Ok().json(HistoryPage {
        messages,
        next_before,
    }))
}

/// Deletes a message: its author, or a host or moderator. Everyone in the
/// room sees a tombstone; the text is erased.
#[utoipa::path(tag = "rooms", params(("id" = Uuid, Path), ("message_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/groups/{id}/messages/{message_id}")]
async fn delete_message(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, i64)>,
) -> AppResult<HttpResponse> {
    let (group, id) = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let member = crate::groups::require_member(&mut conn, group, auth.user_id).await?;
    let author: Option<Uuid> = messages::table
        .filter(messages::id.eq(id).and(messages::group_id.eq(group)))
        .select(messages::author_id)
        .first(&mut conn)
        .await
        .optional()?;
    let author = author.ok_or_else(|| AppError::not_found("No such message."))?;
    if author != auth.user_id && !member.role.moderates() {
        return Err(AppError::forbidden(
            "Only its author, a host or a moderator can delete a message.",
        ));
    }
    use diesel_async::AsyncConnection;
    conn.transaction::<_, AppError, _>(async |conn| {
        diesel::update(
            messages::table.filter(messages::id.eq(id).and(messages::deleted_at.is_null())),
        )
        .set((
            messages::deleted_at.eq(now),
            messages::deleted_by.eq(auth.user_id),
            messages::body.eq(""),
        ))
        .reused()
        .execute(conn)
        .await?;
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::new(
                Some(auth.user_id),
                audit::Action::MessageDeleted,
                "group",
                group,
            )
            .detail(serde_json::json!({ "message": id, "author": author })),
        )
        .await?;
        Ok(())
    })
    .await?;
    super::announce(&mut conn, &Signal::Deleted { group, id }).await?;
    Ok(HttpResponse::NoContent().finish())
}
