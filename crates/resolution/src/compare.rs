//! Field comparisons: two values → a comparison level.
//!
//! Every comparison kind orders its levels from "different" (1) to "exact" (the highest); level 0
//! always means a value is missing on either side, and such a field then neither counts for nor
//! against a match. The levels are deliberately few: the Fellegi–Sunter model learns a weight per
//! level, and each extra level needs evidence to be learned well. Comparisons are pure functions of
//! the two values (plus precomputed keys such as pinyin); they know nothing of records or weights.

use serde::Deserialize;
use tongban_standards::text::is_han;

/// How a field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Equal or not (sex, state, a street number).
    Exact,
    /// A person's name, Latin or Chinese. Latin: Jaro–Winkler ≥ 0.92 is close and ≥ 0.80 similar.
    /// Chinese: the same toneless pinyin (张/章, 王/汪) is close, one character different in a name
    /// of two or more is similar. Traditional characters are expected to be folded beforehand.
    Name,
    /// Free text such as a street: equal ignoring spaces or Jaro–Winkler ≥ 0.92 is close, ≥ 0.80
    /// similar.
    Text,
    /// An identifier or code (citizen id, postcode, phone): one edit away (substitution,
    /// insertion, deletion or swap of neighbours) is its own level, since it is the typical typo.
    Code,
    /// A date, compared on its digits: one typo or day and month swapped is its own level.
    Date,
}

impl Kind {
    /// Human labels of the levels, index = level.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Kind::Exact => &["missing", "different", "exact"],
            Kind::Name => &["missing", "different", "similar", "close", "exact"],
            Kind::Text => &["missing", "different", "similar", "close", "exact"],
            Kind::Code => &["missing", "different", "one edit", "exact"],
            Kind::Date => &[
                "missing",
                "different",
                "one typo or day/month swapped",
                "exact",
            ],
        }
    }

    /// Number of levels including "missing".
    pub fn levels(self) -> usize {
        self.labels().len()
    }

    /// Whether this kind uses a precomputed phonetic key (pinyin for Chinese names).
    pub fn wants_phonetic_key(self) -> bool {
        matches!(self, Kind::Name)
    }
}

/// The phonetic key of a name: toneless surname-aware pinyin for Chinese names, "" otherwise
/// (Latin names are compared by Jaro–Winkler directly).
pub fn phonetic_key(name: &str) -> String {
    if name.chars().any(is_han) {
        tongban_standards::names::name_pinyin_key(name)
    } else {
        String::new()
    }
}

/// Compare two values. `ka`/`kb` are their phonetic keys (only read for [`Kind::Name`]).
pub fn level(kind: Kind, a: &str, b: &str, ka: &str, kb: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let top = (kind.levels() - 1) as u8;
    if a == b {
        return top;
    }
    match kind {
        Kind::Exact => 1,
        Kind::Name => {
            let han = a.chars().any(is_han) || b.chars().any(is_han);
            if han {
                if !ka.is_empty() && ka == kb {
                    3
                } else if one_char_different(a, b) {
                    2
                } else {
                    1
                }
            } else {
                similarity_level(a, b)
            }
        }
        Kind::Text => {
            if strip_spaces_eq(a, b) {
                3
            } else {
                similarity_level(a, b)
            }
        }
        Kind::Code => {
            if within_one_edit(a.as_bytes(), b.as_bytes()) {
                2
            } else {
                1
            }
        }
        Kind::Date => {
            let da = digits(a);
            let db = digits(b);
            if da == db {
                3
            } else if within_one_edit(&da, &db) || day_month_swapped(&da, &db) {
                2
            } else {
                1
            }
        }
    }
}

fn similarity_level(a: &str, b: &str) -> u8 {
    let s = strsim::jaro_winkler(a, b);
    if s >= 0.92 {
        3
    } else if s >= 0.80 {
        2
    } else {
        1
    }
}

fn strip_spaces_eq(a: &str, b: &str) -> bool {
    a.chars()
        .filter(|c| !c.is_whitespace())
        .eq(b.chars().filter(|c| !c.is_whitespace()))
}

