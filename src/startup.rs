//! Start-up: `Settings` in, a running server out. `main` and every test
//! start Kith through [`Application::build`].

use std::{net::SocketAddr, sync::Arc};

use actix_web::{App, HttpServer, dev::ServerHandle, middleware, web};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

use crate::{
    accounts, api::api_v1, audit, auth, clock::Clock, config::Settings, db, error, groups, health,
    http, notify, openapi, profiles, referrals, rooms, search, state::AppState,
};

impl AppState {
    /// Connects, checks the schema is current and loads the taxonomy.
    pub async fn new(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        Self::with_engine(settings, clock, None).await
    }

    /// As `new`, with a search engine chosen by the caller (tests); `None`
    /// picks Meilisearch when `MEILI_URL` is set and the embedded engine otherwise.
    pub async fn with_engine(
        settings: Settings,
        clock: Clock,
        engine: Option<Arc<dyn search::SearchIndex>>,
    ) -> anyhow::Result<Self> {
        db::ensure_migrated(settings.database_url()).await?;
        let pool = db::pool(settings.database_url(), settings.db_pool_size)?;
        let contact_keys =
            crate::seal::Keyring::new(&settings.contact_keys.current, &settings.contact_keys.older);
        let taxonomy = {
            let mut conn = pool.get().await?;
            let sealed = crate::referrals::contact::prepare(&mut conn, &contact_keys).await?;
            if sealed > 0 {
                tracing::info!(sealed, "client contacts stored in clear are now sealed");
            }
            crate::db::roles::warn_if_audit_is_writable(&mut conn).await?;
            profiles::taxonomy::Taxonomy::load(&mut conn).await?
        };
        let dummy = auth::password::hash(format!("dummy-{}", uuid::Uuid::new_v4()))
            .await
            .map_err(|e| anyhow::anyhow!("argon2 self-check failed: {e}"))?;
        let search_config =
            Arc::new(search::config::SearchConfig::load().map_err(anyhow::Error::msg)?);
        let (search, embedded) = match engine {
            Some(engine) => (engine, None),
            None => search::open_engine(&settings, search_config.clone())?,
        };
        Ok(Self {
            mailer: Arc::new(notify::mailer::Mailer::from_settings(&settings)?),
            courier_wake: Arc::new(tokio::sync::Notify::new()),
            search,
            embedded,
            hub: Arc::new(rooms::hub::Hub::new()),
            search_config,
            indexer_wake: Arc::new(tokio::sync::Notify::new()),
            tokens: Arc::new(auth::tokens::TokenKeys::new(&settings)),
            sessions: auth::sessions::SessionCache::new(clock.clone()),
            address_limits: crate::limits::AddressLimits::new(&settings.limits),
            sealer: crate::seal::Sealer::new(&settings.data_key),
            contact_keys,
            audit_key: crate::audit::chain::ChainKey::new(&settings.audit_key),
            taxonomy: Arc::new(taxonomy),
            dummy_password_hash: dummy.into(),
            settings: Arc::new(settings),
            clock,
            pool,
        })
    }
}

