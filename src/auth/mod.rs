//! Who is signed in: passwords, access and refresh tokens, sign-ins, login
//! throttling, roles and the signed-in user extractor. The routes that use
//! them (registration, sign-in, administration) live in `accounts`.

pub mod password;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::{fmt, str::FromStr};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult, Code},
    state::AppState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Clinician,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "clinician" => Ok(Role::Clinician),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(AppError::invalid_field(
                "role",
                format!("Unknown role `{other}`."),
            )),
        }
    }
}

/// The signed-in user behind a request: a valid access token whose sign-in
/// has not been revoked, for an account that is not disabled.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
}

impl AuthUser {
    pub fn require_admin(&self) -> AppResult<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::forbidden("Only an administrator can do this."))
        }
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
                }),
                _ => Err(AppError::new(
                    Code::SessionEnded,
                    "This sign-in has ended. Sign in again.",
                )),
            }
        })
    }
}
