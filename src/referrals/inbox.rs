//! Reading referrals: the inbox (offered to me) and outbox (sent by me), and
//! opening one, which marks a colleague's offer received.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    model::{Mode, Referral, ReferralView, Urgency},
    state::{Event, OfferEvent, OfferState, Status},
    store::{lock, move_offer, offers_of, transition},
    view::{view_of, visible_offer},
};
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{referral_offers, referrals},
    error::{AppError, AppResult, ErrorBody},
    http::RequestMeta,
    state::AppState,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `inbox` (offered to me, the default) or `outbox` (sent by me).
    #[param(value_type = Option<Listing>, inline)]
    pub r#box: Option<String>,
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<i64>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ReferralSummary {
    pub id: Uuid,
    pub status: Status,
    pub mode: Mode,
    pub urgency: Urgency,
    pub concerns: Vec<String>,
    pub client_state: String,
    /// For the inbox: my offer's state and deadline.
    pub offer_state: Option<OfferState>,
    pub deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReferralSummary {
    fn of(r: &Referral, offer: Option<(OfferState, Option<DateTime<Utc>>)>) -> Self {
        Self {
            id: r.id,
            status: r.status,
            mode: r.mode,
            urgency: r.urgency,
            concerns: r.concerns.clone(),
            client_state: r.client_state.clone(),
            offer_state: offer.map(|o| o.0),
            deadline: offer.and_then(|o| o.1),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
enum Listing {
    Inbox,
    Outbox,
}

impl Listing {
    fn parse(value: Option<&str>) -> AppResult<Self> {
        match value.unwrap_or("inbox") {
            "inbox" => Ok(Listing::Inbox),
            "outbox" => Ok(Listing::Outbox),
            other => Err(AppError::invalid_field(
                "box",
                format!("`box` must be inbox or outbox, not `{other}`."),
            )),
        }
    }
}

/// The inbox (referrals offered to me) or the outbox (sent by me), newest first.
#[utoipa::path(tag = "referrals", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = [ReferralSummary]), (status = 422, body = ErrorBody)))]
#[get("/referrals")]
pub async fn list_referral(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: crate::http::ApiQuery<ListQuery>,
) -> AppResult<HttpResponse> {
    let per_page = query.per_page.unwrap_or(20);
    let page = query.page.unwrap_or(1);
    if !(1..=100).contains(&per_page) {
        return Err(AppError::invalid_field(
            "per_page",
            "`per_page` must be from 1 to 100.",
        ));
    }
    if !(1..=10_000).contains(&page) {
        return Err(AppError::invalid_field("page", "`page` must be 1 or more."));
    }
    let status = query
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s)
                .ok_or_else(|| AppError::invalid_field("status", format!("Unknown status `{s}`.")))
        })
        .transpose()?;
    let which = Listing::parse(query.r#box.as_deref())?;
    let mut conn = state.pool.get().await?;
    let rows: Vec<ReferralSummary> = match which {
        Listing::Outbox => {
            let mut q = referrals::table
                .filter(referrals::sender_id.eq(auth.user_id))
                .into_boxed();
            if let Some(s) = status {
                q = q.filter(referrals::status.eq(s));
            }
            q.order(referrals::created_at.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
                .select(Referral::as_select())
                .load::<Referral>(&mut conn)
                .await?
                .iter()
                .map(|r| ReferralSummary::of(r, None))
                .collect()
        }
        Listing::Inbox => {
            // Static queries (prepared once), each a plain index walk: a busy inbox reads
            // 20 rows, not all. (One query with an optional status would hide its
            // selectivity from the planner.)
            let mine = referral_offers::recipient_id
                .eq(auth.user_id)
                .and(referral_offers::offered_at.is_not_null());
            let newest = (
                referral_offers::offered_at.desc(),
                referral_offers::id.desc(),
            );
            let columns = (
                Referral::as_select(),
                referral_offers::state,
                referral_offers::deadline,
            );
            let rows: Vec<(Referral, OfferState, Option<DateTime<Utc>>)> = match status {
                Some(s) => {
                    referral_offers::table
                        .inner_join(referrals::table)
                        .filter(mine.and(referrals::status.eq(s)))
                        .order(newest)
                        .limit(per_page)
                        .offset((page - 1) * per_page)
                        .select(columns)
                        .load(&mut conn)
                        .await?
                }
                None => {
                    referral_offers::table
                        .inner_join(referrals::table)
                        .filter(mine)
                        .order(newest)
                        .limit(per_page)
                        .offset((page - 1) * per_page)
                        .select(columns)
                        .load(&mut conn)
                        .await?
                }
            };
            rows.into_iter()
                .map(|(r, offer_state, deadline)| {
                    ReferralSummary::of(&r, Some((offer_state, deadline)))
                })
                .collect()
        }
    };
    Ok(HttpResponse::Ok().json(rows))
}

/// One referral with its timeline. Opening it as the colleague holding the
/// offer marks it received.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 404, body = ErrorBody)))]
#[get("/referrals/{id}")]
pub async fn view_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let mut referral = lock(conn, id).await?;
            let offers = offers_of(conn, id).await?;
            if let Some(offer) =
                visible_offer(&offers, auth.user_id).filter(|o| o.state == OfferState::Offered)
            {
                move_offer(conn, offer, OfferEvent::Open, now).await?;
                if referral.status == Status::Requested {
                    transition(conn, &referral, Event::View, Some(auth.user_id), now, None).await?;
                    referral = lock(conn, id).await?;
                }
            }
            let view = view_of(conn, &referral, auth.user_id).await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::ReferralRead,
                    "referral",
                    id,
                ),
            )
            .await?;
            Ok(view)
        })
        .await
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
