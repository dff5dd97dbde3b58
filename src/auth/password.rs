//! Password policy and argon2id hashing. Hashing runs on the blocking pool so
//! a burst of sign-ins never starves the async workers serving other requests.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::error::{AppError, AppResult};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// Checks the new-password rules: length, and not a common or guessable
/// password (zxcvbn's frequency lists of leaked passwords, names and words,
/// plus the user's own email and name).
pub fn check_policy(password: &str, user_inputs: &[&str]) -> AppResult<()> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(AppError::invalid_field(
            "password",
            format!("Use at least {MIN_LENGTH} characters."),
        ));
    }
    if chars > MAX_LENGTH {
        return Err(AppError::invalid_field(
            "password",
            format!("Use at most {MAX_LENGTH} characters."),
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if (estimate.score() as u8) < 3 {
        return Err(AppError::invalid_field(
            "password",
            "This password is too common or easy to guess. Try a longer phrase of unrelated words.",
        ));
    }
    Ok(())
}

/// Hashes with argon2id at the OWASP baseline (argon2's defaults: m = 19 MiB, t = 2, p = 1).
pub async fn hash(password: String) -> AppResult<String> {
    actix_web::web::block(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await?
    .map_err(AppError::internal)
}

/// Verifies in constant work whether or not the hash is real: callers pass a
/// dummy hash for unknown accounts so timing does not reveal which emails exist.
pub async fn verify(password: String, stored_hash: String) -> AppResult<bool> {
    actix_web::web::block(move || {
        let Ok(parsed) = PasswordHash::new(&stored_hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(AppError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_common_passwords_are_refused() {
        assert!(check_policy("short", &[]).is_err());
        assert!(check_policy("password1234", &[]).is_err());
        assert!(check_policy("qwertyuiop123", &[]).is_err());
        assert!(check_policy("ana.lopez@example.org", &["ana.lopez@example.org"]).is_err());
        assert!(check_policy("lantern orbit cobalt rain", &[]).is_ok());
    }
}
