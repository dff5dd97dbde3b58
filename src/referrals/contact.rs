//! The client's contact details: sealed in the application before they
//! reach PostgreSQL (XChaCha20-Poly1305 under `KITH_CONTACT_KEY`, bound to
//! the referral), released only to the clinician who accepted, only after
//! accepting, every release audited, and purged a set number of days after
//! the referral closes.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    state::Status,
    store::{find, offers_of},
    view::check_party,
};
use crate::{
    audit,
    auth::AuthUser,
    db::{
        Reuse,
        schema::{referral_contacts, referrals},
    },
    error::{AppError, AppResult, Code, ErrorBody},
    http::RequestMeta,
    seal::Keyring,
    search::Location,
    state::AppState,
};

/// Who the client is, how to reach them and where exactly they are: what
/// the accepter receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub full_name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub preferred_contact: Option<String>,
    /// The location the sender gave; colleagues offered the referral saw
    /// only its ~10 km cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

fn context(referral: Uuid) -> String {
    format!("referral-contact:{referral}")
}

/// Writes the sealed contact of a new referral.
pub async fn store(
    mut conn: &AsyncPgConnection,
    keys: &Keyring,
    referral: Uuid,
    contact: &Contact,
) -> QueryResult<()> {
    let plain = serde_json::to_vec(contact).unwrap_or_default();
    let (key_id, sealed) = keys.seal(&plain, &context(referral));
    diesel::insert_into(referral_contacts::table)
        .values((
            referral_contacts::referral_id.eq(referral),
            referral_contacts::sealed.eq(sealed),
            referral_contacts::key_id.eq(key_id),
        ))
        .reused()
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// A contact row as stored: sealed, purged, or (from before sealing) clear.
#[derive(Queryable, Selectable)]
#[diesel(table_name = referral_contacts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Stored {
    referral_id: Uuid,
    sealed: Option<Vec<u8>>,
    key_id: Option<String>,
    purged_at: Option<DateTime<Utc>>,
    full_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    preferred_contact: Option<String>,
}

impl Stored {
    /// A contact stored in clear, from before sealing.
    fn clear(self) -> Option<Contact> {
        Some(Contact {
            full_name: self.full_name?,
            phone: self.phone,
            email: self.email,
            preferred_contact: self.preferred_contact,
            location: None,
        })
    }
}

/// Every column that holds a contact, sealed or (from before sealing) in
/// clear, as one write: the default empties them all.
#[derive(AsChangeset, Default)]
#[diesel(table_name = referral_contacts, treat_none_as_null = true)]
struct Held {
    sealed: Option<Vec<u8>>,
    key_id: Option<String>,
    full_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    preferred_contact: Option<String>,
}

/// The contact of `referral`: `Ok(None)` once purged.
async fn load(
    conn: &mut AsyncPgConnection,
    keys: &Keyring,
    referral: Uuid,
) -> AppResult<Option<Contact>> {
    let row: Stored = referral_contacts::table
        .find(referral)
        .select(Stored::as_select())
        .first(conn)
        .await?;
    match (&row.sealed, &row.key_id, row.purged_at) {
        (Some(sealed), Some(key_id), _) => {
            let plain = keys
                .open(key_id, sealed, &context(referral))
                .ok_or_else(|| {
                    AppError::internal(format!(
                        "the contact of referral {referral} does not open under key {key_id}"
                    ))
                })?;
            serde_json::from_slice(&plain)
                .map(Some)
                .map_err(|e| AppError::internal(format!("contact of referral {referral}: {e}")))
        }
        (_, _, Some(_)) => Ok(None),
        _ => Ok(row.clear()),
    }
}

