//! A licence verification that sticks: an administrator verifies the states
//! a profile claims (with its number as it was then); the owner's edits keep
//! only what still holds — a new number clears every state, a state no longer
//! claimed leaves — and administrators are told what changed. Only verified
//! states count for referrals and match.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    auth::Role,
    db::{
        Reuse,
        schema::{profiles, users},
    },
    error::{AppError, AppResult},
    notify,
};

/// The states an administrator may mark verified for `user`: those asked
/// for, each of which the profile must claim, or every claimed one.
pub async fn verifiable_states(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    asked: Option<Vec<String>>,
) -> AppResult<Vec<String>> {
    let claimed: Vec<String> = profiles::table
        .find(user)
        .select(profiles::license_states)
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AppError::not_found("No such clinician profile."))?;
    let states = match asked {
        None => claimed.clone(),
        Some(asked) => asked.iter().map(|s| s.trim().to_uppercase()).collect(),
    };
    if states.is_empty() {
        return Err(AppError::invalid_field(
            "states",
            "The profile names no licence state to verify.",
        ));
    }
    if let Some(unclaimed) = states.iter().find(|s| !claimed.contains(s)) {
        return Err(AppError::invalid_field(
            "states",
            format!("The profile does not claim a licence in {unclaimed}."),
        ));
    }
    Ok(states)
}

/// Marks `states` verified by an administrator (`by`: when, who); an empty
/// list withdraws the verification.
pub async fn set_verified(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    states: &[String],
    by: (DateTime<Utc>, Uuid),
) -> QueryResult<()> {
    let verified = !states.is_empty();
    diesel::update(profiles::table.find(user_id))
        .set((
            profiles::verified_states.eq(states),
            profiles::verified_at.eq(verified.then_some(by.0)),
            profiles::verified_by.eq(verified.then_some(by.1)),
        ))
        .reused()
        .execute(conn)
        .await?;
    Ok(())
}

/// A licence as stored, read for an edit.
#[derive(Debug, Queryable)]
pub struct Licence {
    pub states: Vec<String>,
    pub number: Option<String>,
    pub verified_states: Vec<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<Uuid>,
}

/// `user`'s licence, locked until the caller's transaction ends.
pub async fn locked(conn: &mut AsyncPgConnection, user: Uuid) -> AppResult<Licence> {
    profiles::table
        .find(user)
        .select((
            profiles::license_states,
            profiles::license_number,
            profiles::verified_states,
            profiles::verified_at,
            profiles::verified_by,
        ))
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AppError::not_found("No such clinician profile."))
}

/// What an edit did to a licence.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub number_changed: bool,
    /// Verified states the edit cleared.
    pub unverified: Vec<String>,
    /// What stays verified.
    pub verified: Vec<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && !self.number_changed
    }

    /// Whether administrators need to hear of it: a verification was lost, or
    /// a verified clinician claims a state still to check. (A first claim by
    /// a clinician nobody verified yet is not news.)
    pub fn concerns_administrators(&self) -> bool {
        !self.unverified.is_empty() || (!self.verified.is_empty() && !self.added.is_empty())
    }
}

impl Licence {
    /// The licence after the owner claims `states` and `number`.
    pub fn edited(&self, states: &[String], number: Option<&str>) -> Change {
        let number_changed = self.number.as_deref().map(str::trim) != number.map(str::trim);
        let verified: Vec<String> = if number_changed {
            vec![]
        } else {
            self.verified_states
                .iter()
                .filter(|s| states.contains(s))
                .cloned()
                .collect()
        };
        Change {
            added: states
                .iter()
                .filter(|s| !self.states.contains(s))
                .cloned()
                .collect(),
            removed: self
                .states
                .iter()
                .filter(|s| !states.contains(s))
                .cloned()
                .collect(),
            number_changed,
            unverified: self
                .verified_states
                .iter()
                .filter(|s| !verified.contains(s))
                .cloned()
                .collect(),
            verified,
        }
    }
}

fn list(states: &[String]) -> String {
    if states.is_empty() {
        "none".into()
    } else {
        states.join(", ")
    }
}

/// Tells every enabled administrator that `name` changed their licence.
pub async fn tell_administrators(
    conn: &mut AsyncPgConnection,
    public_url: &str,
    name: &str,
    change: &Change,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let admins: Vec<Uuid> = users::table
        .filter(users::role.eq(Role::Admin))
        .filter(users::disabled_at.is_null())
        .select(users::id)
        .load(conn)
        .await?;
    let mut what = Vec::new();
    if !change.added.is_empty() {
        what.push(format!("added {}", list(&change.added)));
    }
    if !change.removed.is_empty() {
        what.push(format!("removed {}", list(&change.removed)));
    }
    if change.number_changed {
        what.push("changed the licence number".into());
    }
    let message = format!(
        "{name} {} on their profile. Still verified: {}; no longer verified: {}. Check the licence before verifying it again.",
        what.join(", "),
        list(&change.verified),
        list(&change.unverified),
    );
    for admin in admins {
        let notice = notify::Notice {
            kind: "license_changed",
            referral: None,
            group: None,
            session: None,
            message: message.clone(),
            email_subject: Some(format!("{name} changed their licence")),
        };
        notify::tell(conn, public_url, admin, notice, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn licence(states: &[&str], number: &str, verified: &[&str]) -> Licence {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Licence {
            states: v(states),
            number: Some(number.into()),
            verified_states: v(verified),
            verified_at: None,
            verified_by: None,
        }
    }

    fn states(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_new_state_is_unverified_and_a_dropped_one_leaves() {
        let before = licence(&["NY", "NJ"], "NY-1", &["NY", "NJ"]);
        let change = before.edited(&states(&["NY", "CA"]), Some("NY-1"));
        assert_eq!(change.verified, ["NY"]);
        assert_eq!(change.unverified, ["NJ"]);
        assert_eq!(
            (change.added, change.removed),
            (states(&["CA"]), states(&["NJ"]))
        );
    }

    #[test]
    fn a_new_number_clears_every_state() {
        let before = licence(&["NY", "NJ"], "NY-1", &["NY", "NJ"]);
        let change = before.edited(&states(&["NY", "NJ"]), Some("NY-2"));
        assert!(change.verified.is_empty());
        assert_eq!(change.unverified, ["NY", "NJ"]);
        assert!(!change.is_empty());
    }

    #[test]
    fn the_same_licence_changes_nothing() {
        let before = licence(&["NY"], "NY-1", &["NY"]);
        let change = before.edited(&states(&["NY"]), Some(" NY-1 "));
        assert!(change.is_empty());
        assert_eq!(change.verified, ["NY"]);
    }
}
