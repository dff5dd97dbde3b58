//! Administrators read the audit log and check its chain.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{AuditEntry, chain::ChainReport};
use crate::{auth::AuthUser, db::schema::audit_log, error::AppResult, state::AppState};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list).service(verify);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub action: Option<String>,
    /// Only entries with a smaller id (paging backwards).
    pub before: Option<i64>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Audit entries, newest first (administrators only).
#[utoipa::path(tag = "audit", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = [AuditEntry]), (status = 403, body = crate::error::ErrorBody)))]
#[get("/admin/audit")]
async fn list(
    state: web::Data<AppState>,
    meta: crate::http::RequestMeta,
    auth: AuthUser,
    query: crate::http::ApiQuery<AuditQuery>,
) -> AppResult<HttpResponse> {
    auth.require_admin()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(crate::error::AppError::invalid_field(
            "limit",
            "Use a limit from 1 to 500.",
        ));
    }
    let mut q = audit_log::table.into_boxed();
    if let Some(actor) = query.actor_id {
        q = q.filter(audit_log::actor_id.eq(actor));
    }
    if let Some(t) = &query.entity_type {
        q = q.filter(audit_log::entity_type.eq(t.clone()));
    }
    if let Some(id) = &query.entity_id {
        q = q.filter(audit_log::entity_id.eq(id.clone()));
    }
    if let Some(action) = &query.action {
        q = q.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(before) = query.before {
        q = q.filter(audit_log::id.lt(before));
    }
    let mut conn = state.pool.get().await?;
    let entries: Vec<AuditEntry> = q
        .order(audit_log::id.desc())
        .limit(limit)
        .select(AuditEntry::as_select())
        .load(&mut conn)
        .await?;
    // Reading the audit log is itself recorded, with what was asked.
    super::record(
        &conn,
        state.clock.now(),
        &meta,
        super::Event::own_account(auth.user_id, super::Action::AuditRead).detail(serde_json::json!({
            "actor_id": query.actor_id, "entity_type": query.entity_type, "entity_id": query.entity_id,
            "action": query.action, "before": query.before, "returned": entries.len(),
        })),
    )
    .await?;
    Ok(HttpResponse::Ok().json(entries))
}

/// Walks the hash chain and reports whether any sealed entry was altered.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = ChainReport), (status = 403, body = crate::error::ErrorBody)))]
#[get("/admin/audit/verify")]
async fn verify(
    state: web::Data<AppState>,
    meta: crate::http::RequestMeta,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
    auth.require_admin()?;
    let mut conn = state.pool.get().await?;
    let checkpoints = super::chain::Checkpoints::in_data_dir(&state.settings.data_dir)
        .read()
        .map_err(|e| crate::error::AppError::internal(format!("reading the checkpoints: {e}")))?;
    let report = super::chain::verify(&mut conn, &state.audit_key, &checkpoints).await?;
    super::record(
        &conn,
        state.clock.now(),
        &meta,
        super::Event::own_account(auth.user_id, super::Action::AuditRead)
            .detail(serde_json::json!({"verified": report.intact})),
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}
