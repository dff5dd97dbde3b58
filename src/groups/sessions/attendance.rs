//! Attendance from the room: taken when a session ends, corrected by the
//! host with a reason, and signed off into the ledger.

use actix_web::{HttpResponse, patch, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    model::*,
    stays::{self, RECONNECT_GRACE},
    store::*,
};
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{group_members, group_sessions, session_attendance, users},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

/// Attendance lines from the room's visits between start and end, for the
/// group's members other than the host.
pub(super) async fn take_attendance(
    conn: &mut AsyncPgConnection,
    session: &Session,
    ended_at: DateTime<Utc>,
) -> AppResult<()> {
    let Some(started_at) = session.started_at else {
        return Ok(());
    };
    let attendees: Vec<Uuid> = group_members::table
        .filter(
            group_members::group_id
                .eq(session.group_id)
                .and(group_members::user_id.ne(session.host_id)),
        )
        .select(group_members::user_id)
        .load(conn)
        .await?;
    let visits =
        crate::visits::overlapping(conn, session.group_id, &attendees, started_at, ended_at)
            .await?;
    let mut by_user: std::collections::BTreeMap<Uuid, Vec<stays::Stay>> = Default::default();
    for (user, joined, left) in visits {
        by_user
            .entry(user)
            .or_default()
            .push((joined, left.unwrap_or(ended_at)));
    }
    for (user, stays) in by_user {
        let (merged, minutes) = stays::merge_stays(stays, started_at, ended_at, RECONNECT_GRACE);
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

/// The host signs off the attendance of an ended session: each line becomes
/// a ledger entry with the host's name, license and the time.
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/sessions/{id}/sign-off")]
pub(super) async fn sign_off(
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
        if session.status != SessionStatus::Ended {
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
        // A supervisor's signature is what a board relies on: a verified
        // licence, and a sign-in that proved a second factor.
        let license = if session.kind == SessionKind::GroupSupervision {
            Some(licensed_supervisor(conn, &auth).await?)
        } else {
            auth.require_second_factor()?;
            crate::profiles::verified_license(conn, auth.user_id).await?
        };
        let name: String = users::table
            .find(auth.user_id)
            .select(users::display_name)
            .first(conn)
            .await?;
        // Nobody signs their own line.
        diesel::update(
            session_attendance::table.filter(
                session_attendance::session_id
                    .eq(id)
                    .and(session_attendance::user_id.ne(auth.user_id)),
            ),
        )
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
    /// Why the measured minutes are wrong; shown on the attendee's ledger
    /// and kept in the audit log.
    pub reason: AdjustReason,
}

crate::text_types! {
    /// Why a host corrected an attendee's minutes.
    pub AdjustReason = crate::text::Limit::prose("reason", 1, 500);
}

/// The host corrects one attendee's minutes before signing, with a reason
/// (shown to the attendee, audited): never their own line, never past the
/// session's length, never once signed.
#[utoipa::path(tag = "sessions", params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = AdjustInput,
    security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/sessions/{id}/attendance/{user_id}")]
pub(super) async fn adjust_attendance(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: ApiJson<AdjustInput>,
) -> AppResult<HttpResponse> {
    let (id, user) = path.into_inner();
    let input = body.0;
    let reason = input.reason.as_str().to_string();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let session = hosted(conn, id, auth.user_id).await?;
        if user == auth.user_id {
            return Err(AppError::forbidden(
                "Nobody adds or changes their own hours: another host of the group can.",
            ));
        }
        if session.status != SessionStatus::Ended {
            return Err(AppError::conflict(
                Code::NotEnded,
                "Attendance can be adjusted once the session has ended.",
            ));
        }
        if session.signed_at.is_some() {
            return Err(AppError::conflict(
                Code::AlreadySigned,
                "This session's attendance is signed and can no longer change.",
            ));
        }
        // The session's length in whole minutes, rounded up.
        let limit = session
            .ended_at
            .zip(session.started_at)
            .map_or(0, |(e, s)| ((e - s).num_seconds() + 59) / 60)
            .min(480) as i32;
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
                if crate::groups::store::membership(conn, session.group_id, user)
                    .await?
                    .is_none()
                {
                    return Err(AppError::not_found(
                        "This person is not a member of the group.",
                    ));
                }
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
            })),
        )
        .await?;
        Ok(())
    })
    .await?;
    respond(&mut conn, id, auth.user_id).await
}
