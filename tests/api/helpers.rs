//! Test harness: a real Kith server on a real PostgreSQL database of its own,
//! and clients that read like the people using it.

use std::sync::OnceLock;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kith::{Application, Clock, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PASSWORD: &str = "lantern orbit cobalt rain";

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| kith::config::DEFAULT_DATABASE_URL.to_string())
}

fn url_for(db: &str) -> String {
    let base = admin_url();
    let (prefix, _) = base.rsplit_once('/').expect("DATABASE_URL ends in /dbname");
    format!("{prefix}/{db}")
}

/// The migrated template, named after the migrations it holds so that a
/// changed migration set builds a new one.
async fn template() -> String {
    static NAME: OnceLock<String> = OnceLock::new();
    let name = NAME
        .get_or_init(|| {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            for name in kith::db::migration_names() {
                hasher.update(name.as_bytes());
            }
            for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .expect("migrations dir")
            {
                let dir = entry.expect("entry").path();
                for f in ["up.sql", "down.sql"] {
                    hasher.update(std::fs::read(dir.join(f)).unwrap_or_default());
                }
            }
            format!("kith_tpl_{}", &hex::encode(hasher.finalize())[..12])
        })
        .clone();
    let mut conn = AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to PostgreSQL (see README: scripts/test)");
    diesel::sql_query("SELECT pg_advisory_lock(727274)")
        .execute(&mut conn)
        .await
        .expect("lock");
    let exists: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "(SELECT count(*) FROM pg_database WHERE datname = '{name}')"
    )))
    .get_result(&mut conn)
    .await
    .expect("look up template");
    if exists == 0 {
        let building = format!("{name}_building");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop");
        diesel::sql_query(format!("CREATE DATABASE {building}"))
            .execute(&mut conn)
            .await
            .expect("create template");
        kith::db::run_migrations(&url_for(&building))
            .await
            .expect("migrate template");
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
            .execute(&mut conn)
            .await
            .expect("rename");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut conn)
        .await
        .expect("unlock");
    name
}

/// A database of the test's own, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A copy of the migrated template.
    pub async fn migrated() -> Self {
        let template = template().await;
        Self::create(Some(&template)).await
    }

    /// An empty database (for the migration test).
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!("kith_test_{}", Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin_url())
            .await
            .expect("connect");
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("create test database");
        Self {
            url: url_for(&name),
            name,
        }
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to test db")
    }

    /// Runs SQL statements on the test database (for what the API cannot do).
    pub async fn run_sql(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        self.conn().await.batch_execute(sql).await.expect(sql);
    }

    pub async fn drop_now(&self) {
        let mut conn = AsyncPgConnection::establish(&admin_url())
            .await
            .expect("connect");
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; use a small runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url()).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub state: kith::AppState,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    pub db: TestDb,
    pub handle: actix_web::dev::ServerHandle,
    pub data_dir: std::path::PathBuf,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_with_engine(configure, None).await
    }

    pub async fn spawn_with_engine(
        configure: impl FnOnce(&mut Settings),
        engine: Option<std::sync::Arc<dyn kith::search::SearchIndex>>,
    ) -> Self {
        let db = TestDb::migrated().await;
        let data_dir = std::env::temp_dir().join(format!("kith-test-{}", Uuid::new_v4().simple()));
        let mut settings = Settings::for_database(&db.url, data_dir.clone());
        settings.db_pool_size = 4;
        settings.workers = 1;
        configure(&mut settings);
        let clock = Clock::system();
        let app = Application::build_with_engine(settings, clock.clone(), engine)
            .await
            .expect("start Kith");
        let state = app.state().clone();
        let base = format!("http://{}", app.addr());
        let handle = app.handle();
        tokio::spawn(app.run());
        Self {
            state,
            base,
            http: reqwest::Client::new(),
            clock,
            db,
            handle,
            data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An anonymous request.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        send(&self.http, method, self.url(path), None, body).await
    }

    pub async fn register(&self, name: &str) -> Clinician {
        let email = format!("{}@clinic.example", name.to_lowercase());
        let reply = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                Some(json!({"email": email, "password": PASSWORD, "display_name": name})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register {name}: {}",
            reply.body
        );
        Clinician::from_tokens(self, &email, &reply.body)
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn sign_in(&self, email: &str) -> Clinician {
        let reply = self.login(email, PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "sign in {email}: {}",
            reply.body
        );
        Clinician::from_tokens(self, email, &reply.body)
    }

    /// A registered account promoted to administrator (as `kith set-role` would).
    pub async fn admin(&self, name: &str) -> Clinician {
        let mut person = self.register(name).await;
        self.db
            .run_sql(&format!(
                "UPDATE users SET role = 'admin' WHERE id = '{}'",
                person.id
            ))
            .await;
        // A new sign-in so the token carries the new role from the start.
        person = self.sign_in(&person.email).await;
        person
    }

    /// Polls until `check` holds (the indexer works in the background), for at most 5 s.
    pub async fn eventually<F: AsyncFn() -> bool>(&self, what: &str, check: F) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !check().await {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Waits until every audit entry so far is sealed into the chain.
    pub async fn seal_audit(&self) {
        let mut conn = self.db.conn().await;
        while kith::audit::seal_pending(&mut conn, 1_000)
            .await
            .expect("seal")
            > 0
        {}
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

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
    base: String,
    http: reqwest::Client,
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

/// The origin tests open rooms from (allowed by the test settings).
pub const ORIGIN: &str = "http://127.0.0.1";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a room websocket with a ticket, as a browser on `origin` would.
pub async fn open_ws(
    base: &str,
    ticket: &str,
    origin: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/v1/ws?ticket={ticket}",
        base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("origin header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// The HTTP status a refused upgrade answered with.
pub fn refused_status(result: Result<Socket, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected the upgrade to be refused"),
    }
}

/// A person's open connection to a group's room.
pub struct Room {
    pub ws: Socket,
}

impl Room {
    pub async fn send(&mut self, frame: Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                frame.to_string(),
            ))
            .await
            .expect("send frame");
    }

    pub async fn say(&mut self, client_id: &str, body: &str) {
        self.send(json!({"type": "say", "client_id": client_id, "body": body}))
            .await;
    }

    /// The next frame from the server, or None when the connection closed.
    pub async fn recv(&mut self, within: std::time::Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame of this type, skipping presence and typing chatter.
    pub async fn next(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .recv(std::time::Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("no `{kind}` frame arrived"));
            if frame["type"] == kind {
                return frame;
            }
            let chatter = ["presence", "presence_change", "typing", "membership"];
            assert!(
                chatter.contains(&frame["type"].as_str().unwrap_or("")),
                "expected `{kind}`, got {frame}"
            );
        }
    }

    /// The next frame, whatever it is.
    pub async fn next_any(&mut self) -> Value {
        self.recv(std::time::Duration::from_secs(5))
            .await
            .expect("a frame arrives")
    }

    /// The bodies of the next `n` messages.
    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next("message").await);
        }
        out
    }

    /// Asserts no chat message arrives for a while.
    pub async fn no_message_for(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
        while let Some(frame) = self
            .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            assert_ne!(frame["type"], "message", "unexpected message: {frame}");
        }
    }

    /// Waits until the server closes the connection (at most 5 s); the frames seen before.
    pub async fn closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "the connection stayed open; saw {seen:?}");
            match self.recv(left).await {
                Some(frame) => seen.push(frame),
                None => return seen,
            }
        }
    }
}

