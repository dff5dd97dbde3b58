//! Signing in (throttled, and the same answer for a wrong password as for an
//! unknown email), refreshing tokens (a reused one ends the sign-in) and
//! signing out.

use actix_web::{HttpResponse, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{AuthTokens, invalid_credentials, issue_tokens, start_session};
use crate::auth::{AuthUser, password, sessions, throttle, tokens, two_step, users};
use crate::{
    audit,
    db::Reuse,
    db::schema::{auth_sessions, refresh_tokens},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Signs in. Wrong password and unknown email get the same answer in the
/// same time. With two-step sign-in on, the right password answers 202 with
/// a challenge for `POST /auth/login/code` instead of tokens.
#[utoipa::path(tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthTokens), (status = 202, body = super::code_step::Challenge, description = "the code step comes next"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "account disabled"),
              (status = 429, body = ErrorBody, description = "too many failed attempts; see Retry-After")))]
#[post("/auth/login")]
pub(super) async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<LoginRequest>,
) -> AppResult<HttpResponse> {
    let body = body.0;
    let email = users::normalize_email(&body.email);
    let limits = &state.settings.login_limits;
    let pair_key = throttle::pair_key(&email, meta.ip.as_deref());
    let account_key = throttle::account_key(&email);
    let ip_key = meta.ip.as_deref().map(throttle::ip_key);
    let now = state.clock.now();

    let mut conn = state.pool.get().await?;
    let user = users::find_by_email(&mut conn, &email).await?;
    // The account's ceiling never holds back an address it signed in from before.
    let known_address = match (&user, meta.ip.as_deref()) {
        (Some(user), Some(ip)) => sessions::signed_in_from(&mut conn, user.id, ip).await?,
        _ => false,
    };
    let keys: Vec<String> = std::iter::once(pair_key.clone())
        .chain(ip_key.clone())
        .chain((!known_address).then(|| account_key.clone()))
        .collect();
    if let Some(wait) = throttle::locked_for(&conn, &keys, now).await? {
        audit::record(
            &conn,
            now,
            &meta,
            audit::Event::new(None, audit::Action::LoginThrottled, "login", &email),
        )
        .await?;
        return Err(AppError::rate_limited(wait));
    }
    // Release the connection while argon2 works on the blocking pool.
    drop(conn);
    let stored = user.as_ref().map_or_else(
        || state.dummy_password_hash.to_string(),
        |u| u.password_hash.clone(),
    );
    let password_ok = password::verify(body.password, stored).await?;

    let mut conn = state.pool.get().await?;
    let user = match user {
        Some(user) if password_ok => user,
        other => {
            let actor = other.as_ref().map(|u| u.id);
            conn.transaction::<_, AppError, _>(async |conn| {
                let (lockout, pause) = (limits.lockout, limits.ceiling_pause);
                throttle::record_failure(conn, &pair_key, limits.per_pair, lockout, limits, now)
                    .await?;
                if let Some(ip_key) = &ip_key {
                    throttle::record_failure(conn, ip_key, limits.per_ip, lockout, limits, now)
                        .await?;
                }
                throttle::record_failure(
                    conn,
                    &account_key,
                    limits.per_account,
                    pause,
                    limits,
                    now,
                )
                .await?;
                audit::record(
                    conn,
                    now,
                    &meta,
                    audit::Event::new(actor, audit::Action::LoginFailed, "login", &email),
                )
                .await?;
                Ok(())
            })
            .await?;
            return Err(invalid_credentials());
        }
    };
    if user.disabled_at.is_some() {
        audit::record(
            &conn,
            now,
            &meta,
            audit::Event::new(
                Some(user.id),
                audit::Action::LoginRefusedDisabled,
                "user",
                user.id,
            ),
        )
        .await?;
        return Err(AppError::forbidden(
            "This account is disabled. Contact your administrator.",
        ));
    }
    if two_step::is_on(&mut conn, user.id).await? {
        // The password was right: the code step comes next.
        throttle::clear(&conn, &pair_key).await?;
        let challenge = super::code_step::challenge(&mut conn, user.id, now).await?;
        return Ok(HttpResponse::Accepted().json(challenge));
    }
    let tokens = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (state, user, meta) = (&state, &user, &meta);
            throttle::clear(conn, &pair_key).await?;
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(user.id),
                    audit::Action::LoginSucceeded,
                    "user",
                    user.id,
                ),
            )
            .await?;
            start_session(state, conn, user, meta, false).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(tokens))
}

