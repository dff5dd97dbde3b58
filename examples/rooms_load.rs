//! Load for the rooms benchmark (`scripts/bench-rooms`): idle connections and
//! the server's memory per connection; then a large room receiving a steady
//! stream of messages, and the time from `say` to delivery at every member.
//! Runs against Kith (`kith`, one or two instances) or the bare actix-ws
//! floor (`floor`, see `ws_floor.rs`).

// A benchmark tool: it stops at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::async_yields_async,
    clippy::needless_range_loop
)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Target {
    Kith,
    Floor,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(value_enum)]
    target: Target,
    /// Base URL of each instance, comma separated (two for the cross-instance room).
    #[arg(long, value_delimiter = ',')]
    http: Vec<String>,
    /// Server process id of each instance, for its memory.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// How long the idle connections are held (past heartbeats and timeouts).
    #[arg(long, default_value_t = 35)]
    hold_seconds: u64,
    #[arg(long, default_value_t = 1_000)]
    members: usize,
    /// Messages per second into the room.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value = "http://bench.local")]
    origin: String,
}

const PASSWORD: &str = "lantern orbit cobalt rain";
const SENDERS: usize = 100;

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

struct Person {
    email: String,
    token: String,
}

struct Kith {
    http: reqwest::Client,
    bases: Vec<String>,
    origin: String,
}

