//! Creating an account: a clinician with an empty profile and an address
//! still to verify.

use actix_web::{HttpResponse, post, web};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Role, password, users};
use crate::{
    audit,
    db::schema::users as users_t,
    error::{AppError, AppResult, ErrorBody},
    http::{ApiJson, RequestMeta},
    notify,
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// At least 12 characters, not a common password.
    #[schema(min_length = 12, max_length = 256)]
    pub password: String,
    pub display_name: crate::profiles::model::DisplayName,
}

/// What registration answers, the same whether or not the address already
/// had an account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub message: String,
}

/// Creates a clinician account (and its empty profile) and emails a link to
/// verify its address; then sign in. An address that already has an account
/// gets the same answer, and its owner an email instead, so registration
/// never tells who has an account.
#[utoipa::path(tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = Registered), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "too many registrations from this address; see Retry-After")))]
#[post("/auth/register")]
pub(super) async fn register(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: ApiJson<RegisterRequest>,
) -> AppResult<HttpResponse> {
    // Before any work, so a flood from one address never reaches argon2.
    state.address_limits.registration(meta.ip.as_deref())?;
    let body = body.0;
    let email = users::normalize_email(&body.email);
    if !users::valid_email(&email) {
        return Err(AppError::invalid_field(
            "email",
            "Enter a valid email address.",
        ));
    }
    let display_name = body.display_name.as_str().to_string();
    password::check_policy(&body.password, &[&email, &display_name])?;
    let hash = password::hash(body.password).await?;

    let mut conn = state.pool.get().await?;
    let now = state.clock.now();
    conn.transaction::<_, AppError, _>(async |conn| {
        let id = Uuid::now_v7();
        let inserted = diesel::insert_into(users_t::table)
            .values(users::NewUser {
                id,
                email: &email,
                password_hash: &hash,
                display_name: &display_name,
                role: Role::Clinician,
                created_at: now,
                updated_at: now,
            })
            .on_conflict(users_t::email)
            .do_nothing()
            .execute(conn)
            .await?;
        if inserted == 0 {
            return tell_owner(conn, &state, &meta, &email, now).await;
        }
        crate::profiles::create_empty(conn, id, now).await?;
        audit::record(
            conn,
            now,
            &meta,
            audit::Event::own_account(id, audit::Action::AccountRegistered),
        )
        .await?;
        super::verify::send_link(conn, &state, id, &email, now).await
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Accepted().json(Registered {
        message: format!(
            "We have emailed {email} a link to confirm the address. You can sign in now; colleagues find you, and you can refer and join groups, once it is confirmed."
        ),
    }))
}

/// Someone registered an address that has an account: its owner is told,
/// and nothing else changes.
async fn tell_owner(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let owner = users::find_by_email(conn, email)
        .await?
        .ok_or_else(|| AppError::internal("registered address without account"))?;
    let url = &state.mailer.public_url;
    let message = format!(
        "Someone tried to create a Kith account with this address, which already has one, so nothing changed.\n\n\
         If that was you, sign in at {url}/#/login, or choose a new password at {url}/#/forgot-password."
    );
    notify::email_address(
        conn,
        url,
        email,
        "You already have a Kith account",
        &message,
        None,
        now,
    )
    .await?;
    audit::record(
        conn,
        now,
        meta,
        audit::Event::new(
            None,
            audit::Action::AccountRegisteredAgain,
            "user",
            owner.id,
        ),
    )
    .await?;
    Ok(())
}