/// A running Kith server.
pub struct Application {
    addr: SocketAddr,
    server: actix_web::dev::Server,
    state: AppState,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        Self::build_with_engine(settings, clock, None).await
    }

    /// As `build`, with a search engine chosen by the caller (tests).
    pub async fn build_with_engine(
        settings: Settings,
        clock: Clock,
        engine: Option<Arc<dyn search::SearchIndex>>,
    ) -> anyhow::Result<Self> {
        install_crypto_provider();
        let listener = std::net::TcpListener::bind(&settings.addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.addr))?;
        let addr = listener.local_addr()?;
        let workers_count = settings.workers.max(1);
        let state = AppState::with_engine(settings, clock, engine).await?;
        // Known to the others before the first connection's presence is.
        rooms::heartbeat(&state).await?;
        let data = web::Data::new(state.clone());
        let per_worker_pool = state.settings.db_pool_size.div_ceil(workers_count);
        let web_dir = state.settings.web_dir.clone();
        let serve_web = web_dir.join("index.html").is_file();
        let mut doc = openapi::document();
        openapi::with_taxonomy(&mut doc, &state.taxonomy);
        let doc = web::Data::new(doc);
        let known_paths = web::Data::new(http::KnownPaths::from_document(&doc));

        let server = HttpServer::new(move || {
            // Each worker thread opens its own connections. A connection's
            // driver runs on the thread that opened it, so a handler's
            // pipelined queries then leave in one write, and no other thread
            // is woken to send them or to hand back the answers.
            let data = web::Data::new(AppState {
                pool: db::pool(data.settings.database_url(), per_worker_pool).unwrap_or_else(
                    |error| {
                        tracing::warn!(%error, "this worker shares the background pool");
                        data.pool.clone()
                    },
                ),
                ..data.get_ref().clone()
            });
            let (app, _) = App::new()
                .into_utoipa_app()
                .openapi(openapi::base())
                // Before the /api/v1 scope, which would otherwise claim this path.
                .route("/api/v1/openapi.json", web::get().to(openapi::serve))
                .configure(api_v1)
                .split_for_parts();
            let app = app
                .app_data(data.clone())
                .app_data(doc.clone())
                .app_data(known_paths.clone())
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    error::AppError::invalid_field(
                        "query",
                        format!("A query parameter is not valid: {err}"),
                    )
                    .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|_, _| {
                    error::AppError::not_found("There is nothing at this address.").into()
                }))
                .app_data(web::JsonConfig::default().limit(http::DEFAULT_BODY_LIMIT))
                .app_data(web::PayloadConfig::default().limit(http::DEFAULT_BODY_LIMIT))
                .route("/health", web::get().to(health::health))
                .route("/ready", web::get().to(health::ready));
            let app = if serve_web {
                app.service(
                    actix_files::Files::new("/", &web_dir)
                        .index_file("index.html")
                        .default_handler(web::to(health::not_found)),
                )
            } else {
                app
            };
            app.default_service(web::to(health::not_found))
                .wrap(middleware::from_fn(http::deadline))
                .wrap(security_headers(&data.settings.public_url))
                .wrap(middleware::ErrorHandlers::new().default_handler(http::json_error_fallback))
                .wrap(TracingLogger::<http::KithRootSpan>::new())
        })
        .workers(workers_count)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)?
        .run();

        if let Some(engine) = &state.embedded
            && engine.started_empty
        {
            let queued = crate::outbox::enqueue_all(&state.pool, state.clock.now()).await?;
            tracing::info!(
                queued,
                "new search index: every profile queued for indexing"
            );
        }
        let mut workers = vec![tokio::spawn(rooms::run(state.clone()))];
        if state.settings.run_workers {
            workers.push(tokio::spawn(audit::chain::run_sealer(
                state.pool.clone(),
                state.audit_key.clone(),
                audit::chain::Sinks {
                    checkpoints: audit::chain::Checkpoints::in_data_dir(&state.settings.data_dir),
                    email: state.settings.audit_checkpoint_email.clone(),
                    public_url: state.settings.public_url.clone(),
                },
                state.clock.clone(),
            )));
            workers.push(tokio::spawn(accounts::housekeeping::run(
                state.pool.clone(),
                state.clock.clone(),
                state.address_limits.clone(),
            )));
            workers.push(tokio::spawn(state.indexer().run(state.embedded.clone())));
            workers.push(tokio::spawn(referrals::run_worker(state.clone())));
            workers.push(tokio::spawn(state.courier().run()));
            workers.push(tokio::spawn(groups::sessions::run_reminders(state.clone())));
        }
        Ok(Self {
            addr,
            server,
            state,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped.
    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        for worker in self.workers {
            worker.abort();
        }
        if let Err(e) = rooms::shut_down(&self.state).await {
            tracing::warn!(error = %e, "rooms: could not close this instance's visits");
        }
        result
    }
}

impl AppState {
    pub fn courier(&self) -> notify::Courier {
        notify::Courier {
            pool: self.pool.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            wake: self.courier_wake.clone(),
        }
    }

    pub fn indexer(&self) -> search::indexer::Indexer {
        search::indexer::Indexer {
            pool: self.pool.clone(),
            engine: self.search.clone(),
            taxonomy: self.taxonomy.clone(),
            clock: self.clock.clone(),
            wake: self.indexer_wake.clone(),
        }
    }
}

/// The headers every answer carries; HSTS too when people reach Kith over https.
fn security_headers(public_url: &str) -> middleware::DefaultHeaders {
    let headers = middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        // The web client is plain modules from this origin: no inline code.
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ));
    if public_url.starts_with("https://") {
        headers.add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// rustls (behind the Meilisearch client) needs one process-wide crypto
/// provider; aws-lc-rs is the one jsonwebtoken already links.
pub fn install_crypto_provider() {
    // An error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
