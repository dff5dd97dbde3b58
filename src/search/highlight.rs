//! Highlighting: the words of a hit that matched the query, wrapped in
//! `<em>` (everything else HTML-escaped), found the way the engines match
//! them: exactly, by prefix, or within the typo tolerance of search-config/.

use super::config::SearchConfig;

fn escape_into(out: &mut String, text: &str) {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The characters of a short word, on the stack; words longer than this are
/// matched exactly or by prefix only.
struct Chars {
    len: usize,
    chars: [char; 32],
}

impl Chars {
    fn of(word: &str) -> Option<Self> {
        let mut out = Self {
            len: 0,
            chars: ['\0'; 32],
        };
        for c in word.chars() {
            *out.chars.get_mut(out.len)? = c;
            out.len += 1;
        }
        Some(out)
    }

    /// The word in lower case (as `str::to_lowercase` would write it).
    fn lowercase(word: &str) -> Option<Self> {
        let mut out = Self {
            len: 0,
            chars: ['\0'; 32],
        };
        for c in word.chars().flat_map(char::to_lowercase) {
            *out.chars.get_mut(out.len)? = c;
            out.len += 1;
        }
        Some(out)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn as_slice(&self) -> &[char] {
        &self.chars[..self.len]
    }
}

/// Edits between two words of at most 32 characters (insertions, deletions,
/// substitutions and swaps of neighbours), without allocating. Stops as soon
/// as the distance must exceed `limit`, and then returns `limit + 1`.
fn typo_distance(a: &[char], b: &[char], limit: usize) -> usize {
    let n = b.len();
    if a.len().abs_diff(n) > limit {
        return limit + 1;
    }
    let (mut before, mut previous, mut current) = ([0usize; 33], [0usize; 33], [0usize; 33]);
    for (j, cell) in previous.iter_mut().enumerate().take(n + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_best = i;
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
            row_best = row_best.min(best);
        }
        // Every later cell is at least the best of this row or the one before
        // (a swap reaches back one row).
        if row_best > limit && previous[..=n].iter().all(|&d| d > limit) {
            return limit + 1;
        }
        before = previous;
        previous = current;
    }
    previous[n].min(limit + 1)
}

/// A query word, ready to compare.
struct QueryWord {
    text: String,
    chars: Option<Chars>,
    typos: usize,
    /// The ASCII letters and digits it holds (`letters`).
    letters: u64,
}

/// A bit per ASCII letter (either case) and digit in `word`, or None when the
/// word has other characters. Each edit brings at most one missing letter, so
/// a word lacking more of a query word's letters than its typos cannot match.
fn letters(word: &str) -> Option<u64> {
    word.bytes().try_fold(0u64, |mask, b| match b {
        b'a'..=b'z' => Some(mask | 1 << (b - b'a')),
        b'A'..=b'Z' => Some(mask | 1 << (b - b'A')),
        b'0'..=b'9' => Some(mask | 1 << (26 + b - b'0')),
        _ => None,
    })
}

/// Decides which words of a hit's text match the query: exactly, as the
/// prefix of the last query word, or within the typos the query word's length
/// allows. Works on the stack: a page of hits has thousands of words.
pub(super) struct Highlighter {
    query: Vec<QueryWord>,
    /// No word shorter than this (in characters) can match any query word.
    shortest: usize,
}

impl Highlighter {
    pub(super) fn new(config: &SearchConfig, query: &[String]) -> Self {
        let query: Vec<QueryWord> = query
            .iter()
            .map(|q| QueryWord {
                text: q.clone(),
                chars: Chars::of(q),
                typos: usize::from(config.typos_allowed(q)),
                letters: letters(q).unwrap_or(0),
            })
            .collect();
        let shortest = query
            .iter()
            .map(|q| q.text.chars().count().saturating_sub(q.typos).max(1))
            .min()
            .unwrap_or(usize::MAX);
        Self { query, shortest }
    }

    fn matches(&self, word: &str) -> bool {
        // Most words of a bio are too short to match anything: no need to
        // lowercase or compare them (fewer bytes means fewer characters).
        if word.len() < self.shortest {
            return false;
        }
        if let Some(have) = letters(word)
            && self
                .query
                .iter()
                .all(|q| (q.letters & !have).count_ones() as usize > q.typos)
        {
            return false;
        }
        let Some(w) = Chars::lowercase(word) else {
            // Longer than any real word: exact or prefix matches only.
            let lower = word.to_lowercase();
            return self.query.iter().enumerate().any(|(i, q)| {
                lower == q.text || (i + 1 == self.query.len() && lower.starts_with(&q.text))
            });
        };
        let w = w.as_slice();
        self.query.iter().enumerate().any(|(i, q)| {
            let last = i + 1 == self.query.len();
            let Some(qc) = &q.chars else {
                return false;
            };
            let qc = qc.as_slice();
            if w == qc || (last && qc.len() >= 2 && w.starts_with(qc)) {
                return true;
            }
            if q.typos == 0 {
                return false;
            }
            let (wl, ql) = (w.len(), qc.len());
            if typo_distance(w, qc, q.typos) <= q.typos {
                return true;
            }
            // The word being typed: its start within the typos.
            last && wl > ql && typo_distance(&w[..ql], qc, q.typos) <= q.typos
        })
    }

    /// Escapes `text` and wraps every matching word in `<em>`.
    pub(super) fn highlight(&self, text: &str, matched: &mut Vec<String>) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        if self.query.is_empty() {
            escape_into(&mut out, text);
            return out;
        }
        let mut plain = 0; // start of text not yet written
        let mut start = None;
        for (i, c) in text
            .char_indices()
            .chain(std::iter::once((text.len(), ' ')))
        {
            if c.is_alphanumeric() && i < text.len() {
                start.get_or_insert(i);
                continue;
            }
            if let Some(s) = start.take() {
                let word = &text[s..i];
                if self.matches(word) {
                    let lower = word.to_lowercase();
                    if !matched.contains(&lower) {
                        matched.push(lower);
                    }
                    escape_into(&mut out, &text[plain..s]);
                    out.push_str("<em>");
                    escape_into(&mut out, word);
                    out.push_str("</em>");
                    plain = i;
                }
            }
        }
        escape_into(&mut out, &text[plain..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_distance_counts_edits_and_swaps() {
        let d = |a: &str, b: &str| {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            typo_distance(&a, &b, 9)
        };
        assert_eq!(d("trauma", "trauma"), 0);
        assert_eq!(d("traumma", "trauma"), 1);
        assert_eq!(d("depresion", "depression"), 1);
        assert_eq!(d("anxeity", "anxiety"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        let (a, b): (Vec<char>, Vec<char>) =
            ("kitten".chars().collect(), "sitting".chars().collect());
        assert_eq!(typo_distance(&a, &b, 1), 2, "stops early past the limit");
        let (a, b): (Vec<char>, Vec<char>) =
            ("abcdef".chars().collect(), "bacdfe".chars().collect());
        assert_eq!(typo_distance(&a, &b, 2), 2, "two swaps");
        assert_eq!(d("ñandú", "nandu"), 2);
        assert_eq!(Chars::of(&"a".repeat(33)).map(|c| c.len()), None);
        assert_eq!(Chars::of(&"a".repeat(32)).map(|c| c.len()), Some(32));
    }

    #[test]
    fn highlighting_marks_exact_prefix_and_typo_matches_and_escapes_the_rest() {
        let config = SearchConfig::load().unwrap();
        let query = vec![
            "depresion".to_string(),
            "cbt".to_string(),
            "teen".to_string(),
        ];
        let mut matched = Vec::new();
        let out = Highlighter::new(&config, &query).highlight(
            "Depression & <CBT> for teenagers, not adults.",
            &mut matched,
        );
        assert_eq!(
            out,
            "<em>Depression</em> &amp; &lt;<em>CBT</em>&gt; for <em>teenagers</em>, not adults."
        );
        assert_eq!(matched, vec!["depression", "cbt", "teenagers"]);
        let none = Highlighter::new(&config, &[]).highlight("<b>", &mut Vec::new());
        assert_eq!(none, "&lt;b&gt;");
    }
}
