//! HTTP plumbing shared by every feature: the JSON body extractor that names
//! the failing field, JSON bodies for errors actix answers itself, request
//! metadata for the audit log, and the tracing root span.

use std::future::Future;
use std::pin::Pin;

use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::ErrorHandlerResponse,
    web,
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::{
    error::{AppError, Code, ErrorBody},
    state::AppState,
};

/// Request bodies larger than this are refused with 413 unless a route says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
/// How much of an oversized body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// A JSON request body. Malformed JSON is a 400; a missing or mistyped field
/// is a 422 that names the field (by its path, e.g. `capacity.open_slots`).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        let body = read_body(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(AppError::new(
                    Code::UnsupportedMediaType,
                    "Send the body as JSON with Content-Type: application/json.",
                ));
            }
            parse_json(&body.await?).map(ApiJson)
        })
    }
}

/// An optional JSON body: an empty one (or `null`) is `None`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            parse_json::<Option<T>>(&body).map(OptionalJson)
        })
    }
}

/// Reads a request body of at most `DEFAULT_BODY_LIMIT` bytes within the
/// body timeout: 413 past the limit (after draining a little, so the client
/// reads the answer), 408 when the body stops arriving.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::BytesMut, AppError>> + 'static {
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.timeouts.body)
        .unwrap_or(std::time::Duration::from_secs(10));
    let mut payload = payload.take();
    async move {
        let read = async {
            let mut body = web::BytesMut::new();
            let mut too_large = declared_len.is_some_and(|len| len > DEFAULT_BODY_LIMIT);
            let mut discarded = 0usize;
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|_| AppError::bad_request("The request body could not be read."))?;
                if !too_large && body.len() + chunk.len() > DEFAULT_BODY_LIMIT {
                    too_large = true;
                    body.clear();
                }
                if too_large {
                    // Read (and drop) a modest excess so the client, still sending,
                    // receives the 413 instead of a reset connection.
                    discarded += chunk.len();
                    if discarded > DRAIN_LIMIT {
                        break;
                    }
                } else {
                    body.extend_from_slice(&chunk);
                }
            }
            if too_large {
                return Err(AppError::new(
                    Code::PayloadTooLarge,
                    format!(
                        "The request body is larger than {} KiB.",
                        DEFAULT_BODY_LIMIT / 1024
                    ),
                ));
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(AppError::new(
                    Code::BodyTimeout,
                    format!(
                        "The request body did not arrive within {} seconds.",
                        timeout.as_secs()
                    ),
                ))
            })
    }
}

/// Deserializes a JSON document, turning serde's complaint into an API error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request(
            "The request body is empty; send a JSON object.",
        ));
    }
    // A NUL can only arrive escaped (raw control characters are not JSON),
    // so a body without `\u0000` is read straight into its type; only when
    // that fails, or a NUL may be there, is it read as a document first.
    if !body.windows(6).any(|w| w == b"\\u0000") {
        let mut de = serde_json::Deserializer::from_slice(body);
        if let Ok(value) = serde_path_to_error::deserialize(&mut de)
            && de.end().is_ok()
        {
            return Ok(value);
        }
    }
    let mut document: serde_json::Value = serde_json::from_slice(body).map_err(|inner| {
        AppError::new(
            Code::MalformedJson,
            format!("The request body is not valid JSON ({inner})."),
        )
    })?;
    // PostgreSQL text cannot hold a NUL, whatever the field: refused here,
    // before any route sees the value.
    if let Some(field) = crate::text::find_nul(&document) {
        return Err(AppError::invalid_field(
            field.clone(),
            format!("{field}: remove the NUL character (\\u0000)."),
        ));
    }
    crate::text::integral_numbers(&mut document);
    serde_path_to_error::deserialize(document).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let text = inner.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        // serde reports a missing field at the parent's path; name the field itself.
        let field = match backticked(&text) {
            Some(name) if text.starts_with("missing field") => {
                if path == "." {
                    name
                } else {
                    format!("{path}.{name}")
                }
            }
            _ => path,
        };
        AppError::invalid_field(field.clone(), format!("{field}: {text}"))
    })
}

/// A query string. A parameter that is missing, mistyped or holds a NUL is a
/// 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<T> std::ops::Deref for ApiQuery<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> ApiQuery<T> {
    pub fn parse(query: &str) -> Result<Self, AppError> {
        // A NUL can only arrive as `%00`; only then are the pairs looked at.
        if query.contains("%00") {
            for (name, value) in form_urlencoded::parse(query.as_bytes()) {
                crate::text::parameter_without_nul(&name, &value)?;
            }
        }
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                let text = e.to_string();
                let field = backticked(&text).unwrap_or_else(|| "query".to_string());
                AppError::invalid_field(field, format!("A query parameter is not valid: {text}."))
            })
    }
}

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::parse(req.query_string()))
    }
}

