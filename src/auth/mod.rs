//! Who is signed in: passwords, access and refresh tokens, sign-ins, login
//! throttling, roles and the signed-in user extractor. The routes that use
//! them (registration, sign-in, administration) live in `accounts`.

pub mod password;
pub mod role;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod two_step;
pub mod users;

pub use role::Role;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult, Code},
    state::AppState,
};

/// The signed-in user behind a request: a valid access token whose sign-in
/// has not been revoked, for an account that is not disabled.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    /// The account's email address is proved.
    pub verified: bool,
    /// This sign-in proved a second factor.
    pub second_factor: bool,
}

impl AuthUser {
    /// Refuses, with `email_unverified`, until the account's address is
    /// proved: `what` says what waits on it ("send referrals").
    pub fn require_verified(&self, what: &str) -> AppResult<()> {
        if self.verified {
            Ok(())
        } else {
            Err(AppError::new(
                Code::EmailUnverified,
                format!(
                    "Verify your email address to {what}: open the link we emailed you, or ask for a new one from your account page."
                ),
            ))
        }
    }

    /// An administrator who signed in with a second factor.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.role != Role::Admin {
            return Err(AppError::forbidden("Only an administrator can do this."));
        }
        self.require_second_factor()
    }

    /// Administrators and supervisors use their powers only from a sign-in
    /// that proved a second factor; for anyone else this always passes.
    pub fn require_second_factor(&self) -> AppResult<()> {
        if !matches!(self.role, Role::Admin | Role::Supervisor) || self.second_factor {
            return Ok(());
        }
        Err(AppError::new(
            Code::SecondFactorRequired,
            "Administrators and supervisors sign in with a second factor. Turn on two-step sign-in on your profile page (or, if it is on, sign in again with your code).",
        ))
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            let token = token.ok_or_else(|| {
                AppError::unauthorized("Sign in to continue (no bearer token was sent).")
            })?;
            let claims = state.tokens.verify(&token, state.clock.now())?;
            let session = state.sessions.status(&state.pool, claims.sid).await?;
            match session {
                Some(s) if s.active && s.user_id == claims.sub => Ok(AuthUser {
                    user_id: claims.sub,
                    session_id: claims.sid,
                    // The role is read from the account, so a change applies at once.
                    role: s.role,
                    verified: s.verified,
                    second_factor: s.second_factor,
                }),
                _ => Err(AppError::new(
                    Code::SessionEnded,
                    "This sign-in has ended. Sign in again.",
                )),
            }
        })
    }
}
