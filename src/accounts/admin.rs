//! What only administrators may do: change roles, mark a license verified,
//! disable or re-enable an account. Every action is audited.

use actix_web::{HttpResponse, post, put, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{AuthUser, Role, sessions, users};
use crate::{
    audit,
    db::Reuse,
    db::schema::users as users_t,
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(set_role)
        .service(set_verification)
        .service(disable)
        .service(enable);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationChange {
    /// true marks the licence verified now; false withdraws the verification.
    pub verified: bool,
    /// With `verified: true`, the states checked (each one the profile
    /// claims); every claimed state when left out.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::profiles::model::UsState>>)]
    pub states: Option<Vec<String>>,
}

async fn target(conn: &mut diesel_async::AsyncPgConnection, id: Uuid) -> AppResult<users::User> {
    users::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))
}

/// Changes an account's role (administrators only).
#[utoipa::path(tag = "admin", request_body = RoleChange, security(("bearer" = [])),
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = users::Account), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the last administrator, or your own role")))]
#[put("/admin/users/{user_id}/role")]
async fn set_role(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<RoleChange>,
) -> AppResult<HttpResponse> {
    auth.require_admin()?;
    let id = path.into_inner();
    let role = body.0.role;
    if id == auth.user_id && role != Role::Admin {
        return Err(AppError::conflict(
            Code::LastAdminGuard,
            "You cannot remove your own administrator role.",
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let meta = &meta;
            let before = target(conn, id).await?;
            diesel::update(users_t::table.find(id))
                .set((users_t::role.eq(role.as_str()), users_t::updated_at.eq(now)))
                .reused()
                .execute(conn)
                .await?;
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::AccountRoleChanged,
                    "user",
                    id,
                )
                .detail(serde_json::json!({"from": before.role, "to": role.as_str()})),
            )
            .await?;
            target(conn, id).await
        })
        .await
    })
    .await?;
    state.sessions.forget_user(id);
    Ok(HttpResponse::Ok().json(user.account()?))
}

/// Marks a clinician's license verified, or withdraws it (administrators only).
#[utoipa::path(tag = "admin", request_body = VerificationChange, security(("bearer" = [])),
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = crate::profiles::ProfileView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[put("/admin/users/{user_id}/verification")]
async fn set_verification(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<VerificationChange>,
) -> AppResult<HttpResponse> {
    auth.require_admin()?;
    let id = path.into_inner();
    let VerificationChange { verified, states } = body.0;
    // Named states are state codes whether the licence is being verified or
    // the verification withdrawn (when they are not used).
    for code in states.iter().flatten() {
        crate::profiles::validate::state_code("states", code)?;
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let (meta, state) = (&meta, &state);
            target(conn, id).await?;
            let checked = if verified {
                crate::profiles::licence::verifiable_states(conn, id, states.clone()).await?
            } else {
                vec![]
            };
            crate::profiles::licence::set_verified(conn, id, &checked, (now, auth.user_id)).await?;
            crate::outbox::enqueue(conn, id, now).await?;
            let action = if verified {
                audit::Action::ProfileLicenseVerified
            } else {
                audit::Action::ProfileLicenseUnverified
            };
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(Some(auth.user_id), action, "profile", id)
                    .detail(serde_json::json!({ "states": checked })),
            )
            .await?;
            crate::profiles::load_view(conn, id, state.clock.now()).await
        })
        .await
    })
    .await?;
    state.indexer_wake.notify_one();
    Ok(HttpResponse::Ok().json(view))
}

async fn set_disabled(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    id: Uuid,
    disabled: bool,
) -> AppResult<users::Account> {
    auth.require_admin()?;
    if disabled && id == auth.user_id {
        return Err(AppError::conflict(
            Code::LastAdminGuard,
            "You cannot disable your own account.",
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let user = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            target(conn, id).await?;
            diesel::update(users_t::table.find(id))
                .set((
                    users_t::disabled_at.eq(disabled.then_some(now)),
                    users_t::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            if disabled {
                sessions::revoke_all(conn, id, now, "account_disabled").await?;
            }
            // Disabled clinicians leave the index; enabled ones return.
            crate::outbox::enqueue(conn, id, now).await?;
            let action = if disabled {
                audit::Action::AccountDisabled
            } else {
                audit::Action::AccountEnabled
            };
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(Some(auth.user_id), action, "user", id),
            )
            .await?;
            target(conn, id).await
        })
        .await
    })
    .await?;
    state.sessions.forget_user(id);
    state.indexer_wake.notify_one();
    user.account()
}

/// Disables an account and ends all of its sign-ins (administrators only).
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("user_id" = Uuid, Path)),
    responses((status = 200, body = users::Account), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the last administrator, or your own account")))]
#[post("/admin/users/{user_id}/disable")]
async fn disable(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(set_disabled(&state, &meta, &auth, path.into_inner(), true).await?))
}

/// Re-enables a disabled account (administrators only).
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("user_id" = Uuid, Path)),
    responses((status = 200, body = users::Account), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/admin/users/{user_id}/enable")]
async fn enable(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    Ok(
        HttpResponse::Ok()
            .json(set_disabled(&state, &meta, &auth, path.into_inner(), false).await?),
    )
}
