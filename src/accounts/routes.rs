//! Register, sign in, refresh, sign out, read and change one's own account.

use actix_web::{HttpResponse, get, post, put, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{AuthUser, Role, password, sessions, throttle, tokens, users};
use crate::{
    audit,
    db::Reuse,
    db::schema::{auth_sessions, refresh_tokens, users as users_t},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(logout)
        .service(me)
        .service(change_password)
        .service(set_time_zone);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneRequest {
    /// An IANA time zone name, such as `America/Chicago`.
    pub time_zone: String,
}

/// Sets the time zone in which times are entered and shown to me.
#[utoipa::path(tag = "auth", request_body = TimeZoneRequest, security(("bearer" = [])),
    responses((status = 200, body = users::Account), (status = 422, body = ErrorBody)))]
#[put("/me/time-zone")]
async fn set_time_zone(
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
pub struct RegisterRequest {
    pub email: String,
    /// At least 12 characters, not a common password.
    pub password: String,
    pub display_name: String,
}

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// A fresh pair of tokens and the account they belong to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthTokens {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single use: each refresh returns a new one.
    pub refresh_token: String,
    pub account: users::Account,
}

fn invalid_credentials() -> AppError {
    AppError::new(
        Code::InvalidCredentials,
        "The email or password is incorrect.",
    )
}

/// Starts a sign-in for `user` inside `conn`'s transaction and returns its tokens.
async fn start_session(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    user: &users::User,
    meta: &RequestMeta,
) -> AppResult<AuthTokens> {
    let now = state.clock.now();
    let max_ttl =
        chrono::Duration::from_std(state.settings.session_max_ttl).map_err(AppError::internal)?;
    let session_id = sessions::create(
        conn,
        user.id,
        now,
        max_ttl,
        meta.ip.as_deref(),
        meta.user_agent.as_deref(),
    )
    .await?;
    issue_tokens(state, conn, user, session_id).await
}

async fn issue_tokens(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    user: &users::User,
    session_id: Uuid,
) -> AppResult<AuthTokens> {
    let now = state.clock.now();
    let refresh_token = tokens::new_refresh_token();
    let idle =
        chrono::Duration::from_std(state.settings.refresh_idle_ttl).map_err(AppError::internal)?;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(tokens::hash_refresh_token(&refresh_token)),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::issued_at.eq(now),
            refresh_tokens::expires_at.eq(now + idle),
        ))
        .execute(conn)
        .await?;
    let role = user.role()?;
    Ok(AuthTokens {
        access_token: state.tokens.issue(user.id, session_id, role, now)?,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl.num_seconds(),
        refresh_token,
        account: user.account()?,
    })
}

/// Creates a clinician account (and its empty profile) and signs it in.
#[utoipa::path(tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthTokens), (status = 409, body = ErrorBody, description = "email already registered"),
              (status = 422, body = ErrorBody)))]
#[post("/auth/register")]
async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<RegisterRequest>,
) -> AppResult<HttpResponse> {
    let body = body.0;
    let email = users::normalize_email(&body.email);
    if !users::valid_email(&email) {
        return Err(AppError::invalid_field(
            "email",
            "Enter a valid email address.",
        ));
    }
    let display_name = body.display_name.trim().to_string();
    if display_name.is_empty() || display_name.chars().count() > 120 {
        return Err(AppError::invalid_field(
            "display_name",
            "Enter a name of 1 to 120 characters.",
        ));
    }
    password::check_policy(&body.password, &[&email, &display_name])?;
    let hash = password::hash(body.password).await?;

    let mut conn = state.pool.get().await?;
    let now = state.clock.now();
    let tokens = conn
        .transaction::<_, AppError, _>(async |conn| {
            let state = &state;
            let (email, display_name, hash, meta) = (&email, &display_name, &hash, &meta);
            let id = Uuid::now_v7();
            let inserted = diesel::insert_into(users_t::table)
                .values(users::NewUser {
                    id,
                    email,
                    password_hash: hash,
                    display_name,
                    role: Role::Clinician.as_str(),
                    created_at: now,
                    updated_at: now,
                })
                .on_conflict(users_t::email)
                .do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                return Err(AppError {
                    field: Some("email".into()),
                    ..AppError::conflict(
                        Code::EmailTaken,
                        "An account with this email already exists. Sign in instead.",
                    )
                });
            }
            crate::profiles::create_empty(conn, id, now).await?;
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(Some(id), audit::Action::AccountRegistered, "user", id),
            )
            .await?;
            let user = users::find(conn, id)
                .await?
                .ok_or_else(|| AppError::internal("new user vanished"))?;
            start_session(state, conn, &user, meta).await
        })
        .await?;
    state.indexer_wake.notify_one();
    Ok(HttpResponse::Created().json(tokens))
}

