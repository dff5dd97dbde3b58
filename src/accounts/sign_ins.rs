//! My sign-ins: each browser or device signed in to my account, when it
//! started and was last used, from where and with what; any of them can be
//! ended from here (its websockets close with it).

use std::collections::HashMap;

use actix_web::{HttpResponse, delete, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    audit,
    auth::{AuthUser, sessions},
    db::schema::{auth_sessions, refresh_tokens},
    error::{AppError, AppResult, ErrorBody},
    http::RequestMeta,
    state::AppState,
};

/// One active sign-in of mine.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignIn {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    /// The last time its tokens were refreshed (or it started).
    pub last_used_at: DateTime<Utc>,
    /// The address it signed in from.
    pub ip: Option<String>,
    /// Browser and system, as far as the browser said, e.g. "Firefox on Windows".
    pub browser: String,
    /// The sign-in this request was made with.
    pub current: bool,
}

/// "Firefox on Windows" from a User-Agent header; a few clear rules, not a
/// full parser: the order matters because browsers name each other.
pub fn describe_browser(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "Unknown browser".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map_or("Another browser or app", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_string(),
    }
}

/// My active sign-ins, the most recently used first.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [SignIn]), (status = 401, body = ErrorBody)))]
#[get("/me/sign-ins")]
pub(super) async fn list_sign_ins(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    type Row = (Uuid, DateTime<Utc>, Option<String>, Option<String>);
    let rows: Vec<Row> = auth_sessions::table
        .filter(
            auth_sessions::user_id
                .eq(auth.user_id)
                .and(auth_sessions::revoked_at.is_null())
                .and(auth_sessions::expires_at.gt(now)),
        )
        .select((
            auth_sessions::id,
            auth_sessions::created_at,
            auth_sessions::ip,
            auth_sessions::user_agent,
        ))
        .load(&mut conn)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    // Each sign-in's newest refresh token: when it was last used, and whether
    // it lapsed for inactivity (tokens rotate, so the newest lapses last).
    use diesel::dsl::max;
    /// Last refreshed, and when that refresh token lapses.
    type Use = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let newest: HashMap<Uuid, Use> = refresh_tokens::table
        .filter(refresh_tokens::session_id.eq_any(&ids))
        .group_by(refresh_tokens::session_id)
        .select((
            refresh_tokens::session_id,
            max(refresh_tokens::issued_at),
            max(refresh_tokens::expires_at),
        ))
        .load::<(Uuid, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(&mut conn)
        .await?
        .into_iter()
        .map(|(session, issued, lapses)| (session, (issued, lapses)))
        .collect();
    let mut sign_ins: Vec<SignIn> = rows
        .into_iter()
        .filter_map(|(id, started_at, ip, user_agent)| {
            let (last_used_at, lapses) = newest.get(&id).copied()?;
            let (last_used_at, lapses) = (last_used_at?, lapses?);
            (lapses > now).then(|| SignIn {
                id,
                started_at,
                last_used_at,
                ip,
                browser: describe_browser(user_agent.as_deref()),
                current: id == auth.session_id,
            })
        })
        .collect();
    sign_ins.sort_by_key(|s| std::cmp::Reverse(s.last_used_at));
    Ok(HttpResponse::Ok().json(sign_ins))
}

/// Ends one of my sign-ins at once: its tokens stop working and its
/// websockets close.
#[utoipa::path(tag = "auth", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[delete("/me/sign-ins/{id}")]
pub(super) async fn end_sign_in(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let mine: bool = diesel::select(diesel::dsl::exists(
        auth_sessions::table.filter(
            auth_sessions::id
                .eq(id)
                .and(auth_sessions::user_id.eq(auth.user_id))
                .and(auth_sessions::revoked_at.is_null()),
        ),
    ))
    .get_result(&mut conn)
    .await?;
    if !mine {
        return Err(AppError::not_found("No such sign-in of yours is active."));
    }
    sessions::revoke(&mut conn, id, now, "ended_by_owner").await?;
    audit::record(
        &conn,
        now,
        &meta,
        audit::Event::new(
            Some(auth.user_id),
            audit::Action::SignInEnded,
            "session",
            id,
        )
        .detail(serde_json::json!({"by": "owner"})),
    )
    .await?;
    state.sessions.forget(id).await;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::describe_browser;

    #[test]
    fn browsers_are_named_with_their_system() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(describe_browser(Some(chrome)), "Chrome on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_browser(Some(safari)), "Safari on iOS");
        let edge = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(describe_browser(Some(edge)), "Edge on macOS");
        assert_eq!(describe_browser(None), "Unknown browser");
        assert_eq!(describe_browser(Some("curl/8.0")), "Another browser or app");
    }
}