impl Clinician {
    /// This person talking to another instance of the same deployment.
    pub fn via(&self, base: &str) -> Self {
        let mut other = self.clone();
        other.base = base.to_string();
        other
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn ticket(&self, group: Option<Uuid>) -> String {
        self.post("/api/v1/ws/ticket", json!({ "group_id": group }))
            .await
            .assert(StatusCode::CREATED)["ticket"]
            .as_str()
            .expect("ticket")
            .to_string()
    }

    /// Opens the group's room and waits until in it.
    pub async fn enter(&self, group: Uuid) -> Room {
        let ticket = self.ticket(Some(group)).await;
        let ws = open_ws(&self.base, &ticket, Some(ORIGIN))
            .await
            .expect("open the room");
        let mut room = Room { ws };
        let joined = room.next("joined").await;
        assert_eq!(joined["group_id"], group.to_string());
        room.next("presence").await;
        room
    }

    pub async fn create_group(&self, name: &str, listed: bool) -> Uuid {
        let reply = self
            .post(
                "/api/v1/groups",
                json!({"name": name, "topic": "Case consultation", "listed": listed}),
            )
            .await;
        reply.assert(StatusCode::CREATED)["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("group id")
    }

    /// Invites `other` and has them accept: a member of the group.
    pub async fn bring_in(&self, group: Uuid, other: &Clinician) {
        let invite = self
            .post(
                &format!("/api/v1/groups/{group}/invites"),
                json!({"email": other.email}),
            )
            .await;
        let id = invite.assert(StatusCode::CREATED)["id"]
            .as_str()
            .expect("invite id")
            .to_string();
        other
            .post(&format!("/api/v1/group-invites/{id}/accept"), json!({}))
            .await
            .assert(StatusCode::OK);
    }
}

/// A second Kith server on the same database, as behind a load balancer.
pub struct Sibling {
    pub base: String,
    pub state: kith::AppState,
    pub handle: actix_web::dev::ServerHandle,
    data_dir: std::path::PathBuf,
}

impl TestApp {
    pub async fn sibling(&self) -> Sibling {
        let mut settings = (*self.state.settings).clone();
        settings.data_dir =
            std::env::temp_dir().join(format!("kith-test-{}", Uuid::new_v4().simple()));
        settings.addr = "127.0.0.1:0".into();
        let app = Application::build(settings.clone(), self.clock.clone())
            .await
            .expect("start a second Kith");
        let state = app.state().clone();
        let base = format!("http://{}", app.addr());
        let handle = app.handle();
        tokio::spawn(app.run());
        Sibling {
            base,
            state,
            handle,
            data_dir: settings.data_dir,
        }
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        drop(self.handle.clone().stop(false));
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
