//! A signed-in person and what they can do through the HTTP API, and the
//! replies they see.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::TestApp;

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of a JSON error body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    pub fn field(&self) -> &str {
        self.body["field"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn assert(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "unexpected reply: {}", self.body);
        &self.body
    }

    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "unexpected reply: {}", self.body);
        assert_eq!(self.error(), code, "unexpected error: {}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without a message: {}",
            self.body
        );
    }
}

pub async fn send(
    http: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the server");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}"))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A signed-in person and what they can do through the API.
#[derive(Clone)]
pub struct Clinician {
    pub id: Uuid,
    pub email: String,
    pub access: String,
    pub refresh: String,
    pub(super) base: String,
    pub(super) http: reqwest::Client,
}

impl Clinician {
    pub fn from_tokens(app: &TestApp, email: &str, tokens: &Value) -> Self {
        Self {
            id: tokens["account"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("account id"),
            email: email.to_string(),
            access: tokens["access_token"]
                .as_str()
                .expect("access token")
                .to_string(),
            refresh: tokens["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_string(),
            base: app.base.clone(),
            http: app.http.clone(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        send(
            &self.http,
            method,
            format!("{}{}", self.base, path),
            Some(&self.access),
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn profile(&self) -> Value {
        self.get("/api/v1/profiles/me")
            .await
            .assert(StatusCode::OK)
            .clone()
    }

    pub async fn set_capacity(&self, capacity: Value) -> Reply {
        self.patch("/api/v1/profiles/me/capacity", capacity).await
    }

    pub async fn refresh_tokens(&self) -> Reply {
        send(
            &self.http,
            Method::POST,
            format!("{}/api/v1/auth/refresh", self.base),
            None,
            Some(json!({"refresh_token": self.refresh})),
        )
        .await
    }
}
