//! One error type for the whole API. Every failure leaves as
//! `{"error": "snake_case_code", "message": "...", "field"?: "..."}` with the
//! right status; the underlying cause is logged, never sent.

use std::fmt;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

/// Declares the error codes: each with its text, its HTTP status and what it means.
macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $status:ident; )+) => {
        /// Every error code the API answers with. The README lists them all,
        /// and a test checks that each is used and documented.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
        pub enum Code {
            $( $(#[$doc])* #[serde(rename = $text)] $variant, )+
        }

        impl utoipa::PartialSchema for Code {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl ToSchema for Code {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed("Code")
            }
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The variant's name, as the code that uses it spells it.
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => stringify!($variant)),+ }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text),+ }
            }

            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status),+ }
            }
        }
    };
}

codes! {
    /// The request could not be read.
    MalformedRequest = "malformed_request", BAD_REQUEST;
    /// The body is not valid JSON, or not the JSON this route takes.
    MalformedJson = "malformed_json", BAD_REQUEST;
    /// The HTTP request itself is malformed (answered before any route).
    BadRequest = "bad_request", BAD_REQUEST;
    /// No bearer token was sent.
    Unauthorized = "unauthorized", UNAUTHORIZED;
    /// Wrong email or password.
    InvalidCredentials = "invalid_credentials", UNAUTHORIZED;
    /// The access token is not valid.
    InvalidToken = "invalid_token", UNAUTHORIZED;
    /// The access token has expired; refresh it.
    TokenExpired = "token_expired", UNAUTHORIZED;
    /// The sign-in behind the token has ended.
    SessionEnded = "session_ended", UNAUTHORIZED;
    /// The refresh token is unknown or expired.
    InvalidRefreshToken = "invalid_refresh_token", UNAUTHORIZED;
    /// A used refresh token was presented; the whole sign-in ended.
    RefreshTokenReused = "refresh_token_reused", UNAUTHORIZED;
    /// A password reset link is unknown, already used or expired.
    InvalidResetLink = "invalid_reset_link", BAD_REQUEST;
    /// An email verification link is unknown, already used or expired.
    InvalidVerificationLink = "invalid_verification_link", BAD_REQUEST;
    /// The sign-in step between password and code expired, was used, or
    /// took too many wrong codes; enter the password again.
    InvalidChallenge = "invalid_challenge", UNAUTHORIZED;
    /// The one-time or recovery code is wrong, or was used already.
    InvalidCode = "invalid_code", UNAUTHORIZED;
    /// The websocket ticket is unknown, used or expired.
    InvalidTicket = "invalid_ticket", UNAUTHORIZED;
    /// Signed in, but not allowed to do this.
    Forbidden = "forbidden", FORBIDDEN;
    /// The account's email address is not verified yet; open the emailed link
    /// (or ask for a new one) first.
    EmailUnverified = "email_unverified", FORBIDDEN;
    /// Administrators and supervisors must sign in with a second factor
    /// before their powers work.
    SecondFactorRequired = "second_factor_required", FORBIDDEN;
    /// Only members of the group may enter its room.
    NotAMember = "not_a_member", FORBIDDEN;
    /// A session is under way and its host locked the room.
    RoomLocked = "room_locked", FORBIDDEN;
    /// Nothing at this address, or nothing this person may see.
    NotFound = "not_found", NOT_FOUND;
    /// The address exists but not with this method.
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED;
    /// That already exists.
    Conflict = "conflict", CONFLICT;
    /// Someone changed the record at the same moment.
    ConcurrentUpdate = "concurrent_update", CONFLICT;
    /// The record's state does not allow this step now.
    InvalidTransition = "invalid_transition", CONFLICT;
    /// The edit started from an older version.
    VersionConflict = "version_conflict", CONFLICT;
    /// An account already uses this email.
    EmailTaken = "email_taken", CONFLICT;
    /// Two-step sign-in is on already.
    SecondFactorActive = "second_factor_active", CONFLICT;
    /// Two-step sign-in is not on (or not started).
    SecondFactorOff = "second_factor_off", CONFLICT;
    /// The address is verified already.
    EmailAlreadyVerified = "email_already_verified", CONFLICT;
    /// The invitation or request was already answered.
    AlreadyAnswered = "already_answered", CONFLICT;
    /// The invitation is older than its 14 days.
    InvitationExpired = "invitation_expired", CONFLICT;
    /// This person already has an open invitation.
    AlreadyInvited = "already_invited", CONFLICT;
    /// This person is already a member.
    AlreadyMember = "already_member", CONFLICT;
    /// A request to join is already waiting.
    AlreadyRequested = "already_requested", CONFLICT;
    /// The session is signed off and can no longer change.
    AlreadySigned = "already_signed", CONFLICT;
    /// The last administrator cannot be demoted or disabled.
    LastAdminGuard = "last_admin_guard", CONFLICT;
    /// A group must keep at least one host.
    LastHost = "last_host", CONFLICT;
    /// Nobody can mute themselves.
    MuteSelf = "mute_self", CONFLICT;
    /// No open slot to accept onto; use the waitlist.
    NoOpenSlot = "no_open_slot", CONFLICT;
    /// The session has not ended yet.
    NotEnded = "not_ended", CONFLICT;
    /// The offer can no longer be answered.
    OfferClosed = "offer_closed", CONFLICT;
    /// The group already has a session at that time.
    OverlappingSession = "overlapping_session", CONFLICT;
    /// Another session of the group is live.
    SessionLive = "session_live", CONFLICT;
    /// Leave the group instead of removing yourself.
    UseLeave = "use_leave", CONFLICT;
    /// The client's contact details were deleted once the referral had been
    /// closed for the retention period.
    ContactPurged = "contact_purged", GONE;
    /// The body did not arrive in time; the connection is closed.
    BodyTimeout = "body_timeout", REQUEST_TIMEOUT;
    /// The body is over the route's limit.
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE;
    /// The body is not JSON.
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    /// A field is invalid; `field` names it.
    InvalidField = "invalid_field", UNPROCESSABLE_ENTITY;
    /// Free text that travels to colleagues may identify a client; `field`
    /// names it and the message says what was found. Remove it, or send
    /// again confirming it identifies no one.
    PossibleIdentifier = "possible_identifier", UNPROCESSABLE_ENTITY;
    /// An edit must say which version it started from.
    VersionRequired = "version_required", PRECONDITION_REQUIRED;
    /// Too many attempts; wait `Retry-After` seconds.
    RateLimited = "rate_limited", TOO_MANY_REQUESTS;
    /// A failure of ours; the cause is logged, never sent.
    InternalError = "internal_error", INTERNAL_SERVER_ERROR;
    /// PostgreSQL is not reachable; retry after `Retry-After`.
    DatabaseUnavailable = "database_unavailable", SERVICE_UNAVAILABLE;
    /// The search engine is not reachable.
    SearchUnavailable = "search_unavailable", SERVICE_UNAVAILABLE;
    /// Too many sign-ins at once; retry shortly.
    SignInBusy = "sign_in_busy", SERVICE_UNAVAILABLE;
    /// The request took longer than the server allows; nothing it began was kept.
    TimedOut = "timed_out", SERVICE_UNAVAILABLE;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    /// The request field the error is about (422 and some 409s).
    pub field: Option<String>,
    /// Seconds, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    /// The methods the address does answer, sent as `Allow` (405).
    pub allow: Option<String>,
    /// A serialisation failure or deadlock: the same work, tried again, may
    /// well succeed (`db::retrying` does so before answering).
    pub transient: bool,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_field`.
    pub error: Code,
    /// A sentence a person can read.
    pub message: String,
    /// The request field concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            allow: None,
            transient: false,
        }
    }

    /// 405: the address exists, under the methods in `allow` (`GET, POST`).
    pub fn method_not_allowed(allow: String) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                Code::MethodNotAllowed,
                "This address does not accept that method.",
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::MalformedRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub fn conflict(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.status(), StatusCode::CONFLICT);
        Self::new(code, message)
    }

    /// 422 about one field of the request.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(Code::InvalidField, message)
        }
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                Code::RateLimited,
                "Too many attempts. Please wait before trying again.",
            )
        }
    }

    pub fn unavailable(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.status(), StatusCode::SERVICE_UNAVAILABLE);
        Self {
            retry_after: Some(5),
            ..Self::new(code, message)
        }
    }

    /// A failure of ours: logs the cause and answers a plain 500.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            Code::InternalError,
            "Something went wrong on our side. Please try again.",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code,
            message: self.message.clone(),
            field: self.field.clone(),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come; this connection is done.
            response.force_close();
        }
        if let Some(allow) = &self.allow {
            response.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
        }
        response.json(self.body())
    }
}

/// How PostgreSQL words the end of a connection it ended itself.
const CONNECTION_GONE: &[&str] = &[
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "connection to server",
];

impl AppError {
    /// A serialisation failure or deadlock, retried by `db::retrying` and a
    /// 409 if it persists.
    fn contention() -> Self {
        Self {
            transient: true,
            ..Self::conflict(
                Code::ConcurrentUpdate,
                "Someone changed this at the same moment. Please try again.",
            )
        }
    }

    fn connection_lost(error: &diesel::result::Error) -> Self {
        tracing::warn!(%error, "database connection lost");
        Self::unavailable(
            Code::DatabaseUnavailable,
            "The database is not reachable right now.",
        )
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => Self::not_found("Not found."),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                tracing::info!(constraint = ?info.constraint_name(), "unique violation");
                Self::conflict(Code::Conflict, "That already exists.")
            }
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
                let field = info.column_name().unwrap_or("request").to_string();
                Self::invalid_field(field, "A value is out of range.")
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Self::contention(),
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().starts_with("deadlock detected") =>
            {
                Self::contention()
            }
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )
            | Error::BrokenTransactionManager => Self::connection_lost(&error),
            // diesel-async keeps PostgreSQL's words but not its SQLSTATE; these
            // are the messages of class 57 (operator intervention: 57P01
            // administrator shutdown, 57P02 crash shutdown, 57P03 cannot
            // connect now) and of a server that is going away.
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if CONNECTION_GONE
                    .iter()
                    .any(|m| info.message().starts_with(m)) =>
            {
                Self::connection_lost(&error)
            }
            other => Self::internal(other),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        tracing::error!(%error, "no database connection");
        Self::unavailable(
            Code::DatabaseUnavailable,
            "The database is not reachable right now.",
        )
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}

impl std::error::Error for AppError {}

#[cfg(test)]
mod tests {
    use super::Code;

    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }

    /// After lemmy's `test_errors_used`: a code nobody answers with is dead,
    /// and a code the README does not list is a surprise for clients.
    #[test]
    fn every_error_code_is_used_and_documented() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        for code in Code::ALL {
            let used = format!("Code::{}", code.name());
            assert!(
                files.iter().any(|(_, text)| text.contains(&used)),
                "{used} is declared but never answered"
            );
            let documented = format!("| `{}` |", code.as_str());
            assert!(readme.contains(&documented), "README lists no `{code}`");
        }
    }

    #[test]
    fn codes_are_snake_case_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text}"
            );
            assert!(seen.insert(text), "{text} twice");
            assert_eq!(serde_json::to_value(code).unwrap(), text);
        }
    }
}
