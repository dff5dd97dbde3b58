//! Stories the tests share: the password everyone uses, tickets, entering a
//! room, and a group with members in it.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{Clinician, ORIGIN, Room, open_ws};

pub const PASSWORD: &str = "lantern orbit cobalt rain";

impl Clinician {
    /// This person talking to another instance of the same deployment.
    pub fn via(&self, base: &str) -> Self {
        let mut other = self.clone();
        other.base = base.to_string();
        other
    }

    /// Sends a referral that must be created; its id.
    pub async fn refer(&self, body: serde_json::Value) -> String {
        self.post("/api/v1/referrals", body)
            .await
            .assert(StatusCode::CREATED)["id"]
            .as_str()
            .expect("the referral's id")
            .to_string()
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
