//! Scheduling sessions (optionally weekly) and listing and viewing them.

use actix_web::{HttpResponse, get, post, web};
use chrono::Duration;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    model::*,
    stays::{self},
    store::*,
};
use crate::{
    audit,
    auth::{AuthUser, Role},
    db::schema::{group_members, group_sessions},
    error::{AppError, AppResult, Code, ErrorBody},
    groups::model::GroupRole,
    http::{ApiJson, RequestMeta},
    state::AppState,
    text::Limit,
};

crate::text_types! {
    /// A session's title.
    pub SessionTitle = Limit::new("title", 1, 200);
    /// What a session will cover.
    pub SessionAgenda = Limit::prose("agenda", 0, 4000);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub title: SessionTitle,
    #[serde(default)]
    pub agenda: SessionAgenda,
    /// `group_supervision` (default) or `peer_consultation`.
    pub kind: Option<SessionKind>,
    /// `2026-12-01T09:00` in your time zone, or an RFC 3339 time with an offset.
    pub starts_at: String,
    /// Planned length, 1 to 480 minutes; or give `ends_at`.
    #[schema(minimum = 1, maximum = 480)]
    pub planned_minutes: Option<i32>,
    pub ends_at: Option<String>,
    /// Repeat weekly for this many more weeks (0 to 52).
    #[serde(default)]
    #[schema(maximum = 52)]
    pub repeat_weeks: u32,
    /// The title and agenda identify no client, although the privacy guard
    /// found something like an identifier (recorded in the audit log): they
    /// reach every member and reminder emails.
    #[serde(default)]
    pub confirm_no_identifiers: bool,
}

