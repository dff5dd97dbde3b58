//! Liveness (`/health`: the process answers) and readiness (`/ready`: the
//! database answers too), plus the JSON 404 for unknown addresses.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl;

use crate::{error::AppError, state::AppState};

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let check = async {
        let mut conn = state.pool.get().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        Ok::<_, AppError>(())
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))),
        _ => Err(AppError::unavailable(
            crate::error::Code::DatabaseUnavailable,
            "The database is not reachable.",
        )),
    }
}

/// Answers what no route took: 405 with `Allow` when the path is one the API
/// documents (under another method), else 404.
pub async fn not_found(
    req: actix_web::HttpRequest,
    paths: web::Data<crate::http::KnownPaths>,
) -> Result<HttpResponse, AppError> {
    match paths.allowed(req.path()) {
        Some(allow) => Err(AppError::method_not_allowed(allow)),
        None => Err(AppError::not_found("There is nothing at this address.")),
    }
}
