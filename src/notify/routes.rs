//! `GET /notifications` (unread first) and marking them read.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    db::Reuse,
    db::schema::notifications,
    error::{AppError, AppResult, ErrorBody},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_notifications)
        .service(mark_read)
        .service(mark_all_read);
}

#[derive(Debug, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = notifications)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NotificationView {
    pub id: i64,
    pub kind: String,
    pub referral_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub unread: i64,
    /// Unread first, then newest first; at most 50.
    pub items: Vec<NotificationView>,
}

/// My notifications, unread first.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), responses((status = 200, body = NotificationList)))]
#[get("/notifications")]
async fn list_notifications(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let items: Vec<NotificationView> = notifications::table
        .filter(notifications::user_id.eq(auth.user_id))
        .order((
            notifications::read_at.is_not_null(),
            notifications::id.desc(),
        ))
        .limit(50)
        .select(NotificationView::as_select())
        .load(&mut conn)
        .await?;
    let unread: i64 = notifications::table
        .filter(
            notifications::user_id
                .eq(auth.user_id)
                .and(notifications::read_at.is_null()),
        )
        .count()
        .get_result(&mut conn)
        .await?;
    Ok(HttpResponse::Ok().json(NotificationList { unread, items }))
}

/// Marks one notification read.
#[utoipa::path(tag = "notifications", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[post("/notifications/{id}/read")]
async fn mark_read(
    state: web::Data<AppState>,
    auth: AuthUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let updated = diesel::update(
        notifications::table.filter(
            notifications::id
                .eq(path.into_inner())
                .and(notifications::user_id.eq(auth.user_id)),
        ),
    )
    .set(
        notifications::read_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("coalesce(read_at, ")
        .bind::<diesel::sql_types::Timestamptz, _>(state.clock.now())
        .sql(")")),
    )
    .reused()
    .execute(&mut conn)
    .await?;
    if updated == 0 {
        return Err(AppError::not_found("No such notification."));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Marks every notification read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), responses((status = 204)))]
#[post("/notifications/read-all")]
async fn mark_all_read(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    diesel::update(
        notifications::table.filter(
            notifications::user_id
                .eq(auth.user_id)
                .and(notifications::read_at.is_null()),
        ),
    )
    .set(notifications::read_at.eq(state.clock.now()))
    .reused()
    .execute(&mut conn)
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
