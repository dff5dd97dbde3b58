//! Releasing the client's contact details: only to the clinician who
//! accepted, only after accepting. Every release is audited.

use actix_web::{HttpResponse, get, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{
    model::Contact,
    state::Status,
    store::{find, offers_of},
    view::check_party,
};
use crate::{
    audit,
    auth::AuthUser,
    db::schema::referral_contacts,
    error::{AppError, AppResult, ErrorBody},
    http::RequestMeta,
    state::AppState,
};

/// The client's contact details: only for the clinician who accepted, only
/// after accepting. Every release is audited.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Contact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/referrals/{id}/contact")]
pub async fn contact_referral(
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
    check_party(&referral, &offers, auth.user_id)?;
    let released = referral.is_accepter(auth.user_id)
        && matches!(
            referral.status,
            Status::Accepted | Status::Scheduled | Status::Completed
        );
    if !released {
        return Err(AppError::forbidden(
            "Contact details are shared only with the clinician who accepted the referral.",
        ));
    }
    let details: Contact = referral_contacts::table
        .find(id)
        .select(Contact::as_select())
        .first(&mut conn)
        .await?;
    audit::record(
        &conn,
        now,
        &meta,
        audit::Event::new(
            Some(auth.user_id),
            audit::Action::ReferralContactReleased,
            "referral",
            id,
        ),
    )
    .await?;
    Ok(HttpResponse::Ok().json(details))
}
