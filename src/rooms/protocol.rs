//! The rooms protocol: JSON text frames, `{"type": ...}` tagged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::groups::model::GroupRole;
use crate::privacy::Finding;

/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Enter a group's room; with `after_id`, also replay what came after it.
    Join {
        group_id: Uuid,
        #[serde(default)]
        after_id: Option<i64>,
    },
    Leave,
    Say {
        /// The client's own id for this message, echoed back; a retry with the
        /// same id is stored once.
        client_id: String,
        body: String,
        /// Send even though the privacy guard warned.
        #[serde(default)]
        confirm: bool,
    },
    Typing,
    /// Replay every message after this id (after a reconnect).
    Resume {
        after_id: i64,
    },
}

pub use crate::auth::users::Person;

/// A message as members see it; a deleted one is a tombstone without a body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub group_id: Uuid,
    pub author: Person,
    pub body: Option<String>,
    pub at: DateTime<Utc>,
    pub client_id: Option<String>,
    pub deleted: bool,
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// You are in the room; messages after `last_id` will reach you live.
    Joined {
        group_id: Uuid,
        last_id: i64,
        role: GroupRole,
        muted_until: Option<DateTime<Utc>>,
    },
    Left {
        group_id: Uuid,
    },
    Message(&'a MessageView),
    /// The end of a replay: everything up to `last_id` has been sent.
    Replayed {
        group_id: Uuid,
        after_id: i64,
        last_id: i64,
        count: usize,
        /// Set when the replay stopped at its cap: older messages after
        /// `after_id` are there to page through `GET /groups/{id}/messages`
        /// with `before` this id.
        #[serde(skip_serializing_if = "Option::is_none")]
        older_before: Option<i64>,
    },
    /// A message was deleted by a moderator or its author.
    Deleted {
        group_id: Uuid,
        id: i64,
    },
    /// Who is in the room now (sent on joining).
    Presence {
        group_id: Uuid,
        online: &'a [Person],
    },
    /// Someone came or went.
    PresenceChange {
        group_id: Uuid,
        user: &'a Person,
        online: bool,
    },
    Typing {
        group_id: Uuid,
        user: &'a Person,
    },
    /// The privacy guard held a message: send it again with `confirm: true` to post it.
    Warning {
        client_id: &'a str,
        code: &'static str,
        message: &'static str,
        spans: &'a [Finding],
    },
    /// Your role or mute in the group changed.
    Membership {
        group_id: Uuid,
        role: GroupRole,
        muted_until: Option<DateTime<Utc>>,
    },
    Removed {
        group_id: Uuid,
    },
    /// A hosted session in this room: `live`, `ended`, `cancelled` or `scheduled`.
    Session {
        group_id: Uuid,
        session_id: Uuid,
        state: &'a str,
        title: &'a str,
        /// Only the people present when it was locked may enter.
        locked: bool,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> String {
        // Serialising these types cannot fail: no maps with non-string keys.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"server_error","message":"frame"}"#.into()
        })
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> String {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id: None,
            retry_after_ms: None,
        }
        .to_text()
    }
}

/// Why a frame could not be read, as an error code and words.
pub fn parse(text: &str) -> Result<ClientFrame, (&'static str, String)> {
    // A NUL can only arrive escaped; a frame without `\u0000` holds none.
    let parsed = if text.contains("\\u0000") {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| ("invalid_json", "The message is not valid JSON.".to_string()))?;
        if let Some(field) = crate::text::find_nul(&value) {
            return Err((
                "invalid_frame",
                format!("Remove the NUL character (\\u0000) from {field}."),
            ));
        }
        serde_json::from_value(value)
    } else {
        serde_json::from_str(text)
    };
    parsed.map_err(|e| match e.classify() {
        serde_json::error::Category::Data if e.to_string().starts_with("unknown variant") => (
            "unknown_type",
            "Unknown message type: use join, leave, say, typing or resume.".to_string(),
        ),
        serde_json::error::Category::Data => (
            "invalid_frame",
            format!("The message is missing something or has a wrong value: {e}"),
        ),
        _ => ("invalid_json", "The message is not valid JSON.".to_string()),
    })
}

/// The room's `session` frame for a group's session.
pub fn session_frame(group: Uuid, session: &crate::groups::sessions::LiveSession) -> String {
    ServerFrame::Session {
        group_id: group,
        session_id: session.id,
        state: session.status.as_str(),
        title: &session.title,
        locked: session.locked_at.is_some(),
    }
    .to_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_or_refused_with_a_reason() {
        assert!(matches!(
            parse(r#"{"type":"say","client_id":"c1","body":"hi"}"#),
            Ok(ClientFrame::Say { confirm: false, .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"resume","after_id":12}"#),
            Ok(ClientFrame::Resume { after_id: 12 })
        ));
        assert_eq!(parse("{not json").err().map(|e| e.0), Some("invalid_json"));
        assert_eq!(
            parse(r#"{"type":"dance"}"#).err().map(|e| e.0),
            Some("unknown_type")
        );
        assert_eq!(
            parse(r#"{"type":"say","body":"no id"}"#).err().map(|e| e.0),
            Some("invalid_frame")
        );
        assert_eq!(
            parse(r#"{"type":"say","client_id":"c1","body":"a\u0000b"}"#)
                .err()
                .map(|e| e.0),
            Some("invalid_frame")
        );
    }

    #[test]
    fn a_message_frame_carries_the_message_fields_at_top_level() {
        let message = MessageView {
            id: 7,
            group_id: Uuid::nil(),
            author: Person {
                id: Uuid::nil(),
                name: "Ana".into(),
            },
            body: Some("hello".into()),
            at: DateTime::<Utc>::UNIX_EPOCH,
            client_id: Some("c-1".into()),
            deleted: false,
        };
        let v: serde_json::Value =
            serde_json::from_str(&ServerFrame::Message(&message).to_text()).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["id"], 7);
        assert_eq!(v["author"]["name"], "Ana");
        assert_eq!(v["client_id"], "c-1");
    }
}
