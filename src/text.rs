//! The one check for free text the API accepts: trimmed, within a length
//! counted in characters (not bytes), and free of control characters other
//! than newlines. Profiles, referrals, groups and sessions all use it, so a
//! limit and its message read the same everywhere.

use crate::error::{AppError, AppResult};

/// A text field's name and bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub field: &'static str,
    /// Fewest characters after trimming; 0 allows empty.
    pub min: usize,
    pub max: usize,
}

impl Limit {
    pub const fn new(field: &'static str, min: usize, max: usize) -> Self {
        Self { field, min, max }
    }

    /// The trimmed value, or a 422 naming the field.
    pub fn check(self, value: &str) -> AppResult<String> {
        self.check_as(self.field, value)
    }

    /// As `check`, reporting the error at `field` (a nested path such as
    /// `packet.note`).
    pub fn check_as(self, field: &str, value: &str) -> AppResult<String> {
        let value = value.trim();
        let len = value.chars().count();
        let name = self.field.replace('_', " ");
        if len < self.min {
            return Err(AppError::invalid_field(field, format!("Give the {name}.")));
        }
        if len > self.max {
            return Err(AppError::invalid_field(
                field,
                format!("The {name} is {len} characters; at most {} fit.", self.max),
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\n') {
            return Err(AppError::invalid_field(
                field,
                format!("Remove control characters from the {name}."),
            ));
        }
        Ok(value.to_string())
    }

    /// An optional field: absent or blank is `None`.
    pub fn optional(self, value: Option<&str>) -> AppResult<Option<String>> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => self.check(v).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn trims_counts_characters_and_names_the_field() {
        let name = Limit::new("name", 1, 5);
        assert_eq!(name.check("  Ana ").unwrap(), "Ana");
        assert_eq!(name.check("ÉÉÉÉÉ").unwrap(), "ÉÉÉÉÉ");
        let long = name.check("Anabel").unwrap_err();
        assert_eq!(long.field.as_deref(), Some("name"));
        assert!(long.message.contains("at most 5"));
        assert!(name.check("   ").is_err());
        assert!(name.check("a\u{7}b").is_err());
        assert_eq!(Limit::new("bio", 0, 9).check("a\nb").unwrap(), "a\nb");
        assert_eq!(Limit::new("note", 0, 9).optional(Some("  ")).unwrap(), None);
        assert_eq!(
            Limit::new("x", 0, 9)
                .check_as("packet.x", &"y".repeat(10))
                .unwrap_err()
                .field
                .as_deref(),
            Some("packet.x")
        );
    }
}