impl Kith {
    async fn call(&self, base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = self.http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let value: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn register(&self, run: &str, n: usize) -> Vec<Person> {
        stream::iter(0..n)
            .map(|i| async move {
                let email = format!("bench-{run}-{i}@bench.example");
                let v = self
                    .call(
                        &self.bases[0],
                        "/api/v1/auth/register",
                        None,
                        json!({"email": email, "password": PASSWORD, "display_name": format!("Member {i}")}),
                    )
                    .await;
                Person {
                    email,
                    token: v["access_token"].as_str().expect("token").to_string(),
                }
            })
            .buffered(4)
            .collect()
            .await
    }

    async fn ws_url(&self, instance: usize, person: &Person, group: Option<&str>) -> String {
        let base = &self.bases[instance];
        let v = self
            .call(
                base,
                "/api/v1/ws/ticket",
                Some(&person.token),
                json!({"group_id": group}),
            )
            .await;
        format!(
            "{}{}",
            base.replace("http://", "ws://"),
            v["url"].as_str().expect("url")
        )
    }
}

async fn open(
    url: &str,
    origin: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = url.into_client_request().expect("url");
    req.headers_mut()
        .insert("origin", origin.parse().expect("origin"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    ws
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let run = format!("{:x}", std::process::id());
    let kith = Kith {
        http: reqwest::Client::new(),
        bases: args.http.clone(),
        origin: args.origin.clone(),
    };
    let label = match args.target {
        Target::Kith => "Kith",
        Target::Floor => "bare actix-ws floor",
    };

    let people = if args.target == Target::Kith {
        let t = Instant::now();
        let people = kith.register(&run, args.members).await;
        eprintln!("registered {} members in {:.1?}", people.len(), t.elapsed());
        people
    } else {
        Vec::new()
    };

    // 1. Idle connections: memory per connection, measured between the first
    // tenth and all of them (so what the process held before does not count).
    if args.idle > 0 {
        let pid = args.pid[0];
        let mut urls = Vec::with_capacity(args.idle);
        for i in 0..args.idle {
            urls.push(match args.target {
                Target::Kith => kith.ws_url(0, &people[i % people.len()], None).await,
                Target::Floor => format!("{}/ws", args.http[0].replace("http://", "ws://")),
            });
        }
        let open_now = Arc::new(AtomicUsize::new(0));
        let first = args.idle / 10;
        let rest = urls.split_off(first);
        let t = Instant::now();
        let mut readers = open_idle(urls, &kith.origin, &open_now).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let at_first = rss_kib(pid);
        readers.extend(open_idle(rest, &kith.origin, &open_now).await);
        let opened = t.elapsed();
        tokio::time::sleep(Duration::from_secs(args.hold_seconds)).await;
        let after = rss_kib(pid);
        let still = open_now.load(Ordering::Relaxed);
        println!(
            "{label}: {} idle connections opened in {:.1?}, {still} still open after {} s; server RSS {:.1} MiB with {first}, {:.1} MiB with all: {:.1} KiB per connection",
            args.idle,
            opened,
            args.hold_seconds,
            at_first as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(at_first) as f64 / (args.idle - first) as f64
        );
        for r in readers {
            r.abort();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // 2. The big room, on one instance, then spread over all of them.
    let group = if args.target == Target::Kith {
        let host = &people[0];
        let g = kith
            .call(
                &kith.bases[0],
                "/api/v1/groups",
                Some(&host.token),
                json!({"name": "Benchmark room"}),
            )
            .await;
        let group = g["id"].as_str().expect("group").to_string();
        let t = Instant::now();
        stream::iter(people.iter().skip(1))
            .map(|p| {
                let kith = &kith;
                let group = group.clone();
                let host = host.token.clone();
                async move {
                    let invite = kith
                        .call(
                            &kith.bases[0],
                            &format!("/api/v1/groups/{group}/invites"),
                            Some(&host),
                            json!({"email": p.email}),
                        )
                        .await;
                    let id = invite["id"].as_str().expect("invite").to_string();
                    kith.call(
                        &kith.bases[0],
                        &format!("/api/v1/group-invites/{id}/accept"),
                        Some(&p.token),
                        json!({}),
                    )
                    .await;
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        eprintln!(
            "{} members joined the group in {:.1?}",
            people.len(),
            t.elapsed()
        );
        Some(group)
    } else {
        None
    };
    let spreads: Vec<usize> = if args.http.len() > 1 {
        vec![1, args.http.len()]
    } else {
        vec![1]
    };
    for (run, instances) in spreads.into_iter().enumerate() {
        let offset = if args.members >= 4 * SENDERS * 2 {
            run * 2 * SENDERS * 2
        } else {
            0
        };
        room_run(
            &args,
            &kith,
            &people,
            group.as_deref(),
            instances,
            label,
            offset,
        )
        .await;
    }
}

async fn open_idle(
    urls: Vec<String>,
    origin: &str,
    open_now: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    stream::iter(urls)
        .map(|url| {
            let origin = origin.to_string();
            let open_now = open_now.clone();
            async move {
                let mut ws = open(&url, &origin).await;
                open_now.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    // Reading answers the server's pings.
                    while let Some(Ok(_)) = ws.next().await {}
                    open_now.fetch_sub(1, Ordering::Relaxed);
                })
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// A time stamp in letters, so the privacy guard has no digits to worry about.
fn stamp(mut micros: u64) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (micros % 26) as u8);
        micros /= 26;
        if micros == 0 {
            break;
        }
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

fn unstamp(text: &str) -> Option<u64> {
    let letters: Vec<u8> = text.bytes().take_while(u8::is_ascii_lowercase).collect();
    if letters.is_empty() {
        return None;
    }
    Some(
        letters
            .iter()
            .fold(0u64, |n, l| n * 26 + u64::from(l - b'a')),
    )
}

async fn room_run(
    args: &Args,
    kith: &Kith,
    people: &[Person],
    group: Option<&str>,
    instances: usize,
    label: &str,
    sender_offset: usize,
) {
    let members = args.members;
    let refusals = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    // Samples count from the end of the warm-up; set when sending gets there.
    let measure_from = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut sinks: Vec<Arc<tokio::sync::Mutex<Sink>>> = Vec::new();
    let mut readers = Vec::new();
    for i in 0..members {
        let instance = i % instances;
        let url = match args.target {
            Target::Kith => kith.ws_url(instance, &people[i], group).await,
            Target::Floor => format!("{}/ws", args.http[instance].replace("http://", "ws://")),
        };
        let ws = open(&url, &kith.origin).await;
        let (sink, mut stream) = ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        // 100 senders, each well inside the rate limit (10 per 10 s) even
        // with jitter; fresh ones each run, as the limit remembers 10 s.
        if sinks.len() < SENDERS && instance == 0 && i >= sender_offset {
            sinks.push(sink.clone());
        }
        let measure_from = measure_from.clone();
        let refusals = refusals.clone();
        let mut stop = stop_rx.clone();
        readers.push(tokio::spawn(async move {
            let _keep_open = sink;
            let mut samples: Vec<u32> = Vec::new();
            loop {
                let frame = tokio::select! {
                    _ = stop.changed() => break,
                    frame = stream.next() => frame,
                };
                let Some(Ok(Message::Text(text))) = frame else {
                    if matches!(frame, Some(Ok(_))) {
                        continue;
                    }
                    break;
                };
                let Some(at) = text.find("\"body\":\"t:") else {
                    if text.starts_with("{\"type\":\"error\"")
                        || text.starts_with("{\"type\":\"warning\"")
                    {
                        refusals.fetch_add(1, Ordering::Relaxed);
                        eprintln!("refused: {text}");
                    }
                    continue;
                };
                if let Some(sent) = unstamp(&text[at + 10..])
                    && sent >= measure_from.load(Ordering::Relaxed)
                {
                    samples.push(micros(start).saturating_sub(sent) as u32);
                }
            }
            (instance, samples)
        }));
    }
    // Let joins and presence settle before sending.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let senders = sinks.len().max(1);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate));
    let warmup = args.rate * 2;
    let total = warmup + args.rate * args.seconds;
    for k in 0..total {
        tick.tick().await;
        let now = micros(start);
        if k == warmup {
            measure_from.store(now, Ordering::Relaxed);
        }
        let frame = json!({"type": "say", "client_id": format!("k{k}"), "body": format!("t:{}", stamp(now))});
        let sink = sinks[(k as usize) % senders].clone();
        tokio::spawn(async move {
            let _ = sink
                .lock()
                .await
                .send(Message::text(frame.to_string()))
                .await;
        });
    }
    let measured = total - warmup;
    // Stragglers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(true);
    let mut same = Vec::new();
    let mut cross = Vec::new();
    for r in readers {
        if let Ok((instance, samples)) = r.await {
            if instance == 0 {
                same.extend(samples);
            } else {
                cross.extend(samples);
            }
        }
    }
    let delivered = same.len() + cross.len();
    let expected = measured as usize * members;
    let report = |name: &str, v: &mut Vec<u32>| {
        v.sort_unstable();
        if !v.is_empty() {
            println!(
                "{label}: {name}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries)",
                percentile(v, 0.5),
                percentile(v, 0.99),
                percentile(v, 1.0),
                v.len()
            );
        }
    };
    println!(
        "{label}: room of {members} members on {instances} instance(s), {} messages/s for {} s (after 2 s warm-up): {delivered} of {expected} deliveries, {} sends refused",
        args.rate,
        args.seconds,
        refusals.load(Ordering::Relaxed)
    );
    report(
        "say -> delivery, members on the sender's instance",
        &mut same,
    );
    report("say -> delivery, members on the other instance", &mut cross);
    if let Some(pid) = args.pid.first() {
        println!(
            "{label}: server RSS with {members} room connections: {:.1} MiB",
            rss_kib(*pid) as f64 / 1024.0
        );
    }
}
