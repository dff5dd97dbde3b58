//! The one check for text the API accepts. Every string that arrives (JSON
//! bodies, query parameters, websocket frames) is refused with a 422 naming
//! its field if it holds a NUL, which PostgreSQL text cannot store; free text
//! people write is further checked by a [`Limit`]: trimmed, within a length
//! counted in characters (as JSON Schema's `maxLength` counts them, before
//! trimming), free of control characters (newlines and tabs only where a
//! field is multi-line) and of bidirectional overrides, and not made only of
//! spaces and invisible characters. [`text_types!`] turns a limit into a field
//! type whose deserialization applies it and whose schema says it, so the
//! OpenAPI document and the server cannot disagree.

use crate::error::{AppError, AppResult};

/// Whether a field is one line (names, titles) or many (notes, bios).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// A text field's name and bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub field: &'static str,
    /// Fewest visible characters; 0 allows empty.
    pub min: usize,
    /// Most characters, as sent.
    pub max: usize,
    pub lines: Lines,
}

/// Characters no field takes: C0 and C1 controls, DEL, and the embeddings,
/// overrides and isolates that reorder how text around them is shown.
const REFUSED: &str = r"\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069";
/// As `REFUSED`, for multi-line fields, which also take tab, newline and return.
const REFUSED_MANY: &str =
    r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069";
/// Spaces (Unicode White_Space) and characters that show nothing.
const BLANK: &str = r"\u0009-\u000d\u0020\u0085\u00a0\u00ad\u1680\u180e\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff";

fn refused(c: char, lines: Lines) -> bool {
    let control = c.is_control() && !(lines == Lines::Many && matches!(c, '\n' | '\t' | '\r'));
    control || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whitespace and the zero-width characters a name made only of would hide.
fn blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{ad}' | '\u{180e}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

impl Limit {
    pub const fn new(field: &'static str, min: usize, max: usize) -> Self {
        Self {
            field,
            min,
            max,
            lines: Lines::One,
        }
    }

    /// A multi-line field (newlines and tabs allowed).
    pub const fn prose(field: &'static str, min: usize, max: usize) -> Self {
        Self {
            field,
            min,
            max,
            lines: Lines::Many,
        }
    }

    /// The trimmed value, or the sentence saying what is wrong with it.
    pub fn clean(self, value: &str) -> Result<String, String> {
        let name = self.field.replace('_', " ");
        let len = value.chars().count();
        if len > self.max {
            return Err(format!(
                "The {name} is {len} characters; at most {} fit.",
                self.max
            ));
        }
        if value.contains('\0') {
            return Err(format!("Remove the NUL character from the {name}."));
        }
        if value.chars().any(|c| refused(c, self.lines)) {
            return Err(match self.lines {
                Lines::One => format!(
                    "The {name} must be one line, without control or text-direction characters."
                ),
                Lines::Many => {
                    format!("Remove control and text-direction characters from the {name}.")
                }
            });
        }
        let value = value.trim();
        if self.min > 0 && value.chars().filter(|c| !blank(*c)).count() < self.min.min(1) {
            return Err(format!("Give the {name}."));
        }
        if value.chars().count() < self.min {
            return Err(format!(
                "The {name} needs at least {} characters.",
                self.min
            ));
        }
        Ok(value.to_string())
    }

    /// The trimmed value, or a 422 naming the field.
    pub fn check(self, value: &str) -> AppResult<String> {
        self.clean(value)
            .map_err(|message| AppError::invalid_field(self.field, message))
    }

    /// An optional field: absent or blank is `None`.
    pub fn optional(self, value: Option<&str>) -> AppResult<Option<String>> {
        match value {
            None => Ok(None),
            Some(v) => Limit { min: 0, ..self }
                .check(v)
                .map(|v| (!v.is_empty()).then_some(v)),
        }
    }

    /// The regular expression (ECMA-262, as OpenAPI takes it) this limit's
    /// characters obey.
    pub fn pattern(self) -> String {
        let refused = match self.lines {
            Lines::One => REFUSED,
            Lines::Many => REFUSED_MANY,
        };
        if self.min == 0 {
            format!("^[^{refused}]*$")
        } else {
            format!("^[^{refused}]*[^{refused}{BLANK}][^{refused}]*$")
        }
    }

    /// The JSON Schema of a string this limit accepts.
    pub fn schema(self) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let lines = match self.lines {
            Lines::One => "One line",
            Lines::Many => "Newlines allowed",
        };
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length((self.min > 0).then_some(self.min))
            .max_length(Some(self.max))
            .pattern(Some(self.pattern()))
            .description(Some(format!(
                "{lines}; at most {} characters; no control or text-direction characters; surrounding spaces are trimmed.",
                self.max
            )))
            .into()
    }
}

