//! Clinician profiles and live capacity: read, edit with optimistic
//! concurrency, update and confirm capacity, and the taxonomy behind them.

pub mod licence;
pub mod model;
pub mod taxonomy;
pub mod validate;

use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub use model::{CapacityFreshness, CapacityInput, Profile, ProfileInput, ProfileView, Waitlist};

use crate::{
    audit,
    auth::AuthUser,
    db::Reuse,
    db::schema::{profiles, users},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_taxonomy)
        .service(get_mine)
        .service(put_mine)
        .service(patch_capacity)
        .service(confirm_capacity)
        .service(get_one);
}

/// Every taxonomy term with its label and synonyms (public, cacheable).
#[utoipa::path(tag = "profiles", responses((status = 200, body = taxonomy::TaxonomyDoc)))]
#[get("/taxonomy")]
pub async fn get_taxonomy(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .json(state.taxonomy.document())
}

pub async fn create_empty(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(profiles::table)
        .values(Profile::empty(user_id, now))
        .execute(conn)
        .await?;
    crate::outbox::enqueue(conn, user_id, now).await
}

/// The verified licence states of each of `ids` whose account is enabled
/// and whose address is verified: only these count for referrals. Takes a
/// shared connection so the caller can pipeline it beside its own writes.
pub async fn licensed_states(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, String, Vec<String>)>> {
    let query = profiles::table
        .inner_join(users::table.on(users::id.eq(profiles::user_id)))
        .filter(users::disabled_at.is_null())
        .filter(users::email_verified_at.is_not_null())
        .select((
            profiles::user_id,
            users::display_name,
            profiles::verified_states,
        ))
        .into_boxed();
    // One colleague by equality: PostgreSQL then reuses one plan. For
    // `= ANY(array)` it plans afresh on every call, because it prices a plan
    // for an unknown array above one for the array given.
    let query = match ids {
        [one] => query.filter(profiles::user_id.eq(*one)),
        many => query.filter(profiles::user_id.eq_any(many)),
    };
    query.load(&mut conn).await
}

/// A clinician's licence as an administrator verified it (`IL 12345`, the
/// first verified state): `None` without a number or a verified state.
pub async fn verified_license(
    conn: &mut AsyncPgConnection,
    user: Uuid,
) -> QueryResult<Option<String>> {
    let row: Option<(Vec<String>, Option<String>)> = profiles::table
        .find(user)
        .select((profiles::verified_states, profiles::license_number))
        .first(conn)
        .await
        .optional()?;
    Ok(row
        .and_then(|(states, number)| Some(format!("{} {}", <[String]>::first(&states)?, number?))))
}

/// Reserves one of `user`'s open slots (accepting a referral); false when
/// none is open. Never below zero: the UPDATE only matches with a slot to take.
pub async fn take_open_slot(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let taken = diesel::update(
        profiles::table.filter(profiles::user_id.eq(user).and(profiles::open_slots.gt(0))),
    )
    .set((
        profiles::open_slots.eq(profiles::open_slots - 1),
        profiles::updated_at.eq(now),
    ))
    .reused()
    .execute(conn)
    .await?;
    Ok(taken == 1)
}

/// Loads a profile and its owner's name. Disabled and not yet verified
/// accounts are found only with `include_disabled` (their owner's own view). One static query, so diesel keeps its prepared
/// statement (a boxed query would be planned anew on this hot path).
async fn load(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    include_disabled: bool,
) -> AppResult<(Profile, String)> {
    let row: Option<(Profile, String, bool)> = profiles::table
        .inner_join(users::table.on(users::id.eq(profiles::user_id)))
        .filter(profiles::user_id.eq(user_id))
        .select((
            Profile::as_select(),
            users::display_name,
            users::disabled_at
                .is_not_null()
                .or(users::email_verified_at.is_null()),
        ))
        .first(conn)
        .await
        .optional()?;
    match row {
        Some((profile, name, disabled)) if include_disabled || !disabled => Ok((profile, name)),
        _ => Err(AppError::not_found("No such clinician profile.")),
    }
}

