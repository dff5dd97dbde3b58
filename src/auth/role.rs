//! A person's role in Kith: clinician, supervisor or administrator.

use std::str::FromStr;

use crate::error::AppError;

crate::text_enum! {
    /// What a person may do beyond their own clinical work.
    pub enum Role {
        Clinician = "clinician",
        Supervisor = "supervisor",
        Admin = "admin",
    }
}

/// For input that is not JSON (the command line): an unknown role names the field.
impl FromStr for Role {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
            .ok_or_else(|| AppError::invalid_field("role", format!("Unknown role `{s}`.")))
    }
}