/// A query parameter (its name and value, decoded) that holds a NUL is a 422
/// naming it; the query extractor and the search parser both ask here.
pub fn parameter_without_nul(name: &str, value: &str) -> AppResult<()> {
    if name.contains('\0') || value.contains('\0') {
        let name = name.replace('\0', "\\u0000");
        return Err(AppError::invalid_field(
            name.clone(),
            format!("{name}: remove the NUL character (%00)."),
        ));
    }
    Ok(())
}

/// Finds the first string in a JSON document that holds a NUL (keys too), by
/// its path (`packet.note`, `concerns[2]`).
pub fn find_nul(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &mut String) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { ".".into() } else { path })
}

/// Writes every integral float (`5.0`) as the integer it is: JSON Schema
/// counts `5.0` an integer, so a field documented as one takes it too.
pub fn integral_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64())
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *n = serde_json::Number::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Declares text field types: each deserializes only what its [`Limit`]
/// accepts (trimmed) and documents the limit as its schema.
///
/// ```ignore
/// text_types! {
///     /// A group's name.
///     pub GroupName = Limit::new("name", 1, 120);
/// }
/// ```
#[macro_export]
macro_rules! text_types {
    ($( $(#[$doc:meta])* $vis:vis $name:ident = $limit:expr; )+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
        #[serde(transparent)]
        $vis struct $name(String);

        impl $name {
            pub const LIMIT: $crate::text::Limit = $limit;

            pub fn into_inner(self) -> String {
                self.0
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A checked value (seeds, tests and other callers inside Kith).
            pub fn parse(value: &str) -> Result<Self, String> {
                Self::LIMIT.clean(value).map(Self)
            }

            /// A value read back from the database, checked when it was written.
            pub fn stored(value: String) -> Self {
                Self(value)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                Self::LIMIT.schema()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use super::{Limit, find_nul};

    #[test]
    fn trims_counts_characters_and_names_the_field() {
        let name = Limit::new("name", 1, 5);
        assert_eq!(name.check(" Ana ").unwrap(), "Ana");
        assert_eq!(name.check("ÉÉÉÉÉ").unwrap(), "ÉÉÉÉÉ");
        let long = name.check("Anabel").unwrap_err();
        assert_eq!(long.field.as_deref(), Some("name"));
        assert!(long.message.contains("at most 5"));
        assert!(name.check("   ").is_err());
        assert!(name.check("a\u{7}b").is_err());
        assert_eq!(Limit::prose("bio", 0, 9).check("a\nb").unwrap(), "a\nb");
        assert_eq!(Limit::new("note", 0, 9).optional(Some("  ")).unwrap(), None);
        assert_eq!(
            Limit::new("x", 0, 9)
                .check(&"y".repeat(10))
                .unwrap_err()
                .field
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn refuses_what_would_break_storage_or_mislead_a_reader() {
        let name = Limit::new("display_name", 1, 120);
        for bad in [
            "Ana\0",
            "Ana\nLopez",
            "Ana\u{7}",
            "Ana\u{7f}",
            "Ana\u{85}",
            "\u{202e}zepoL anA",
            "Ana\u{2066}x",
            "\u{200b}\u{200d}\u{feff}",
            " \u{2060} ",
        ] {
            assert!(name.clean(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["Ana López", "أنا", "Dr. Sam Rivera, PhD", "A\u{200d}B"] {
            assert!(name.clean(good).is_ok(), "{good:?} was refused");
        }
        let note = Limit::prose("note", 0, 50);
        assert_eq!(
            note.clean("one\r\ntwo\tthree").unwrap(),
            "one\r\ntwo\tthree"
        );
        assert!(note.clean("one\0").is_err());
    }

    #[test]
    fn the_pattern_says_what_the_check_does() {
        // Read as a regular expression, each limit's pattern accepts exactly
        // the characters `clean` accepts (length aside).
        let samples = [
            "Ana",
            " ",
            "",
            "\u{200b}",
            "a\nb",
            "a\tb",
            "a\r\nb",
            "\u{202e}x",
            "x\u{2069}",
            "\0",
            "\u{85}",
            "\u{a0}x",
            "\u{feff}",
            "Zoë 李",
            "\u{1680}",
        ];
        for limit in [
            Limit::new("n", 1, 99),
            Limit::new("n", 0, 99),
            Limit::prose("n", 1, 99),
            Limit::prose("n", 0, 99),
        ] {
            let re = regex::Regex::new(&limit.pattern()).unwrap();
            for text in samples {
                assert_eq!(
                    re.is_match(text),
                    limit.clean(text).is_ok(),
                    "{limit:?} on {text:?}"
                );
            }
        }
    }

    #[test]
    fn finds_a_nul_anywhere_by_its_path() {
        let doc = serde_json::json!({"packet": {"note": "ok", "concerns": ["a", "b\u{0}"]}});
        assert_eq!(find_nul(&doc).as_deref(), Some("packet.concerns[1]"));
        assert_eq!(find_nul(&serde_json::json!({"a": "b"})), None);
        assert_eq!(find_nul(&serde_json::json!("\u{0}")).as_deref(), Some("."));
    }
}
