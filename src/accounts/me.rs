//! My own account: reading it, my time zone, changing my password.

use actix_web::{HttpResponse, get, post, put, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;

use super::tokens::{AuthTokens, invalid_credentials, start_session};
use crate::auth::{AuthUser, password, throttle, users};
use crate::{
    audit,
    db::Reuse,
    db::schema::users as users_t,
    error::{AppError, AppResult, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneRequest {
    /// An IANA time zone name, such as `America/Chicago`.
    #[schema(value_type = crate::profiles::model::TimeZoneName)]
    pub time_zone: String,
}

/// Sets the time zone in which times are entered and shown to me.
#[utoipa::path(tag = "auth", request_body = TimeZoneRequest, security(("bearer" = [])),
    responses((status = 200, body = users::Account), (status = 422, body = ErrorBody)))]
#[put("/me/time-zone")]
pub(super) async fn set_time_zone(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: ApiJson<TimeZoneRequest>,
) -> AppResult<HttpResponse> {
    let zone = body.0.time_zone.trim().to_string();
    if zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(AppError::invalid_field(
            "time_zone",
            format!("`{zone}` is not an IANA time zone name (such as America/Chicago)."),
        ));
    }
    let mut conn = state.pool.get().await?;
    diesel::update(users_t::table.find(auth.user_id))
        .set((
            users_t::time_zone.eq(&zone),
            users_t::updated_at.eq(state.clock.now()),
        ))
        .reused()
        .execute(&mut conn)
        .await?;
    let user = users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))?;
    Ok(HttpResponse::Ok().json(user.account()?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// The signed-in account.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses((status = 200, body = users::Account), (status = 401, body = ErrorBody)))]
#[get("/me")]
pub(super) async fn me(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let user = users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))?;
    Ok(HttpResponse::Ok().json(user.account()?))
}

/// Checks the account's current password before a change of password or
/// address. Wrong ones are counted like failed sign-ins, so a stolen sign-in
/// cannot guess the password here without end.
pub(super) async fn check_current_password(
    state: &AppState,
    user: &users::User,
    current: String,
) -> AppResult<()> {
    let key = format!("password:{}", user.id);
    let now = state.clock.now();
    let conn = state.pool.get().await?;
    if let Some(wait) = throttle::locked_for(&conn, std::slice::from_ref(&key), now).await? {
        return Err(AppError::rate_limited(wait));
    }
    drop(conn);
    let ok = password::verify(current, user.password_hash.clone()).await?;
    let mut conn = state.pool.get().await?;
    if ok {
        throttle::clear(&conn, &key).await?;
        return Ok(());
    }
    let limits = &state.settings.login_limits;
    let most = state.settings.limits.wrong_passwords;
    throttle::record_failure(&mut conn, &key, most, limits.lockout, limits, now).await?;
    Err(AppError {
        field: Some("current_password".into()),
        ..invalid_credentials()
    })
}

/// Changes the password; every sign-in of the account ends and a new one starts here.
#[utoipa::path(tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses((status = 200, body = AuthTokens), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too many wrong current passwords; see Retry-After")))]
#[post("/me/password")]
pub(super) async fn change_password(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<ChangePasswordRequest>,
) -> AppResult<HttpResponse> {
    let body = body.0;
    let mut conn = state.pool.get().await?;
    let user = users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))?;
    drop(conn);
    check_current_password(&state, &user, body.current_password).await?;
    super::reset::check_new_password(&body.new_password, &user)?;
    let hash = password::hash(body.new_password).await?;
    let mut conn = state.pool.get().await?;
    let tokens = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let (state, meta, user, hash) = (&state, &meta, &user, &hash);
            let action = audit::Action::AccountPasswordChanged;
            super::reset::set_password(conn, state, meta, user, hash, action).await?;
            // The new sign-in keeps what this one proved.
            start_session(state, conn, user, meta, auth.second_factor).await
        })
        .await
    })
    .await?;
    state.sessions.forget_user(auth.user_id);
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(tokens))
}
