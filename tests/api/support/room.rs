//! A person's websocket connection to a group's room.

use serde_json::{Value, json};

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

    /// Waits until the server closes the connection (at most 5 s): the
    /// frames seen before, and the close code it gave.
    pub async fn closed_with_code(&mut self) -> (Vec<Value>, Option<u16>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("the connection stayed open; saw {seen:?}"));
            match next {
                Some(Ok(Message::Text(text))) => {
                    seen.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Close(frame))) => return (seen, frame.map(|f| u16::from(f.code))),
                None | Some(Err(_)) => return (seen, None),
                Some(Ok(_)) => {}
            }
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
