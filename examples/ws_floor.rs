//! The floor for the rooms benchmark: a bare actix-ws server with one room
//! and nothing else — no sign-in, no database, no JSON. Every text frame a
//! client sends goes to every connection, through the same bounded
//! per-connection queues Kith uses. `scripts/bench-rooms` runs the same load
//! against this and against Kith.
//!
//! Usage: cargo run --release --example ws_floor -- 127.0.0.1:18090

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_ws::AggregatedMessage;
use bytestring::ByteString;
use tokio::sync::mpsc;

#[derive(Default)]
struct Room {
    next: AtomicU64,
    members: Mutex<HashMap<u64, mpsc::Sender<ByteString>>>,
}

async fn connect(
    req: HttpRequest,
    body: web::Payload,
    room: web::Data<Arc<Room>>,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let room = room.get_ref().clone();
    let id = room.next.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<ByteString>(256);
    room.members
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, tx);
    actix_web::rt::spawn(async move {
        let mut stream = stream.max_frame_size(16 * 1024).aggregate_continuations();
        loop {
            tokio::select! {
                Some(text) = rx.recv() => {
                    if session.text(text).await.is_err() { break; }
                }
                frame = stream.recv() => match frame {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        let members = room.members.lock().unwrap_or_else(|p| p.into_inner());
                        for member in members.values() {
                            let _ = member.try_send(text.clone());
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() { break; }
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        room.members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    });
    Ok(response)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let room = web::Data::new(Arc::new(Room::default()));
    HttpServer::new(move || {
        App::new()
            .app_data(room.clone())
            .route("/ws", web::get().to(connect))
    })
    .workers(2)
    .bind(addr)?
    .run()
    .await
}
