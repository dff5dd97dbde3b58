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
    store::{find, lock, move_offer, offers_of, timeline_of, transition},
    view::{build_view, check_party, view_of, visible_offer},
};
use crate::{
    audit,
    auth::AuthUser,
    db::schema::{referral_offers, referral_reads, referrals},
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
    /// Absent in the inbox once my offer ended (what happened next is not mine to see).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
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

/// My offer of an inbox row: its state, deadline and when it closed.
type MyOffer = (OfferState, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

impl ReferralSummary {
    fn of(r: &Referral, offer: Option<MyOffer>) -> Self {
        let ended = offer.filter(|o| !OfferState::SEEING.contains(&o.0));
        Self {
            id: r.id,
            status: if ended.is_some() {
                None
            } else {
                Some(r.status)
            },
            mode: r.mode,
            urgency: r.urgency,
            concerns: r.concerns.clone(),
            client_state: r.client_state.clone(),
            offer_state: offer.map(|o| o.0),
            deadline: offer.and_then(|o| o.1).filter(|_| ended.is_none()),
            created_at: r.created_at,
            updated_at: match ended {
                Some((_, _, closed)) => closed.unwrap_or(r.created_at).min(r.updated_at),
                None => r.updated_at,
            },
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
                referral_offers::closed_at,
            );
            #[allow(clippy::type_complexity)]
            let rows: Vec<(
                Referral,
                OfferState,
                Option<DateTime<Utc>>,
                Option<DateTime<Utc>>,
            )> = match status {
                Some(s) => {
                    // Only offers still mine to follow: a status is not news
                    // for a colleague whose offer ended.
                    referral_offers::table
                        .inner_join(referrals::table)
                        .filter(mine.and(referrals::status.eq(s)))
                        .filter(referral_offers::state.eq_any(OfferState::SEEING))
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
                .map(|(r, offer_state, deadline, closed)| {
                    ReferralSummary::of(&r, Some((offer_state, deadline, closed)))
                })
                .collect()
        }
    };
    Ok(HttpResponse::Ok().json(rows))
}

/// How often one person's reading of one referral is audited: once per
/// visit, not per poll of an open page.
const READ_AUDITED_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// One referral with its timeline. Opening it as the colleague holding the
/// offer marks it received. A read is audited once per viewer per referral
/// per hour; polling an open page takes no lock and writes nothing.
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
    let referral = find(&mut conn, id).await?;
    let offers = offers_of(&mut conn, id).await?;
    let first_open =
        visible_offer(&offers, auth.user_id).is_some_and(|o| o.state == OfferState::Offered);
    let view = if first_open {
        // The colleague opens it for the first time: the one write a read makes.
        crate::db::retrying(async || {
            conn.transaction::<_, AppError, _>(async |conn| {
                let mut referral = lock(conn, id).await?;
                let offers = offers_of(conn, id).await?;
                if let Some(offer) =
                    visible_offer(&offers, auth.user_id).filter(|o| o.state == OfferState::Offered)
                {
                    move_offer(conn, offer, OfferEvent::Open, now).await?;
                    if referral.status == Status::Requested {
                        transition(conn, &referral, Event::View, Some(auth.user_id), now, None)
                            .await?;
                        referral = lock(conn, id).await?;
                    }
                }
                view_of(conn, &referral, auth.user_id).await
            })
            .await
        })
        .await?
    } else {
        check_party(&referral, &offers, auth.user_id)?;
        let timeline = timeline_of(&mut conn, id).await?;
        build_view(&referral, &offers, timeline, auth.user_id)?
    };
    audit_read(&mut conn, &meta, auth.user_id, id, now).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Audits `viewer` reading `referral` unless that was audited in the last hour.
async fn audit_read(
    conn: &mut diesel_async::AsyncPgConnection,
    meta: &RequestMeta,
    viewer: Uuid,
    referral: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let last: Option<DateTime<Utc>> = referral_reads::table
        .find((referral, viewer))
        .select(referral_reads::audited_at)
        .first(conn)
        .await
        .optional()?;
    if last.is_some_and(|at| now - at < READ_AUDITED_EVERY) {
        return Ok(());
    }
    conn.transaction::<_, AppError, _>(async |conn| {
        // Claimed by one request at a time: a concurrent poll finds it fresh.
        use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
        let claimed = diesel::sql_query(
            "INSERT INTO referral_reads (referral_id, viewer_id, audited_at) VALUES ($1, $2, $3) \
             ON CONFLICT (referral_id, viewer_id) DO UPDATE SET audited_at = EXCLUDED.audited_at \
             WHERE referral_reads.audited_at <= $4",
        )
        .bind::<SqlUuid, _>(referral)
        .bind::<SqlUuid, _>(viewer)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(now - READ_AUDITED_EVERY)
        .execute(conn)
        .await?;
        if claimed == 1 {
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(viewer),
                    audit::Action::ReferralRead,
                    "referral",
                    referral,
                ),
            )
            .await?;
        }
        Ok(())
    })
    .await
}
