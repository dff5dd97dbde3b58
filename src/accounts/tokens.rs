//! Issuing a sign-in's tokens, shared by registration, sign-in, refresh and
//! a password change.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{sessions, tokens, users};
use crate::{
    db::schema::refresh_tokens,
    error::{AppError, AppResult, Code},
    http::RequestMeta,
    state::AppState,
};

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

pub(super) fn invalid_credentials() -> AppError {
    AppError::new(
        Code::InvalidCredentials,
        "The email or password is incorrect.",
    )
}

/// Starts a sign-in for `user` inside `conn`'s transaction and returns its
/// tokens; `second_factor` says the sign-in proved one.
pub(super) async fn start_session(
    state: &AppState,
    conn: &diesel_async::AsyncPgConnection,
    user: &users::User,
    meta: &RequestMeta,
    second_factor: bool,
) -> AppResult<AuthTokens> {
    let now = state.clock.now();
    let max_ttl =
        chrono::Duration::from_std(state.settings.session_max_ttl).map_err(AppError::internal)?;
    let session_id = Uuid::now_v7();
    let shared: &diesel_async::AsyncPgConnection = conn;
    // The sign-in and its first refresh token go in one round trip (in
    // this order, so the token's key finds its sign-in).
    let start = async {
        sessions::create(
            shared,
            sessions::NewSignIn {
                id: session_id,
                user_id: user.id,
                now,
                max_ttl,
                ip: meta.ip.as_deref(),
                user_agent: meta.user_agent.as_deref(),
                second_factor,
            },
        )
        .await
        .map_err(AppError::from)
    };
    let ((), tokens) =
        futures_util::try_join!(start, issue_tokens(state, shared, user, session_id))?;
    Ok(tokens)
}

pub(super) async fn issue_tokens(
    state: &AppState,
    mut conn: &diesel_async::AsyncPgConnection,
    user: &users::User,
    session_id: Uuid,
) -> AppResult<AuthTokens> {
    let now = state.clock.now();
    let refresh_token = tokens::new_opaque_token();
    let idle =
        chrono::Duration::from_std(state.settings.refresh_idle_ttl).map_err(AppError::internal)?;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(tokens::hash_opaque_token(&refresh_token)),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::issued_at.eq(now),
            refresh_tokens::expires_at.eq(now + idle),
        ))
        .execute(&mut conn)
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
