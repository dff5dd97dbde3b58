//! The privacy guard: finds what looks like a client identifier in free
//! text before it is stored or travels (a chat message, a referral's note,
//! a decline note or an outcome, a group's or a session's names and
//! descriptions) — a phone number, an email address, a date
//! of birth (or any full date, which HIPAA's Safe Harbor counts as an
//! identifier), a record, insurance or social security number, or a full
//! name next to a date. It errs towards asking: the sender can confirm a
//! false alarm and send anyway.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    Phone,
    Email,
    /// A full date near "born", "DOB" or "birthday".
    DateOfBirth,
    /// A full date (day, month and year).
    Date,
    /// A medical record, insurance member, policy, account or social security number.
    RecordId,
    /// A first and last name in a message that also carries a date.
    NameWithDate,
}

/// Where the guard found something, in UTF-16 code units (as a browser
/// counts), end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Finding {
    pub kind: IdentifierKind,
    pub start: usize,
    pub end: usize,
}

fn re(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)] // the patterns are constants, checked by the tests
    Regex::new(pattern).expect("valid pattern")
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b"));
/// North American numbers with or without separators, and international
/// numbers written with a leading +.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?x)
        (?:^|[^\w+])(
            (?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}
          | \+\d{1,3}(?:[\s.-]?\d{2,4}){2,4}
        )\b")
});
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{3}-\d{2}-\d{4}\b"));
/// A number introduced as a record, member, policy or account number.
static LABELLED_ID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?xi)
        \b(?:mrn|medical\s+record|record|chart|member|membership|policy|subscriber|
            insurance|medicaid|medicare|account|acct|patient|client|case|ssn|social\s+security|id)
        \s*(?:id|no\.?|number|num|\#)?\s*[:\#]?\s*
        ([a-z]{0,4}[-\s]?\d[a-z0-9-]{3,})")
});
/// A long run of letters and digits, or of digits alone.
static CODE_LIKE: LazyLock<Regex> = LazyLock::new(|| re(r"\b[A-Za-z0-9]{7,}\b"));

const MONTHS: &str = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

/// Full dates: 3/14/1987, 14.03.87, 1987-03-14, March 14, 1987, 14 March 1987.
static FULL_DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?xi)\b(?:
            \d{{1,2}}[/.-]\d{{1,2}}[/.-](?:\d{{4}}|\d{{2}})
          | \d{{4}}-\d{{1,2}}-\d{{1,2}}
          | {MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}
          | \d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS}\.?,?\s+\d{{4}}
        )\b"
    ))
});
/// Day and month without a year: 3/14, March 14, 14 March.
static PARTIAL_DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?xi)\b(?:
            \d{{1,2}}/\d{{1,2}}
          | {MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?
          | \d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS}
        )\b"
    ))
});
static BIRTH_WORD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:dob|d\.o\.b\.?|born|birth\s*date|date\s+of\s+birth|birthday)\b")
});
/// Two capitalised words in a row (an optional middle initial between).
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    let word = r"(?:[A-Z]'[A-Z][a-z]+|(?:Mc|Mac)?[A-Z][a-z]+(?:-[A-Z][a-z]+)?)";
    re(&format!(r"\b({word})\s+(?:[A-Z]\.\s+)?({word})\b"))
});

/// Capitalised words that start sentences or name things other than people.
const NOT_NAMES: &[&str] = &[
    "A",
    "About",
    "After",
    "Also",
    "An",
    "And",
    "Any",
    "Anyone",
    "April",
    "As",
    "At",
    "August",
    "Before",
    "Behavioral",
    "But",
    "Can",
    "Client",
    "Clients",
    "Cognitive",
    "Consultation",
    "Could",
    "December",
    "Dialectical",
    "Did",
    "Does",
    "During",
    "Each",
    "Every",
    "February",
    "For",
    "Friday",
    "From",
    "Group",
    "Has",
    "Have",
    "He",
    "Her",
    "His",
    "How",
    "I",
    "If",
    "In",
    "Is",
    "It",
    "January",
    "July",
    "June",
    "Last",
    "Let",
    "March",
    "May",
    "Monday",
    "My",
    "New",
    "Next",
    "No",
    "November",
    "October",
    "On",
    "Our",
    "Patient",
    "Peer",
    "Please",
    "Saturday",
    "September",
    "Session",
    "She",
    "So",
    "Some",
    "Sunday",
    "Thanks",
    "That",
    "The",
    "Their",
    "Then",
    "There",
    "They",
    "This",
    "Thursday",
    "Today",
    "Tomorrow",
    "Trauma",
    "Tuesday",
    "We",
    "Wednesday",
    "What",
    "When",
    "Where",
    "Which",
    "Who",
    "Why",
    "Will",
    "With",
    "Would",
    "Yes",
    "Yesterday",
    "You",
    "Your",
];

