//! Getting back in: "forgot password" emails a single-use link valid 30
//! minutes (only a hash of its token is kept) and answers the same whether or
//! not the address has an account; the link sets a new password under the
//! same rules as registration and ends every sign-in. Any new password, by
//! reset or by change, kills the account's outstanding links and sends a
//! security email to the account's address.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    audit,
    auth::{password, sessions, tokens, users},
    db::{
        Reuse,
        schema::{password_resets, users as users_t},
    },
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    state::AppState,
};

/// How long a reset link works.
pub const RESET_LINK_LIFETIME: Duration = Duration::minutes(30);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the emailed link.
    pub token: String,
    pub new_password: String,
}

/// The same answer for every reset request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResetRequested {
    pub message: String,
}

fn dead_link() -> AppError {
    AppError::new(
        Code::InvalidResetLink,
        "This reset link is unknown, already used or expired. Ask for a new one.",
    )
}

/// The password rules of registration, for a new password of `user`; the
/// error names `new_password`.
pub(super) fn check_new_password(password: &str, user: &users::User) -> AppResult<()> {
    password::check_policy(password, &[&user.email, &user.display_name]).map_err(|e| AppError {
        field: Some("new_password".into()),
        ..e
    })
}

/// Sets `user`'s password hash, ends every sign-in, kills outstanding reset
/// links, audits `action` and emails the account's address, inside the
/// caller's transaction.
pub(super) async fn set_password(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    meta: &RequestMeta,
    user: &users::User,
    hash: &str,
    action: audit::Action,
) -> AppResult<()> {
    let now = state.clock.now();
    diesel::update(users_t::table.find(user.id))
        .set((users_t::password_hash.eq(hash), users_t::updated_at.eq(now)))
        .reused()
        .execute(conn)
        .await?;
    diesel::update(
        password_resets::table.filter(
            password_resets::user_id
                .eq(user.id)
                .and(password_resets::used_at.is_null()),
        ),
    )
    .set(password_resets::used_at.eq(now))
    .reused()
    .execute(conn)
    .await?;
    let reason = match action {
        audit::Action::AccountPasswordReset => "password_reset",
        _ => "password_changed",
    };
    sessions::revoke_all(conn, user.id, now, reason).await?;
    audit::record(conn, now, meta, audit::Event::own_account(user.id, action)).await?;
    let what = "The password of your Kith account was changed and every sign-in was ended";
    super::security::tell(
        conn,
        state,
        &user.email,
        "Your Kith password was changed",
        what,
        now,
    )
    .await?;
    Ok(())
}

/// Emails a single-use link to reset the password, when the address has an
/// enabled account. The answer is the same either way.
#[utoipa::path(tag = "auth", request_body = ResetRequest,
    responses((status = 202, body = ResetRequested), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too many requests from this address; see Retry-After")))]
#[post("/auth/password-reset")]
pub(super) async fn request_reset(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<ResetRequest>,
) -> AppResult<HttpResponse> {
    state.address_limits.reset_request(meta.ip.as_deref())?;
    let email = users::normalize_email(&body.0.email);
    if !users::valid_email(&email) {
        return Err(AppError::invalid_field(
            "email",
            "Enter a valid email address.",
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = users::find_by_email(&mut conn, &email)
        .await?
        .filter(|u| u.disabled_at.is_none());
    // An account already sent its hourly links gets no more, silently: a 429
    // here would tell who has an account.
    let user = match user {
        Some(user) if links_left(&mut conn, &state, user.id, now).await? => Some(user),
        _ => None,
    };
    if let Some(user) = user {
        let token = tokens::new_opaque_token();
        let url = state.mailer.public_url.clone();
        conn.transaction::<_, AppError, _>(async |conn| {
            diesel::insert_into(password_resets::table)
                .values((
                    password_resets::token_hash.eq(tokens::hash_opaque_token(&token)),
                    password_resets::user_id.eq(user.id),
                    password_resets::created_at.eq(now),
                    password_resets::expires_at.eq(now + RESET_LINK_LIFETIME),
                ))
                .execute(conn)
                .await?;
            let message = format!(
                "Someone asked to reset the password of your Kith account. To choose a new one, open this link within 30 minutes:\n\n\
                 {url}/#/reset-password?token={token}\n\n\
                 The link works once. If you did not ask, ignore this email: your password stays as it is."
            );
            notify::email_address(conn, &url, &user.email, "Reset your Kith password", &message, None, now)
                .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(None, audit::Action::AccountPasswordResetRequested, "user", user.id),
            )
            .await?;
            Ok(())
        })
        .await?;
        state.courier_wake.notify_one();
    }
    Ok(HttpResponse::Accepted().json(ResetRequested {
        message: "If an account uses this address, we have emailed it a link to choose a new password. The link works for 30 minutes.".into(),
    }))
}

/// Whether `user` may be sent another reset link this hour.
async fn links_left(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user: uuid::Uuid,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let limit = state.settings.limits.reset_links;
    let nth: Option<DateTime<Utc>> = password_resets::table
        .filter(password_resets::user_id.eq(user))
        .filter(password_resets::created_at.gt(limit.since(now)))
        .order(password_resets::created_at.desc())
        .offset(limit.skip())
        .select(password_resets::created_at)
        .first(conn)
        .await
        .optional()?;
    Ok(limit.check(nth, now).is_ok())
}

/// The account a live link belongs to.
async fn link_owner(
    conn: &mut AsyncPgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> AppResult<users::User> {
    let owner: Option<uuid::Uuid> = password_resets::table
        .find(tokens::hash_opaque_token(token.trim()))
        .filter(
            password_resets::used_at
                .is_null()
                .and(password_resets::expires_at.gt(now)),
        )
        .select(password_resets::user_id)
        .first(conn)
        .await
        .optional()?;
    let user = match owner {
        Some(id) => users::find(conn, id).await?,
        None => None,
    };
    user.filter(|u| u.disabled_at.is_none())
        .ok_or_else(dead_link)
}

/// Sets a new password from an emailed link. The link then stops working,
/// every sign-in of the account ends, and the account's address is told.
#[utoipa::path(tag = "auth", request_body = ResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody, description = "the link is unknown, used or expired"), (status = 422, body = ErrorBody)))]
#[post("/auth/password-reset/confirm")]
pub(super) async fn confirm_reset(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<ResetConfirm>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = link_owner(&mut conn, &input.token, now).await?;
    drop(conn);
    // A weak password is refused before the link is spent, so it can be tried again.
    check_new_password(&input.new_password, &user)?;
    let hash = password::hash(input.new_password).await?;
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        // Spend this link first: of two uses at once, only one gets here.
        let spent = diesel::update(
            password_resets::table
                .find(tokens::hash_opaque_token(input.token.trim()))
                .filter(password_resets::used_at.is_null()),
        )
        .set(password_resets::used_at.eq(now))
        .reused()
        .execute(conn)
        .await?;
        if spent == 0 {
            return Err(dead_link());
        }
        set_password(
            conn,
            &state,
            &meta,
            &user,
            &hash,
            audit::Action::AccountPasswordReset,
        )
        .await
    })
    .await?;
    state.sessions.forget_user(user.id);
    state.courier_wake.notify_one();
    Ok(HttpResponse::NoContent().finish())
}
