//! The session queries the actions share: loading one, who hosts it, how
//! a viewer sees it, and what the room needs to know (the live session,
//! who may enter).

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    model::*,
    stays::{self, RECONNECT_GRACE},
};
use crate::{
    auth::users::Person,
    db::schema::{group_members, group_sessions, groups, session_attendance, users},
    error::{AppError, AppResult},
};

pub(super) fn no_session() -> AppError {
    AppError::not_found("No such session.")
}

pub(super) async fn viewer_zone(conn: &mut AsyncPgConnection, user: Uuid) -> AppResult<Tz> {
    let name: String = users::table
        .find(user)
        .select(users::time_zone)
        .first(conn)
        .await?;
    Ok(stays::zone(&name))
}

pub(super) async fn load(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Session> {
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
pub(super) async fn show_all(
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
    // Whoever has authority over a session now (a current host of its group,
    // or the member who scheduled it) sees every line; anyone else only their own.
    let roles: HashMap<Uuid, crate::groups::model::GroupRole> = group_members::table
        .filter(
            group_members::user_id
                .eq(viewer)
                .and(group_members::group_id.eq_any(&group_ids)),
        )
        .select((group_members::group_id, group_members::role))
        .load(conn)
        .await?
        .into_iter()
        .collect();
    let (hosted, others): (Vec<&Session>, Vec<&Session>) = sessions
        .iter()
        .partition(|s| has_authority(s, viewer, roles.get(&s.group_id).copied()));
    let ids = |list: Vec<&Session>| list.iter().map(|s| s.id).collect::<Vec<Uuid>>();
    let (hosted, others) = (ids(hosted), ids(others));
    type Line = (
        Uuid,
        Uuid,
        String,
        i32,
        i32,
        SessionKind,
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
            starts_at_local: stays::local(session.starts_at, tz),
            ends_at_local: stays::local(session.ends_at, tz),
        })
        .collect())
}

pub(super) async fn show(
    conn: &mut AsyncPgConnection,
    session: Session,
    viewer: Uuid,
    tz: Tz,
) -> AppResult<SessionView> {
    let mut views = show_all(conn, vec![session], viewer, tz).await?;
    views.pop().ok_or_else(no_session)
}

/// Whether `viewer`, a member of the session's group in `role` (or none),
/// has authority over it now.
pub(super) fn has_authority(
    session: &Session,
    viewer: Uuid,
    role: Option<crate::groups::model::GroupRole>,
) -> bool {
    match role {
        None => false,
        Some(role) => role == crate::groups::model::GroupRole::Host || session.host_id == viewer,
    }
}

/// The session as its viewer sees it, as a reply.
pub(super) async fn respond(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    viewer: Uuid,
) -> AppResult<HttpResponse> {
    let session = load(conn, id).await?;
    let tz = viewer_zone(conn, viewer).await?;
    Ok(HttpResponse::Ok().json(show(conn, session, viewer, tz).await?))
}

/// The session, when `user` has authority over it now: a current host of
/// its group, or the member who scheduled it while still a member. Someone
/// removed from the group keeps none (404, as for anyone outside it).
pub(super) async fn hosted(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user: Uuid,
) -> AppResult<Session> {
    let session = load(conn, id).await?;
    let role = crate::groups::store::membership(conn, session.group_id, user)
        .await?
        .map(|m| m.role);
    match role {
        None => Err(no_session()),
        Some(_) if has_authority(&session, user, role) => Ok(session),
        Some(_) => Err(AppError::forbidden(
            "Only the session's host or the group's hosts can do this.",
        )),
    }
}

/// What a board relies on: group supervision is hosted and signed by a
/// supervisor whose licence an administrator verified, signed in with a
/// second factor. Returns the licence as it is signed (`IL 12345`).
pub(super) async fn licensed_supervisor(
    conn: &mut AsyncPgConnection,
    auth: &crate::auth::AuthUser,
) -> AppResult<String> {
    use crate::auth::role::Role;
    if !matches!(auth.role, Role::Supervisor | Role::Admin) {
        return Err(AppError::forbidden(
            "Only a supervisor can host and sign group supervision; an administrator can make you one.",
        ));
    }
    auth.require_second_factor()?;
    crate::profiles::verified_license(conn, auth.user_id)
        .await?
        .ok_or_else(|| {
            AppError::forbidden(
                "Group supervision counts only under a verified licence: add your licence number and ask an administrator to verify it.",
            )
        })
}

/// A group's live session, as the room shows it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: Uuid,
    pub title: String,
    pub status: SessionStatus,
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
        None => query.filter(group_sessions::status.eq(SessionStatus::Live)),
    };
    type Row = (Uuid, String, SessionStatus, Option<DateTime<Utc>>, Uuid);
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
    let present = crate::visits::present_at(conn, group, user, locked_at, RECONNECT_GRACE).await?;
    Ok(present)
}
