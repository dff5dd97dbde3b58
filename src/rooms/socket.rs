//! One websocket connection: a task that selects over the socket, its queue
//! from the hub, a kill switch and a heartbeat. It writes to the database
//! first and lets the listener deliver, so every member sees one order.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix_ws::{AggregatedMessage as Message, CloseCode, CloseReason, ProtocolError};
use tokio::sync::mpsc;
use uuid::Uuid;

mod speak;

use super::{
    Posted, Signal,
    hub::{Cause, Connection, Kill, Outgoing},
    protocol::{self, ClientFrame, MAX_BODY_CHARS, MAX_FRAME_BYTES, ServerFrame},
};
use crate::{
    error::{AppError, AppResult, Code},
    groups::model::GroupRole,
    privacy as guard,
    state::AppState,
};

/// Who is on the other end.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Uuid,
    pub session: Uuid,
    pub name: String,
}

/// Typing signals are passed on at most this often per connection.
const TYPING_EVERY: Duration = Duration::from_secs(2);

/// On entering a room: the last message id, role, mute, and who is there.
type Entered = (
    i64,
    GroupRole,
    Option<chrono::DateTime<chrono::Utc>>,
    Vec<protocol::Person>,
);

struct InRoom {
    group: Uuid,
    visit: i64,
    /// The newest message id this connection has sent to its client.
    last_seen: i64,
}

struct Conn {
    state: AppState,
    caller: Caller,
    id: u64,
    session: actix_ws::Session,
    tx: mpsc::Sender<Outgoing>,
    kill: Arc<Kill>,
    room: Option<InRoom>,
    last_typing: Option<Instant>,
    /// When this connection's recent `join`, `resume` and `typing` frames came.
    control: std::collections::VecDeque<Instant>,
    /// Counts this socket among its person's until the connection ends.
    _slot: super::hub::SocketSlot,
}

/// Why the loop ended, and what to tell the client.
enum End {
    Gone,
    Close(CloseReason),
}

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_string()),
    }
}

/// A frame over the size limit, or a fragmented message whose pieces add up
/// to more (actix-ws reports the second as an I/O error with these words).
fn too_large(error: &ProtocolError) -> bool {
    match error {
        ProtocolError::Overflow => true,
        ProtocolError::Io(e) => e.to_string().contains("maximum continuation size"),
        _ => false,
    }
}

