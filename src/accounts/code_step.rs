//! The second step of a two-step sign-in: the right password answered with
//! a challenge (valid five minutes, five wrong codes at most); the code from
//! the authenticator app, or a recovery code, turns it into tokens. Wrong
//! codes are also counted per account across challenges, so guessing the
//! code needs the password again and again and soon pauses altogether.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{AuthTokens, start_session};
use crate::{
    audit,
    auth::{throttle, tokens, two_step, users},
    db::{Reuse, schema::sign_in_challenges},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

/// Wrong codes for one account within the sign-in window before its code
/// step pauses.
pub const WRONG_CODES: i32 = 10;

/// What the password step answers when a code must follow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Challenge {
    /// Send it back with the code, within `expires_in` seconds.
    pub challenge: String,
    pub expires_in: i64,
    pub message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    pub challenge: String,
    /// Six digits from the authenticator app, or one recovery code.
    pub code: String,
}

/// A new challenge for `user`, whose password was just right.
pub(super) async fn challenge(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Challenge> {
    let token = tokens::new_opaque_token();
    diesel::insert_into(sign_in_challenges::table)
        .values((
            sign_in_challenges::token_hash.eq(tokens::hash_opaque_token(&token)),
            sign_in_challenges::user_id.eq(user),
            sign_in_challenges::created_at.eq(now),
            sign_in_challenges::expires_at.eq(now + two_step::CHALLENGE_LIFETIME),
        ))
        .execute(conn)
        .await?;
    Ok(Challenge {
        challenge: token,
        expires_in: two_step::CHALLENGE_LIFETIME.num_seconds(),
        message:
            "Enter the 6-digit code from your authenticator app, or one of your recovery codes."
                .into(),
    })
}

fn dead_challenge() -> AppError {
    AppError::new(
        Code::InvalidChallenge,
        "This sign-in took too long or too many wrong codes. Enter your password again.",
    )
}

fn code_key(user: Uuid) -> String {
    format!("code:{user}")
}

enum Outcome {
    Signed(Box<AuthTokens>),
    Wrong,
}

/// Finishes a two-step sign-in with a one-time code or a recovery code.
#[utoipa::path(tag = "auth", request_body = CodeInput,
    responses((status = 200, body = AuthTokens),
              (status = 401, body = ErrorBody, description = "wrong or used code (`invalid_code`), or a dead challenge (`invalid_challenge`)"),
              (status = 429, body = ErrorBody, description = "too many wrong codes; see Retry-After")))]
#[post("/auth/login/code")]
pub(super) async fn code_step(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<CodeInput>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let hash = tokens::hash_opaque_token(input.challenge.trim());
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user_id: Uuid = sign_in_challenges::table
        .find(&hash)
        .filter(sign_in_challenges::used_at.is_null())
        .filter(sign_in_challenges::expires_at.gt(now))
        .filter(sign_in_challenges::failures.lt(two_step::CHALLENGE_ATTEMPTS))
        .select(sign_in_challenges::user_id)
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(dead_challenge)?;
    let key = code_key(user_id);
    if let Some(wait) = throttle::locked_for(&mut conn, std::slice::from_ref(&key), now).await? {
        return Err(AppError::rate_limited(wait));
    }
    let user = users::find(&mut conn, user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(dead_challenge)?;
    let factor = two_step::factor(&mut conn, &state.sealer, user.id)
        .await?
        .filter(|f| f.confirmed)
        .ok_or_else(dead_challenge)?;
    let outcome = conn
        .transaction::<_, AppError, _>(async |conn| {
            let by_code = two_step::looks_like_code(&input.code);
            let accepted = if by_code {
                let totp = two_step::generator(&factor.secret, &user.email)?;
                match two_step::step_of(&totp, &input.code, now) {
                    Some(step) => two_step::spend_step(conn, user.id, step, now).await?,
                    None => false,
                }
            } else {
                two_step::spend_recovery_code(conn, user.id, &input.code, now).await?
            };
            if !accepted {
                diesel::update(sign_in_challenges::table.find(&hash))
                    .set(sign_in_challenges::failures.eq(sign_in_challenges::failures + 1))
                    .reused()
                    .execute(conn)
                    .await?;
                let limits = &state.settings.login_limits;
                throttle::record_failure(conn, &key, WRONG_CODES, limits.lockout, limits, now)
                    .await?;
                let action = audit::Action::LoginCodeFailed;
                audit::record(conn, now, &meta, audit::Event::new(Some(user.id), action, "user", user.id))
                    .await?;
                return Ok(Outcome::Wrong);
            }
            // Spend the challenge: of two uses at once, only one signs in.
            let spent = diesel::update(
                sign_in_challenges::table
                    .find(&hash)
                    .filter(sign_in_challenges::used_at.is_null()),
            )
            .set(sign_in_challenges::used_at.eq(now))
            .reused()
            .execute(conn)
            .await?;
            if spent == 0 {
                return Err(dead_challenge());
            }
            throttle::clear(conn, &key).await?;
            if !by_code {
                let action = audit::Action::LoginRecoveryCodeUsed;
                audit::record(conn, now, &meta, audit::Event::new(Some(user.id), action, "user", user.id))
                    .await?;
            }
            let action = audit::Action::LoginSucceeded;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(user.id), action, "user", user.id)
                    .detail(serde_json::json!({"second_factor": if by_code { "code" } else { "recovery_code" }})),
            )
            .await?;
            let tokens = start_session(&state, conn, &user, &meta, true).await?;
            Ok(Outcome::Signed(Box::new(tokens)))
        })
        .await?;
    match outcome {
        Outcome::Signed(tokens) => Ok(HttpResponse::Ok().json(tokens)),
        Outcome::Wrong => Err(AppError::new(
            Code::InvalidCode,
            "That code is not right, or was used already. Codes change every 30 seconds; check your device's clock.",
        )),
    }
}
