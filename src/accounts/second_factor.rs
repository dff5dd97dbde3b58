//! Turning two-step sign-in on and off from one's own account: start with the
//! password (a new key, shown as a QR code the server draws, and as text),
//! confirm with a first code (ten recovery codes, shown once; every other
//! sign-in ends), renew the recovery codes with a code, or turn it off with
//! the password (not for administrators and supervisors, who must keep it).
//! Each change emails the account's address.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    audit,
    auth::{AuthUser, Role, sessions, two_step, users},
    error::{AppError, AppResult, Code, ErrorBody},
    http::{ApiJson, RequestMeta},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    pub current_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeOnly {
    /// Six digits from the authenticator app.
    pub code: String,
}

/// Where two-step sign-in stands for me.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecondFactorStatus {
    pub enabled: bool,
    /// Administrators and supervisors must keep it on.
    pub required: bool,
    /// This sign-in proved it.
    pub this_sign_in: bool,
    pub recovery_codes_left: i64,
}

/// A key to add to an authenticator app.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Enrolment {
    /// The key as text (base32), for apps that cannot scan.
    pub secret: String,
    pub otpauth_url: String,
    /// The same, as an SVG QR code.
    pub qr_svg: String,
}

/// Recovery codes, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

fn required(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Supervisor)
}

fn wrong_code() -> AppError {
    AppError {
        field: Some("code".into()),
        ..AppError::new(
            Code::InvalidCode,
            "That code is not right. Codes change every 30 seconds; check your device's clock.",
        )
    }
}

/// The time step of `code` for `user`'s key, when the key is in the state
/// wanted (confirmed or still pending); `not_there` is the refusal otherwise.
async fn step_for(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user: &users::User,
    confirmed: bool,
    code: &str,
    not_there: &str,
) -> AppResult<i64> {
    let factor = two_step::factor(conn, &state.sealer, user.id).await?;
    let Some(factor) = factor.filter(|f| f.confirmed == confirmed) else {
        return Err(AppError::conflict(Code::SecondFactorOff, not_there));
    };
    let totp = two_step::generator(&factor.secret, &user.email)?;
    two_step::step_of(&totp, code, state.clock.now()).ok_or_else(wrong_code)
}

/// Accepts the code's `step`, replaces the recovery codes, audits `action`
/// and tells the account's address `what`, inside the caller's transaction;
/// returns the new codes.
async fn new_codes(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    meta: &RequestMeta,
    user: &users::User,
    step: i64,
    action: audit::Action,
    what: &str,
) -> AppResult<Vec<String>> {
    let now = state.clock.now();
    if !two_step::spend_step(conn, user.id, step, now).await? {
        return Err(wrong_code());
    }
    let codes = two_step::replace_recovery_codes(conn, user.id, now).await?;
    audit::record(conn, now, meta, audit::Event::own_account(user.id, action)).await?;
    tell(conn, state, user, what, now).await?;
    Ok(codes)
}

async fn me(state: &AppState, auth: &AuthUser) -> AppResult<users::User> {
    let mut conn = state.pool.get().await?;
    users::find(&mut conn, auth.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("No such account."))
}

/// Emails the account's address that its second factor changed.
async fn tell(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    user: &users::User,
    what: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let subject = "Your Kith sign-in changed";
    super::security::tell(conn, state, &user.email, subject, what, now).await
}

/// Whether two-step sign-in is on, required, and proved by this sign-in.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses((status = 200, body = SecondFactorStatus)))]
#[get("/me/second-factor")]
pub(super) async fn status(state: web::Data<AppState>, auth: AuthUser) -> AppResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let enabled = two_step::is_on(&mut conn, auth.user_id).await?;
    let left = two_step::recovery_codes_left(&mut conn, auth.user_id).await?;
    Ok(HttpResponse::Ok().json(SecondFactorStatus {
        enabled,
        required: required(auth.role),
        this_sign_in: auth.second_factor,
        recovery_codes_left: left,
    }))
}

/// Starts turning two-step sign-in on: a new key for the authenticator app.
/// It counts once `POST /me/second-factor/confirm` gets a first code.
#[utoipa::path(tag = "auth", request_body = PasswordInput, security(("bearer" = [])),
    responses((status = 201, body = Enrolment), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "already on"),
              (status = 429, body = ErrorBody)))]