/// The profile of `user_id` as reads return it, disabled accounts included.
pub async fn load_view(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<ProfileView> {
    let (profile, name) = load(conn, user_id, true).await?;
    Ok(ProfileView::new(profile, name, now))
}

fn with_etag(view: &ProfileView) -> HttpResponse {
    HttpResponse::Ok()
        // The ETag is for `If-Match` on the next edit; the profile itself is
        // personal data, so no cache keeps it (the API scope says no-store).
        .insert_header(("ETag", format!("\"{}\"", view.version)))
        .json(view)
}

/// The version a client edited from: `If-Match` wins over the body's `version`.
fn expected_version(req: &HttpRequest, body_version: Option<i32>) -> AppResult<Option<i32>> {
    let Some(header) = req.headers().get("If-Match") else {
        return Ok(body_version);
    };
    let raw = header.to_str().unwrap_or_default().trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    raw.parse()
        .map(Some)
        .map_err(|_| AppError::bad_request("If-Match must be the ETag of the profile, e.g. \"3\"."))
}

fn version_conflict(current: i32) -> AppError {
    AppError {
        field: Some("version".into()),
        ..AppError::conflict(
            Code::VersionConflict,
            format!(
                "This profile was changed since you loaded it (it is now version {current}). Reload it and apply your edit again."
            ),
        )
    }
}

/// The signed-in clinician's own profile.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), responses((status = 200, body = ProfileView), (status = 401, body = ErrorBody)))]
#[get("/profiles/me")]
async fn get_mine(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    Ok(with_etag(
        &load_view(&mut conn, auth.user_id, state.clock.now()).await?,
    ))
}

/// Any clinician's profile (signed-in users only). Disabled accounts are not found.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), params(("user_id" = Uuid, Path)),
    responses((status = 200, body = ProfileView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/profiles/{user_id}")]
async fn get_one(
    state: web::Data<AppState>,
    _auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let (profile, name) = load(&mut conn, path.into_inner(), false).await?;
    Ok(with_etag(&ProfileView::new(
        profile,
        name,
        state.clock.now(),
    )))
}

/// Replaces the editable profile. Needs the version it started from (body or `If-Match`);
/// a stale version is a 409 and changes nothing.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), request_body = ProfileInput,
    responses((status = 200, body = ProfileView), (status = 409, body = ErrorBody, description = "stale version"),
              (status = 422, body = ErrorBody), (status = 428, body = ErrorBody, description = "no version given")))]
#[put("/profiles/me")]
async fn put_mine(
    state: web::Data<AppState>,
    req: HttpRequest,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<ProfileInput>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let expected = expected_version(&req, input.version)?.ok_or_else(|| {
        AppError::new(Code::VersionRequired,
            "Send the profile's version (the `version` field or an If-Match header) so that edits are not lost.",
        )
    })?;
    let display_name = input.display_name.clone().map(String::from);
    let changes = validate::profile(input, &state.taxonomy)?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let (meta, changes) = (&meta, &changes);
            let before = licence::locked(conn, auth.user_id).await?;
            let licence = before.edited(&changes.license_states, changes.license_number.as_deref());
            let still = !licence.verified.is_empty();
            let updated = diesel::update(
                profiles::table.filter(
                    profiles::user_id
                        .eq(auth.user_id)
                        .and(profiles::version.eq(expected)),
                ),
            )
            .set((
                changes,
                profiles::verified_states.eq(&licence.verified),
                profiles::verified_at.eq(before.verified_at.filter(|_| still)),
                profiles::verified_by.eq(before.verified_by.filter(|_| still)),
                profiles::version.eq(profiles::version + 1),
                profiles::updated_at.eq(now),
            ))
            .reused()
            .execute(conn)
            .await?;
            if updated == 0 {
                let current = load_view(conn, auth.user_id, now).await?;
                return Err(version_conflict(current.version));
            }
            if let Some(name) = &display_name {
                diesel::update(users::table.find(auth.user_id))
                    .set((users::display_name.eq(name), users::updated_at.eq(now)))
                    .reused()
                    .execute(conn)
                    .await?;
            }
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            if !licence.is_empty() {
                let name = match &display_name {
                    Some(name) => name.clone(),
                    None => {
                        users::table
                            .find(auth.user_id)
                            .select(users::display_name)
                            .first(conn)
                            .await?
                    }
                };
                if licence.concerns_administrators() {
                    let url = &state.mailer.public_url;
                    licence::tell_administrators(conn, url, &name, &licence, now).await?;
                }
                audit::record(
                    conn,
                    now,
                    meta,
                    audit::Event::new(
                        Some(auth.user_id),
                        audit::Action::ProfileLicenseChanged,
                        "profile",
                        auth.user_id,
                    )
                    .detail(serde_json::json!({
                        "added": licence.added, "removed": licence.removed,
                        "number_changed": licence.number_changed,
                        "no_longer_verified": licence.unverified,
                    })),
                )
                .await?;
            }
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::ProfileUpdated,
                    "profile",
                    auth.user_id,
                )
                .detail(serde_json::json!({"version": expected + 1})),
            )
            .await?;
            load_view(conn, auth.user_id, now).await
        })
        .await
    })
    .await?;
    state.indexer_wake.notify_one();
    state.courier_wake.notify_one();
    Ok(with_etag(&view))
}