pub async fn serve(
    state: AppState,
    caller: Caller,
    session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    first_room: Option<Uuid>,
    slot: super::hub::SocketSlot,
) {
    let limits = state.settings.rooms.clone();
    let (tx, mut rx) = mpsc::channel(limits.queue.max(1));
    let kill = Arc::new(Kill::default());
    let mut conn = Conn {
        id: state.hub.connection_id(),
        state,
        caller,
        session,
        tx,
        kill: kill.clone(),
        room: None,
        last_typing: None,
        control: std::collections::VecDeque::new(),
        _slot: slot,
    };
    let mut stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let mut heartbeat = tokio::time::interval(limits.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();

    let mut end = match first_room {
        Some(group) => Box::pin(conn.join(group, None)).await.err(),
        None => None,
    };
    while end.is_none() {
        end = tokio::select! {
            biased;
            cause = kill.fired() => Some(match cause {
                Cause::TooSlow => End::Close(reason(CloseCode::Policy, "too_slow")),
                Cause::Removed => {
                    if let Some(group) = conn.room.as_ref().map(|r| r.group) {
                        let frame = ServerFrame::Removed { group_id: group }.to_text();
                        let _ = tokio::time::timeout(Duration::from_secs(1), conn.session.text(frame)).await;
                    }
                    End::Close(reason(CloseCode::Policy, "removed"))
                }
            }),
            Some(out) = rx.recv() => conn.forward(out).await.err(),
            frame = stream.recv() => {
                last_heard = Instant::now();
                match frame {
                    None => Some(End::Gone),
                    // Boxed: the database work inside is large, and an idle
                    // connection should not carry its space.
                    Some(Ok(Message::Text(text))) => Box::pin(conn.on_text(&text)).await.err(),
                    Some(Ok(Message::Binary(_))) => conn
                        .send_text(ServerFrame::error("binary_not_supported", "Send JSON text frames."))
                        .await
                        .err(),
                    Some(Ok(Message::Ping(bytes))) => {
                        conn.session.pong(&bytes).await.err().map(|_| End::Gone)
                    }
                    Some(Ok(Message::Close(_))) => Some(End::Gone),
                    Some(Ok(_)) => None,
                    // One frame over the limit, or a message whose continuation
                    // fragments add up to more: the same answer either way.
                    Some(Err(e)) if too_large(&e) => {
                        // The codec cannot find the next frame after this one: say why, then close.
                        let _ = conn
                            .send_text(ServerFrame::error(
                                "frame_too_large",
                                format!("Frames are limited to {} KiB.", MAX_FRAME_BYTES / 1024),
                            ))
                            .await;
                        Some(End::Close(reason(CloseCode::Size, "frame_too_large")))
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "rooms: protocol error");
                        Some(End::Gone)
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > limits.peer_timeout {
                    Some(End::Close(reason(CloseCode::Away, "timeout")))
                } else {
                    Box::pin(conn.beat()).await.err()
                }
            }
        };
    }
    Box::pin(conn.leave()).await;
    if let Some(End::Close(why)) = end {
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.session.close(Some(why))).await;
    }
}

impl Conn {
    /// Sends one frame, unless the connection is killed or the peer stops reading.
    async fn send_text(&mut self, text: impl Into<bytestring::ByteString>) -> Result<(), End> {
        let timeout = self.state.settings.rooms.peer_timeout;
        tokio::select! {
            biased;
            _ = self.kill.fired() => Err(End::Gone),
            sent = tokio::time::timeout(timeout, self.session.text(text)) => match sent {
                Ok(Ok(())) => Ok(()),
                _ => Err(End::Gone),
            },
        }
    }

    async fn send_error(&mut self, error: AppError, client_id: Option<&str>) -> Result<(), End> {
        let frame = ServerFrame::Error {
            code: error.code.as_str(),
            message: error.message.clone(),
            client_id,
            retry_after_ms: None,
        }
        .to_text();
        self.send_text(frame).await
    }

    /// A frame from the hub: passed on unless it is for another room or already sent.
    async fn forward(&mut self, out: Outgoing) -> Result<(), End> {
        let Some(room) = self.room.as_mut() else {
            return Ok(());
        };
        if out.group != room.group {
            return Ok(());
        }
        if let Some(id) = out.message_id {
            if id <= room.last_seen {
                return Ok(());
            }
            room.last_seen = id;
        }
        self.send_text(out.text).await
    }

    /// The heartbeat: the sign-in must still be valid; then ping.
    async fn beat(&mut self) -> Result<(), End> {
        let status = self
            .state
            .sessions
            .status(&self.state.pool, self.caller.session)
            .await;
        if let Ok(status) = status
            && !status.is_some_and(|s| s.active && s.user_id == self.caller.user)
        {
            self.send_text(ServerFrame::error(
                "session_ended",
                "This sign-in has ended. Sign in again.",
            ))
            .await?;
            return Err(End::Close(reason(CloseCode::Policy, "session_ended")));
        }
        self.session.ping(b"").await.map_err(|_| End::Gone)
    }

    async fn on_text(&mut self, text: &str) -> Result<(), End> {
        let frame = match protocol::parse(text) {
            Ok(frame) => frame,
            Err((code, message)) => return self.send_text(ServerFrame::error(code, message)).await,
        };
        if matches!(
            frame,
            ClientFrame::Join { .. } | ClientFrame::Resume { .. } | ClientFrame::Typing
        ) && let Err(wait) = self.allow_control()
        {
            let limits = &self.state.settings.rooms;
            let message = format!(
                "At most {} join, resume and typing frames per {} seconds on one connection.",
                limits.rate_control,
                limits.rate_window.as_secs()
            );
            return self
                .send_text(
                    ServerFrame::Error {
                        code: "rate_limited",
                        message,
                        client_id: None,
                        retry_after_ms: Some(wait.as_millis() as u64),
                    }
                    .to_text(),
                )
                .await;
        }
        match frame {
            ClientFrame::Join { group_id, after_id } => self.join(group_id, after_id).await,
            ClientFrame::Leave => {
                if let Some(group) = self.room.as_ref().map(|r| r.group) {
                    self.leave().await;
                    self.send_text(ServerFrame::Left { group_id: group }.to_text())
                        .await?;
                }
                Ok(())
            }
            ClientFrame::Say {
                client_id,
                body,
                confirm,
            } => self.say(&client_id, &body, confirm).await,
            ClientFrame::Typing => self.typing().await,
            ClientFrame::Resume { after_id } => match self.room.as_ref() {
                Some(room) => {
                    let (group, upto) = (room.group, room.last_seen);
                    self.replay(group, after_id, upto).await
                }
                None => {
                    self.send_text(ServerFrame::error("not_in_room", "Join a room first."))
                        .await
                }
            },
        }
    }

    /// Counts a control frame against the per-connection limit; the wait
    /// until the next one is allowed when over it.
    fn allow_control(&mut self) -> Result<(), Duration> {
        let limits = &self.state.settings.rooms;
        let now = Instant::now();
        while self
            .control
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.rate_window)
        {
            self.control.pop_front();
        }
        if self.control.len() >= limits.rate_control {
            let oldest = self.control.front().copied().unwrap_or(now);
            return Err(limits
                .rate_window
                .saturating_sub(now.duration_since(oldest)));
        }
        self.control.push_back(now);
        Ok(())
    }

    /// Enters a group's room (leaving any other), optionally replaying what came after `after_id`.
    async fn join(&mut self, group: Uuid, after_id: Option<i64>) -> Result<(), End> {
        self.leave().await;
        let entered = match self.enter(group).await {
            Ok(entered) => entered,
            Err(e) => return self.send_error(e, None).await,
        };
        let Some((last_id, role, muted_until, online)) = entered else {
            return self
                .send_text(ServerFrame::error(
                    "not_a_member",
                    "Only members of this group can enter its room.",
                ))
                .await;
        };
        self.send_text(
            ServerFrame::Joined {
                group_id: group,
                last_id,
                role,
                muted_until,
            }
            .to_text(),
        )
        .await?;
        self.send_text(
            ServerFrame::Presence {
                group_id: group,
                online: &online,
            }
            .to_text(),
        )
        .await?;
        self.tell_live_session(group).await?;
        if let Some(after) = after_id {
            self.replay(group, after, last_id).await?;
        }
        Ok(())
    }

    /// On entering: the session under way in this room, if any.
    async fn tell_live_session(&mut self, group: Uuid) -> Result<(), End> {
        let state = self.state.clone();
        let live: AppResult<_> = async {
            let mut db = state.pool.get().await?;
            crate::groups::sessions::live(&mut db, group).await
        }
        .await;
        match live {
            Ok(Some(s)) => {
                self.send_text(super::protocol::session_frame(group, &s))
                    .await
            }
            Ok(None) => Ok(()),
            Err(e) => self.send_error(e, None).await,
        }
    }

    /// Membership check, visit, registration with the hub. None when not a member.
    async fn enter(&mut self, group: Uuid) -> AppResult<Option<Entered>> {
        let state = self.state.clone();
        let now = state.clock.now();
        let mut db = state.pool.get().await?;
        let Some(member) = crate::groups::membership(&mut db, group, self.caller.user).await?
        else {
            return Ok(None);
        };
        if !crate::groups::sessions::may_enter(&mut db, group, self.caller.user).await? {
            return Err(AppError::new(
                Code::RoomLocked,
                "A session is under way and its host locked the room.",
            ));
        }
        // The room's starting point if it is new here: read before registering,
        // so a message committed in between is delivered, not skipped.
        let cursor = super::last_message_id(&mut db, group).await?;
        let visit =
            crate::visits::open(&mut db, state.hub.instance, group, self.caller.user, now).await?;
        let online = super::online(&state, &mut db, group).await?;
        state.hub.enter(
            group,
            self.id,
            Connection {
                user: self.caller.user,
                tx: self.tx.clone(),
                kill: self.kill.clone(),
            },
            cursor,
            online.clone(),
        );
        // Everything up to here is this connection's to fetch; later ones arrive live.
        let last_id = super::last_message_id(&mut db, group).await?;
        self.room = Some(InRoom {
            group,
            visit,
            last_seen: last_id,
        });
        super::announce(
            &mut db,
            &Signal::Presence {
                group,
                user: self.caller.user,
            },
        )
        .await?;
        Ok(Some((last_id, member.role, member.muted_at(now), online)))
    }

    /// Leaves the current room, if any: the visit ends and everyone is told.
    async fn leave(&mut self) {
        let Some(room) = self.room.take() else {
            return;
        };
        self.state.hub.exit(room.group, self.id);
        let state = self.state.clone();
        let user = self.caller.user;
        let result: AppResult<()> = async {
            let mut db = state.pool.get().await?;
            crate::visits::close(&mut db, room.visit, state.clock.now()).await?;
            super::announce(
                &mut db,
                &Signal::Presence {
                    group: room.group,
                    user,
                },
            )
            .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "rooms: could not record leaving a room");
        }
    }

    /// Sends the messages in (after, upto], then `replayed`.
    async fn replay(&mut self, group: Uuid, after: i64, upto: i64) -> Result<(), End> {
        // The newest `replay_cap` messages after `after`; older ones are for
        // HTTP history, so a replay's cost does not grow with the room's age.
        let cap = self.state.settings.rooms.replay_cap;
        let state = self.state.clone();
        let fetched: AppResult<_> = async {
            let mut db = state.pool.get().await?;
            super::messages_after(
                &mut db,
                group,
                (after.max(0), upto),
                cap as i64 + 1,
                super::Take::Newest,
            )
            .await
        }
        .await;
        let mut batch = match fetched {
            Ok(batch) => batch,
            Err(e) => return self.send_error(e, None).await,
        };
        let truncated = batch.len() > cap;
        if truncated {
            batch.remove(0);
        }
        for message in &batch {
            self.send_text(ServerFrame::Message(message).to_text())
                .await?;
        }
        self.send_text(
            ServerFrame::Replayed {
                group_id: group,
                after_id: after,
                last_id: upto,
                count: batch.len(),
                older_before: truncated.then(|| batch.first().map(|m| m.id)).flatten(),
            }
            .to_text(),
        )
        .await
    }
}
