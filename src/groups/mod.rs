//! Peer consultation groups: creating them, membership with roles
//! (host, moderator, member), invitations by email, requests to join a
//! listed group, leaving, and the moderation of members (mute, remove).
//! The room itself — messages, presence — lives in `rooms`.
//!
//! Files by action: `crud` (create, list, view, edit), `invites`
//! (inviting, asking to join), `answers` (accepting, declining, withdrawing),
//! `members` (roles, mutes, removal, leaving),
//! `sessions/` (scheduled sessions, attendance and the hours ledger); `store`
//! holds the queries they share.

mod answers;
mod crud;
mod invites;
mod members;
pub mod model;
pub mod sessions;
pub(crate) mod store;

pub use store::{membership, require_member};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(crud::create_group)
        .service(crud::list_groups)
        .service(crud::view_group)
        .service(crud::edit_group)
        .service(members::list_members)
        .service(invites::invite_member)
        .service(invites::list_invites)
        .service(answers::revoke_invite)
        .service(invites::request_to_join)
        .service(answers::accept_invite)
        .service(answers::decline_invite)
        .service(members::leave_group)
        .service(members::change_role)
        .service(members::remove_member)
        .service(members::mute_member);
    sessions::routes(cfg);
}
