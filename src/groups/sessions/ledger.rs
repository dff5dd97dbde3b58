//! The supervision-hours ledger: every signed attendance line of mine, with
//! totals by kind, by supervisor and by month, and a CSV export for a
//! licensing board. Dates are shown in my time zone.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, http::header, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::stays;
use crate::{
    auth::AuthUser,
    db::schema::{group_sessions, groups, session_attendance, users},
    error::{AppError, AppResult},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(my_ledger).service(my_ledger_csv);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerLine {
    pub session_id: Uuid,
    /// The day the session took place, in your time zone.
    pub date: String,
    pub group: String,
    pub session: String,
    pub kind: super::model::SessionKind,
    pub minutes: i32,
    pub hours: f64,
    pub supervisor: String,
    pub supervisor_license: Option<String>,
    pub signed_at: DateTime<Utc>,
    /// The sign-off time in your time zone.
    pub signed_at_local: String,
    /// Set when the host corrected the minutes the room measured.
    pub adjusted_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Total {
    /// A kind, a supervisor's name, or a month (`2026-11`).
    pub key: String,
    pub minutes: i64,
    pub hours: f64,
    pub sessions: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ledger {
    pub time_zone: String,
    pub total_hours: f64,
    pub by_kind: Vec<Total>,
    pub by_supervisor: Vec<Total>,
    pub by_month: Vec<Total>,
    /// Oldest first.
    pub lines: Vec<LedgerLine>,
}

fn hours(minutes: i64) -> f64 {
    (minutes as f64 / 60.0 * 100.0).round() / 100.0
}

fn totals(lines: &[LedgerLine], key: impl Fn(&LedgerLine) -> String) -> Vec<Total> {
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for line in lines {
        let entry = sums.entry(key(line)).or_default();
        entry.0 += i64::from(line.minutes);
        entry.1 += 1;
    }
    sums.into_iter()
        .map(|(key, (minutes, sessions))| Total {
            key,
            minutes,
            hours: hours(minutes),
            sessions,
        })
        .collect()
}

async fn build(conn: &mut AsyncPgConnection, user: Uuid) -> AppResult<Ledger> {
    let zone_name: String = users::table
        .find(user)
        .select(users::time_zone)
        .first(conn)
        .await?;
    let tz = stays::zone(&zone_name);
    type Row = (
        Uuid,
        Option<DateTime<Utc>>,
        DateTime<Utc>,
        String,
        String,
        super::model::SessionKind,
        i32,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<String>,
    );
    let rows: Vec<Row> = session_attendance::table
        .inner_join(group_sessions::table.inner_join(groups::table))
        .filter(
            session_attendance::user_id
                .eq(user)
                .and(session_attendance::signed_at.is_not_null()),
        )
        .order((group_sessions::starts_at, group_sessions::id))
        .select((
            group_sessions::id,
            group_sessions::started_at,
            group_sessions::starts_at,
            groups::name,
            group_sessions::title,
            session_attendance::kind,
            session_attendance::minutes,
            session_attendance::signer_name,
            session_attendance::signer_license,
            session_attendance::signed_at,
            session_attendance::adjusted_reason,
        ))
        .load(conn)
        .await?;
    let lines: Vec<LedgerLine> = rows
        .into_iter()
        .filter_map(
            |(
                id,
                started,
                planned,
                group,
                title,
                kind,
                minutes,
                signer,
                license,
                signed,
                reason,
            )| {
                let signed_at = signed?;
                let held = started.unwrap_or(planned).with_timezone(&tz);
                Some(LedgerLine {
                    session_id: id,
                    date: held.format("%Y-%m-%d").to_string(),
                    group,
                    session: title,
                    kind,
                    minutes,
                    hours: hours(i64::from(minutes)),
                    supervisor: signer.unwrap_or_default(),
                    supervisor_license: license,
                    signed_at,
                    signed_at_local: stays::local(signed_at, tz),
                    adjusted_reason: reason,
                })
            },
        )
        .collect();
    let total: i64 = lines.iter().map(|l| i64::from(l.minutes)).sum();
    Ok(Ledger {
        time_zone: tz.name().to_string(),
        total_hours: hours(total),
        by_kind: totals(&lines, |l| l.kind.as_str().to_string()),
        by_supervisor: totals(&lines, |l| l.supervisor.clone()),
        by_month: totals(&lines, |l| l.date[..7].to_string()),
        lines,
    })
}

/// My supervision hours: every signed session, with totals.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), responses((status = 200, body = Ledger)))]
#[get("/me/supervision-hours")]
async fn my_ledger(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(build(&mut conn, auth.user_id).await?))
}

/// The same ledger as CSV, one signed session a row.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String)))]
#[get("/me/supervision-hours.csv")]
async fn my_ledger_csv(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let ledger = build(&mut conn, auth.user_id).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| AppError::internal(e);
    out.write_record([
        "date",
        "group",
        "session",
        "kind",
        "minutes",
        "hours",
        "supervisor",
        "supervisor_license",
        "signed_at",
    ])
    .map_err(csv_error)?;
    for line in &ledger.lines {
        out.write_record([
            line.date.as_str(),
            line.group.as_str(),
            line.session.as_str(),
            line.kind.as_str(),
            &line.minutes.to_string(),
            &format!("{:.2}", line.hours),
            line.supervisor.as_str(),
            line.supervisor_license.as_deref().unwrap_or(""),
            line.signed_at_local.as_str(),
        ])
        .map_err(csv_error)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"supervision-hours.csv\"",
        ))
        .body(body))
}
