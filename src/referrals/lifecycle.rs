//! After the answer: the sender withdraws (any time before completion), the
//! accepter records the first appointment and then the outcome.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    model::{Referral, ReferralView},
    notices::ReferralNotice,
    state::{Event, Status},
    store::{close_pending_offers, lock, offers_of, transition},
    view::{check_party, view_of},
};
use crate::{
    audit,
    auth::AuthUser,
    db::{Reuse, schema::referrals},
    error::{AppError, AppResult, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

/// What an action records besides the status.
enum Extra {
    Nothing,
    FirstAppointment(DateTime<Utc>),
    /// The outcome, and what the privacy guard let through for the audit log.
    Outcome(String, Option<serde_json::Value>),
}

/// Who may take a step.
#[derive(Clone, Copy)]
enum Party {
    Sender,
    Accepter,
}

impl Party {
    fn is(self, referral: &Referral, user: Uuid) -> bool {
        match self {
            Party::Sender => referral.is_sender(user),
            Party::Accepter => referral.is_accepter(user),
        }
    }
}

fn action_of(status: Status) -> audit::Action {
    match status {
        Status::Withdrawn => audit::Action::ReferralWithdrawn,
        Status::Scheduled => audit::Action::ReferralScheduled,
        _ => audit::Action::ReferralCompleted,
    }
}

/// Sender-only and accepter-only steps share this shape.
async fn act(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    id: Uuid,
    who: Party,
    event: Event,
    extra: Extra,
) -> AppResult<ReferralView> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
        let referral = lock(conn, id).await?;
        let offers = offers_of(conn, id).await?;
        check_party(&referral, &offers, auth.user_id)?;
        if !who.is(&referral, auth.user_id) {
            return Err(AppError::forbidden(
                "Only the sender or the clinician who accepted can do this, as the case may be.",
            ));
        }
        let to = transition(conn, &referral, event, Some(auth.user_id), now, None).await?;
        match &extra {
            Extra::Nothing => {}
            Extra::FirstAppointment(at) => {
                diesel_async::RunQueryDsl::execute(
                    diesel::update(referrals::table.find(id))
                        .set(referrals::first_appointment_at.eq(at))
                        .reused(),
                    conn,
                )
                .await?;
            }
            Extra::Outcome(outcome, overridden) => {
                diesel_async::RunQueryDsl::execute(
                    diesel::update(referrals::table.find(id))
                        .set(referrals::outcome.eq(outcome))
                        .reused(),
                    conn,
                )
                .await?;
                crate::privacy::record_override(
                    conn,
                    now,
                    meta,
                    auth.user_id,
                    ("referral", id.to_string()),
                    overridden.clone(),
                )
                .await?;
            }
        }
        if event == Event::Withdraw {
            for offer in offers.iter().filter(|o| {
                o.state.is_answerable() || o.state == super::state::OfferState::Accepted
            }) {
                ReferralNotice {
                    kind: "referral_withdrawn",
                    subject: "A referral was withdrawn",
                    message:
                        "The sender withdrew a referral they had offered you; no action is needed."
                            .into(),
                }
                .send(conn, &state.mailer.public_url, offer.recipient_id, id, now)
                .await?;
            }
            close_pending_offers(conn, id, None, now).await?;
        }
        audit::record(
            conn,
            now,
            meta,
            audit::Event::new(Some(auth.user_id), action_of(to), "referral", id),
        )
        .await?;
        let referral = lock(conn, id).await?;
        view_of(conn, &referral, auth.user_id).await
    })
    .await
    })
    .await
}

/// The sender takes the referral back (any time before completion).
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/withdraw")]
pub async fn withdraw_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = act(
        &state,
        &meta,
        &auth,
        id,
        Party::Sender,
        Event::Withdraw,
        Extra::Nothing,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    pub first_appointment_at: DateTime<Utc>,
}

/// The accepter records the first appointment.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = AppointmentInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/schedule")]
pub async fn schedule_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AppointmentInput>,
) -> AppResult<HttpResponse> {
    let at = body.0.first_appointment_at;
    let id = path.into_inner();
    let extra = Extra::FirstAppointment(at);
    let view = act(
        &state,
        &meta,
        &auth,
        id,
        Party::Accepter,
        Event::Schedule,
        extra,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    pub outcome: super::model::Outcome,
    /// The outcome identifies no one, although the privacy guard found
    /// something like an identifier in it (recorded in the audit log).
    #[serde(default)]
    pub confirm_no_identifiers: bool,
}

/// The accepter closes the loop after the first appointment.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = CompleteInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/complete")]
pub async fn complete_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CompleteInput>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let overridden = crate::privacy::Travelling::new()
        .field("outcome", Some(input.outcome.as_str()))
        .check(input.confirm_no_identifiers)?;
    let outcome = input.outcome.into_inner();
    let id = path.into_inner();
    let extra = Extra::Outcome(outcome, overridden);
    let view = act(
        &state,
        &meta,
        &auth,
        id,
        Party::Accepter,
        Event::Complete,
        extra,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
