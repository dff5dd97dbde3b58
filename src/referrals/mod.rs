//! Closed-loop referrals: a de-identified packet offered to colleagues
//! (direct, cascade or broadcast), each offer with a deadline; accept (taking
//! an open slot in the same transaction, or a waitlist place), decline with a
//! reason (a cascade moves on), withdraw, schedule, complete; a timeline of
//! every transition; client contact released only to the accepter.

pub mod model;
pub mod state;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use model::{
    Contact, DeclineReason, Mode, NewReferral, Offer, Packet, Referral, ReferralView,
    TimelineEvent, Urgency,
};
use state::{Event, Status};

use crate::{
    audit,
    auth::AuthUser,
    db::{
        Reuse,
        schema::{profiles, referral_contacts, referral_events, referral_offers, referrals, users},
    },
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    profiles::{taxonomy::Kind, validate::state_code},
    state::AppState,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_referral)
        .service(list_referral)
        .service(view_referral)
        .service(accept_referral)
        .service(decline_referral)
        .service(withdraw_referral)
        .service(schedule_referral)
        .service(complete_referral)
        .service(contact_referral);
}

const OFFER_ACTIVE: [&str; 2] = ["offered", "received"];

fn not_found() -> AppError {
    AppError::not_found("No such referral.")
}

