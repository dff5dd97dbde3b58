//! Access tokens (HS256 JWTs, 15 minutes) and refresh tokens (random, stored
//! only as SHA-256 hashes).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::role::Role;
use crate::{config::Settings, error::AppError};

const ISSUER: &str = "kith";
const AUDIENCE: &str = "kith-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    /// The sign-in (refresh family) this token belongs to.
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: chrono::Duration,
}

impl TokenKeys {
    pub fn new(settings: &Settings) -> Self {
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        // Exactly one algorithm is accepted: `alg: none`, RS256 and friends fail here.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        // Expiry is checked against the app clock below, so tests can move time.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl: chrono::Duration::from_std(settings.access_token_ttl)
                .unwrap_or(chrono::Duration::minutes(15)),
        }
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<String, AppError> {
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            role,
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, AppError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| {
                AppError::new(
                    crate::error::Code::InvalidToken,
                    "The access token is not valid. Sign in again.",
                )
            })?;
        if data.claims.exp <= now.timestamp() {
            return Err(AppError::new(
                crate::error::Code::TokenExpired,
                "The access token has expired. Refresh it or sign in again.",
            ));
        }
        Ok(data.claims)
    }
}

/// A new opaque token (256 random bits): refresh tokens and one-time links.
pub fn new_opaque_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_opaque_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
