//! What a member says in a room: a message (checked by the privacy guard,
//! rate-limited, written to the database first and delivered by the
//! listener) and the typing signal.

use std::time::Instant;

use super::{Conn, End, MAX_BODY_CHARS, Posted, ServerFrame, Signal, TYPING_EVERY, guard};
use crate::{error::AppResult, text::Limit};

impl Conn {
    pub(super) async fn say(
        &mut self,
        client_id: &str,
        body: &str,
        confirm: bool,
    ) -> Result<(), End> {
        let Some(group) = self.room.as_ref().map(|r| r.group) else {
            return self
                .send_text(ServerFrame::error("not_in_room", "Join a room first."))
                .await;
        };
        if Limit::new("client_id", 1, 64).clean(client_id).as_deref() != Ok(client_id) {
            return self
                .send_text(ServerFrame::error(
                    "invalid_frame",
                    "client_id must be 1 to 64 characters on one line, without spaces around it.",
                ))
                .await;
        }
        let refuse = |code: &'static str, message: String, retry: Option<u64>| {
            ServerFrame::Error {
                code,
                message,
                client_id: Some(client_id),
                retry_after_ms: retry,
            }
            .to_text()
        };
        let body = body.trim();
        if body.is_empty() {
            let frame = refuse("empty_message", "The message is empty.".into(), None);
            return self.send_text(frame).await;
        }
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            let frame = refuse(
                "message_too_long",
                format!("The message is {chars} characters; at most {MAX_BODY_CHARS} fit."),
                None,
            );
            return self.send_text(frame).await;
        }
        if let Err(message) = Limit::prose("message", 1, MAX_BODY_CHARS).clean(body) {
            let frame = refuse("invalid_text", message, None);
            return self.send_text(frame).await;
        }
        if !confirm {
            let findings = guard::scan(body);
            if !findings.is_empty() {
                let frame = ServerFrame::Warning {
                    client_id,
                    code: "possible_identifier",
                    message: "This message may identify a client. It was not sent: remove the marked parts, or send it again with confirm if it identifies no one.",
                    spans: &findings,
                }
                .to_text();
                return self.send_text(frame).await;
            }
        }
        let limits = &self.state.settings.rooms;
        if let Err(wait) =
            self.state
                .hub
                .allow_post(self.caller.user, limits.rate_messages, limits.rate_window)
        {
            let frame = refuse(
                "rate_limited",
                format!(
                    "At most {} messages per {} seconds. Wait a moment.",
                    limits.rate_messages,
                    limits.rate_window.as_secs()
                ),
                Some(wait.as_millis() as u64),
            );
            return self.send_text(frame).await;
        }
        let state = self.state.clone();
        let user = self.caller.user;
        let posted: AppResult<Posted> = async {
            let mut db = state.pool.get().await?;
            let posted =
                crate::rooms::post(&mut db, group, user, client_id, body, state.clock.now())
                    .await?;
            if let Posted::Stored(_) = posted {
                crate::signal::announce(&mut db, &Signal::Message { group }).await?;
            }
            Ok(posted)
        }
        .await;
        match posted {
            Ok(Posted::Stored(_)) => Ok(()),
            Ok(Posted::Duplicate(message)) => {
                self.send_text(ServerFrame::Message(&message).to_text())
                    .await
            }
            Ok(Posted::NotMember) => {
                self.leave().await;
                let frame = refuse(
                    "not_a_member",
                    "You are no longer a member of this group.".into(),
                    None,
                );
                self.send_text(frame).await
            }
            Ok(Posted::Muted(until)) => {
                let frame = refuse(
                    "muted",
                    format!(
                        "A moderator muted you in this group until {}.",
                        until.to_rfc3339()
                    ),
                    None,
                );
                self.send_text(frame).await
            }
            Err(e) => self.send_error(e, Some(client_id)).await,
        }
    }

    pub(super) async fn typing(&mut self) -> Result<(), End> {
        let Some(group) = self.room.as_ref().map(|r| r.group) else {
            return Ok(());
        };
        if self.last_typing.is_some_and(|t| t.elapsed() < TYPING_EVERY) {
            return Ok(());
        }
        self.last_typing = Some(Instant::now());
        let state = self.state.clone();
        let signal = Signal::Typing {
            group,
            user: self.caller.user,
            name: self.caller.name.clone(),
        };
        let result: AppResult<()> = async {
            let mut db = state.pool.get().await?;
            crate::signal::announce(&mut db, &signal).await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.send_error(e, None).await,
        }
    }
}