/// Names of the same length (two characters or more) that differ in exactly one character.
fn one_char_different(a: &str, b: &str) -> bool {
    let mut ca = a.chars();
    let mut cb = b.chars();
    let mut diff = 0;
    let mut len = 0;
    loop {
        match (ca.next(), cb.next()) {
            (Some(x), Some(y)) => {
                len += 1;
                if x != y {
                    diff += 1;
                    if diff > 1 {
                        return false;
                    }
                }
            }
            (None, None) => return diff == 1 && len >= 2,
            _ => return false,
        }
    }
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).collect()
}

/// `yyyymmdd` against `yyyyddmm`.
fn day_month_swapped(a: &[u8], b: &[u8]) -> bool {
    a.len() == 8 && b.len() == 8 && a[..4] == b[..4] && a[4..6] == b[6..8] && a[6..8] == b[4..6]
}

/// Optimal-string-alignment distance ≤ 1, on bytes, without allocating: one substitution, one
/// insertion or deletion, or one swap of neighbours.
pub fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len());
            let rest = first + 1;
            if a[rest..] == b[rest..] {
                return true;
            }
            rest < a.len()
                && a[first] == b[rest]
                && a[rest] == b[first]
                && a[rest + 1..] == b[rest + 1..]
        }
        1 => {
            let first = short
                .iter()
                .zip(long)
                .position(|(x, y)| x != y)
                .unwrap_or(short.len());
            short[first..] == long[first + 1..]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lv(kind: Kind, a: &str, b: &str) -> u8 {
        level(kind, a, b, &phonetic_key(a), &phonetic_key(b))
    }

    #[test]
    fn missing_values_are_level_zero() {
        assert_eq!(lv(Kind::Name, "", "张三"), 0);
        assert_eq!(lv(Kind::Code, "123", ""), 0);
    }

    #[test]
    fn chinese_names_homophones_are_close_and_one_character_similar() {
        assert_eq!(lv(Kind::Name, "张伟", "张伟"), 4);
        assert_eq!(lv(Kind::Name, "张伟", "章伟"), 3);
        assert_eq!(lv(Kind::Name, "王芳", "汪芳"), 3);
        assert_eq!(lv(Kind::Name, "张伟", "张华"), 2);
        assert_eq!(lv(Kind::Name, "张伟", "李娜"), 1);
    }

    #[test]
    fn latin_names_by_jaro_winkler() {
        assert_eq!(lv(Kind::Name, "mitchell", "mitchell"), 4);
        assert_eq!(lv(Kind::Name, "mitchell", "mitchel"), 3);
        assert_eq!(lv(Kind::Name, "mitchell", "michael"), 2);
        assert_eq!(lv(Kind::Name, "mitchell", "zoe"), 1);
    }

    #[test]
    fn codes_and_dates_one_edit() {
        assert_eq!(lv(Kind::Code, "1804974", "1804947"), 2);
        assert_eq!(lv(Kind::Code, "1804974", "180974"), 2);
        assert_eq!(lv(Kind::Code, "1804974", "1884979"), 1);
        assert_eq!(lv(Kind::Date, "1956-04-09", "19560409"), 3);
        assert_eq!(lv(Kind::Date, "19560409", "19560904"), 2);
        assert_eq!(lv(Kind::Date, "19560409", "19560408"), 2);
        assert_eq!(lv(Kind::Date, "19560409", "19661208"), 1);
        assert_eq!(lv(Kind::Text, "pridham street", "pridhamstreet"), 3);
    }

    proptest! {
        #[test]
        fn one_edit_agrees_with_strsim(a in "[ab]{0,6}", b in "[ab]{0,6}") {
            prop_assert_eq!(within_one_edit(a.as_bytes(), b.as_bytes()), strsim::osa_distance(&a, &b) <= 1);
        }

        #[test]
        fn levels_are_symmetric_and_in_range(a in "\\PC{0,8}", b in "\\PC{0,8}") {
            for kind in [Kind::Exact, Kind::Name, Kind::Text, Kind::Code, Kind::Date] {
                let x = lv(kind, &a, &b);
                prop_assert_eq!(x, lv(kind, &b, &a));
                prop_assert!((x as usize) < kind.levels());
            }
        }
    }
}
