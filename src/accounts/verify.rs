//! Proving an email address. Registering emails a single-use link valid 24
//! hours (only a hash of its token is kept); until it is opened the account
//! can sign in, edit its profile and search, but is not found by colleagues
//! and cannot refer, join groups or host (`AuthUser::require_verified`).
//! Moving an account to a new address sends a link there and a notice to the
//! old one; the move takes effect only once the new address is proved.

use actix_web::{HttpResponse, post, put, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    audit,
    auth::{AuthUser, tokens, users},
    db::{
        Reuse,
        schema::{email_verifications, users as users_t},
    },
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    state::AppState,
};

/// How long a verification link works.
pub const VERIFY_LINK_LIFETIME: Duration = Duration::hours(24);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmail {
    /// The token from the emailed link.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmail {
    pub new_email: String,
    /// The account's password, to prove it is its owner asking.
    pub current_password: String,
}

/// What happened, in words for the person.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Sent {
    pub message: String,
}

fn dead_link() -> AppError {
    AppError::new(
        Code::InvalidVerificationLink,
        "This verification link is unknown, already used or expired. Ask for a new one from your account page.",
    )
}

/// Queues a link that proves `email` for `user`, inside the caller's
/// transaction.
pub(super) async fn send_link(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user_id: Uuid,
    email: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let token = tokens::new_opaque_token();
    diesel::insert_into(email_verifications::table)
        .values((
            email_verifications::token_hash.eq(tokens::hash_opaque_token(&token)),
            email_verifications::user_id.eq(user_id),
            email_verifications::email.eq(email),
            email_verifications::created_at.eq(now),
            email_verifications::expires_at.eq(now + VERIFY_LINK_LIFETIME),
        ))
        .execute(conn)
        .await?;
    let url = &state.mailer.public_url;
    let message = format!(
        "To confirm that this address is yours and start receiving referrals and invitations on Kith, open this link within 24 hours:\n\n\
         {url}/#/verify-email?token={token}\n\n\
         The link works once. If you did not create a Kith account, ignore this email."
    );
    notify::email_address(
        conn,
        url,
        email,
        "Confirm your email address for Kith",
        &message,
        None,
        now,
    )
    .await?;
    Ok(())
}

/// Refuses a new link when `user` was sent `limits.verification_links` in
/// the last hour.
async fn within_link_limit(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let limit = state.settings.limits.verification_links;
    let nth: Option<DateTime<Utc>> = email_verifications::table
        .filter(email_verifications::user_id.eq(user))
        .filter(email_verifications::created_at.gt(limit.since(now)))
        .order(email_verifications::created_at.desc())
        .offset(limit.skip())
        .select(email_verifications::created_at)
        .first(conn)
        .await
        .optional()?;
    limit.check(nth, now)
}

/// Emails a new verification link to the account's address.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 202, body = Sent), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the address is verified already"),
              (status = 429, body = ErrorBody, description = "too many links this hour; see Retry-After")))]
#[post("/me/email-verification")]
pub(super) async fn resend(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))?;
    if user.email_verified_at.is_some() {
        return Err(AppError::conflict(
            Code::EmailAlreadyVerified,
            "Your email address is verified already.",
        ));
    }
    within_link_limit(&mut conn, &state, user.id, now).await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        send_link(conn, &state, user.id, &user.email, now).await
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Accepted().json(Sent {
        message: format!(
            "We have emailed a new link to {}. It works for 24 hours.",
            user.email
        ),
    }))
}