fn backticked(text: &str) -> Option<String> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(text[start..start + len].to_string())
}

/// Gives every error actix answers on its own (unknown route, wrong method,
/// bad query string...) the same JSON body as our own errors.
pub fn json_error_fallback<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (
            Code::NotFound,
            "There is nothing at this address.".to_string(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            Code::MethodNotAllowed,
            "This address does not accept that method.".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            Code::PayloadTooLarge,
            "The request body is too large.".to_string(),
        ),
        s if s.is_server_error() => (
            Code::InternalError,
            "Something went wrong on our side. Please try again.".to_string(),
        ),
        s => (
            Code::BadRequest,
            res.response()
                .error()
                .map(|e| e.to_string())
                .unwrap_or_else(|| s.canonical_reason().unwrap_or("Bad request").to_string()),
        ),
    };
    let allow = res.response().headers().get(header::ALLOW).cloned();
    let (req, _) = res.into_parts();
    let mut builder = HttpResponse::build(status);
    if let Some(allow) = allow {
        builder.insert_header((header::ALLOW, allow));
    }
    let response = builder.json(ErrorBody {
        error: code,
        message,
        field: None,
    });
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

/// The paths the API documents and the methods each answers, so an address
/// asked with the wrong method is a 405 with `Allow`, not a 404.
pub struct KnownPaths(Vec<(Vec<String>, String)>);

/// The methods an OpenAPI path item may hold, in the order `Allow` lists them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl KnownPaths {
    /// From the OpenAPI document's paths and the methods each path item holds.
    pub fn from_document(doc: &serde_json::Value) -> Self {
        let empty = serde_json::Map::new();
        let mut paths = doc["paths"]
            .as_object()
            .unwrap_or(&empty)
            .iter()
            .map(|(path, item)| {
                let segments: Vec<String> = path.split('/').map(str::to_string).collect();
                let allow = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ");
                (segments, allow)
            })
            .collect::<Vec<_>>();
        // Literal segments before placeholders, so `/groups/mine` is not `/groups/{id}`.
        paths.sort_by_key(|(segments, _)| segments.iter().filter(|s| s.starts_with('{')).count());
        Self(paths)
    }

    /// The `Allow` value for `path`, when the API documents it.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let asked: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(segments, allow)| {
            let matches = segments.len() == asked.len()
                && segments.iter().zip(&asked).all(|(known, asked)| {
                    known == asked || (known.starts_with('{') && !asked.is_empty())
                });
            matches.then(|| allow.clone())
        })
    }
}

/// Abandons a handler still running after the handler timeout and answers
/// 503 `timed_out`. Its database work is rolled back: a connection dropped
/// inside a transaction is discarded by the pool, never reused.
pub async fn deadline(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.timeouts.handler)
        .unwrap_or(std::time::Duration::from_secs(30));
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "handler timed out");
            // Answered by actix from the error itself (the request went with
            // the abandoned handler): the same JSON body and Retry-After.
            Err(AppError::unavailable(
                Code::TimedOut,
                "This took longer than the server allows, and nothing it began was kept. Please try again.",
            )
            .into())
        }
    }
}

/// Who is asking, for the audit log: client address and request id.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

impl FromRequest for RequestMeta {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trust_forwarded = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| s.settings.trust_forwarded_for);
        let forwarded = trust_forwarded
            .then(|| {
                req.headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    // The address our proxy saw is the one it appended last;
                    // anything left of it came from the client.
                    .and_then(|v| v.rsplit(',').next())
                    .map(|v| v.trim().to_string())
            })
            .flatten();
        let ip = forwarded.or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
        let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect());
        std::future::ready(Ok(Self {
            ip,
            request_id,
            user_agent,
        }))
    }
}

/// Root span that records the route pattern (`/api/v1/profiles/{user_id}`),
/// never the concrete path or query string, so no identifier reaches a log.
pub struct KithRootSpan;

impl RootSpanBuilder for KithRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
            error = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        match outcome {
            Ok(response) => {
                span.record("status", response.status().as_u16());
                if let Some(error) = response.response().error() {
                    span.record("error", tracing::field::display(error));
                }
            }
            Err(error) => {
                span.record("status", error.as_response_error().status_code().as_u16());
                span.record("error", tracing::field::display(error));
            }
        }
    }
}
