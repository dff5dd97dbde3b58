//! Creating an account: a clinician with an empty profile, signed in at once.

use actix_web::{HttpResponse, post, web};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{AuthTokens, start_session};
use crate::auth::{Role, password, users};
use crate::{
    audit,
    db::schema::users as users_t,
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// At least 12 characters, not a common password.
    pub password: String,
    pub display_name: String,
}

/// Creates a clinician account (and its empty profile) and signs it in.
#[utoipa::path(tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthTokens), (status = 409, body = ErrorBody, description = "email already registered"),
              (status = 422, body = ErrorBody)))]
#[post("/auth/register")]
pub(super) async fn register(
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
    let display_name = crate::profiles::validate::display_name(&body.display_name)?;
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
                    role: Role::Clinician,
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