/// Schedules a session in a group (a supervisor who is a member, or a host),
/// optionally repeating weekly.
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), request_body = ScheduleInput, security(("bearer" = [])),
    responses((status = 201, body = Vec<SessionView>), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/groups/{id}/sessions")]
pub(super) async fn schedule_session(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<ScheduleInput>,
) -> AppResult<HttpResponse> {
    auth.require_verified("host sessions")?;
    let group = path.into_inner();
    let input = body.0;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let member = crate::groups::store::require_member(&mut conn, group, auth.user_id).await?;
    let supervisor = matches!(auth.role, Role::Supervisor | Role::Admin);
    if !(supervisor || member.role == GroupRole::Host) {
        return Err(AppError::forbidden(
            "Only supervisors and the group's hosts can schedule sessions.",
        ));
    }
    let kind = input.kind.unwrap_or(SessionKind::GroupSupervision);
    if kind == SessionKind::GroupSupervision {
        // Hours a board accepts: hosted by a licensed supervisor only.
        licensed_supervisor(&mut conn, &auth).await?;
    } else if member.role != GroupRole::Host {
        // Scheduling by virtue of being a supervisor is a privilege.
        auth.require_second_factor()?;
    }
    let tz = viewer_zone(&mut conn, auth.user_id).await?;
    let title = input.title.as_str().to_string();
    let agenda = input.agenda.as_str().to_string();
    let overridden = crate::privacy::Travelling::new()
        .field("title", Some(&title))
        .field("agenda", Some(&agenda))
        .check(input.confirm_no_identifiers)?;
    let starts_at = stays::parse_time("starts_at", &input.starts_at, tz)?;
    if starts_at <= now {
        return Err(AppError::invalid_field(
            "starts_at",
            "A session cannot start in the past.",
        ));
    }
    let minutes = match (input.planned_minutes, input.ends_at) {
        (Some(m), None) => i64::from(m),
        (None, Some(end)) => {
            let ends_at = stays::parse_time("ends_at", &end, tz)?;
            if ends_at <= starts_at {
                return Err(AppError::invalid_field(
                    "ends_at",
                    "The session ends before it starts.",
                ));
            }
            (ends_at - starts_at).num_minutes()
        }
        _ => {
            return Err(AppError::invalid_field(
                "planned_minutes",
                "Give either planned_minutes or ends_at.",
            ));
        }
    };
    if !(1..=480).contains(&minutes) {
        return Err(AppError::invalid_field(
            "planned_minutes",
            "A session lasts from 1 minute to 8 hours.",
        ));
    }
    if input.repeat_weeks > 52 {
        return Err(AppError::invalid_field(
            "repeat_weeks",
            "Repeat for at most 52 weeks.",
        ));
    }
    let series = (input.repeat_weeks > 0).then(Uuid::now_v7);
    let ids: Vec<Uuid> = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let mut ids = Vec::new();
            for week in 0..=i64::from(input.repeat_weeks) {
                let id = Uuid::now_v7();
                let start = starts_at + Duration::weeks(week);
                diesel::insert_into(group_sessions::table)
                    .values((
                        group_sessions::id.eq(id),
                        group_sessions::group_id.eq(group),
                        group_sessions::host_id.eq(auth.user_id),
                        group_sessions::series_id.eq(series),
                        group_sessions::title.eq(&title),
                        group_sessions::agenda.eq(&agenda),
                        group_sessions::kind.eq(&kind),
                        group_sessions::starts_at.eq(start),
                        group_sessions::planned_minutes.eq(minutes as i32),
                        group_sessions::ends_at.eq(start + Duration::minutes(minutes)),
                        group_sessions::created_at.eq(now),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| match e {
                        diesel::result::Error::DatabaseError(_, ref info)
                            if info.constraint_name().is_some_and(|c| c.contains("excl")) =>
                        {
                            AppError::conflict(
                                Code::OverlappingSession,
                                format!(
                                    "Another session of this group overlaps {}.",
                                    stays::local(start, tz)
                                ),
                            )
                        }
                        other => other.into(),
                    })?;
                ids.push(id);
            }
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::SessionScheduled,
                    "group",
                    group,
                )
                .detail(serde_json::json!({ "sessions": ids })),
            )
            .await?;
            crate::privacy::record_override(
                conn,
                now,
                &meta,
                auth.user_id,
                ("group", group.to_string()),
                overridden.clone(),
            )
            .await?;
            Ok(ids)
        })
        .await
    })
    .await?;
    let sessions: Vec<Session> = group_sessions::table
        .filter(group_sessions::id.eq_any(&ids))
        .order(group_sessions::starts_at)
        .select(Session::as_select())
        .load(&mut conn)
        .await?;
    Ok(HttpResponse::Created().json(show_all(&mut conn, sessions, auth.user_id, tz).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Ended and cancelled sessions instead of upcoming ones.
    #[serde(default)]
    pub past: bool,
}

pub(super) async fn list(
    conn: &mut AsyncPgConnection,
    groups_of: Vec<Uuid>,
    past: bool,
    viewer: Uuid,
) -> AppResult<Vec<SessionView>> {
    let tz = viewer_zone(conn, viewer).await?;
    let query = group_sessions::table
        .filter(group_sessions::group_id.eq_any(groups_of))
        .select(Session::as_select())
        .into_boxed();
    let sessions: Vec<Session> = if past {
        query
            .filter(group_sessions::status.eq_any(SessionStatus::PAST))
            .order(group_sessions::starts_at.desc())
            .limit(100)
            .load(conn)
            .await?
    } else {
        query
            .filter(group_sessions::status.eq_any(SessionStatus::UPCOMING))
            .order(group_sessions::starts_at)
            .limit(100)
            .load(conn)
            .await?
    };
    show_all(conn, sessions, viewer, tz).await
}

/// A group's upcoming sessions (or, with `past=true`, its past ones).
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path), SessionsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/groups/{id}/sessions")]
pub(super) async fn group_sessions_list(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
    query: crate::http::ApiQuery<SessionsQuery>,
) -> AppResult<HttpResponse> {
    let group = path.into_inner();
    let mut conn = state.pool.get().await?;
    crate::groups::store::require_member(&mut conn, group, auth.user_id).await?;
    let views = list(&mut conn, vec![group], query.past, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Upcoming sessions in all my groups (or, with `past=true`, past ones).
#[utoipa::path(tag = "sessions", params(SessionsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>)))]
#[get("/me/sessions")]
pub(super) async fn my_sessions(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: crate::http::ApiQuery<SessionsQuery>,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let mine: Vec<Uuid> = group_members::table
        .filter(group_members::user_id.eq(auth.user_id))
        .select(group_members::group_id)
        .load(&mut conn)
        .await?;
    let views = list(&mut conn, mine, query.past, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(views))
}

/// One session, with its attendance once ended (members of its group).
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 404, body = ErrorBody)))]
#[get("/sessions/{id}")]
pub(super) async fn view_session(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let session = load(&mut conn, path.into_inner()).await?;
    let Some(member) =
        crate::groups::store::membership(&mut conn, session.group_id, auth.user_id).await?
    else {
        return Err(no_session());
    };
    if session.status == SessionStatus::Ended
        && has_authority(&session, auth.user_id, Some(member.role))
    {
        // Everyone's attendance is shown: a read worth recording.
        audit::record(
            &conn,
            state.clock.now(),
            &meta,
            audit::Event::new(
                Some(auth.user_id),
                audit::Action::AttendanceRead,
                "session",
                session.id,
            ),
        )
        .await?;
    }
    let tz = viewer_zone(&mut conn, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(show(&mut conn, session, auth.user_id, tz).await?))
}
