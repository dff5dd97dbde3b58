//! Sending a referral: the packet and contact are checked, the colleagues
//! named (or, for a cascade without a list, the match shortlist) must exist
//! and be licensed where the client lives; the referral, its contact, its
//! offers, its first event, the colleagues' notices and the audit entry are
//! written in one transaction. An `Idempotency-Key` makes a retry safe.

use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    contact::Contact,
    model::{
        ContactInput, Mode, NewReferral, Offer, Packet, Referral, ReferralView, TimelineEvent,
    },
    notices::tell_new_offer,
    state::{OfferState, Status},
    view::{build_view, view_of},
};
use crate::{
    audit,
    auth::AuthUser,
    db::{
        Reuse,
        schema::{referral_events, referral_offers, referrals},
    },
    error::{AppError, AppResult, ErrorBody},
    http::{ApiJson, RequestMeta},
    search::{Location, MatchRequest, matching::Needs},
    state::AppState,
};

impl From<&Packet> for MatchRequest {
    /// The client a packet describes, as matching takes it.
    fn from(p: &Packet) -> Self {
        MatchRequest {
            concerns: p.concerns.clone(),
            age_band: Some(p.age_band),
            state: p.state.clone(),
            insurance: p.insurance.clone(),
            language: p.language.clone(),
            modality: p.modality.clone(),
            telehealth_ok: p.telehealth_ok,
            location: p.location,
            radius_km: None,
            limit: Some(10),
        }
    }
}

/// The packet as it will be stored: taxonomy terms, state, note and location
/// checked, the location coarsened to its grid cell (the exact point is
/// returned to travel sealed with the contact).
fn check_packet(state: &AppState, packet: &Packet) -> AppResult<(Packet, Option<Location>)> {
    let needs = Needs::check(&state.taxonomy, "packet.", &MatchRequest::from(packet))?;
    let location = packet
        .location
        .map(|l| l.check("packet.location"))
        .transpose()?;
    let packet = Packet {
        state: needs.state,
        concerns: needs.concerns,
        modality: needs.modality,
        insurance: needs.insurance,
        language: needs.language,
        location: location.map(Location::coarse),
        ..packet.clone()
    };
    Ok((packet, location))
}

/// The contact as it will be sealed, with the exact location the packet
/// travels without.
fn check_contact(contact: &ContactInput, exact: Option<Location>) -> AppResult<Contact> {
    let given = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_string);
    let (phone, email) = (
        given(contact.phone.as_deref()),
        given(contact.email.as_deref()),
    );
    if phone.is_none() && email.is_none() {
        return Err(AppError::invalid_field(
            "contact",
            "Give a phone number or an email to reach the client.",
        ));
    }
    Ok(Contact {
        full_name: contact.full_name.as_str().to_string(),
        phone,
        email,
        preferred_contact: given(contact.preferred_contact.as_deref()),
        location: exact,
    })
}

fn idempotency_key(req: &HttpRequest) -> AppResult<Option<String>> {
    let key = match req.headers().get("Idempotency-Key") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            AppError::invalid_field(
                "Idempotency-Key",
                "Use a key of visible ASCII characters (a UUID, for example).",
            )
        })?),
    }
    .map(|v| v.trim().to_string())
    .filter(|v| !v.is_empty());
    if key.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(AppError::invalid_field(
            "Idempotency-Key",
            "Use a key of at most 200 characters.",
        ));
    }
    Ok(key)
}

/// The colleagues to offer it to, in order, without repeats.
async fn recipients(
    state: &AppState,
    auth: &AuthUser,
    input: &NewReferral,
    packet: &Packet,
) -> AppResult<Vec<Uuid>> {
    let mode = input.mode;
    let mut wanted = input.recipients.clone();
    if mode == Mode::Cascade && wanted.is_empty() {
        // No list given: the match shortlist, best first.
        wanted = crate::search::ranked_candidates(state, auth.user_id, &packet.into())
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if wanted.is_empty() {
            return Err(AppError::invalid_field(
                "recipients",
                "No colleague matches this client right now; widen the packet or name colleagues.",
            ));
        }
    }
    let mut recipients = Vec::new();
    for r in wanted {
        if !recipients.contains(&r) {
            recipients.push(r);
        }
    }
    let max = mode.max_recipients();
    if recipients.is_empty() || recipients.len() > max {
        return Err(AppError::invalid_field(
            "recipients",
            format!(
                "A {mode} referral goes to {}.",
                if max == 1 {
                    "exactly one colleague".into()
                } else {
                    format!("1 to {max} colleagues")
                }
            ),
        ));
    }
    if recipients.contains(&auth.user_id) {
        return Err(AppError::invalid_field(
            "recipients",
            "You cannot refer a client to yourself.",
        ));
    }
    Ok(recipients)
}