/// Updates capacity (any of accepting_referrals, open_slots, waitlist) and
/// stamps it confirmed now.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), request_body = CapacityInput,
    responses((status = 200, body = ProfileView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/profiles/me/capacity")]
async fn patch_capacity(
    state: web::Data<AppState>,
    req: HttpRequest,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<CapacityInput>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let expected = expected_version(&req, input.version)?;
    let open_slots = input.open_slots.map(validate::open_slots).transpose()?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let meta = &meta;
            // `version = COALESCE($expected, version)`: checked only when sent.
            let version_ok =
                profiles::version.eq(diesel::dsl::sql::<diesel::sql_types::Integer>("COALESCE(")
                    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Integer>, _>(expected)
                    .sql(", profiles.version)"));
            let updated = diesel::update(
                profiles::table
                    .filter(profiles::user_id.eq(auth.user_id))
                    .filter(version_ok),
            )
            .set((
                input
                    .accepting_referrals
                    .map(|a| profiles::accepting_referrals.eq(a)),
                open_slots.map(|s| profiles::open_slots.eq(s)),
                input.waitlist.map(|w| profiles::waitlist.eq(w)),
                profiles::capacity_confirmed_at.eq(now),
                profiles::version.eq(profiles::version + 1),
                profiles::updated_at.eq(now),
            ))
            .reused()
            .execute(conn)
            .await?;
            if updated == 0 {
                let current = load_view(conn, auth.user_id, now).await?;
                return Err(version_conflict(current.version));
            }
            let view = load_view(conn, auth.user_id, now).await?;
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::CapacityUpdated,
                    "profile",
                    auth.user_id,
                )
                .detail(serde_json::json!({
                    "accepting_referrals": view.accepting_referrals,
                    "open_slots": view.open_slots,
                    "waitlist": view.waitlist,
                })),
            )
            .await?;
            Ok(view)
        })
        .await
    })
    .await?;
    state.indexer_wake.notify_one();
    Ok(with_etag(&view))
}

/// One click: "my capacity is still as shown". Stamps it confirmed now.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), responses((status = 200, body = ProfileView), (status = 401, body = ErrorBody)))]
#[post("/profiles/me/capacity/confirm")]
async fn confirm_capacity(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let meta = &meta;
            // Confirming changes nothing a clinician edits, so the version stays:
            // an edit open in another tab is not invalidated by a confirmation.
            diesel::update(profiles::table.find(auth.user_id))
                .set(profiles::capacity_confirmed_at.eq(now))
                .reused()
                .execute(conn)
                .await?;
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            audit::record(
                conn,
                now,
                meta,
                audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::CapacityConfirmed,
                    "profile",
                    auth.user_id,
                ),
            )
            .await?;
            load_view(conn, auth.user_id, now).await
        })
        .await
    })
    .await?;
    state.indexer_wake.notify_one();
    Ok(with_etag(&view))
}
