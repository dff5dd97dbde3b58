//! A client's identifiers go nowhere but their sealed contact row and the
//! accepter's contact response: a run of referrals plants a distinctive
//! name, phone and email, and everything the server wrote is searched for
//! them — its logs, every email, the search documents as sent to the engine
//! (the embedded one, and Meilisearch when `MEILI_URL` is set), every table
//! but the sealed contacts, the audit log included.

use std::sync::{Arc, Mutex};

use kith::search::{
    ClinicianDoc, EngineResults, SearchIndex, SearchResult, config::SearchConfig,
    meili::MeiliEngine, query::SearchQuery,
};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::{
    referrals::colleague,
    support::{Clinician, TestApp},
};

const NAME: &str = "Quillon Vastergaard";
const PHONE: &str = "+1 (312) 555-0147";
const EMAIL: &str = "quillon.v@planted.example";
/// What would betray them, however a writer reformats it.
const TRACES: [&str; 6] = [
    "Quillon",
    "Vastergaard",
    "555-0147",
    "5550147",
    "quillon.v",
    "planted.example",
];

/// The engine the server uses, keeping a copy of every document sent to it.
struct Recording {
    inner: Arc<dyn SearchIndex>,
    sent: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl SearchIndex for Recording {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn apply_settings(&self) -> SearchResult<()> {
        self.inner.apply_settings().await
    }
    async fn apply(&self, upserts: Vec<ClinicianDoc>, deletes: Vec<Uuid>) -> SearchResult<()> {
        self.record(&upserts);
        self.inner.apply(upserts, deletes).await
    }
    async fn search(&self, query: &SearchQuery) -> SearchResult<EngineResults> {
        self.inner.search(query).await
    }
    async fn rebuild(&self, docs: Vec<ClinicianDoc>) -> SearchResult<()> {
        self.record(&docs);
        self.inner.rebuild(docs).await
    }
    async fn all_ids(&self) -> SearchResult<Vec<Uuid>> {
        self.inner.all_ids().await
    }
}

impl Recording {
    fn record(&self, docs: &[ClinicianDoc]) {
        let mut sent = self.sent.lock().unwrap();
        sent.extend(docs.iter().map(|d| serde_json::to_string(d).unwrap()));
    }
}

/// Everything the server logs, from here on (each test runs in a process of
/// its own under the suite's runner).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn planted(mode: &str, recipients: &[&Clinician]) -> serde_json::Value {
    json!({
        "mode": mode,
        "recipients": recipients.iter().map(|c| c.id).collect::<Vec<_>>(),
        "packet": {"age_band": "adult", "state": "NY", "concerns": ["anxiety"], "insurance": "aetna",
                   "telehealth_ok": true, "urgency": "soon", "note": "Worsening panic; evenings only.",
                   "location": {"lat": 40.712_84, "lng": -74.006_01}},
        "contact": {"full_name": NAME, "phone": PHONE, "email": EMAIL, "preferred_contact": "Text first"}
    })
}

/// The process's log, captured once for every test in it.
fn logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_env_filter(
                    "debug,tantivy=info,hyper=info,reqwest=info,h2=info,tokio_postgres=info",
                )
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .expect("no other test installs a global subscriber");
        logs
    })
    .clone()
}

