//! Password policy and argon2id hashing. Hashing runs on a few dedicated
//! threads (half the cores), so a burst of sign-ins queues there instead of
//! starving the workers that serve everything else, and only those threads
//! ever hold argon2's 19 MiB work buffers (the allocator keeps one arena per
//! thread, so hashing on many threads would keep many buffers alive).

use std::sync::{Arc, LazyLock, Mutex, mpsc};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::error::{AppError, AppResult, Code};

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

type Job = Box<dyn FnOnce() + Send>;

/// Sign-ins waiting for a hashing thread beyond this are refused with 503.
const QUEUE: usize = 512;

static HASHERS: LazyLock<Option<mpsc::SyncSender<Job>>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (sender, receiver) = mpsc::sync_channel::<Job>(QUEUE);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut started = 0;
    for i in 0..(cores / 2).max(1) {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("kith-argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = match receiver.lock() {
                        Ok(guard) => match guard.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    job();
                }
            });
        match spawned {
            Ok(_) => started += 1,
            Err(error) => tracing::error!(%error, "could not start a password hashing thread"),
        }
    }
    (started > 0).then_some(sender)
});

async fn on_hasher<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let hashers = HASHERS
        .as_ref()
        .ok_or_else(|| AppError::internal("no password hashing thread"))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    hashers
        .try_send(Box::new(move || {
            let _ = reply.send(work());
        }))
        .map_err(|_| {
            AppError::unavailable(
                Code::SignInBusy,
                "Too many sign-ins at this moment. Please try again shortly.",
            )
        })?;
    answer.await.map_err(AppError::internal)
}

/// Hashes with argon2id at the OWASP baseline (argon2's defaults: m = 19 MiB, t = 2, p = 1).
pub async fn hash(password: String) -> AppResult<String> {
    on_hasher(move || {
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
    on_hasher(move || {
        let Ok(parsed) = PasswordHash::new(&stored_hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
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
