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
    db::{
        Reuse,
        schema::{sign_in_challenges, users as users_t},
    },
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
        .reused()
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
    // The challenge and its account in one query...
    let user: users::User = sign_in_challenges::table
        .inner_join(users_t::table)
        .filter(sign_in_challenges::token_hash.eq(&hash))
        .filter(sign_in_challenges::used_at.is_null())
        .filter(sign_in_challenges::expires_at.gt(now))
        .filter(sign_in_challenges::failures.lt(two_step::CHALLENGE_ATTEMPTS))
        .filter(users_t::disabled_at.is_null())
        .select(users::User::as_select())
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(dead_challenge)?;
    // ...then the account's pause and its key in one round trip.
    let key = code_key(user.id);
    let shared: &AsyncPgConnection = &conn;
    let (paused, factor) = futures_util::try_join!(
        async {
            throttle::locked_for(shared, std::slice::from_ref(&key), now)
                .await
                .map_err(AppError::from)
        },
        two_step::factor(shared, &state.sealer, user.id),
    )?;
    if let Some(wait) = paused {
        return Err(AppError::rate_limited(wait));
    }
    let factor = factor.filter(|f| f.confirmed).ok_or_else(dead_challenge)?;
    let by_code = two_step::looks_like_code(&input.code);
    let step = if by_code {
        let totp = two_step::generator(&factor.secret, &user.email)?;
        two_step::step_of(&totp, &input.code, now)
    } else {
        None
    };
    let outcome = conn
        .transaction::<_, AppError, _>(async |conn| {
            let shared: &AsyncPgConnection = conn;
            let accepted = match (by_code, step) {
                (true, Some(step)) => two_step::spend_step(shared, user.id, step, now).await?,
                (true, None) => false,
                (false, _) => {
                    two_step::spend_recovery_code(shared, user.id, &input.code, now).await?
                }
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
                audit::record(
                    conn,
                    now,
                    &meta,
                    audit::Event::new(Some(user.id), action, "user", user.id),
                )
                .await?;
                return Ok(Outcome::Wrong);
            }
            // Spend the challenge (of two uses at once, only one signs in),
            // clear the account's count and audit, in one round trip.
            let spend = async {
                let mut c = shared;
                diesel::update(
                    sign_in_challenges::table
                        .find(&hash)
                        .filter(sign_in_challenges::used_at.is_null()),
                )
                .set(sign_in_challenges::used_at.eq(now))
                .reused()
                .execute(&mut c)
                .await
            };
            let how = if by_code { "code" } else { "recovery_code" };
            let (spent, (), ()) = futures_util::try_join!(
                spend,
                throttle::clear(shared, &key),
                audit::record(
                    shared,
                    now,
                    &meta,
                    audit::Event::new(
                        Some(user.id),
                        audit::Action::LoginSucceeded,
                        "user",
                        user.id
                    )
                    .detail(serde_json::json!({ "second_factor": how })),
                ),
            )?;
            if spent == 0 {
                return Err(dead_challenge());
            }
            if !by_code {
                let action = audit::Action::LoginRecoveryCodeUsed;
                audit::record(
                    conn,
                    now,
                    &meta,
                    audit::Event::new(Some(user.id), action, "user", user.id),
                )
                .await?;
            }
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