pub(super) enum RefreshOutcome {
    Rotated(Box<AuthTokens>),
    Reused(Uuid),
    Invalid,
}

/// Exchanges a refresh token for a new pair. A token used twice ends its sign-in.
#[utoipa::path(tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = AuthTokens), (status = 401, body = ErrorBody)))]
#[post("/auth/refresh")]
pub(super) async fn refresh(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token_hash = tokens::hash_opaque_token(body.0.refresh_token.trim());
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let outcome = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (state, meta) = (&state, &meta);
            let row = refresh_tokens::table
                .inner_join(auth_sessions::table)
                .filter(refresh_tokens::token_hash.eq(&token_hash))
                .select((
                    refresh_tokens::session_id,
                    refresh_tokens::used_at,
                    refresh_tokens::expires_at,
                    auth_sessions::user_id,
                    auth_sessions::revoked_at,
                    auth_sessions::expires_at,
                ))
                .for_update()
                .first::<(
                    Uuid,
                    Option<chrono::DateTime<chrono::Utc>>,
                    chrono::DateTime<chrono::Utc>,
                    Uuid,
                    Option<chrono::DateTime<chrono::Utc>>,
                    chrono::DateTime<chrono::Utc>,
                )>(conn)
                .await
                .optional()?;
            let Some((session_id, used_at, expires_at, user_id, revoked_at, session_expires_at)) =
                row
            else {
                return Ok(RefreshOutcome::Invalid);
            };
            if used_at.is_some() {
                if sessions::revoke(conn, session_id, now, "refresh_token_reuse").await? > 0 {
                    audit::record(
                        conn,
                        now,
                        meta,
                        audit::Event::new(
                            Some(user_id),
                            audit::Action::SignInRefreshReused,
                            "session",
                            session_id,
                        ),
                    )
                    .await?;
                }
                return Ok(RefreshOutcome::Reused(session_id));
            }
            if revoked_at.is_some() || expires_at <= now || session_expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            let user = users::find(conn, user_id)
                .await?
                .ok_or_else(|| AppError::internal("session without user"))?;
            if user.disabled_at.is_some() {
                return Ok(RefreshOutcome::Invalid);
            }
            diesel::update(refresh_tokens::table.find(&token_hash))
                .set(refresh_tokens::used_at.eq(now))
                .reused()
                .execute(conn)
                .await?;
            Ok(RefreshOutcome::Rotated(Box::new(
                issue_tokens(state, conn, &user, session_id).await?,
            )))
        })
        .await?;
    match outcome {
        RefreshOutcome::Rotated(tokens) => Ok(HttpResponse::Ok().json(tokens)),
        RefreshOutcome::Reused(session_id) => {
            state.sessions.forget(session_id).await;
            Err(AppError::new(
                Code::RefreshTokenReused,
                "This refresh token was already used, so the sign-in was ended for safety. Sign in again.",
            ))
        }
        RefreshOutcome::Invalid => Err(AppError::new(
            Code::InvalidRefreshToken,
            "The sign-in has expired or ended. Sign in again.",
        )),
    }
}

/// Ends this sign-in: its refresh token and access tokens stop working.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses((status = 204), (status = 401, body = ErrorBody)))]
#[post("/auth/logout")]
pub(super) async fn logout(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    sessions::revoke(&mut conn, auth.session_id, now, "logout").await?;
    audit::record(
        &conn,
        now,
        &meta,
        audit::Event::new(
            Some(auth.user_id),
            audit::Action::SignInEnded,
            "session",
            auth.session_id,
        ),
    )
    .await?;
    state.sessions.forget(auth.session_id).await;
    Ok(HttpResponse::NoContent().finish())
}
