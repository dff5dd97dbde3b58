//! A real Kith server on the test's database, and a sibling instance on the
//! same database (as behind a load balancer).

use kith::{Application, Clock, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Clinician, PASSWORD, Reply, TestDb, send};

pub struct TestApp {
    pub state: kith::AppState,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    pub db: TestDb,
    pub handle: actix_web::dev::ServerHandle,
    pub data_dir: std::path::PathBuf,
    /// An administrator who verifies licences, made when first needed.
    registrar: tokio::sync::OnceCell<Clinician>,
    /// The second-factor keys of the people who turned it on, by email, so
    /// that signing them in can answer the code step.
    authenticators: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
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
        let mut settings = Settings::for_database(&db.app_url, data_dir.clone());
        settings.db_pool_size = 4;
        settings.workers = 1;
        // Every test registers from 127.0.0.1; the limits' own tests set them.
        settings.limits = kith::limits::Limits::generous();
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
            registrar: tokio::sync::OnceCell::new(),
            authenticators: Default::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An anonymous request.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        send(&self.http, method, self.url(path), None, body).await
    }

    /// Registers `name@clinic.example`, signs in and opens the verification
    /// link the server emailed: a colleague others can find.
    /// An anonymous POST from the client address `ip`, as a trusted proxy
    /// reports it (a client may send an `X-Forwarded-For` of its own; the
    /// proxy appends what it saw).
    pub async fn post_from(&self, ip: &str, path: &str, body: Value) -> Reply {
        let response = self
            .http
            .post(self.url(path))
            .header("x-forwarded-for", format!("203.0.113.250, {ip}"))
            .json(&body)
            .send()
            .await
            .expect("request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn register(&self, name: &str) -> Clinician {
        let person = self.register_unverified(name).await;
        let token = self.verification_token(&person.email).await;
        self.call(
            Method::POST,
            "/api/v1/auth/verify-email",
            Some(json!({ "token": token })),
        )
        .await
        .assert(StatusCode::OK);
        person
    }

    /// Registers and signs in without opening the verification link.
    pub async fn register_unverified(&self, name: &str) -> Clinician {
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
            StatusCode::ACCEPTED,
            "register {name}: {}",
            reply.body
        );
        self.sign_in(&email).await
    }

    /// The token of the newest verification link emailed to `email`, read
    /// from the mail as queued (tests with an SMTP server read it from the
    /// mail that arrived instead).
    pub async fn verification_token(&self, email: &str) -> String {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use kith::db::schema::email_outbox as outbox;
        let mut conn = self.db.conn().await;
        let body: String = outbox::table
            .filter(outbox::to_address.eq(email))
            .filter(outbox::body.like("%#/verify-email?token=%"))
            .order(outbox::id.desc())
            .select(outbox::body)
            .first(&mut conn)
            .await
            .expect("a verification email was queued");
        let link = super::link_in(&body, "http").expect("a link in the mail");
        link.split_once("token=")
            .map(|(_, t)| t.to_string())
            .expect("a token in the link")
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs in with the password, and with a code from the authenticator
    /// when two-step sign-in is on.
    pub async fn sign_in(&self, email: &str) -> Clinician {
        let reply = self.login(email, PASSWORD).await;
        if reply.status == StatusCode::ACCEPTED {
            let challenge = reply.body["challenge"].as_str().expect("a challenge");
            let code = self.next_code(email).await;
            let tokens = self
                .call(
                    Method::POST,
                    "/api/v1/auth/login/code",
                    Some(json!({"challenge": challenge, "code": code})),
                )
                .await;
            let tokens = tokens.assert(StatusCode::OK);
            return Clinician::from_tokens(self, email, tokens);
        }
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "sign in {email}: {}",
            reply.body
        );
        Clinician::from_tokens(self, email, &reply.body)
    }

    /// A code `email`'s authenticator shows that the server has not accepted
    /// yet: each 30-second step is accepted once, so when this step is spent
    /// the test clock moves on to the next.
    pub async fn next_code(&self, email: &str) -> String {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use kith::db::schema::{second_factors, users};
        let secret = self
            .authenticators
            .lock()
            .expect("authenticators")
            .get(email)
            .cloned()
            .expect("this person turned on two-step sign-in through the test app");
        let mut conn = self.db.conn().await;
        let last: Option<i64> = second_factors::table
            .inner_join(users::table)
            .filter(users::email.eq(email))
            .select(second_factors::last_step)
            .first(&mut conn)
            .await
            .expect("a second factor");
        let mut now = self.clock.now().timestamp();
        while last.is_some_and(|l| now / 30 <= l) {
            self.clock.advance(chrono::Duration::seconds(30));
            now = self.clock.now().timestamp();
        }
        kith::auth::two_step::generator(&secret, email)
            .expect("a generator")
            .generate(now as u64)
            .to_string()
    }

    /// Turns on two-step sign-in for `person` as they would from their
    /// profile (password, key, first code); their sign-in then counts as
    /// having proved it. Returns the recovery codes.
    pub async fn turn_on_second_factor(&self, person: &Clinician) -> Vec<String> {
        let enrolment = person
            .post(
                "/api/v1/me/second-factor",
                json!({"current_password": PASSWORD}),
            )
            .await;
        let secret = enrolment.assert(StatusCode::CREATED)["secret"]
            .as_str()
            .expect("the key as text")
            .to_string();
        let secret = totp_rs::Secret::try_from_base32(&secret)
            .expect("base32")
            .as_bytes()
            .to_vec();
        self.authenticators
            .lock()
            .expect("authenticators")
            .insert(person.email.clone(), secret.clone());
        let code = kith::auth::two_step::generator(&secret, &person.email)
            .expect("a generator")
            .generate(self.clock.now().timestamp() as u64)
            .to_string();
        let confirmed = person
            .post("/api/v1/me/second-factor/confirm", json!({ "code": code }))
            .await;
        confirmed.assert(StatusCode::OK)["recovery_codes"]
            .as_array()
            .expect("recovery codes")
            .iter()
            .map(|c| c.as_str().expect("a code").to_string())
            .collect()
    }

    /// A registered account promoted to administrator (as `kith set-role`
    /// would), signed in with the second factor administrators must use.
    pub async fn admin(&self, name: &str) -> Clinician {
        let person = self.register(name).await;
        self.promote(person, "admin").await
    }

    /// `person` given `role` (admin or supervisor), signed in again and with
    /// two-step sign-in turned on, as their powers need.
    pub async fn promote(&self, person: Clinician, role: &str) -> Clinician {
        self.db
            .run_sql(&format!(
                "UPDATE users SET role = '{role}' WHERE id = '{}'",
                person.id
            ))
            .await;
        // A new sign-in so the token carries the new role from the start.
        let person = self.sign_in(&person.email).await;
        self.turn_on_second_factor(&person).await;
        person
    }

    /// An administrator verifies every licence state `person`'s profile
    /// claims, through the API (only verified states count for referrals).
    pub async fn verify_licence(&self, person: &Clinician) {
        let registrar = self.registrar.get_or_init(|| self.admin("Registrar")).await;
        registrar
            .put(
                &format!("/api/v1/admin/users/{}/verification", person.id),
                json!({"verified": true}),
            )
            .await
            .assert(StatusCode::OK);
    }

    /// Polls until `check` holds (the indexer works in the background), for at
    /// most 15 s (a wait bound for a loaded machine, not a speed check).
    pub async fn eventually<F: AsyncFn() -> bool>(&self, what: &str, check: F) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !check().await {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Waits until every audit entry so far is sealed into the chain (by the
    /// server's own sealer, which also writes the checkpoint file).
    pub async fn seal_audit(&self) {
        self.eventually("the audit log is sealed", async || {
            self.db
                .scalar_i64("SELECT count(*) FROM audit_pending")
                .await
                == 0
        })
        .await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
        let _ = std::fs::remove_dir_all(&self.data_dir);
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
        self.sibling_with(|_| {})
            .await
            .expect("start a second Kith")
    }

    /// A second server with some settings changed (keys rotated, say); the
    /// error when it refuses to start.
    pub async fn sibling_with(
        &self,
        configure: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Sibling> {
        let mut settings = (*self.state.settings).clone();
        settings.data_dir =
            std::env::temp_dir().join(format!("kith-test-{}", Uuid::new_v4().simple()));
        settings.addr = "127.0.0.1:0".into();
        configure(&mut settings);
        let app = Application::build(settings.clone(), self.clock.clone()).await?;
        let state = app.state().clone();
        let base = format!("http://{}", app.addr());
        let handle = app.handle();
        tokio::spawn(app.run());
        Ok(Sibling {
            base,
            state,
            handle,
            data_dir: settings.data_dir,
        })
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        drop(self.handle.clone().stop(false));
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
