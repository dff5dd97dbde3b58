//! The supervision-hours ledger: every signed attendance line of mine, with
//! totals by kind, by supervisor and by month, and a CSV export for a
//! licensing board. Dates are shown in my time zone. I confirm or dispute
//! each signed line; a disputed line says so wherever it is shown. Every
//! read of a ledger is audited.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, http::header, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::stays;
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{group_sessions, groups, session_attendance, users},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(my_ledger)
        .service(my_ledger_csv)
        .service(confirm_line)
        .service(dispute_line);
}

crate::text_enum! {
    /// What the supervisee said of a signed line.
    pub enum Answer {
        Confirmed = "confirmed",
        Disputed = "disputed",
    }
}

impl Answer {
    /// As every export shows it.
    fn shown(answer: Option<Answer>) -> &'static str {
        match answer {
            None => "awaiting the supervisee's confirmation",
            Some(Answer::Confirmed) => "confirmed by the supervisee",
            Some(Answer::Disputed) => "DISPUTED by the supervisee",
        }
    }
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
    /// Mine to give: `confirmed` or `disputed`; absent until I answer.
    pub answer: Option<Answer>,
    /// Why I disputed it.
    pub answer_note: Option<String>,
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
        Option<Answer>,
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
            session_attendance::answer,
            session_attendance::answer_note,
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
                answer,
                answer_note,
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
                    answer,
                    answer_note,
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

/// Audits that `user` read their ledger.
async fn audit_read(
    conn: &AsyncPgConnection,
    state: &AppState,
    meta: &RequestMeta,
    user: Uuid,
    what: &str,
) -> AppResult<()> {
    audit::record(
        conn,
        state.clock.now(),
        meta,
        audit::Event::own_account(user, audit::Action::LedgerRead)
            .detail(serde_json::json!({"as": what})),
    )
    .await?;
    Ok(())
}

/// My supervision hours: every signed session, with totals.
#[utoipa::path(tag = "sessions", security(("bearer" = [])), responses((status = 200, body = Ledger)))]
#[get("/me/supervision-hours")]
async fn my_ledger(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let ledger = build(&mut conn, auth.user_id).await?;
    audit_read(&conn, &state, &meta, auth.user_id, "json").await?;
    Ok(HttpResponse::Ok().json(ledger))
}

/// A cell a spreadsheet shows as text: one that begins like a formula
/// (`=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// The same ledger as CSV, one signed session a row, each row saying
/// whether I confirmed or disputed it.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String)))]
#[get("/me/supervision-hours.csv")]
async fn my_ledger_csv(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let ledger = build(&mut conn, auth.user_id).await?;
    audit_read(&conn, &state, &meta, auth.user_id, "csv").await?;
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
        "adjusted_reason",
        "supervisee",
        "dispute_note",
    ])
    .map_err(csv_error)?;
    for line in &ledger.lines {
        out.write_record([
            cell(&line.date),
            cell(&line.group),
            cell(&line.session),
            cell(line.kind.as_str()),
            cell(&line.minutes.to_string()),
            cell(&format!("{:.2}", line.hours)),
            cell(&line.supervisor),
            cell(line.supervisor_license.as_deref().unwrap_or("")),
            cell(&line.signed_at_local),
            cell(line.adjusted_reason.as_deref().unwrap_or("")),
            cell(Answer::shown(line.answer)),
            cell(line.answer_note.as_deref().unwrap_or("")),
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

crate::text_types! {
    /// Why a supervisee disputes a signed line.
    pub DisputeNote = crate::text::Limit::prose("note", 1, 1000);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeInput {
    /// What is wrong with the line (shown with it in every export).
    pub note: DisputeNote,
}

/// Records my answer to my signed line of a session, once.
async fn answer(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    session: Uuid,
    answer: Answer,
    note: Option<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    use diesel_async::AsyncConnection;
    conn.transaction::<_, AppError, _>(async |conn| {
        let line: Option<(Option<DateTime<Utc>>, Option<Answer>)> = session_attendance::table
            .find((session, auth.user_id))
            .select((session_attendance::signed_at, session_attendance::answer))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        match line {
            Some((Some(_), None)) => {}
            Some((Some(_), Some(given))) => {
                return Err(AppError::conflict(
                    Code::AlreadyAnswered,
                    format!("You already {given} this line."),
                ));
            }
            _ => {
                return Err(AppError::not_found(
                    "You have no signed line in this session.",
                ));
            }
        }
        diesel::update(session_attendance::table.find((session, auth.user_id)))
            .set((
                session_attendance::answer.eq(answer),
                session_attendance::answered_at.eq(now),
                session_attendance::answer_note.eq(&note),
            ))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            now,
            meta,
            audit::Event::new(
                Some(auth.user_id),
                if answer == Answer::Confirmed {
                    audit::Action::SessionLineConfirmed
                } else {
                    audit::Action::SessionLineDisputed
                },
                "session",
                session,
            ),
        )
        .await?;
        Ok(())
    })
    .await?;
    let ledger = build(&mut conn, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(ledger))
}

/// I confirm my signed line of a session.
#[utoipa::path(tag = "sessions", params(("session_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Ledger), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/me/supervision-hours/{session_id}/confirm")]
async fn confirm_line(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    answer(
        &state,
        &meta,
        &auth,
        path.into_inner(),
        Answer::Confirmed,
        None,
    )
    .await
}

/// I dispute my signed line of a session, saying why.
#[utoipa::path(tag = "sessions", params(("session_id" = Uuid, Path)), request_body = DisputeInput, security(("bearer" = [])),
    responses((status = 200, body = Ledger), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/me/supervision-hours/{session_id}/dispute")]
async fn dispute_line(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<DisputeInput>,
) -> AppResult<HttpResponse> {
    let note = body.0.note.into_inner();
    answer(
        &state,
        &meta,
        &auth,
        path.into_inner(),
        Answer::Disputed,
        Some(note),
    )
    .await
}
