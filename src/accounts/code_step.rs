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
        schema::{login_throttle, second_factors, sign_in_challenges, users as users_t},
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
    // One round trip: the challenge and its account, the account's key, and
    // whether its code step is paused (the last two found through the
    // challenge, so none waits for another).
    let shared: &AsyncPgConnection = &conn;
    let owner = || {
        sign_in_challenges::table
            .filter(sign_in_challenges::token_hash.eq(&hash))
            .select(sign_in_challenges::user_id)
    };
    let account = async {
        let mut c = shared;
        sign_in_challenges::table
            .inner_join(users_t::table)
            .filter(sign_in_challenges::token_hash.eq(&hash))
            .filter(sign_in_challenges::used_at.is_null())
            .filter(sign_in_challenges::expires_at.gt(now))
            .filter(sign_in_challenges::failures.lt(two_step::CHALLENGE_ATTEMPTS))
            .filter(users_t::disabled_at.is_null())
            .select(users::User::as_select())
            .first::<users::User>(&mut c)
            .await
            .optional()
    };
    let key = async {
        let mut c = shared;
        second_factors::table
            .filter(second_factors::user_id.eq_any(owner()))
            .filter(second_factors::confirmed_at.is_not_null())
            .select((second_factors::user_id, second_factors::sealed_secret))
            .first::<(Uuid, Vec<u8>)>(&mut c)
            .await
            .optional()
    };
    let paused = async {
        let mut c = shared;
        use diesel::dsl::sql;
        login_throttle::table
            .filter(
                login_throttle::key.eq_any(owner().select(sql::<diesel::sql_types::Text>(
                    "'code:' || sign_in_challenges.user_id::text",
                ))),
            )
            .filter(login_throttle::locked_until.gt(now))
            .select(login_throttle::locked_until)
            .limit(1)
            .reused()
            .get_result::<Option<DateTime<Utc>>>(&mut c)
            .await
            .optional()
    };
    let (user, sealed, paused) = futures_util::try_join!(account, key, paused)?;
    let user = user.ok_or_else(dead_challenge)?;
    if let Some(Some(until)) = paused {
        return Err(AppError::rate_limited(
            (until - now).num_seconds().max(1) as u64
        ));
    }
    let secret = match sealed {
        Some((owner, sealed)) if owner == user.id => {
            two_step::open_secret(&state.sealer, user.id, &sealed)?
        }
        _ => return Err(dead_challenge()),
    };
    let key = code_key(user.id);
    let by_code = two_step::looks_like_code(&input.code);
    let step = if by_code {
        let totp = two_step::generator(&secret, &user.email)?;
        two_step::step_of(&totp, &input.code, now)
    } else {
        None
    };
    if by_code && step.is_none() {
        return wrong(&state, &mut conn, &meta, &user, &hash, &key, now).await;
    }
    // One round trip more, optimistically: the code and the challenge are
    // spent, the count cleared, the success audited and the sign-in started
    // together; a code that was spent already rolls it all back.
    let how = if by_code { "code" } else { "recovery_code" };
    let signed = conn
        .transaction::<_, AppError, _>(async |conn| {
            let shared: &AsyncPgConnection = conn;
            let spend_code = async {
                match step {
                    Some(step) => two_step::spend_step(shared, user.id, step, now).await,
                    None => two_step::spend_recovery_code(shared, user.id, &input.code, now).await,
                }
                .map_err(AppError::from)
            };
            let spend_challenge = async {
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
                .map_err(AppError::from)
            };
            let clear = async { throttle::clear(shared, &key).await.map_err(AppError::from) };
            let action = audit::Action::LoginSucceeded;
            let audited = async {
                audit::record(
                    shared,
                    now,
                    &meta,
                    audit::Event::own_account(user.id, action)
                        .detail(serde_json::json!({ "second_factor": how })),
                )
                .await
                .map_err(AppError::from)
            };
            let start = start_session(&state, shared, &user, &meta, true);
            let (accepted, spent, (), (), tokens) =
                futures_util::try_join!(spend_code, spend_challenge, clear, audited, start)?;
            if spent == 0 {
                return Err(dead_challenge());
            }
            if !accepted {
                return Err(wrong_code());
            }
            Ok(tokens)
        })
        .await;
    match signed {
        Ok(tokens) => Ok(HttpResponse::Ok().json(tokens)),
        Err(e) if e.code == Code::InvalidCode => {
            wrong(&state, &mut conn, &meta, &user, &hash, &key, now).await
        }
        Err(e) => Err(e),
    }
}

fn wrong_code() -> AppError {
    AppError::new(
        Code::InvalidCode,
        "That code is not right, or was used already. Codes change every 30 seconds; check your device's clock.",
    )
}

/// A wrong code: counted against the challenge and the account, audited.
async fn wrong(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    meta: &RequestMeta,
    user: &users::User,
    hash: &[u8],
    key: &str,
    now: DateTime<Utc>,
) -> AppResult<HttpResponse> {
    conn.transaction::<_, AppError, _>(async |conn| {
        diesel::update(sign_in_challenges::table.find(hash))
            .set(sign_in_challenges::failures.eq(sign_in_challenges::failures + 1))
            .reused()
            .execute(conn)
            .await?;
        let limits = &state.settings.login_limits;
        throttle::record_failure(conn, key, WRONG_CODES, limits.lockout, limits, now).await?;
        let action = audit::Action::LoginCodeFailed;
        audit::record(conn, now, meta, audit::Event::own_account(user.id, action)).await?;
        Ok(())
    })
    .await?;
    Err(wrong_code())
}
