//! Group sessions hosted by a supervisor: scheduling (with weekly repeats),
//! reminders, start/lock/end/cancel by the host, attendance taken from the
//! room when the session ends, and the host's sign-off.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    attendance::{self, RECONNECT_GRACE},
    model::GroupRole,
};
use crate::{
    audit,
    auth::users::Person,
    auth::{AuthUser, Role},
    db::Reuse,
    db::schema::{
        group_members, group_sessions, groups, profiles, room_visits, session_attendance, users,
    },
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    signal::{self, Signal},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(schedule_session)
        .service(group_sessions_list)
        .service(my_sessions)
        .service(view_session)
        .service(start_session)
        .service(end_session)
        .service(cancel_session)
        .service(lock_session)
        .service(unlock_session)
        .service(sign_off)
        .service(adjust_attendance);
}

const KINDS: [&str; 2] = ["group_supervision", "peer_consultation"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = group_sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Session {
    pub id: Uuid,
    pub group_id: Uuid,
    pub host_id: Uuid,
    pub series_id: Option<Uuid>,
    pub title: String,
    pub agenda: String,
    pub kind: String,
    pub starts_at: DateTime<Utc>,
    pub planned_minutes: i32,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub locked_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub group_id: Uuid,
    pub group_name: String,
    pub host: Person,
    pub series_id: Option<Uuid>,
    pub title: String,
    pub agenda: String,
    /// `group_supervision` or `peer_consultation`.
    pub kind: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub planned_minutes: i32,
    /// `scheduled`, `live`, `ended` or `cancelled`.
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub locked: bool,
    pub signed_at: Option<DateTime<Utc>>,
    /// The viewer's time zone, and the times in it.
    pub time_zone: String,
    pub starts_at_local: String,
    pub ends_at_local: String,
    /// Attendance once the session has ended: every line for its host, your own for others.
    pub attendance: Vec<AttendanceLine>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendanceLine {
    pub user: Person,
    pub minutes: i32,
    /// What the room measured, before any adjustment.
    pub measured_minutes: i32,
    pub kind: String,
    pub adjusted_reason: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
    pub signer_name: Option<String>,
    pub signer_license: Option<String>,
}

fn no_session() -> AppError {
    AppError::not_found("No such session.")
}

async fn viewer_zone(conn: &mut AsyncPgConnection, user: Uuid) -> AppResult<Tz> {
    let name: String = users::table
        .find(user)
        .select(users::time_zone)
        .first(conn)
        .await?;
    Ok(attendance::zone(&name))
}

async fn load(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Session> {
    group_sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(no_session)
}

/// Sessions as their viewer sees them, in the order given: three queries
/// however many sessions there are.
async fn show_all(
    conn: &mut AsyncPgConnection,
    sessions: Vec<Session>,
    viewer: Uuid,
    tz: Tz,
) -> AppResult<Vec<SessionView>> {
    use std::collections::HashMap;
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let group_ids: Vec<Uuid> = sessions.iter().map(|s| s.group_id).collect();
    let host_ids: Vec<Uuid> = sessions.iter().map(|s| s.host_id).collect();
    let group_names: HashMap<Uuid, String> = groups::table
        .filter(groups::id.eq_any(&group_ids))
        .select((groups::id, groups::name))
        .load(conn)
        .await?
        .into_iter()
        .collect();
    let host_names: HashMap<Uuid, String> = users::table
        .filter(users::id.eq_any(&host_ids))
        .select((users::id, users::display_name))
        .load(conn)
        .await?
        .into_iter()
        .collect();
    // A host sees every line of their sessions; anyone else only their own.
    let (hosted, others): (Vec<&Session>, Vec<&Session>) =
        sessions.iter().partition(|s| s.host_id == viewer);
    let ids = |list: Vec<&Session>| list.iter().map(|s| s.id).collect::<Vec<Uuid>>();
    let (hosted, others) = (ids(hosted), ids(others));
    type Line = (
        Uuid,
        Uuid,
        String,
        i32,
        i32,
        String,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Line> = session_attendance::table
        .inner_join(users::table.on(users::id.eq(session_attendance::user_id)))
        .filter(
            session_attendance::session_id
                .eq_any(&hosted)
                .or(session_attendance::session_id
                    .eq_any(&others)
                    .and(session_attendance::user_id.eq(viewer))),
        )
        .order((session_attendance::session_id, users::display_name))
        .select((
            session_attendance::session_id,
            users::id,
            users::display_name,
            session_attendance::minutes,
            session_attendance::measured_minutes,
            session_attendance::kind,
            session_attendance::adjusted_reason,
            session_attendance::signed_at,
            session_attendance::signer_name,
            session_attendance::signer_license,
        ))
        .load(conn)
        .await?;
    let mut lines: HashMap<Uuid, Vec<AttendanceLine>> = HashMap::new();
    for (session, id, name, minutes, measured, kind, reason, signed_at, signer, license) in rows {
        lines.entry(session).or_default().push(AttendanceLine {
            user: Person { id, name },
            minutes,
            measured_minutes: measured,
            kind,
            adjusted_reason: reason,
            signed_at,
            signer_name: signer,
            signer_license: license,
        });
    }
    Ok(sessions
        .into_iter()
        .map(|session| SessionView {
            id: session.id,
            group_id: session.group_id,
            group_name: group_names
                .get(&session.group_id)
                .cloned()
                .unwrap_or_default(),
            host: Person {
                id: session.host_id,
                name: host_names
                    .get(&session.host_id)
                    .cloned()
                    .unwrap_or_default(),
            },
            series_id: session.series_id,
            attendance: lines.remove(&session.id).unwrap_or_default(),
            title: session.title,
            agenda: session.agenda,
            kind: session.kind,
            starts_at: session.starts_at,
            ends_at: session.ends_at,
            planned_minutes: session.planned_minutes,
            status: session.status,
            started_at: session.started_at,
            ended_at: session.ended_at,
            locked: session.locked_at.is_some(),
            signed_at: session.signed_at,
            time_zone: tz.name().to_string(),
            starts_at_local: attendance::local(session.starts_at, tz),
            ends_at_local: attendance::local(session.ends_at, tz),
        })
        .collect())
}

async fn show(
    conn: &mut AsyncPgConnection,
    session: Session,
    viewer: Uuid,
    tz: Tz,
) -> AppResult<SessionView> {
    let mut views = show_all(conn, vec![session], viewer, tz).await?;
    views.pop().ok_or_else(no_session)
}

/// The session as its viewer sees it, as a reply.
async fn respond(conn: &mut AsyncPgConnection, id: Uuid, viewer: Uuid) -> AppResult<HttpResponse> {
    let session = load(conn, id).await?;
    let tz = viewer_zone(conn, viewer).await?;
    Ok(HttpResponse::Ok().json(show(conn, session, viewer, tz).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub title: String,
    #[serde(default)]
    pub agenda: String,
    /// `group_supervision` (default) or `peer_consultation`.
    pub kind: Option<String>,
    /// `2026-12-01T09:00` in your time zone, or an RFC 3339 time with an offset.
    pub starts_at: String,
    /// Planned length, 1 to 480 minutes; or give `ends_at`.
    pub planned_minutes: Option<i32>,
    pub ends_at: Option<String>,
    /// Repeat weekly for this many more weeks (0 to 52).
    #[serde(default)]
    pub repeat_weeks: u32,
}

/// Schedules a session in a group (a supervisor who is a member, or a host),
/// optionally repeating weekly.
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), request_body = ScheduleInput, security(("bearer" = [])),
    responses((status = 201, body = Vec<SessionView>), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/groups/{id}/sessions")]
async fn schedule_session(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<ScheduleInput>,
) -> AppResult<HttpResponse> {
    let group = path.into_inner();
    let input = body.0;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let member = super::require_member(&mut conn, group, auth.user_id).await?;
    let supervisor = matches!(auth.role, Role::Supervisor | Role::Admin);
    if !(supervisor || member.role == GroupRole::Host) {
        return Err(AppError::forbidden(
            "Only supervisors and the group's hosts can schedule sessions.",
        ));
    }
    let tz = viewer_zone(&mut conn, auth.user_id).await?;
    let title = super::text_field("title", &input.title, 1, 200)?;
    let agenda = super::text_field("agenda", &input.agenda, 0, 4000)?;
    let kind = input.kind.unwrap_or_else(|| KINDS[0].to_string());
    if !KINDS.contains(&kind.as_str()) {
        return Err(AppError::invalid_field(
            "kind",
            "kind is group_supervision or peer_consultation.",
        ));
    }
    let starts_at = attendance::parse_time("starts_at", &input.starts_at, tz)?;
    if starts_at <= now {
        return Err(AppError::invalid_field(
            "starts_at",
            "A session cannot start in the past.",
        ));
    }
    let minutes = match (input.planned_minutes, input.ends_at) {
        (Some(m), None) => i64::from(m),
        (None, Some(end)) => {
            let ends_at = attendance::parse_time("ends_at", &end, tz)?;
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
    let ids: Vec<Uuid> = conn
        .transaction::<_, AppError, _>(async |conn| {
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
                                    attendance::local(start, tz)
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
            Ok(ids)
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
pub struct SessionsQuery {
    /// Ended and cancelled sessions instead of upcoming ones.
    #[serde(default)]
    pub past: bool,
}

async fn list(
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
            .filter(group_sessions::status.eq_any(["ended", "cancelled"]))
            .order(group_sessions::starts_at.desc())
            .limit(100)
            .load(conn)
            .await?
    } else {
        query
            .filter(group_sessions::status.eq_any(["scheduled", "live"]))
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
async fn group_sessions_list(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<SessionsQuery>,
) -> AppResult<HttpResponse> {
    let group = path.into_inner();
    let mut conn = state.pool.get().await?;
    super::require_member(&mut conn, group, auth.user_id).await?;
    let views = list(&mut conn, vec![group], query.past, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Upcoming sessions in all my groups (or, with `past=true`, past ones).
#[utoipa::path(tag = "sessions", params(SessionsQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>)))]
#[get("/me/sessions")]
async fn my_sessions(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<SessionsQuery>,
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
async fn view_session(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let session = load(&mut conn, path.into_inner()).await?;
    if super::membership(&mut conn, session.group_id, auth.user_id)
        .await?
        .is_none()
        && session.host_id != auth.user_id
    {
        return Err(no_session());
    }
    let tz = viewer_zone(&mut conn, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(show(&mut conn, session, auth.user_id, tz).await?))
}

/// The session, if the caller is its host; 403 for other members, 404 otherwise.
async fn hosted(conn: &mut AsyncPgConnection, id: Uuid, user: Uuid) -> AppResult<Session> {
    let session = load(conn, id).await?;
    if session.host_id == user {
        return Ok(session);
    }
    if super::membership(conn, session.group_id, user)
        .await?
        .is_some()
    {
        Err(AppError::forbidden("Only the session's host can do this."))
    } else {
        Err(no_session())
    }
}

/// Moves a session from one status to another with a guarded UPDATE; 409 when it cannot.
async fn transition(
    conn: &mut AsyncPgConnection,
    session: &Session,
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if session.status != from {
        return Err(AppError::conflict(
            Code::InvalidTransition,
            format!("This session is {}; it cannot become {to}.", session.status),
        ));
    }
    let target = group_sessions::table.filter(
        group_sessions::id
            .eq(session.id)
            .and(group_sessions::status.eq(from)),
    );
    let updated = match to {
        "live" => {
            diesel::update(target)
                .set((
                    group_sessions::status.eq(to),
                    group_sessions::started_at.eq(now),
                ))
                .reused()
                .execute(conn)
                .await?
        }
        "ended" => {
            diesel::update(target)
                .set((
                    group_sessions::status.eq(to),
                    group_sessions::ended_at.eq(now),
                    group_sessions::locked_at.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
                .await?
        }
        _ => {
            diesel::update(target)
                .set(group_sessions::status.eq(to))
                .execute(conn)
                .await?
        }
    };
    if updated == 0 {
        return Err(AppError::conflict(
            Code::ConcurrentUpdate,
            "This session changed at the same moment. Reload it.",
        ));
    }
    Ok(())
}

async fn act(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    id: Uuid,
    action: &'static str,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let group = conn
        .transaction::<_, AppError, _>(async |conn| {
            let session = hosted(conn, id, auth.user_id).await?;
            match action {
                "start" => {
                    let live: i64 = group_sessions::table
                        .filter(
                            group_sessions::group_id
                                .eq(session.group_id)
                                .and(group_sessions::status.eq("live")),
                        )
                        .count()
                        .get_result(conn)
                        .await?;
                    if live > 0 {
                        return Err(AppError::conflict(
                            Code::SessionLive,
                            "Another session of this group is live: end it first.",
                        ));
                    }
                    transition(conn, &session, "scheduled", "live", now).await?
                }
                "end" => {
                    transition(conn, &session, "live", "ended", now).await?;
                    take_attendance(conn, &session, now).await?;
                }
                "cancel" => transition(conn, &session, "scheduled", "cancelled", now).await?,
                "lock" | "unlock" => {
                    if session.status != "live" {
                        return Err(AppError::conflict(
                            Code::InvalidTransition,
                            "Only a live session's room can be locked or unlocked.",
                        ));
                    }
                    diesel::update(group_sessions::table.find(id))
                        .set(group_sessions::locked_at.eq((action == "lock").then_some(now)))
                        .execute(conn)
                        .await?;
                }
                _ => return Err(AppError::internal("unknown session action")),
            }
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(auth.user_id),
                    match action {
                        "start" => audit::Action::SessionStarted,
                        "end" => audit::Action::SessionEnded,
                        "cancel" => audit::Action::SessionCancelled,
                        "lock" => audit::Action::SessionLocked,
                        _ => audit::Action::SessionUnlocked,
                    },
                    "session",
                    id,
                ),
            )
            .await?;
            Ok(session.group_id)
        })
        .await?;
    signal::announce(&mut conn, &Signal::Session { group, session: id }).await?;
    respond(&mut conn, id, auth.user_id).await
}

/// Attendance lines from the room's visits between start and end, for the
/// group's members other than the host.
async fn take_attendance(
    conn: &mut AsyncPgConnection,
    session: &Session,
    ended_at: DateTime<Utc>,
) -> AppResult<()> {
    let Some(started_at) = session.started_at else {
        return Ok(());
    };
    let members = group_members::table
        .filter(group_members::group_id.eq(session.group_id))
        .select(group_members::user_id);
    let visits: Vec<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> = room_visits::table
        .filter(
            room_visits::group_id
                .eq(session.group_id)
                .and(room_visits::joined_at.lt(ended_at))
                .and(
                    room_visits::left_at
                        .is_null()
                        .or(room_visits::left_at.gt(started_at)),
                )
                .and(room_visits::user_id.ne(session.host_id))
                .and(room_visits::user_id.eq_any(members)),
        )
        .select((
            room_visits::user_id,
            room_visits::joined_at,
            room_visits::left_at,
        ))
        .load(conn)
        .await?;
    let mut by_user: std::collections::BTreeMap<Uuid, Vec<attendance::Stay>> = Default::default();
    for (user, joined, left) in visits {
        by_user
            .entry(user)
            .or_default()
            .push((joined, left.unwrap_or(ended_at)));
    }
    for (user, stays) in by_user {
        let (merged, minutes) =
            attendance::merge_stays(stays, started_at, ended_at, RECONNECT_GRACE);
        if minutes == 0 {
            continue;
        }
        let stays: Vec<[DateTime<Utc>; 2]> = merged.iter().map(|(a, b)| [*a, *b]).collect();
        diesel::insert_into(session_attendance::table)
            .values((
                session_attendance::session_id.eq(session.id),
                session_attendance::user_id.eq(user),
                session_attendance::stays.eq(serde_json::json!(stays)),
                session_attendance::measured_minutes.eq(minutes),
                session_attendance::minutes.eq(minutes.min(480)),
                session_attendance::kind.eq(&session.kind),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

macro_rules! session_action {
    ($name:ident, $path:literal, $action:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), security(("bearer" = [])),
            responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        #[post($path)]
        async fn $name(
            state: web::Data<AppState>,
            meta: RequestMeta,
            auth: AuthUser,
            path: web::Path<Uuid>,
        ) -> AppResult<HttpResponse> {
            act(&state, &meta, &auth, path.into_inner(), $action).await
        }
    };
}

session_action!(
    start_session,
    "/sessions/{id}/start",
    "start",
    "The host starts the session: everyone in the room is told it is live."
);
session_action!(
    end_session,
    "/sessions/{id}/end",
    "end",
    "The host ends the session; attendance is taken from the room."
);
session_action!(
    cancel_session,
    "/sessions/{id}/cancel",
    "cancel",
    "The host cancels a scheduled session."
);
session_action!(
    lock_session,
    "/sessions/{id}/lock",
    "lock",
    "The host locks the room of a live session to the people present now."
);
session_action!(
    unlock_session,
    "/sessions/{id}/unlock",
    "unlock",
    "The host opens the room of a live session again."
);

/// The host signs off the attendance of an ended session: each line becomes
/// a ledger entry with the host's name, license and the time.
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/sessions/{id}/sign-off")]
async fn sign_off(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let session = hosted(conn, id, auth.user_id).await?;
        if session.status != "ended" {
            return Err(AppError::conflict(
                Code::NotEnded,
                "Attendance can be signed once the session has ended.",
            ));
        }
        if session.signed_at.is_some() {
            return Err(AppError::conflict(
                Code::AlreadySigned,
                "This session's attendance is already signed.",
            ));
        }
        let name: String = users::table
            .find(auth.user_id)
            .select(users::display_name)
            .first(conn)
            .await?;
        let license: Option<(Vec<String>, Option<String>)> = profiles::table
            .find(auth.user_id)
            .select((profiles::license_states, profiles::license_number))
            .first(conn)
            .await
            .optional()?;
        let license = license.and_then(|(states, number)| {
            number.map(|n| match <[String]>::first(&states) {
                Some(state) => format!("{state} {n}"),
                None => n,
            })
        });
        diesel::update(session_attendance::table.filter(session_attendance::session_id.eq(id)))
            .set((
                session_attendance::signed_at.eq(now),
                session_attendance::signed_by.eq(auth.user_id),
                session_attendance::signer_name.eq(&name),
                session_attendance::signer_license.eq(&license),
            ))
            .execute(conn)
            .await?;
        diesel::update(group_sessions::table.find(id))
            .set(group_sessions::signed_at.eq(now))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::new(
                Some(auth.user_id),
                audit::Action::SessionSignedOff,
                "session",
                id,
            ),
        )
        .await?;
        Ok(())
    })
    .await?;
    respond(&mut conn, id, auth.user_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustInput {
    pub minutes: i32,
    /// Why the measured minutes are wrong; kept in the audit log.
    pub reason: String,
}

/// The host corrects one attendee's minutes, with a reason (audited).
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = AdjustInput,
    security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/sessions/{id}/attendance/{user_id}")]
async fn adjust_attendance(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<AdjustInput>,
) -> AppResult<HttpResponse> {
    let (id, user) = path.into_inner();
    let input = body.0;
    let reason = super::text_field("reason", &input.reason, 1, 500)?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let session = hosted(conn, id, auth.user_id).await?;
        if session.status != "ended" {
            return Err(AppError::conflict(
                Code::NotEnded,
                "Attendance can be adjusted once the session has ended.",
            ));
        }
        let limit = session
            .ended_at
            .zip(session.started_at)
            .map_or(480, |(e, s)| ((e - s).num_minutes() + 1).min(480) as i32);
        if !(0..=limit).contains(&input.minutes) {
            return Err(AppError::invalid_field(
                "minutes",
                format!("Minutes are from 0 to the session's length ({limit})."),
            ));
        }
        let before: Option<i32> = session_attendance::table
            .find((id, user))
            .select(session_attendance::minutes)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        match before {
            Some(_) => {
                diesel::update(session_attendance::table.find((id, user)))
                    .set((
                        session_attendance::minutes.eq(input.minutes),
                        session_attendance::adjusted_reason.eq(&reason),
                        session_attendance::adjusted_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            None => {
                // Someone the room missed (a lost connection, a phone call): only a member.
                if super::membership(conn, session.group_id, user)
                    .await?
                    .is_none()
                {
                    return Err(AppError::not_found(
                        "This person is not a member of the group.",
                    ));
                }
                let signed = session.signed_at.is_some();
                let (name, license): (Option<String>, Option<String>) = if signed {
                    session_attendance::table
                        .filter(session_attendance::session_id.eq(id))
                        .select((
                            session_attendance::signer_name,
                            session_attendance::signer_license,
                        ))
                        .first(conn)
                        .await
                        .optional()?
                        .unwrap_or((None, None))
                } else {
                    (None, None)
                };
                diesel::insert_into(session_attendance::table)
                    .values((
                        session_attendance::session_id.eq(id),
                        session_attendance::user_id.eq(user),
                        session_attendance::stays.eq(serde_json::json!([])),
                        session_attendance::measured_minutes.eq(0),
                        session_attendance::minutes.eq(input.minutes),
                        session_attendance::kind.eq(&session.kind),
                        session_attendance::adjusted_reason.eq(&reason),
                        session_attendance::adjusted_at.eq(now),
                        session_attendance::signed_at.eq(session.signed_at),
                        session_attendance::signed_by.eq(signed.then_some(auth.user_id)),
                        session_attendance::signer_name.eq(name),
                        session_attendance::signer_license.eq(license),
                    ))
                    .execute(conn)
                    .await?;
            }
        }
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::new(
                Some(auth.user_id),
                audit::Action::SessionAttendanceAdjusted,
                "session",
                id,
            )
            .detail(serde_json::json!({
                "attendee": user,
                "from": before,
                "to": input.minutes,
                "reason": reason,
                "signed": session.signed_at.is_some(),
            })),
        )
        .await?;
        Ok(())
    })
    .await?;
    respond(&mut conn, id, auth.user_id).await
}

/// A group's live session, as the room shows it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: Uuid,
    pub title: String,
    pub status: String,
    pub locked_at: Option<DateTime<Utc>>,
    pub host_id: Uuid,
}

/// The session that is live in a group, if any.
pub async fn live(conn: &mut AsyncPgConnection, group: Uuid) -> AppResult<Option<LiveSession>> {
    session_state(conn, group, None).await
}

/// A session's state for the room (any status), or the group's live one.
pub async fn session_state(
    conn: &mut AsyncPgConnection,
    group: Uuid,
    id: Option<Uuid>,
) -> AppResult<Option<LiveSession>> {
    let mut query = group_sessions::table
        .filter(group_sessions::group_id.eq(group))
        .select((
            group_sessions::id,
            group_sessions::title,
            group_sessions::status,
            group_sessions::locked_at,
            group_sessions::host_id,
        ))
        .into_boxed();
    query = match id {
        Some(id) => query.filter(group_sessions::id.eq(id)),
        None => query.filter(group_sessions::status.eq("live")),
    };
    type Row = (Uuid, String, String, Option<DateTime<Utc>>, Uuid);
    let row: Option<Row> = query.first(conn).await.optional()?;
    Ok(
        row.map(|(id, title, status, locked_at, host_id)| LiveSession {
            id,
            title,
            status,
            locked_at,
            host_id,
        }),
    )
}

/// Whether someone hosts the session live in a group now.
pub async fn hosts_live(conn: &mut AsyncPgConnection, group: Uuid, user: Uuid) -> AppResult<bool> {
    Ok(live(conn, group).await?.is_some_and(|s| s.host_id == user))
}

/// Whether someone may enter a group's room now: always, unless a live
/// session locked it and they were not there when it was locked.
pub async fn may_enter(conn: &mut AsyncPgConnection, group: Uuid, user: Uuid) -> AppResult<bool> {
    let Some(session) = live(conn, group).await? else {
        return Ok(true);
    };
    let Some(locked_at) = session.locked_at else {
        return Ok(true);
    };
    if session.host_id == user {
        return Ok(true);
    }
    let present: bool = diesel::select(diesel::dsl::exists(
        room_visits::table.filter(
            room_visits::group_id
                .eq(group)
                .and(room_visits::user_id.eq(user))
                .and(room_visits::joined_at.le(locked_at))
                .and(
                    room_visits::left_at
                        .is_null()
                        .or(room_visits::left_at.ge(locked_at - RECONNECT_GRACE)),
                ),
        ),
    ))
    .get_result(conn)
    .await?;
    Ok(present)
}

/// Reminders 24 hours and 1 hour before each session, to every member
/// (in-app and email). Returns how many sessions were reminded about.
pub async fn send_reminders(state: &AppState, now: DateTime<Utc>) -> AppResult<usize> {
    let mut conn = state.pool.get().await?;
    let url = state.mailer.public_url.clone();
    let due: Vec<Session> = group_sessions::table
        .filter(
            group_sessions::status
                .eq("scheduled")
                .and(group_sessions::starts_at.gt(now))
                .and(group_sessions::starts_at.le(now + Duration::hours(24)))
                .and(
                    group_sessions::reminded_day_at
                        .is_null()
                        .or(group_sessions::reminded_hour_at
                            .is_null()
                            .and(group_sessions::starts_at.le(now + Duration::hours(1)))),
                ),
        )
        .select(Session::as_select())
        .load(&mut conn)
        .await?;
    let count = due.len();
    for session in due {
        let within_hour = session.starts_at <= now + Duration::hours(1);
        conn.transaction::<_, AppError, _>(async |conn| {
            let group_name: String = groups::table
                .find(session.group_id)
                .select(groups::name)
                .first(conn)
                .await?;
            let members: Vec<(Uuid, String)> = group_members::table
                .inner_join(users::table)
                .filter(group_members::group_id.eq(session.group_id))
                .select((users::id, users::time_zone))
                .load(conn)
                .await?;
            let when = if within_hour { "within the hour" } else { "tomorrow" };
            for (member, zone) in members {
                let at = attendance::local(session.starts_at, attendance::zone(&zone));
                notify::tell(
                    conn,
                    &url,
                    member,
                    notify::Notice {
                        kind: "session_reminder",
                        referral: None,
                        group: Some(session.group_id),
                        session: Some(session.id),
                        message: format!(
                            "\u{201c}{}\u{201d} in \u{201c}{group_name}\u{201d} starts {when}: {at}.",
                            session.title
                        ),
                        email_subject: Some(format!("Reminder: {}", session.title)),
                    },
                    now,
                )
                .await?;
            }
            let target = diesel::update(group_sessions::table.find(session.id));
            if within_hour {
                target
                    .set((
                        group_sessions::reminded_hour_at.eq(now),
                        group_sessions::reminded_day_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            } else {
                target
                    .set(group_sessions::reminded_day_at.eq(now))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await?;
    }
    if count > 0 {
        state.courier_wake.notify_one();
    }
    Ok(count)
}

/// Sends session reminders every 30 seconds.
pub async fn run_reminders(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tick.tick().await;
        if let Err(e) = send_reminders(&state, state.clock.now()).await {
            tracing::warn!(error = %e, "sessions: reminders failed");
        }
    }
}
