//! The second factor: time-based one-time codes (RFC 6238 with `totp-rs`:
//! SHA-1, six digits, 30-second steps, one step of clock skew either way,
//! each step accepted once), ten single-use recovery codes, and the
//! short-lived challenge that joins the password step to the code step.
//! The key is kept sealed (`seal::Sealer`); recovery codes as SHA-256 hashes
//! of 80 random bits each.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Totp};
use uuid::Uuid;

use crate::{
    db::{
        Reuse,
        schema::{recovery_codes, second_factors},
    },
    error::{AppError, AppResult},
    seal::Sealer,
};

/// The name authenticator apps show beside the account.
pub const ISSUER: &str = "Kith";
/// How long the code step may follow the password step.
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(5);
/// Wrong codes one challenge takes before the password is asked again.
pub const CHALLENGE_ATTEMPTS: i32 = 5;
/// Recovery codes in a set.
pub const RECOVERY_CODES: usize = 10;

fn context(user: Uuid) -> String {
    format!("second-factor:{user}")
}

/// A new random key (160 bits, as RFC 4226 recommends).
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// The generator for `secret`, named for `account` in authenticator apps.
pub fn generator(secret: &[u8], account: &str) -> AppResult<Totp> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(AppError::internal)
}

/// The time step `code` belongs to, when it is right for `now` (give or
/// take one step).
pub fn step_of(totp: &Totp, code: &str, now: DateTime<Utc>) -> Option<i64> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let seconds = u64::try_from(now.timestamp()).ok()?;
    totp.check(&digits, seconds)
        .and_then(|step| i64::try_from(step).ok())
}

/// Whether `code` is shaped like a one-time code (six digits) rather than a
/// recovery code.
pub fn looks_like_code(code: &str) -> bool {
    let digits: Vec<char> = code.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.iter().all(char::is_ascii_digit)
}

/// The `otpauth://` address and its QR code (SVG, drawn by the server).
pub fn enrolment(totp: &Totp) -> AppResult<(String, String)> {
    let url = totp.to_url().map_err(AppError::internal)?;
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(AppError::internal)?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Ok((url, svg))
}