#[post("/me/second-factor")]
pub(super) async fn start(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: ApiJson<PasswordInput>,
) -> AppResult<HttpResponse> {
    let user = me(&state, &auth).await?;
    super::me::check_current_password(&state, &user, body.0.current_password).await?;
    let mut conn = state.pool.get().await?;
    if two_step::is_on(&mut conn, user.id).await? {
        return Err(AppError::conflict(
            Code::SecondFactorActive,
            "Two-step sign-in is on already. Turn it off first to move it to a new device.",
        ));
    }
    let secret = two_step::new_secret();
    let totp = two_step::generator(&secret, &user.email)?;
    let (otpauth_url, qr_svg) = two_step::enrolment(&totp)?;
    two_step::store_pending(
        &mut conn,
        &state.sealer,
        user.id,
        &secret,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Created().json(Enrolment {
        secret: totp.secret().to_base32(),
        otpauth_url,
        qr_svg,
    }))
}

/// Confirms the new key with a first code: two-step sign-in is on, this
/// sign-in counts as having proved it, every other sign-in ends, and ten
/// recovery codes are returned, this once.
#[utoipa::path(tag = "auth", request_body = CodeOnly, security(("bearer" = [])),
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody, description = "wrong code"),
              (status = 409, body = ErrorBody, description = "nothing to confirm")))]
#[post("/me/second-factor/confirm")]
pub(super) async fn confirm(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<CodeOnly>,
) -> AppResult<HttpResponse> {
    let user = me(&state, &auth).await?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    let not_there = "There is no new key to confirm. Start again from your profile page.";
    let step = step_for(&mut conn, &state, &user, false, &body.0.code, not_there).await?;
    let codes = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let action = audit::Action::AccountSecondFactorOn;
            let what = "Two-step sign-in was turned on for your Kith account, and every other sign-in was ended";
            let codes = new_codes(conn, &state, &meta, &user, step, action, what).await?;
            sessions::mark_second_factor(conn, auth.session_id, now).await?;
            sessions::revoke_others(conn, user.id, auth.session_id, now, "second_factor_on")
                .await?;
            Ok(codes)
        })
        .await
    })
        .await?;
    state.sessions.forget_user(user.id);
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// A new set of recovery codes (the old ones stop working), for a code from
/// the authenticator app.
#[utoipa::path(tag = "auth", request_body = CodeOnly, security(("bearer" = [])),
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "two-step sign-in is off")))]
#[post("/me/second-factor/recovery-codes")]
pub(super) async fn renew_codes(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<CodeOnly>,
) -> AppResult<HttpResponse> {
    let user = me(&state, &auth).await?;
    let mut conn = state.pool.get().await?;
    let not_there = "Two-step sign-in is off, so there are no recovery codes.";
    let step = step_for(&mut conn, &state, &user, true, &body.0.code, not_there).await?;
    let codes = crate::db::retrying(async || {
        conn.transaction::<_, AppError, _>(async |conn| {
            let action = audit::Action::AccountRecoveryCodesRenewed;
            let what =
                "New recovery codes were made for your Kith account; the old ones no longer work";
            new_codes(conn, &state, &meta, &user, step, action, what).await
        })
        .await
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turns two-step sign-in off, with the password. Administrators and
/// supervisors must keep it.
#[utoipa::path(tag = "auth", request_body = PasswordInput, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "administrators and supervisors keep it"),
              (status = 409, body = ErrorBody, description = "it is off")))]
#[post("/me/second-factor/disable")]
pub(super) async fn disable(
    state: web::Data<AppState>,
    meta: RequestMeta,
    auth: AuthUser,
    body: ApiJson<PasswordInput>,
) -> AppResult<HttpResponse> {
    if required(auth.role) {
        return Err(AppError::new(
            Code::SecondFactorRequired,
            "Administrators and supervisors keep two-step sign-in on. To move it to a new device, make new recovery codes, or ask another administrator.",
        ));
    }
    let user = me(&state, &auth).await?;
    super::me::check_current_password(&state, &user, body.0.current_password).await?;
    let now = state.clock.now();
    let mut conn = state.pool.get().await?;
    if !two_step::is_on(&mut conn, user.id).await? {
        return Err(AppError::conflict(
            Code::SecondFactorOff,
            "Two-step sign-in is off already.",
        ));
    }
    conn.transaction::<_, AppError, _>(async |conn| {
        two_step::remove(conn, user.id).await?;
        let action = audit::Action::AccountSecondFactorOff;
        audit::record(conn, now, &meta, audit::Event::own_account(user.id, action)).await?;
        tell(
            conn,
            &state,
            &user,
            "Two-step sign-in was turned off for your Kith account",
            now,
        )
        .await
    })
    .await?;
    state.courier_wake.notify_one();
    Ok(HttpResponse::NoContent().finish())
}