impl IdentifierKind {
    /// What was found, as a person says it.
    pub fn describe(self) -> &'static str {
        match self {
            IdentifierKind::Phone => "a phone number",
            IdentifierKind::Email => "an email address",
            IdentifierKind::DateOfBirth => "a date of birth",
            IdentifierKind::Date => "a full date",
            IdentifierKind::RecordId => "a record or member number",
            IdentifierKind::NameWithDate => "a name next to a date",
        }
    }
}

/// Free text an API request sends on to colleagues, checked together.
pub struct Travelling<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Travelling<'a> {
    pub fn new() -> Self {
        Self { fields: vec![] }
    }

    /// `text` at `field` (as the request names it), when given.
    pub fn field(mut self, field: &'a str, text: Option<&'a str>) -> Self {
        if let Some(text) = text {
            self.fields.push((field, text));
        }
        self
    }

    /// Refuses the request with 422 `possible_identifier` at the first field
    /// holding what looks like an identifier, unless the sender `confirmed`
    /// it identifies no one; then returns what was let through, for the
    /// audit log (the fields and kinds, never the text).
    pub fn check(self, confirmed: bool) -> crate::error::AppResult<Option<serde_json::Value>> {
        let mut overridden = vec![];
        for (field, text) in self.fields {
            let found = scan(text);
            if found.is_empty() {
                continue;
            }
            let mut kinds: Vec<IdentifierKind> = found.iter().map(|f| f.kind).collect();
            kinds.dedup();
            if !confirmed {
                let what: Vec<&str> = kinds.iter().map(|k| k.describe()).collect();
                return Err(crate::error::AppError {
                    field: Some(field.to_string()),
                    ..crate::error::AppError::new(
                        crate::error::Code::PossibleIdentifier,
                        format!(
                            "This may identify a client ({}). Colleagues see it: remove it, or send again with \"confirm_no_identifiers\": true if it identifies no one.",
                            what.join(", ")
                        ),
                    )
                });
            }
            overridden.push(serde_json::json!({"field": field, "kinds": kinds}));
        }
        Ok((!overridden.is_empty()).then(|| serde_json::json!({"overridden": overridden})))
    }
}

/// Records that `actor` sent text the guard had flagged, when they did.
pub async fn record_override(
    conn: &diesel_async::AsyncPgConnection,
    now: chrono::DateTime<chrono::Utc>,
    meta: &crate::http::RequestMeta,
    actor: uuid::Uuid,
    entity: (&str, String),
    overridden: Option<serde_json::Value>,
) -> diesel::QueryResult<()> {
    let Some(detail) = overridden else {
        return Ok(());
    };
    crate::audit::record(
        conn,
        now,
        meta,
        crate::audit::Event::new(
            Some(actor),
            crate::audit::Action::PrivacyOverride,
            entity.0,
            entity.1,
        )
        .detail(detail),
    )
    .await
}

impl Default for Travelling<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything in `text` that looks like an identifier, in order, without overlaps.
pub fn scan(text: &str) -> Vec<Finding> {
    let mut found: Vec<(IdentifierKind, usize, usize)> = Vec::new();
    for m in EMAIL.find_iter(text) {
        found.push((IdentifierKind::Email, m.start(), m.end()));
    }
    for m in SSN.find_iter(text) {
        found.push((IdentifierKind::RecordId, m.start(), m.end()));
    }
    for c in PHONE.captures_iter(text) {
        if let Some(m) = c.get(1) {
            let digits = m.as_str().chars().filter(char::is_ascii_digit).count();
            if (10..=15).contains(&digits) {
                found.push((IdentifierKind::Phone, m.start(), m.end()));
            }
        }
    }
    let births: Vec<usize> = BIRTH_WORD.find_iter(text).map(|m| m.end()).collect();
    let mut any_date = false;
    for m in FULL_DATE.find_iter(text) {
        any_date = true;
        let near_birth = births
            .iter()
            .any(|end| *end <= m.start() && m.start() - end <= 24);
        let kind = if near_birth {
            IdentifierKind::DateOfBirth
        } else {
            IdentifierKind::Date
        };
        found.push((kind, m.start(), m.end()));
    }
    for c in LABELLED_ID.captures_iter(text) {
        if let Some(m) = c.get(1) {
            found.push((IdentifierKind::RecordId, m.start(), m.end()));
        }
    }
    for m in CODE_LIKE.find_iter(text) {
        let digits = m.as_str().chars().filter(char::is_ascii_digit).count();
        // Clinical shorthand (PHQ9, GAD7, COVID19) has few digits.
        if digits >= 5 {
            found.push((IdentifierKind::RecordId, m.start(), m.end()));
        }
    }
    any_date = any_date || PARTIAL_DATE.is_match(text);
    if any_date {
        for c in NAME.captures_iter(text) {
            let (Some(first), Some(last), Some(whole)) = (c.get(1), c.get(2), c.get(0)) else {
                continue;
            };
            let is_name = |w: &str| !NOT_NAMES.contains(&w) && !w.eq_ignore_ascii_case("dr");
            if is_name(first.as_str()) && is_name(last.as_str()) && !is_month_or_day(first.as_str())
            {
                found.push((IdentifierKind::NameWithDate, whole.start(), whole.end()));
            }
        }
    }
    // Earliest first; of overlapping findings keep the first (the longest at a start).
    found.sort_by_key(|(_, start, end)| (*start, usize::MAX - end));
    let mut kept: Vec<(IdentifierKind, usize, usize)> = Vec::new();
    for f in found {
        if kept.last().is_none_or(|last| f.1 >= last.2) {
            kept.push(f);
        }
    }
    kept.into_iter()
        .map(|(kind, start, end)| Finding {
            kind,
            start: utf16_offset(text, start),
            end: utf16_offset(text, end),
        })
        .collect()
}

