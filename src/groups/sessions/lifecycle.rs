//! The host moves a session: start, end (attendance is taken from the
//! room), cancel, lock and unlock the room. Each step asks the status table
//! (`SessionStatus::next`) and changes the row with the one guarded UPDATE.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    attendance::take_attendance,
    model::{Session, SessionAction, SessionStatus, SessionView},
    store::{hosted, respond},
};
use crate::{
    audit,
    auth::AuthUser,
    db::schema::group_sessions,
    error::{AppError, AppResult, Code, ErrorBody},
    http::RequestMeta,
    signal::{self, Signal},
    state::AppState,
};

/// Moves a session by `action` with the guarded UPDATE (its status must
/// still be what it was read as); 409 when it cannot.
async fn transition(
    conn: &mut AsyncPgConnection,
    session: &Session,
    action: SessionAction,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let from = session.status;
    let to = from.next(action)?;
    let (id, status) = (session.id, group_sessions::status);
    match action {
        SessionAction::Start => crate::guarded_update!(
            conn,
            group_sessions::table,
            id,
            status,
            from,
            (status.eq(to), group_sessions::started_at.eq(now)),
            "session"
        ),
        SessionAction::End => crate::guarded_update!(
            conn,
            group_sessions::table,
            id,
            status,
            from,
            (
                status.eq(to),
                group_sessions::ended_at.eq(now),
                group_sessions::locked_at.eq(None::<DateTime<Utc>>),
            ),
            "session"
        ),
        SessionAction::Cancel => crate::guarded_update!(
            conn,
            group_sessions::table,
            id,
            status,
            from,
            status.eq(to),
            "session"
        ),
        SessionAction::Lock | SessionAction::Unlock => crate::guarded_update!(
            conn,
            group_sessions::table,
            id,
            status,
            from,
            group_sessions::locked_at.eq((action == SessionAction::Lock).then_some(now)),
            "session"
        ),
    }
}

async fn act(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    id: Uuid,
    action: SessionAction,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let group = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let session = hosted(conn, id, auth.user_id).await?;
            if action == SessionAction::Start {
                let live: i64 = group_sessions::table
                    .filter(
                        group_sessions::group_id
                            .eq(session.group_id)
                            .and(group_sessions::status.eq(SessionStatus::Live)),
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
            }
            transition(conn, &session, action, now).await?;
            if action == SessionAction::End {
                take_attendance(conn, &session, now).await?;
            }
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(Some(auth.user_id), action.audited_as(), "session", id),
            )
            .await?;
            Ok(session.group_id)
        })
        .await
    })
    .await?;
    signal::announce(&mut conn, &Signal::Session { group, session: id }).await?;
    respond(&mut conn, id, auth.user_id).await
}

macro_rules! session_action {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(tag = "sessions", params(("id" = Uuid, Path)), security(("bearer" = [])),
            responses((status = 200, body = SessionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        #[post($path)]
        pub async fn $name(
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
    SessionAction::Start,
    "The host starts the session: everyone in the room is told it is live."
);
session_action!(
    end_session,
    "/sessions/{id}/end",
    SessionAction::End,
    "The host ends the session; attendance is taken from the room."
);
session_action!(
    cancel_session,
    "/sessions/{id}/cancel",
    SessionAction::Cancel,
    "The host cancels a scheduled session."
);
session_action!(
    lock_session,
    "/sessions/{id}/lock",
    SessionAction::Lock,
    "The host locks the room of a live session to the people present now."
);
session_action!(
    unlock_session,
    "/sessions/{id}/unlock",
    SessionAction::Unlock,
    "The host opens the room of a live session again."
);