/// The client's contact details: only for the clinician who accepted, only
/// after accepting. Every release is audited, and so is every refusal to
/// someone the referral reached.
#[utoipa::path(tag = "referrals", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Contact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody, description = "the details were deleted after the referral closed")))]
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
    let party = check_party(&referral, &offers, auth.user_id);
    let released = party.is_ok()
        && referral.is_accepter(auth.user_id)
        && matches!(
            referral.status,
            Status::Accepted | Status::Scheduled | Status::Completed
        );
    if !released {
        // Every refused attempt on a client's contact is recorded, also by
        // someone the referral never reached (who is told only 404).
        audit::record(
            &conn,
            now,
            &meta,
            audit::Event::new(
                Some(auth.user_id),
                audit::Action::ReferralContactRefused,
                "referral",
                id,
            ),
        )
        .await?;
        party?;
        return Err(AppError::forbidden(
            "Contact details are shared only with the clinician who accepted the referral.",
        ));
    }
    let Some(details) = load(&mut conn, &state.contact_keys, id).await? else {
        return Err(AppError::new(
            Code::ContactPurged,
            format!(
                "The client's contact details were deleted {} days after the referral closed.",
                state.settings.contact_retention.num_days()
            ),
        ));
    };
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

/// The referral statuses after which nobody needs the contact any more.
pub const CLOSED: [Status; 4] = [
    Status::Completed,
    Status::Withdrawn,
    Status::Declined,
    Status::Expired,
];

/// Seals the contacts stored in clear before sealing existed, and refuses
/// to start when a sealed contact names a key the ring does not hold (a
/// wrong or missing `KITH_CONTACT_KEY`).
pub async fn prepare(conn: &mut AsyncPgConnection, keys: &Keyring) -> anyhow::Result<usize> {
    let unknown: Option<String> = referral_contacts::table
        .filter(referral_contacts::sealed.is_not_null())
        .filter(referral_contacts::key_id.ne_all(keys.ids()))
        .select(referral_contacts::key_id.assume_not_null())
        .first(conn)
        .await
        .optional()?;
    if let Some(id) = unknown {
        anyhow::bail!(
            "client contact details are sealed under key {id}, which is neither KITH_CONTACT_KEY (key {}) nor one of KITH_CONTACT_OLD_KEYS: set the key they were sealed with",
            keys.ids()[0]
        );
    }
    let clear: Vec<Stored> = referral_contacts::table
        .filter(referral_contacts::full_name.is_not_null())
        .select(Stored::as_select())
        .load(conn)
        .await?;
    let count = clear.len();
    for row in clear {
        let referral = row.referral_id;
        let Some(contact) = row.clear() else { continue };
        let plain = serde_json::to_vec(&contact)?;
        let (key_id, sealed) = keys.seal(&plain, &context(referral));
        diesel::update(referral_contacts::table.find(referral))
            .set(Held {
                sealed: Some(sealed),
                key_id: Some(key_id),
                ..Held::default()
            })
            .execute(conn)
            .await?;
    }
    Ok(count)
}

/// Deletes the contact details of referrals closed longer ago than
/// `retention`, auditing each. Returns how many.
pub async fn purge_closed(
    conn: &mut AsyncPgConnection,
    retention: chrono::Duration,
    now: DateTime<Utc>,
) -> AppResult<usize> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, AppError, _>(async |conn| {
        let due: Vec<Uuid> = referral_contacts::table
            .inner_join(referrals::table)
            .filter(referrals::status.eq_any(CLOSED))
            .filter(referrals::updated_at.lt(now - retention))
            .filter(referral_contacts::purged_at.is_null())
            .select(referral_contacts::referral_id)
            .limit(500)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        diesel::update(
            referral_contacts::table.filter(referral_contacts::referral_id.eq_any(&due)),
        )
        .set((Held::default(), referral_contacts::purged_at.eq(now)))
        .execute(conn)
        .await?;
        let meta = RequestMeta::default();
        for id in &due {
            audit::record(
                conn,
                now,
                &meta,
                audit::Event::new(None, audit::Action::ReferralContactPurged, "referral", id)
                    .detail(serde_json::json!({"retention_days": retention.num_days()})),
            )
            .await?;
        }
        Ok(due.len())
    })
    .await
}