async fn by_key(
    conn: &mut AsyncPgConnection,
    sender: Uuid,
    key: &str,
) -> QueryResult<Option<Referral>> {
    referrals::table
        .filter(
            referrals::sender_id
                .eq(sender)
                .and(referrals::idempotency_key.eq(key)),
        )
        .select(Referral::as_select())
        .first(conn)
        .await
        .optional()
}

/// Sends a referral. An `Idempotency-Key` header makes a retry return the
/// first answer and create nothing new.
#[utoipa::path(tag = "referrals", request_body = NewReferral, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key chosen by the client")),
    responses((status = 201, body = ReferralView), (status = 403, body = ErrorBody, description = "email not verified"), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "over the sender's hourly limit; see Retry-After")))]
#[post("/referrals")]
pub async fn create_referral(
    state: web::Data<AppState>,
    req: HttpRequest,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<NewReferral>,
) -> AppResult<HttpResponse> {
    auth.require_verified("send referrals")?;
    let input = body.0;
    let key = idempotency_key(&req)?;
    let (packet, exact) = check_packet(&state, &input.packet)?;
    let overridden = crate::privacy::Travelling::new()
        .field("packet.note", Some(packet.note.as_str()))
        .check(input.confirm_no_identifiers)?;
    let recipients = recipients(&state, &auth, &input, &packet).await?;
    let contact = check_contact(&input.contact, exact)?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    if let Some(k) = &key
        && let Some(existing) = by_key(&mut conn, auth.user_id, k).await?
    {
        return Ok(HttpResponse::Created().json(view_of(&mut conn, &existing, auth.user_id).await?));
    }
    let view = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let referral = Referral {
                id: Uuid::now_v7(),
                sender_id: auth.user_id,
                mode: input.mode,
                status: Status::Requested,
                urgency: packet.urgency,
                response_minutes: i32::try_from(
                    packet
                        .urgency
                        .response_time(&state.settings.response_hours)
                        .num_minutes(),
                )
                .unwrap_or(i32::MAX),
                age_band: packet.age_band,
                client_state: packet.state.clone(),
                concerns: packet.concerns.clone(),
                modality: packet.modality.clone(),
                insurance: packet.insurance.clone(),
                language: packet.language.clone(),
                telehealth_ok: packet.telehealth_ok,
                latitude: packet.location.map(|l| l.lat),
                longitude: packet.location.map(|l| l.lng),
                note: packet.note.as_str().to_string(),
                accepted_by: None,
                accepted_onto: None,
                first_appointment_at: None,
                outcome: None,
                idempotency_key: key.clone(),
                created_at: now,
                updated_at: now,
                version: 1,
                checked_in_at: None,
            };
            // The sender's hourly limit, the licence check and the insert go
            // together in one round trip; a refusal rolls the insert back
            // with the transaction.
            let shared: &AsyncPgConnection = conn;
            let limit = state.settings.limits.referrals_per_sender;
            let recent = async {
                let mut c = shared;
                referrals::table
                    .filter(referrals::sender_id.eq(auth.user_id))
                    .filter(referrals::created_at.gt(limit.since(now)))
                    .order(referrals::created_at.desc())
                    .offset(limit.skip())
                    .select(referrals::created_at)
                    .first::<chrono::DateTime<chrono::Utc>>(&mut c)
                    .await
                    .optional()
                    .map_err(AppError::from)
            };
            let check = async {
                crate::profiles::licensed_states(shared, &recipients)
                    .await
                    .map_err(AppError::from)
            };
            let insert = async {
                let mut c = shared;
                diesel::insert_into(referrals::table)
                    .values(&referral)
                    .on_conflict((referrals::sender_id, referrals::idempotency_key))
                    .do_nothing()
                    .reused()
                    .execute(&mut c)
                    .await
                    .map_err(AppError::from)
            };
            // Sent first, so the count is of the referrals before this one.
            let (nth_newest, licensed, inserted) = futures_util::try_join!(recent, check, insert)?;
            limit.check(nth_newest, now)?;
            // Every colleague must exist, be enabled, and hold a licence an
            // administrator verified where the client lives.
            for r in &recipients {
                match licensed.iter().find(|(id, _, _)| id == r) {
                    None => {
                        return Err(AppError::invalid_field(
                            "recipients",
                            format!("No clinician {r}."),
                        ));
                    }
                    Some((_, name, states)) if !states.contains(&referral.client_state) => {
                        return Err(AppError::invalid_field(
                            "recipients",
                            format!(
                                "{name} has no verified licence in {}, where the client lives.",
                                referral.client_state
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if inserted == 0 {
                // A concurrent retry with the same key won the race: answer with its referral.
                let existing = by_key(conn, auth.user_id, key.as_deref().unwrap_or_default())
                    .await?
                    .ok_or_else(super::store::not_found)?;
                return view_of(conn, &existing, auth.user_id).await;
            }
            let deadline = now + referral.response_time();
            let offered_now = |rank: usize| input.mode != Mode::Cascade || rank == 0;
            let rows: Vec<_> = recipients
                .iter()
                .enumerate()
                .map(|(rank, recipient)| {
                    let now_or_later = offered_now(rank);
                    (
                        referral_offers::referral_id.eq(referral.id),
                        referral_offers::recipient_id.eq(*recipient),
                        referral_offers::rank.eq(rank as i32),
                        referral_offers::state.eq(if now_or_later {
                            OfferState::Offered
                        } else {
                            OfferState::Queued
                        }),
                        referral_offers::offered_at.eq(now_or_later.then_some(now)),
                        referral_offers::deadline.eq(now_or_later.then_some(deadline)),
                    )
                })
                .collect();
            // The rest depends only on the referral row: sent together in one
            // round trip (diesel-async pipelines futures polled together), run
            // by PostgreSQL in this order.
            let shared: &AsyncPgConnection = conn;
            let url = &state.mailer.public_url;
            let write_contact = async {
                super::contact::store(shared, &state.contact_keys, referral.id, &contact)
                    .await
                    .map_err(AppError::from)
            };
            let write_offers = async {
                let mut c = shared;
                diesel::insert_into(referral_offers::table)
                    .values(rows)
                    .returning(Offer::as_returning())
                    .reused()
                    .get_results::<Offer>(&mut c)
                    .await
                    .map_err(AppError::from)
            };
            let write_event = async {
                let mut c = shared;
                diesel::insert_into(referral_events::table)
                    .values((
                        referral_events::referral_id.eq(referral.id),
                        referral_events::actor_id.eq(auth.user_id),
                        referral_events::to_status.eq(Status::Requested),
                        referral_events::at.eq(now),
                    ))
                    .returning(TimelineEvent::as_returning())
                    .get_result::<TimelineEvent>(&mut c)
                    .await
                    .map_err(AppError::from)
            };
            let tell_offered = futures_util::future::try_join_all(
                recipients
                    .iter()
                    .enumerate()
                    .filter(|(rank, _)| offered_now(*rank))
                    .map(|(_, r)| tell_new_offer(shared, url, &referral, *r, now)),
            );
            let write_audit = async {
                let event = audit::Event::new(
                    Some(auth.user_id),
                    audit::Action::ReferralSent,
                    "referral",
                    referral.id,
                );
                audit::record(shared, now, &meta, event).await?;
                crate::privacy::record_override(
                    shared,
                    now,
                    &meta,
                    auth.user_id,
                    ("referral", referral.id.to_string()),
                    overridden.clone(),
                )
                .await
                .map_err(AppError::from)
            };
            let (_, offers, created, _, ()) = futures_util::try_join!(
                write_contact,
                write_offers,
                write_event,
                tell_offered,
                write_audit
            )?;
            // Built from what was just written: no need to read it back.
            build_view(&referral, &offers, vec![created], auth.user_id)
        })
        .await
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Created().json(view))
}