/// Signs in. Wrong password and unknown email get the same answer in the same time.
#[utoipa::path(tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthTokens), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "account disabled"),
              (status = 429, body = ErrorBody, description = "too many failed attempts; see Retry-After")))]
#[post("/auth/login")]
async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<LoginRequest>,
) -> AppResult<HttpResponse> {
    let body = body.0;
    let email = users::normalize_email(&body.email);
    let limits = &state.settings.login_limits;
    let account_key = throttle::account_key(&email);
    let ip_key = meta.ip.as_deref().map(throttle::ip_key);
    let keys: Vec<String> = std::iter::once(account_key.clone())
        .chain(ip_key.clone())
        .collect();
    let now = state.clock.now();

    let mut conn = state.pool.get().await?;
    if let Some(wait) = throttle::locked_for(&mut conn, &keys, now).await? {
        audit::record(
            &conn,
            now,
            &meta,
            audit::Event::new(None, audit::Action::LoginThrottled, "login", &email),
        )
        .await?;
        return Err(AppError::rate_limited(wait));
    }
    let user = users::find_by_email(&mut conn, &email).await?;
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
                let (meta, email, account_key, ip_key) = (&meta, &email, &account_key, &ip_key);
                throttle::record_failure(conn, account_key, limits.per_account, limits, now)
                    .await?;
                if let Some(ip_key) = ip_key {
                    throttle::record_failure(conn, ip_key, limits.per_ip, limits, now).await?;
                }
                audit::record(
                    conn,
                    now,
                    meta,
                    audit::Event::new(actor, audit::Action::LoginFailed, "login", email),
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
    let tokens = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (state, user, meta, account_key) = (&state, &user, &meta, &account_key);
            throttle::clear(conn, account_key).await?;
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
            start_session(state, conn, user, meta).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(tokens))
}

enum RefreshOutcome {
    Rotated(Box<AuthTokens>),
    Reused(Uuid),
    Invalid,
}

/// Exchanges a refresh token for a new pair. A token used twice ends its sign-in.
#[utoipa::path(tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = AuthTokens), (status = 401, body = ErrorBody)))]
#[post("/auth/refresh")]
async fn refresh(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token_hash = tokens::hash_refresh_token(body.0.refresh_token.trim());
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
async fn logout(
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

/// The signed-in account.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses((status = 200, body = users::Account), (status = 401, body = ErrorBody)))]
#[get("/me")]
async fn me(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let user = users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))?;
    Ok(HttpResponse::Ok().json(user.account()?))
}

/// Changes the password; every sign-in of the account ends and a new one starts here.
#[utoipa::path(tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses((status = 200, body = AuthTokens), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/me/password")]
async fn change_password(
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
    if !password::verify(body.current_password, user.password_hash.clone()).await? {
        return Err(AppError {
            field: Some("current_password".into()),
            ..invalid_credentials()
        });
    }
    password::check_policy(&body.new_password, &[&user.email, &user.display_name]).map_err(
        |e| AppError {
            field: Some("new_password".into()),
            ..e
        },
    )?;
    let hash = password::hash(body.new_password).await?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let tokens = conn
        .transaction::<_, AppError, _>(async |conn| {
            let (state, meta, user, hash) = (&state, &meta, &user, &hash);
            diesel::update(users_t::table.find(user.id))
                .set((users_t::password_hash.eq(hash), users_t::updated_at.eq(now)))
                .reused()
                .execute(conn)
                .await?;
            sessions::revoke_all(conn, user.id, now, "password_changed").await?;
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(user.id),
                    audit::Action::AccountPasswordChanged,
                    "user",
                    user.id,
                ),
            )
            .await?;
            start_session(state, conn, user, meta).await
        })
        .await?;
    state.sessions.forget_user(auth.user_id);
    Ok(HttpResponse::Ok().json(tokens))
}