async fn run(engine: Arc<dyn SearchIndex>) {
    let logs = logs();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let recording = Arc::new(Recording {
        inner: engine,
        sent: sent.clone(),
    });
    let app = TestApp::spawn_with_engine(|_| {}, Some(recording)).await;
    let ana = colleague(&app, "Ana", 0).await;
    let ben = colleague(&app, "Ben", 2).await;
    let cara = colleague(&app, "Cara", 1).await;
    let dev = colleague(&app, "Dev", 1).await;

    // Direct: opened, accepted, contact read, scheduled, completed.
    let id = ana.refer(planted("direct", &[&ben])).await;
    let path = format!("/api/v1/referrals/{id}");
    ben.get(&path).await.assert(StatusCode::OK);
    ben.post(&format!("{path}/accept"), json!({}))
        .await
        .assert(StatusCode::OK);
    let contact = ben.get(&format!("{path}/contact")).await;
    assert_eq!(
        contact.assert(StatusCode::OK)["full_name"],
        NAME,
        "the accepter gets it"
    );
    ben.post(
        &format!("{path}/schedule"),
        json!({"first_appointment_at": "2026-12-22T16:00:00Z"}),
    )
    .await
    .assert(StatusCode::OK);
    ben.post(
        &format!("{path}/complete"),
        json!({"outcome": "Seen; weekly from now."}),
    )
    .await
    .assert(StatusCode::OK);
    // Cascade: declined, then accepted onto a waitlist; a refused contact look.
    let id = ana.refer(planted("cascade", &[&cara, &dev])).await;
    let path = format!("/api/v1/referrals/{id}");
    cara.post(
        &format!("{path}/decline"),
        json!({"reason": "no_capacity", "note": "Full until March."}),
    )
    .await
    .assert(StatusCode::OK);
    cara.get(&format!("{path}/contact"))
        .await
        .assert(StatusCode::FORBIDDEN);
    dev.post(&format!("{path}/accept"), json!({"onto": "waitlist"}))
        .await
        .assert(StatusCode::OK);
    // Broadcast, withdrawn.
    let id = ana.refer(planted("broadcast", &[&ben, &cara])).await;
    ana.post(&format!("/api/v1/referrals/{id}/withdraw"), json!({}))
        .await
        .assert(StatusCode::OK);

    // Everything written down: mail sent, the index caught up, the audit sealed.
    app.eventually("every email is sent", async || {
        app.db
            .scalar_i64("SELECT count(*) FROM email_outbox WHERE sent_at IS NULL")
            .await
            == 0
    })
    .await;
    app.eventually("the index caught up", async || {
        app.db
            .scalar_i64("SELECT count(*) FROM search_outbox")
            .await
            == 0
    })
    .await;
    app.seal_audit().await;

    let mut places: Vec<(String, String)> = vec![];
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("/api/v1/referrals"),
        "the server's requests were logged"
    );
    places.push(("the server's logs".into(), logged));
    let mails = app.data_dir.join("mail");
    let mut mail_count = 0;
    for entry in std::fs::read_dir(&mails).expect("mail written as files") {
        let path = entry.unwrap().path();
        mail_count += 1;
        places.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    assert!(mail_count >= 5, "the run sent its notices ({mail_count})");
    let docs = sent.lock().unwrap().join("\n");
    assert!(docs.contains("Ben"), "documents were sent to the engine");
    places.push(("the search documents".into(), docs));
    let tables: Vec<String> = app
        .db
        .scalar_text(
            "SELECT string_agg(table_name, ' ') FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'referral_contacts'",
        )
        .await
        .split(' ')
        .map(str::to_string)
        .collect();
    assert!(tables.contains(&"audit_log".to_string()));
    for table in tables {
        let rows = app
            .db
            .scalar_text(&format!(
                "SELECT coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') FROM {table} t"
            ))
            .await;
        places.push((format!("the table {table}"), rows));
    }
    for (place, text) in &places {
        for trace in TRACES {
            assert!(!text.contains(trace), "{trace} appears in {place}");
        }
    }
    // The sealed row holds them, but not in clear.
    let sealed = app
        .db
        .scalar_text(
            "SELECT coalesce(string_agg(row_to_json(c)::text, ''), '') FROM referral_contacts c",
        )
        .await;
    for trace in TRACES {
        assert!(
            !sealed.contains(trace),
            "{trace} is in clear in referral_contacts"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_identifies_the_client_outside_the_sealed_contact_on_the_embedded_engine() {
    let dir = std::env::temp_dir().join(format!("kith-idx-{}", Uuid::new_v4().simple()));
    let engine = kith::search::embedded::EmbeddedEngine::open(
        dir.clone(),
        Arc::new(SearchConfig::load().unwrap()),
    )
    .unwrap();
    run(Arc::new(engine)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_identifies_the_client_outside_the_sealed_contact_on_meilisearch() {
    let Ok(url) = std::env::var("MEILI_URL") else {
        eprintln!(
            "SKIPPED: the Meilisearch part (MEILI_URL is not set; scripts/test sets it when a server is beside the checkout)"
        );
        return;
    };
    kith::install_crypto_provider();
    let key = std::env::var("MEILI_MASTER_KEY").ok();
    let uid = format!("kith_identifiers_{}", Uuid::new_v4().simple());
    let engine =
        MeiliEngine::with_index(&url, key.as_deref(), &SearchConfig::load().unwrap(), &uid)
            .unwrap();
    engine.apply_settings().await.unwrap();
    run(Arc::new(engine)).await;
}