fn is_month_or_day(word: &str) -> bool {
    PARTIAL_DATE.is_match(&format!("{word} 1"))
}

fn utf16_offset(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |s| s.encode_utf16().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierKind::*;

    fn kinds(text: &str) -> Vec<IdentifierKind> {
        scan(text).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn these_must_be_held() {
        let cases: &[(&str, IdentifierKind)] = &[
            ("call her at (555) 123-4567 tonight", Phone),
            ("her cell is 555-123-4567", Phone),
            ("number 555.123.4567", Phone),
            ("5551234567 is the mother's number", Phone),
            ("reach him on +1 555 123 4567", Phone),
            ("UK number +44 20 7946 0958", Phone),
            ("write to jane.doe@example.com please", Email),
            ("J.SMITH+therapy@mail.clinic.org", Email),
            ("DOB 03/14/1987, presenting with panic", DateOfBirth),
            ("born on March 14, 1987 in Ohio", DateOfBirth),
            ("date of birth: 1987-03-14", DateOfBirth),
            ("intake was on 3/14/2024", Date),
            ("seen 14 March 2023 for the first time", Date),
            ("MRN 4482913", RecordId),
            ("member ID: XJH448291", RecordId),
            ("policy # ABC-123456", RecordId),
            ("ssn 123-45-6789", RecordId),
            ("medicaid number 99812736", RecordId),
            ("insurance id W123456789", RecordId),
            ("Jane Smith came in on 3/14 again", NameWithDate),
            ("Spoke with Robert O'Neil on March 3", NameWithDate),
            ("Maria L. Gonzalez, seen 12/01", NameWithDate),
        ];
        for (text, kind) in cases {
            let found = kinds(text);
            assert!(
                found.contains(kind),
                "{text:?} should be held as {kind:?}; found {found:?}"
            );
        }
    }

    #[test]
    fn these_must_pass() {
        let cases = [
            "Has anyone used EMDR with a teen who dissociates?",
            "My client has been in therapy since 2019 and is 34 years old.",
            "Session is 50 minutes; we meet 10-15 minutes early.",
            "About 3/4 of my caseload is anxiety.",
            "PHQ9 went from 18 to 9 after six weeks; GAD7 similar.",
            "Cognitive Processing Therapy or Prolonged Exposure for this one?",
            "See the DSM-5 criteria, F43.10 fits best.",
            "Let's talk Tuesday at 3pm about the case.",
            "We meet on March 3 to review the group plan.",
            "She scored 27 on the BDI-II, down from 35.",
            "Thanks Sarah, that helps a lot",
            "The client moved to Ohio in 2021.",
            "Our Peer Group meets on Friday.",
            "COVID19 made the isolation worse.",
            "I would try 2-3 sessions of exposure first.",
        ];
        for text in cases {
            let found = scan(text);
            assert!(found.is_empty(), "{text:?} should pass; found {found:?}");
        }
    }

    #[test]
    fn spans_count_as_a_browser_counts() {
        // "é" is one UTF-16 unit, "🙂" is two: the span must still land on the number.
        let text = "é🙂 555-123-4567";
        let found = scan(text);
        assert_eq!(
            found,
            vec![Finding {
                kind: Phone,
                start: 4,
                end: 16
            }]
        );
        let units: Vec<u16> = text.encode_utf16().collect();
        assert_eq!(String::from_utf16_lossy(&units[4..16]), "555-123-4567");
    }

    #[test]
    fn findings_do_not_overlap() {
        let found = scan("DOB 03/14/1987 and jane@x.org and (555) 123-4567");
        assert_eq!(
            found.iter().map(|f| f.kind).collect::<Vec<_>>(),
            vec![DateOfBirth, Email, Phone]
        );
        assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
    }
}