async fn record_event(
    conn: &mut AsyncPgConnection,
    referral: Uuid,
    actor: Option<Uuid>,
    from: Option<Status>,
    to: Status,
    at: DateTime<Utc>,
    note: Option<String>,
) -> QueryResult<()> {
    diesel::insert_into(referral_events::table)
        .values((
            referral_events::referral_id.eq(referral),
            referral_events::actor_id.eq(actor),
            referral_events::from_status.eq(from.map(Status::as_str)),
            referral_events::to_status.eq(to.as_str()),
            referral_events::at.eq(at),
            referral_events::note.eq(note),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a referral from `from` by `event` with a guarded UPDATE (the status
/// must still be `from`), and records the event. 409 when it cannot.
async fn transition(
    conn: &mut AsyncPgConnection,
    referral: &Referral,
    event: Event,
    actor: Option<Uuid>,
    at: DateTime<Utc>,
    note: Option<String>,
) -> AppResult<Status> {
    let from = referral.status();
    let to = state::next(from, event)?;
    let updated = diesel::update(
        referrals::table.filter(
            referrals::id
                .eq(referral.id)
                .and(referrals::status.eq(from.as_str())),
        ),
    )
    .set((
        referrals::status.eq(to.as_str()),
        referrals::updated_at.eq(at),
        referrals::version.eq(referrals::version + 1),
    ))
    .reused()
    .execute(conn)
    .await?;
    if updated == 0 {
        return Err(AppError::conflict(
            Code::ConcurrentUpdate,
            "This referral changed at the same moment. Reload it.",
        ));
    }
    if from != to || event != Event::View {
        record_event(conn, referral.id, actor, Some(from), to, at, note).await?;
    }
    Ok(to)
}

/// Locks the referral row for the rest of the transaction.
async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Referral> {
    referrals::table
        .find(id)
        .select(Referral::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(not_found)
}

async fn offers_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<Offer>> {
    referral_offers::table
        .filter(referral_offers::referral_id.eq(id))
        .order(referral_offers::rank)
        .select(Offer::as_select())
        .load(conn)
        .await
}

/// Offers the referral to the next queued colleague of a cascade. Returns
/// false when no one is left.
async fn offer_next(
    conn: &mut AsyncPgConnection,
    referral: &Referral,
    now: DateTime<Utc>,
) -> AppResult<Option<Uuid>> {
    let next: Option<(i64, Uuid)> = referral_offers::table
        .filter(
            referral_offers::referral_id
                .eq(referral.id)
                .and(referral_offers::state.eq("queued")),
        )
        .order(referral_offers::rank)
        .select((referral_offers::id, referral_offers::recipient_id))
        .first(conn)
        .await
        .optional()?;
    let Some((offer, recipient)) = next else {
        return Ok(None);
    };
    diesel::update(referral_offers::table.find(offer))
        .set((
            referral_offers::state.eq("offered"),
            referral_offers::offered_at.eq(now),
            referral_offers::deadline
                .eq(now + chrono::Duration::minutes(i64::from(referral.response_minutes))),
        ))
        .reused()
        .execute(conn)
        .await?;
    Ok(Some(recipient))
}

/// A notification and an email about a referral; no client identifiers.
// Every argument is a distinct fact of the message; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn tell(
    conn: &AsyncPgConnection,
    url: &str,
    user: Uuid,
    kind: &str,
    referral: Uuid,
    message: String,
    subject: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let notice = notify::Notice {
        kind,
        referral: Some(referral),
        group: None,
        session: None,
        message,
        email_subject: Some(subject.to_string()),
    };
    notify::tell(conn, url, user, notice, now).await?;
    Ok(())
}

async fn tell_new_offer(
    conn: &AsyncPgConnection,
    url: &str,
    referral: &Referral,
    recipient: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let deadline = now + chrono::Duration::minutes(i64::from(referral.response_minutes));
    let message = format!(
        "A colleague has offered you a referral ({} urgency, {} concern(s), client in {}). Please accept or decline by {} UTC.",
        referral.urgency,
        referral.concerns.len(),
        referral.client_state,
        deadline.format("%a %e %b %H:%M")
    );
    tell(
        conn,
        url,
        recipient,
        "new_offer",
        referral.id,
        message,
        "New referral for you",
        now,
    )
    .await
}

fn urgency_of(r: &Referral) -> Urgency {
    match r.urgency.as_str() {
        "urgent" => Urgency::Urgent,
        "soon" => Urgency::Soon,
        _ => Urgency::Routine,
    }
}

fn mode_of(r: &Referral) -> Mode {
    match r.mode.as_str() {
        "cascade" => Mode::Cascade,
        "broadcast" => Mode::Broadcast,
        _ => Mode::Direct,
    }
}

fn packet_of(r: &Referral) -> Packet {
    Packet {
        age_band: serde_json::from_value(serde_json::Value::String(r.age_band.clone()))
            .unwrap_or(crate::search::AgeBand::Adult),
        state: r.client_state.clone(),
        concerns: r.concerns.clone(),
        modality: r.modality.clone(),
        insurance: r.insurance.clone(),
        language: r.language.clone(),
        telehealth_ok: r.telehealth_ok,
        location: r
            .latitude
            .zip(r.longitude)
            .map(|(lat, lng)| model::Location { lat, lng }),
        urgency: urgency_of(r),
        note: r.note.clone(),
    }
}

/// Who may see a referral: its sender, and colleagues it has been offered to.
fn visible_offer(offers: &[Offer], user: Uuid) -> Option<&Offer> {
    offers
        .iter()
        .find(|o| o.recipient_id == user && o.state != "queued")
}

async fn view_of(
    conn: &mut AsyncPgConnection,
    referral: &Referral,
    viewer: Uuid,
) -> AppResult<ReferralView> {
    let offers = offers_of(conn, referral.id).await?;
    if referral.sender_id != viewer && visible_offer(&offers, viewer).is_none() {
        return Err(not_found());
    }
    let timeline: Vec<TimelineEvent> = referral_events::table
        .filter(referral_events::referral_id.eq(referral.id))
        .order(referral_events::id)
        .select(TimelineEvent::as_select())
        .load(conn)
        .await?;
    build_view(referral, &offers, &timeline, viewer)
}

/// What `viewer` may see of a referral: the sender every offer, a colleague their own.
fn build_view(
    referral: &Referral,
    offers: &[Offer],
    timeline: &[TimelineEvent],
    viewer: Uuid,
) -> AppResult<ReferralView> {
    let is_sender = referral.sender_id == viewer;
    let mine = visible_offer(offers, viewer);
    if !is_sender && mine.is_none() {
        return Err(not_found());
    }
    let shown: Vec<&Offer> = if is_sender {
        offers.iter().collect()
    } else {
        mine.into_iter().collect()
    };
    let deadline = if is_sender {
        offers
            .iter()
            .filter(|o| OFFER_ACTIVE.contains(&o.state.as_str()))
            .filter_map(|o| o.deadline)
            .min()
    } else {
        mine.and_then(|o| o.deadline)
    };
    Ok(ReferralView {
        id: referral.id,
        sender_id: referral.sender_id,
        mode: mode_of(referral),
        status: referral.status(),
        packet: packet_of(referral),
        accepted_by: referral.accepted_by,
        accepted_onto: referral.accepted_onto.clone(),
        first_appointment_at: referral.first_appointment_at,
        outcome: referral.outcome.clone(),
        offers: shown
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect(),
        deadline,
        timeline: timeline
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect(),
        created_at: referral.created_at,
        updated_at: referral.updated_at,
    })
}

fn check_packet(state: &AppState, packet: &Packet) -> AppResult<String> {
    let field = |f: &str| format!("packet.{f}");
    let client_state = state_code(&field("state"), &packet.state)?;
    if packet.concerns.is_empty() || packet.concerns.len() > 10 {
        return Err(AppError::invalid_field(
            field("concerns"),
            "Give 1 to 10 concerns (specialty slugs).",
        ));
    }
    state
        .taxonomy
        .check(Kind::Specialty, packet.concerns.clone())
        .map_err(|e| AppError {
            field: Some(field("concerns")),
            ..e
        })?;
    for (kind, value, name) in [
        (Kind::Modality, &packet.modality, "modality"),
        (Kind::Insurance, &packet.insurance, "insurance"),
        (Kind::Language, &packet.language, "language"),
    ] {
        if let Some(v) = value {
            state
                .taxonomy
                .check(kind, vec![v.clone()])
                .map_err(|e| AppError {
                    field: Some(field(name)),
                    ..e
                })?;
        }
    }
    if packet.note.chars().count() > 2000 {
        return Err(AppError::invalid_field(
            field("note"),
            "Keep the note under 2,000 characters.",
        ));
    }
    if let Some(l) = packet.location
        && (!(-90.0..=90.0).contains(&l.lat) || !(-180.0..=180.0).contains(&l.lng))
    {
        return Err(AppError::invalid_field(
            field("location"),
            "Latitude within ±90, longitude within ±180.",
        ));
    }
    Ok(client_state)
}

/// Sends a referral. An `Idempotency-Key` header makes a retry return the
/// first answer and create nothing new.
#[utoipa::path(tag = "referrals", request_body = NewReferral, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key chosen by the client")),
    responses((status = 201, body = ReferralView), (status = 422, body = ErrorBody)))]
#[post("/referrals")]
async fn create_referral(
    state: web::Data<AppState>,
    req: HttpRequest,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<NewReferral>,
) -> AppResult<HttpResponse> {
    let input = body.0;
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if key.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(AppError::invalid_field(
            "Idempotency-Key",
            "Use a key of at most 200 characters.",
        ));
    }
    let client_state = check_packet(&state, &input.packet)?;
    let max = match input.mode {
        Mode::Direct => 1,
        Mode::Cascade => 20,
        Mode::Broadcast => 10,
    };
    let mut wanted = input.recipients.clone();
    if input.mode == Mode::Cascade && wanted.is_empty() {
        // No list given: the match shortlist, best first.
        let p = &input.packet;
        let request = crate::search::MatchRequest {
            concerns: p.concerns.clone(),
            age_band: Some(p.age_band),
            state: p.state.clone(),
            insurance: p.insurance.clone(),
            language: p.language.clone(),
            modality: p.modality.clone(),
            telehealth_ok: p.telehealth_ok,
            location: p.location.map(|l| crate::search::MatchLocation {
                lat: l.lat,
                lng: l.lng,
            }),
            radius_km: None,
            limit: Some(10),
        };
        wanted = crate::search::ranked_candidates(&state, auth.user_id, &request)
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
    for r in &wanted {
        if !recipients.contains(r) {
            recipients.push(*r);
        }
    }
    if recipients.is_empty()
        || recipients.len() > max
        || (input.mode == Mode::Direct && recipients.len() != 1)
    {
        return Err(AppError::invalid_field(
            "recipients",
            format!(
                "A {} referral goes to {}.",
                input.mode.as_str(),
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
    let contact = &input.contact;
    if contact.full_name.trim().is_empty() || contact.full_name.chars().count() > 200 {
        return Err(AppError::invalid_field(
            "contact.full_name",
            "Give the client's name (at most 200 characters).",
        ));
    }
    if contact.phone.is_none() && contact.email.is_none() {
        return Err(AppError::invalid_field(
            "contact",
            "Give a phone number or an email to reach the client.",
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    if let Some(k) = &key {
        let existing: Option<Referral> = referrals::table
            .filter(
                referrals::sender_id
                    .eq(auth.user_id)
                    .and(referrals::idempotency_key.eq(k)),
            )
            .select(Referral::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        if let Some(existing) = existing {
            return Ok(
                HttpResponse::Created().json(view_of(&mut conn, &existing, auth.user_id).await?)
            );
        }
    }
    let view = conn
        .transaction::<_, AppError, _>(async |conn| {
            let p = &input.packet;
            let referral = Referral {
                id: Uuid::now_v7(),
                sender_id: auth.user_id,
                mode: input.mode.as_str().into(),
                status: Status::Requested.as_str().into(),
                urgency: p.urgency.as_str().into(),
                response_minutes: i32::try_from(p.urgency.response_time(&state.settings.response_hours).num_minutes()).unwrap_or(i32::MAX),
                age_band: serde_json::to_value(p.age_band).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                client_state: client_state.clone(),
                concerns: p.concerns.clone(),
                modality: p.modality.clone(),
                insurance: p.insurance.clone(),
                language: p.language.clone(),
                telehealth_ok: p.telehealth_ok,
                latitude: p.location.map(|l| l.lat),
                longitude: p.location.map(|l| l.lng),
                note: p.note.trim().to_string(),
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
            // The licence check and the insert go together in one round trip;
            // a refusal rolls the insert back with the transaction.
            let shared: &AsyncPgConnection = conn;
            let check = async {
                let mut c = shared;
                let query = profiles::table
                    .inner_join(users::table.on(users::id.eq(profiles::user_id)))
                    .filter(users::disabled_at.is_null())
                    .select((profiles::user_id, profiles::license_states))
                    .into_boxed();
                // One colleague by equality: PostgreSQL then reuses one plan. For
                // `= ANY(array)` it plans afresh on every call, because it prices
                // a plan for an unknown array above one for the array given.
                let query = match recipients.as_slice() {
                    [one] => query.filter(profiles::user_id.eq(*one)),
                    many => query.filter(profiles::user_id.eq_any(many)),
                };
                query
                    .load::<(Uuid, Vec<String>)>(&mut c)
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
            let (licensed, inserted) = futures_util::try_join!(check, insert)?;
            // Every colleague must exist, be enabled and be licensed where the client lives.
            for r in &recipients {
                match licensed.iter().find(|(id, _)| id == r) {
                    None => return Err(AppError::invalid_field("recipients", format!("No clinician {r}."))),
                    Some((_, states)) if !states.contains(&client_state) => {
                        return Err(AppError::invalid_field(
                            "recipients",
                            format!("Clinician {r} is not licensed in {client_state}, where the client lives."),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if inserted == 0 {
                // A concurrent retry with the same key won the race: answer with its referral.
                let existing: Referral = referrals::table
                    .filter(referrals::sender_id.eq(auth.user_id).and(referrals::idempotency_key.eq(&key)))
                    .select(Referral::as_select())
                    .first(conn)
                    .await?;
                return view_of(conn, &existing, auth.user_id).await;
            }
            let deadline = now + chrono::Duration::minutes(i64::from(referral.response_minutes));
            let offered_now = |rank: usize| input.mode != Mode::Cascade || rank == 0;
            let rows: Vec<_> = recipients
                .iter()
                .enumerate()
                .map(|(rank, recipient)| {
                    (
                        referral_offers::referral_id.eq(referral.id),
                        referral_offers::recipient_id.eq(*recipient),
                        referral_offers::rank.eq(rank as i32),
                        referral_offers::state.eq(if offered_now(rank) { "offered" } else { "queued" }),
                        referral_offers::offered_at.eq(offered_now(rank).then_some(now)),
                        referral_offers::deadline.eq(offered_now(rank).then_some(deadline)),
                    )
                })
                .collect();
            // The rest depends only on the referral row: sent together in one
            // round trip (diesel-async pipelines futures polled together), run
            // by PostgreSQL in this order.
            let shared: &AsyncPgConnection = conn;
            let url = &state.mailer.public_url;
            let write_contact = async {
                let mut c = shared;
                diesel::insert_into(referral_contacts::table)
                    .values(Contact {
                        referral_id: referral.id,
                        full_name: contact.full_name.trim().to_string(),
                        phone: contact.phone.clone(),
                        email: contact.email.clone(),
                        preferred_contact: contact.preferred_contact.clone(),
                    })
                    .reused()
                    .execute(&mut c)
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
                        referral_events::to_status.eq(Status::Requested.as_str()),
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
                audit::record(shared, now, &meta, audit::Event::new(Some(auth.user_id), "referral_sent", "referral", referral.id))
                    .await
                    .map_err(AppError::from)
            };
            let (_, offers, created, _, ()) =
                futures_util::try_join!(write_contact, write_offers, write_event, tell_offered, write_audit)?;
            // Built from what was just written: no need to read it back.
            build_view(&referral, &offers, &[created], auth.user_id)
        })
        .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `inbox` (offered to me, the default) or `outbox` (sent by me).
    pub r#box: Option<String>,
    pub status: Option<String>,
    pub page: Option<i64>,
    /// 1 to 100, default 20.
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
    pub offer_state: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The inbox (referrals offered to me) or the outbox (sent by me), newest first.
#[utoipa::path(tag = "referrals", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = [ReferralSummary]), (status = 422, body = ErrorBody)))]
#[get("/referrals")]
async fn list_referral(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<ListQuery>,
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
    let mut conn = state.pool.get().await?;
    let summarize =
        |r: &Referral, offer: Option<(String, Option<DateTime<Utc>>)>| ReferralSummary {
            id: r.id,
            status: r.status(),
            mode: mode_of(r),
            urgency: urgency_of(r),
            concerns: r.concerns.clone(),
            client_state: r.client_state.clone(),
            offer_state: offer.as_ref().map(|o| o.0.clone()),
            deadline: offer.and_then(|o| o.1),
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
    let rows: Vec<ReferralSummary> = match query.r#box.as_deref().unwrap_or("inbox") {
        "outbox" => {
            let mut q = referrals::table
                .filter(referrals::sender_id.eq(auth.user_id))
                .into_boxed();
            if let Some(s) = status {
                q = q.filter(referrals::status.eq(s.as_str()));
            }
            q.order(referrals::created_at.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
                .select(Referral::as_select())
                .load::<Referral>(&mut conn)
                .await?
                .iter()
                .map(|r| summarize(r, None))
                .collect()
        }
        "inbox" => {
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
            let rows: Vec<(Referral, String, Option<DateTime<Utc>>)> = match status {
                Some(s) => {
                    referral_offers::table
                        .inner_join(referrals::table)
                        .filter(mine.and(referrals::status.eq(s.as_str())))
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
                .map(|(r, offer_state, deadline)| summarize(&r, Some((offer_state, deadline))))
                .collect()
        }
        other => {
            return Err(AppError::invalid_field(
                "box",
                format!("`box` must be inbox or outbox, not `{other}`."),
            ));
        }
    };
    Ok(HttpResponse::Ok().json(rows))
}

/// One referral with its timeline. Opening it as the colleague holding the
/// offer marks it received.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 404, body = ErrorBody)))]
#[get("/referrals/{id}")]
async fn view_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = conn
        .transaction::<_, AppError, _>(async |conn| {
            let mut referral = lock(conn, id).await?;
            let offers = offers_of(conn, id).await?;
            if let Some(offer) =
                visible_offer(&offers, auth.user_id).filter(|o| o.state == "offered")
            {
                diesel::update(referral_offers::table.find(offer.id))
                    .set(referral_offers::state.eq("received"))
                    .reused()
                    .execute(conn)
                    .await?;
                if referral.status() == Status::Requested {
                    transition(conn, &referral, Event::View, Some(auth.user_id), now, None).await?;
                    referral = lock(conn, id).await?;
                }
            }
            let view = view_of(conn, &referral, auth.user_id).await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(auth.user_id), "referral_read", "referral", id),
            )
            .await?;
            Ok(view)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The current offer of `user`, which must still be open.
fn my_open_offer(offers: &[Offer], user: Uuid) -> AppResult<&Offer> {
    let offer = visible_offer(offers, user).ok_or_else(not_found)?;
    if !OFFER_ACTIVE.contains(&offer.state.as_str()) {
        return Err(AppError::conflict(
            Code::OfferClosed,
            format!(
                "Your offer for this referral is {} and can no longer be answered.",
                offer.state
            ),
        ));
    }
    Ok(offer)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    /// `slot` (default: takes one open slot) or `waitlist`.
    pub onto: Option<String>,
}

/// Accepts the referral: one open slot is taken in the same transaction; with
/// none open, `onto: "waitlist"` accepts onto the waitlist. In a broadcast the
/// other offers are withdrawn.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = AcceptInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 409, body = ErrorBody, description = "taken, closed, or no open slot")))]
#[post("/referrals/{id}/accept")]
async fn accept_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<AcceptInput>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let onto = body.0.onto.unwrap_or_else(|| "slot".into());
    if onto != "slot" && onto != "waitlist" {
        return Err(AppError::invalid_field(
            "onto",
            "`onto` is slot or waitlist.",
        ));
    }
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let view = conn
        .transaction::<_, AppError, _>(async |conn| {
            let referral = lock(conn, id).await?;
            let offers = offers_of(conn, id).await?;
            let offer = my_open_offer(&offers, auth.user_id)?.id;
            state::next(referral.status(), Event::Accept)?;
            // Never below zero: the UPDATE only matches with a slot to take.
            let took_slot = onto == "slot"
                && diesel::update(profiles::table.filter(profiles::user_id.eq(auth.user_id).and(profiles::open_slots.gt(0))))
                    .set((profiles::open_slots.eq(profiles::open_slots - 1), profiles::updated_at.eq(now)))
                    .reused()
                    .execute(conn)
                    .await?
                    == 1;
            if onto == "slot" && !took_slot {
                return Err(AppError::conflict(
                    Code::NoOpenSlot,
                    "You have no open slots. Accept onto your waitlist instead, or update your capacity.",
                ));
            }
            let onto = if took_slot { "slot" } else { "waitlist" };
            // Status, accepter and place in one guarded UPDATE (the status must still be open).
            let from = referral.status();
            let to = state::next(from, Event::Accept)?;
            let updated = diesel::update(referrals::table.filter(referrals::id.eq(id).and(referrals::status.eq(from.as_str()))))
                .set((
                    referrals::status.eq(to.as_str()),
                    referrals::accepted_by.eq(auth.user_id),
                    referrals::accepted_onto.eq(onto),
                    referrals::updated_at.eq(now),
                    referrals::version.eq(referrals::version + 1),
                ))
                .reused()
                .execute(conn)
                .await?;
            if updated == 0 {
                return Err(AppError::conflict(Code::ConcurrentUpdate, "This referral changed at the same moment. Reload it."));
            }
            record_event(conn, id, Some(auth.user_id), Some(from), to, now, Some(format!("accepted onto {onto}"))).await?;
            diesel::update(referral_offers::table.find(offer))
                .set((referral_offers::state.eq("accepted"), referral_offers::responded_at.eq(now)))
                .reused()
                .execute(conn)
                .await?;
            // Responsiveness changed: search ranks by it.
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            let others_open = offers.iter().any(|o| o.id != offer && matches!(o.state.as_str(), "offered" | "received" | "queued"));
            if others_open {
                diesel::update(
                    referral_offers::table.filter(
                        referral_offers::referral_id
                            .eq(id)
                            .and(referral_offers::id.ne(offer))
                            .and(referral_offers::state.eq_any(["offered", "received", "queued"])),
                    ),
                )
                .set(referral_offers::state.eq("withdrawn"))
                .reused()
                .execute(conn)
                .await?;
            }
            let message = format!(
                "A colleague accepted your referral{}. They now have the client's contact details and will reach out.",
                if onto == "waitlist" { " onto their waitlist" } else { "" }
            );
            tell(conn, &state.mailer.public_url, referral.sender_id, "referral_accepted", id, message, "Your referral was accepted", now).await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(auth.user_id), "referral_accepted", "referral", id).detail(serde_json::json!({"onto": onto})),
            )
            .await?;
            // The reply from what is known: only the timeline is read back.
            let accepted = Referral {
                status: to.as_str().into(),
                accepted_by: Some(auth.user_id),
                accepted_onto: Some(onto.into()),
                updated_at: now,
                version: referral.version + 1,
                ..referral
            };
            let offers: Vec<Offer> = offers
                .into_iter()
                .map(|o| {
                    if o.id == offer {
                        Offer { state: "accepted".into(), responded_at: Some(now), ..o }
                    } else if matches!(o.state.as_str(), "offered" | "received" | "queued") {
                        Offer { state: "withdrawn".into(), ..o }
                    } else {
                        o
                    }
                })
                .collect();
            let timeline: Vec<TimelineEvent> = referral_events::table
                .filter(referral_events::referral_id.eq(id))
                .order(referral_events::id)
                .select(TimelineEvent::as_select())
                .load(conn)
                .await?;
            build_view(&accepted, &offers, &timeline, auth.user_id)
        })
        .await?;
    state.indexer_wake.notify_one();
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineInput {
    pub reason: DeclineReason,
    pub note: Option<String>,
}

/// After an offer closes without acceptance: the next colleague of a
/// cascade gets it; otherwise the referral ends once no offer is open.
async fn move_on(
    conn: &mut AsyncPgConnection,
    url: &str,
    referral: &Referral,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
    ended: Event,
) -> AppResult<()> {
    if mode_of(referral) == Mode::Cascade
        && let Some(next) = offer_next(conn, referral, now).await?
    {
        transition(
            conn,
            referral,
            Event::OfferNext,
            actor,
            now,
            Some("offered to the next colleague".into()),
        )
        .await?;
        tell_new_offer(conn, url, referral, next, now).await?;
        let message = "Your referral was not taken up by the colleague holding it, so it was offered to the next colleague on your list.".to_string();
        tell(
            conn,
            url,
            referral.sender_id,
            "referral_moved_on",
            referral.id,
            message,
            "Your referral moved to the next colleague",
            now,
        )
        .await?;
        return Ok(());
    }
    let still_open: i64 = referral_offers::table
        .filter(
            referral_offers::referral_id
                .eq(referral.id)
                .and(referral_offers::state.eq_any(OFFER_ACTIVE)),
        )
        .count()
        .get_result(conn)
        .await?;
    if still_open == 0 {
        let to = transition(conn, referral, ended, actor, now, None).await?;
        let (kind, message, subject) = if to == Status::Expired {
            (
                "referral_expired",
                "No colleague answered your referral in time and no one is left to offer it to. You can send it again to others.",
                "Your referral expired",
            )
        } else {
            (
                "referral_declined",
                "Every colleague you offered your referral to has declined it. You can send it again to others.",
                "Your referral was declined",
            )
        };
        tell(
            conn,
            url,
            referral.sender_id,
            kind,
            referral.id,
            message.to_string(),
            subject,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Declines with a reason. A cascade moves on to the next colleague.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = DeclineInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/decline")]
async fn decline_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<DeclineInput>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let input = body.0;
    if input
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > 2000)
    {
        return Err(AppError::invalid_field(
            "note",
            "Keep the note under 2,000 characters.",
        ));
    }
    let now = state.clock.now();
    let url = state.mailer.public_url.as_str();
    let mut conn = state.pool.get().await?;
    let view = conn
        .transaction::<_, AppError, _>(async |conn| {
            let referral = lock(conn, id).await?;
            let offers = offers_of(conn, id).await?;
            let offer = my_open_offer(&offers, auth.user_id)?.id;
            state::next(referral.status(), Event::DeclineLast)?;
            diesel::update(referral_offers::table.find(offer))
                .set((
                    referral_offers::state.eq("declined"),
                    referral_offers::responded_at.eq(now),
                    referral_offers::reason.eq(input.reason.as_str()),
                    referral_offers::note.eq(&input.note),
                ))
                .reused()
                .execute(conn)
                .await?;
            crate::outbox::enqueue(conn, auth.user_id, now).await?;
            record_event(
                conn,
                id,
                Some(auth.user_id),
                Some(referral.status()),
                referral.status(),
                now,
                Some(format!("declined: {}", input.reason.as_str())),
            )
            .await?;
            let message = format!(
                "A colleague declined your referral ({}).",
                input.reason.as_str().replace('_', " ")
            );
            tell(
                conn,
                url,
                referral.sender_id,
                "referral_declined_by_one",
                id,
                message,
                "A colleague declined your referral",
                now,
            )
            .await?;
            move_on(
                conn,
                url,
                &referral,
                Some(auth.user_id),
                now,
                Event::DeclineLast,
            )
            .await?;
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(Some(auth.user_id), "referral_declined", "referral", id),
            )
            .await?;
            let referral = lock(conn, id).await?;
            // The decliner keeps seeing their own (closed) offer.
            view_of(conn, &referral, auth.user_id).await
        })
        .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(view))
}

/// Closes offers whose deadline passed: a cascade moves on, a referral with
/// no one left expires. Run by the referral worker; safe on several instances.
pub async fn sweep_deadlines(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let url = state.mailer.public_url.as_str();
    let mut conn = state.pool.get().await?;
    let due: Vec<(i64, Uuid, Uuid)> = referral_offers::table
        .filter(
            referral_offers::state
                .eq_any(OFFER_ACTIVE)
                .and(referral_offers::deadline.le(now)),
        )
        .select((
            referral_offers::id,
            referral_offers::referral_id,
            referral_offers::recipient_id,
        ))
        .limit(500)
        .load(&mut conn)
        .await?;
    let mut moved = 0;
    for (offer, referral_id, recipient) in due {
        let done = conn
            .transaction::<_, AppError, _>(async |conn| {
                let referral = lock(conn, referral_id).await?;
                let expired = diesel::update(
                    referral_offers::table.filter(
                        referral_offers::id
                            .eq(offer)
                            .and(referral_offers::state.eq_any(OFFER_ACTIVE)),
                    ),
                )
                .set((
                    referral_offers::state.eq("expired"),
                    referral_offers::responded_at.eq(now),
                ))
                .reused()
                .execute(conn)
                .await?;
                if expired == 1 {
                    // A lapsed deadline counts against responsiveness, which search ranks by.
                    crate::outbox::enqueue(conn, recipient, now).await?;
                    let meta = RequestMeta::default();
                    let event =
                        audit::Event::new(None, "referral_offer_expired", "referral", referral_id)
                            .detail(serde_json::json!({"recipient": recipient}));
                    audit::record(conn, now, &meta, event).await?;
                    if referral.status().is_open() {
                        move_on(conn, url, &referral, None, now, Event::Expire).await?;
                    }
                }
                Ok(expired)
            })
            .await?;
        moved += done;
    }
    send_reminders(&mut conn, url, now).await?;
    state.courier_wake.notify_one();
    Ok(moved)
}

/// Two hours before an offer's deadline, its holder is reminded once; 14
/// days after acceptance with no appointment, the sender is asked to check in.
async fn send_reminders(
    conn: &mut AsyncPgConnection,
    url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    conn.transaction::<_, AppError, _>(async |conn| {
        let due: Vec<(i64, Uuid, Uuid)> = referral_offers::table
            .filter(referral_offers::state.eq_any(OFFER_ACTIVE))
            .filter(referral_offers::reminded_at.is_null())
            .filter(referral_offers::deadline.le(now + chrono::Duration::hours(2)))
            .select((referral_offers::id, referral_offers::referral_id, referral_offers::recipient_id))
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        for (offer, referral, recipient) in due {
            diesel::update(referral_offers::table.find(offer)).set(referral_offers::reminded_at.eq(now)).reused().execute(conn).await?;
            let message = "A referral offered to you reaches its deadline within two hours. Please accept or decline so the client is not kept waiting.".to_string();
            tell(conn, url, recipient, "offer_reminder", referral, message, "Reminder: a referral is waiting for your answer", now).await?;
        }
        let stale: Vec<(Uuid, Uuid)> = referrals::table
            .filter(referrals::status.eq(Status::Accepted.as_str()))
            .filter(referrals::checked_in_at.is_null())
            .filter(referrals::updated_at.le(now - chrono::Duration::days(14)))
            .select((referrals::id, referrals::sender_id))
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        for (referral, sender) in stale {
            diesel::update(referrals::table.find(referral)).set(referrals::checked_in_at.eq(now)).reused().execute(conn).await?;
            let message = "Two weeks ago a colleague accepted your referral, and no first appointment has been recorded yet. You may want to check in with them.".to_string();
            tell(conn, url, sender, "referral_check_in", referral, message, "Checking in on your referral", now).await?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// The referral worker: deadlines, reminders and check-ins every 30 seconds.
pub async fn run_worker(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = sweep_deadlines(&state, state.clock.now()).await {
            tracing::warn!(%error, "referral deadline sweep failed");
        }
    }
}

/// What an action records besides the status.
enum Extra {
    Nothing,
    FirstAppointment(DateTime<Utc>),
    Outcome(String),
}

/// Sender-only and accepter-only actions share this shape.
async fn act(
    state: &AppState,
    meta: &RequestMeta,
    auth: &AuthUser,
    id: Uuid,
    who: fn(&Referral, Uuid) -> bool,
    event: Event,
    extra: Extra,
) -> AppResult<ReferralView> {
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let referral = lock(conn, id).await?;
        let offers = offers_of(conn, id).await?;
        if referral.sender_id != auth.user_id && visible_offer(&offers, auth.user_id).is_none() {
            return Err(not_found());
        }
        if !who(&referral, auth.user_id) {
            return Err(AppError::forbidden(
                "Only the sender or the clinician who accepted can do this, as the case may be.",
            ));
        }
        transition(conn, &referral, event, Some(auth.user_id), now, None).await?;
        match &extra {
            Extra::Nothing => {}
            Extra::FirstAppointment(at) => {
                diesel::update(referrals::table.find(id))
                    .set(referrals::first_appointment_at.eq(at))
                    .reused()
                    .execute(conn)
                    .await?;
            }
            Extra::Outcome(outcome) => {
                diesel::update(referrals::table.find(id))
                    .set(referrals::outcome.eq(outcome))
                    .reused()
                    .execute(conn)
                    .await?;
            }
        }
        if event == Event::Withdraw {
            for offer in offers
                .iter()
                .filter(|o| OFFER_ACTIVE.contains(&o.state.as_str()) || o.state == "accepted")
            {
                let message =
                    "The sender withdrew a referral they had offered you; no action is needed."
                        .to_string();
                tell(
                    conn,
                    &state.mailer.public_url,
                    offer.recipient_id,
                    "referral_withdrawn",
                    id,
                    message,
                    "A referral was withdrawn",
                    now,
                )
                .await?;
            }
            diesel::update(
                referral_offers::table.filter(
                    referral_offers::referral_id
                        .eq(id)
                        .and(referral_offers::state.eq_any(["queued", "offered", "received"])),
                ),
            )
            .set(referral_offers::state.eq("withdrawn"))
            .reused()
            .execute(conn)
            .await?;
        }
        let action = format!(
            "referral_{}",
            state::next(referral.status(), event)
                .map(|s| s.as_str())
                .unwrap_or("changed")
        );
        audit::record(
            conn,
            now,
            meta,
            audit::Event::new(Some(auth.user_id), &action, "referral", id),
        )
        .await?;
        let referral = lock(conn, id).await?;
        view_of(conn, &referral, auth.user_id).await
    })
    .await
}

fn is_sender(r: &Referral, user: Uuid) -> bool {
    r.sender_id == user
}

fn is_accepter(r: &Referral, user: Uuid) -> bool {
    r.accepted_by == Some(user)
}

/// The sender takes the referral back (any time before completion).
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/withdraw")]
async fn withdraw_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let view = act(
        &state,
        &meta,
        &auth,
        path.into_inner(),
        is_sender,
        Event::Withdraw,
        Extra::Nothing,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub first_appointment_at: DateTime<Utc>,
}

/// The accepter records the first appointment.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = ScheduleInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/schedule")]
async fn schedule_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<ScheduleInput>,
) -> AppResult<HttpResponse> {
    let at = body.0.first_appointment_at;
    let view = act(
        &state,
        &meta,
        &auth,
        path.into_inner(),
        is_accepter,
        Event::Schedule,
        Extra::FirstAppointment(at),
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    pub outcome: String,
}

/// The accepter closes the loop after the first appointment.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), request_body = CompleteInput, security(("bearer" = [])),
    responses((status = 200, body = ReferralView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/referrals/{id}/complete")]
async fn complete_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
    body: ApiJson<CompleteInput>,
) -> AppResult<HttpResponse> {
    let outcome = body.0.outcome.trim().to_string();
    if outcome.is_empty() || outcome.chars().count() > 2000 {
        return Err(AppError::invalid_field(
            "outcome",
            "Describe the outcome in at most 2,000 characters.",
        ));
    }
    let view = act(
        &state,
        &meta,
        &auth,
        path.into_inner(),
        is_accepter,
        Event::Complete,
        Extra::Outcome(outcome),
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The client's contact details: only for the clinician who accepted, only
/// after accepting. Every release is audited.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Contact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/referrals/{id}/contact")]
async fn contact_referral(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let referral: Referral = referrals::table
        .find(id)
        .select(Referral::as_select())
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(not_found)?;
    let offers = offers_of(&mut conn, id).await?;
    if referral.sender_id != auth.user_id && visible_offer(&offers, auth.user_id).is_none() {
        return Err(not_found());
    }
    let released = referral.accepted_by == Some(auth.user_id)
        && matches!(
            referral.status(),
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
        audit::Event::new(Some(auth.user_id), "contact_released", "referral", id),
    )
    .await?;
    Ok(HttpResponse::Ok().json(details))
}