/// A new set of recovery codes, as shown once: `abcd-efgh-jkmn-pqrs`.
pub fn new_recovery_codes() -> Vec<String> {
    // Crockford's base32 alphabet, lower case: no i, l, o or u to misread.
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// The stored form of a recovery code, however it was typed.
pub fn hash_recovery_code(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

/// Seals a new key for `user` and keeps it unconfirmed (replacing any
/// earlier unconfirmed one).
pub async fn store_pending(
    conn: &mut AsyncPgConnection,
    sealer: &Sealer,
    user: Uuid,
    secret: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let sealed = sealer.seal(secret, &context(user));
    diesel::insert_into(second_factors::table)
        .values((
            second_factors::user_id.eq(user),
            second_factors::sealed_secret.eq(&sealed),
            second_factors::created_at.eq(now),
        ))
        .on_conflict(second_factors::user_id)
        .do_update()
        .set((
            second_factors::sealed_secret.eq(&sealed),
            second_factors::created_at.eq(now),
            second_factors::confirmed_at.eq(None::<DateTime<Utc>>),
            second_factors::last_step.eq(None::<i64>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A user's key: the secret and whether a first code confirmed it.
pub struct Factor {
    pub secret: Vec<u8>,
    pub confirmed: bool,
}

pub async fn factor(
    mut conn: &AsyncPgConnection,
    sealer: &Sealer,
    user: Uuid,
) -> AppResult<Option<Factor>> {
    let row: Option<(Vec<u8>, Option<DateTime<Utc>>)> = second_factors::table
        .find(user)
        .select((second_factors::sealed_secret, second_factors::confirmed_at))
        .first(&mut conn)
        .await
        .optional()?;
    let Some((sealed, confirmed_at)) = row else {
        return Ok(None);
    };
    let secret = open_secret(sealer, user, &sealed)?;
    Ok(Some(Factor {
        secret,
        confirmed: confirmed_at.is_some(),
    }))
}

/// The key `sealed` holds for `user`.
pub fn open_secret(sealer: &Sealer, user: Uuid, sealed: &[u8]) -> AppResult<Vec<u8>> {
    sealer.open(sealed, &context(user)).ok_or_else(|| {
        AppError::internal("a second-factor key does not open with this instance's data key")
    })
}

/// Whether `user` has a confirmed second factor.
pub async fn is_on(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        second_factors::table.filter(
            second_factors::user_id
                .eq(user)
                .and(second_factors::confirmed_at.is_not_null()),
        ),
    ))
    .get_result(conn)
    .await
}

/// Accepts time step `step` for `user` once: false when it (or a later one)
/// was accepted before. Confirms a pending factor with its first code.
pub async fn spend_step(
    mut conn: &AsyncPgConnection,
    user: Uuid,
    step: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let spent = diesel::update(
        second_factors::table.filter(
            second_factors::user_id.eq(user).and(
                second_factors::last_step
                    .is_null()
                    .or(second_factors::last_step.lt(step)),
            ),
        ),
    )
    .set((
        second_factors::last_step.eq(step),
        second_factors::confirmed_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("coalesce(second_factors.confirmed_at, ")
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .sql(")")),
    ))
    .reused()
    .execute(&mut conn)
    .await?;
    Ok(spent == 1)
}

/// Uses one of `user`'s recovery codes: false when unknown or used.
pub async fn spend_recovery_code(
    mut conn: &AsyncPgConnection,
    user: Uuid,
    code: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let spent = diesel::update(
        recovery_codes::table.filter(
            recovery_codes::user_id
                .eq(user)
                .and(recovery_codes::code_hash.eq(hash_recovery_code(code)))
                .and(recovery_codes::used_at.is_null()),
        ),
    )
    .set(recovery_codes::used_at.eq(now))
    .reused()
    .execute(&mut conn)
    .await?;
    Ok(spent == 1)
}

/// Replaces `user`'s recovery codes with a new set, returned to show once.
pub async fn replace_recovery_codes(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Vec<String>> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user)))
        .execute(conn)
        .await?;
    let codes = new_recovery_codes();
    let rows: Vec<_> = codes
        .iter()
        .map(|c| {
            (
                recovery_codes::user_id.eq(user),
                recovery_codes::code_hash.eq(hash_recovery_code(c)),
                recovery_codes::created_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(codes)
}

/// Unused recovery codes `user` has left.
pub async fn recovery_codes_left(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// Turns the second factor off: the key and recovery codes go.
pub async fn remove(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<()> {
    diesel::delete(second_factors::table.find(user))
        .execute(conn)
        .await?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user)))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_right_in_its_step_and_the_next_and_wrong_after() {
        let secret = new_secret();
        let totp = generator(&secret, "ana@clinic.example").unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let code = totp.generate(1_800_000_000).to_string();
        assert_eq!(step_of(&totp, &code, now), Some(60_000_000));
        assert_eq!(
            step_of(&totp, &format!(" {} {} ", &code[..3], &code[3..]), now),
            Some(60_000_000)
        );
        assert!(step_of(&totp, &code, now + Duration::seconds(30)).is_some());
        assert_eq!(step_of(&totp, &code, now + Duration::seconds(90)), None);
        assert_eq!(step_of(&totp, "12345", now), None);
        assert_eq!(step_of(&totp, "not a code", now), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 19 && c.matches('-').count() == 3)
        );
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(
            hash_recovery_code(code),
            hash_recovery_code(&code.to_uppercase().replace('-', " "))
        );
        assert!(!looks_like_code(code));
        assert!(looks_like_code("123 456"));
    }

    #[test]
    fn the_enrolment_carries_the_issuer_and_a_qr_code() {
        let totp = generator(&new_secret(), "ana@clinic.example").unwrap();
        let (url, svg) = enrolment(&totp).unwrap();
        assert!(
            url.starts_with("otpauth://totp/Kith:ana%40clinic.example?"),
            "{url}"
        );
        assert!(url.contains("issuer=Kith"));
        assert!(svg.contains("<svg"));
    }
}