/// Moves the account to a new address once that address is proved: a link
/// goes to the new address, a notice to the current one.
#[utoipa::path(tag = "auth", request_body = ChangeEmail, security(("bearer" = [])),
    responses((status = 202, body = Sent), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too many links or wrong passwords; see Retry-After")))]
#[put("/me/email")]
pub(super) async fn change_email(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<ChangeEmail>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let new_email = users::normalize_email(&input.new_email);
    if !users::valid_email(&new_email) {
        return Err(AppError::invalid_field(
            "new_email",
            "Enter a valid email address.",
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))?;
    if new_email == user.email {
        return Err(AppError::invalid_field(
            "new_email",
            "This is the address the account already uses.",
        ));
    }
    within_link_limit(&mut conn, &state, user.id, now).await?;
    drop(conn);
    super::me::check_current_password(&state, &user, input.current_password).await?;
    let mut conn = state.pool.get().await?;
    let taken = users::find_by_email(&mut conn, &new_email).await?.is_some();
    conn.transaction::<_, AppError, _>(async |conn| {
        let url = &state.mailer.public_url;
        if taken {
            // Said only to the owner of the new address, never in the answer.
            let message = "Someone asked to move a Kith account to this address, but an account already uses it, so nothing changed.\n\n\
                 If that was you, sign in with this address instead (or reset its password).";
            notify::email_address(conn, url, &new_email, "Your address already has a Kith account", message, None, now)
                .await?;
        } else {
            send_link(conn, &state, user.id, &new_email, now).await?;
        }
        let message = format!(
            "Someone signed in to your Kith account asked to change its email address to {new_email}. \
             The change takes effect only once that address is confirmed; until then you keep signing in with this one.\n\n\
             If this was not you, change your password at {url}/#/account now."
        );
        notify::email_address(conn, url, &user.email, "A change of your Kith email address was requested", &message, None, now)
            .await?;
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::own_account(user.id, audit::Action::AccountEmailChangeRequested),
        )
        .await?;
        Ok(())
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Accepted().json(Sent {
        message: format!(
            "We have emailed a link to {new_email}. Your address changes once it is opened; until then you sign in with {}.",
            user.email
        ),
    }))
}

/// A live link: its account and the address it proves.
async fn live_link(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> AppResult<(users::User, String)> {
    let row: Option<(Uuid, String)> = email_verifications::table
        .find(token_hash)
        .filter(
            email_verifications::used_at
                .is_null()
                .and(email_verifications::expires_at.gt(now)),
        )
        .select((email_verifications::user_id, email_verifications::email))
        .first(conn)
        .await
        .optional()?;
    let Some((user_id, email)) = row else {
        return Err(dead_link());
    };
    let user = users::find(conn, user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(dead_link)?;
    Ok((user, email))
}

/// Proves an address from its emailed link: the account's own (it becomes
/// verified) or a new one (the account moves to it, and the old address is
/// told). Needs no sign-in: the link is the proof.
#[utoipa::path(tag = "auth", request_body = VerifyEmail,
    responses((status = 200, body = users::Account), (status = 400, body = ErrorBody, description = "the link is unknown, used or expired"),
              (status = 409, body = ErrorBody, description = "another account took the new address meanwhile")))]
#[post("/auth/verify-email")]
pub(super) async fn verify(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<VerifyEmail>,
) -> AppResult<HttpResponse> {
    let token_hash = tokens::hash_opaque_token(body.0.token.trim());
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let (user, email) = live_link(conn, &token_hash, now).await?;
            // Spend the link first: of two uses at once, only one gets past here.
            let spent = diesel::update(
                email_verifications::table
                    .find(&token_hash)
                    .filter(email_verifications::used_at.is_null()),
            )
            .set(email_verifications::used_at.eq(now))
            .reused()
            .execute(conn)
            .await?;
            if spent == 0 {
                return Err(dead_link());
            }
            if email == user.email {
                diesel::update(users_t::table.find(user.id))
                    .set((
                        users_t::email_verified_at.eq(user.email_verified_at.unwrap_or(now)),
                        users_t::updated_at.eq(now),
                    ))
                    .reused()
                    .execute(conn)
                    .await?;
                let action = audit::Action::AccountEmailVerified;
                audit::record(conn, now, &meta, audit::Event::own_account(user.id, action)).await?;
            } else {
                move_address(conn, &state, &meta, &user, &email, now).await?;
            }
            crate::outbox::enqueue(conn, user.id, now).await?;
            users::find(conn, user.id)
                .await?
                .ok_or_else(|| AppError::internal("verified user vanished"))
        })
        .await
    })
    .await?;
    state.sessions.forget_user(user.id);
    state.indexer_wake.notify_one();
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(user.account()?))
}

/// Moves `user` to the proved address `email`; the old address is told and
/// the account's other outstanding links die.
async fn move_address(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    meta: &RequestMeta,
    user: &users::User,
    email: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let moved = diesel::update(users_t::table.find(user.id))
        .set((
            users_t::email.eq(email),
            users_t::email_verified_at.eq(now),
            users_t::updated_at.eq(now),
        ))
        .execute(conn)
        .await;
    match moved {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            return Err(AppError::conflict(
                Code::EmailTaken,
                "Another account started using this address meanwhile, so your address stays as it was.",
            ));
        }
        other => {
            other?;
        }
    }
    diesel::update(
        email_verifications::table.filter(
            email_verifications::user_id
                .eq(user.id)
                .and(email_verifications::used_at.is_null()),
        ),
    )
    .set(email_verifications::used_at.eq(now))
    .reused()
    .execute(conn)
    .await?;
    let what = format!(
        "The email address of your Kith account was changed to {email}; sign in with it from now on"
    );
    let subject = "Your Kith email address was changed";
    super::security::tell(conn, state, &user.email, subject, &what, now).await?;
    let action = audit::Action::AccountEmailChanged;
    audit::record(conn, now, meta, audit::Event::own_account(user.id, action)).await?;
    Ok(())
}
