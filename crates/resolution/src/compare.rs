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
    /// A hierarchical place key with `|` between levels (`county|compound|building|unit|room`,
    /// the standards library's room key): the same building and the same compound are levels of
    /// their own, since family and neighbours share them.
    Place,
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
            Kind::Place => &[
                "missing",
                "different",
                "same compound",
                "same building",
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
        Kind::Place => {
            let shared = a
                .split('|')
                .zip(b.split('|'))
                .take_while(|(x, y)| x == y)
                .count();
            match shared {
                0..=1 => 1,
                2 => 2,
                _ => 3,
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
            let (mut ba, mut bb) = ([0u8; 16], [0u8; 16]);
            let da = digits(a, &mut ba);
            let db = digits(b, &mut bb);
            if da == db {
                3
            } else if within_one_edit(da, db) || day_month_swapped(da, db) {
                2
            } else {
                1
            }
        }
    }
}

/// [`level`] for [`Kind::Name`] when the column is known to hold no Chinese names (saves looking
/// for Chinese characters in every pair).
pub fn level_latin_name(a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        0
    } else if a == b {
        4
    } else {
        similarity_level(a, b)
    }
}

fn similarity_level(a: &str, b: &str) -> u8 {
    let s = jaro_winkler(a, b);
    if s >= 0.92 {
        3
    } else if s >= 0.80 {
        2
    } else {
        1
    }
}

/// Jaro–Winkler similarity, identical to `strsim::jaro_winkler`. Short ASCII strings (almost all
/// Latin names and streets) take a path that keeps the match flags in two machine words instead
/// of allocating per call: comparing candidate pairs is the linker's hot loop, and this is about
/// three times faster there. Anything else goes to strsim.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if !(a.is_ascii() && b.is_ascii() && x.len() <= 64 && y.len() <= 64) {
        return strsim::jaro_winkler(a, b);
    }
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    POSITIONS.with_borrow_mut(|positions| {
        let jaro = jaro_ascii(x, y, positions);
        // Only the entries of y's bytes were set; clearing them leaves the table as it came.
        for &c in y {
            positions[usize::from(c & 0x7f)] = 0;
        }
        jaro
    })
}

thread_local! {
    /// Where each byte occurs in the second string, as a bit mask (see [`jaro_ascii`]); all
    /// zero between calls. Kept per thread rather than made per call, because clearing a
    /// kilobyte for each of tens of millions of comparisons showed in the linker's profile.
    static POSITIONS: std::cell::RefCell<[u64; 128]> = const { std::cell::RefCell::new([0; 128]) };
}

/// Jaro–Winkler of two ASCII strings of 1 to 64 bytes, with `positions` all zero.
fn jaro_ascii(x: &[u8], y: &[u8], positions: &mut [u64; 128]) -> f64 {
    let range = (x.len().max(y.len()) / 2).saturating_sub(1);
    // Where each byte occurs in y, as a bit mask: finding x[i]'s first unused match inside its
    // window is then one AND and a count of trailing zeros instead of a scan of the window.
    for (j, &c) in y.iter().enumerate() {
        positions[usize::from(c & 0x7f)] |= 1 << j;
    }
    let (mut x_flags, mut y_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &c) in x.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = (i + range + 1).min(y.len());
        if lo >= hi {
            continue;
        }
        let window = (((1u128 << hi) - (1u128 << lo)) & u128::from(u64::MAX)) as u64;
        let free = positions[usize::from(c & 0x7f)] & window & !y_flags;
        if free != 0 {
            x_flags |= 1 << i;
            y_flags |= 1 << free.trailing_zeros();
            matches += 1;
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut ys = y_flags;
    let mut xs = x_flags;
    while xs != 0 {
        let i = xs.trailing_zeros() as usize;
        let j = ys.trailing_zeros() as usize;
        if x[i] != y[j] {
            transpositions += 1;
        }
        xs &= xs - 1;
        ys &= ys - 1;
    }
    let m = matches as f64;
    let jaro =
        (m / x.len() as f64 + m / y.len() as f64 + (m - (transpositions / 2) as f64) / m) / 3.0;
    if jaro > 0.7 {
        let prefix = x.iter().take(4).zip(y).take_while(|(p, q)| p == q).count();
        jaro + 0.1 * prefix as f64 * (1.0 - jaro)
    } else {
        jaro
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

/// The first 16 digits of a date into `buf`, without allocating (dates are compared per pair).
fn digits<'a>(s: &str, buf: &'a mut [u8; 16]) -> &'a [u8] {
    let mut n = 0;
    for d in s.bytes().filter(u8::is_ascii_digit).take(16) {
        buf[n] = d;
        n += 1;
    }
    &buf[..n]
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
        assert_eq!(
            lv(
                Kind::Place,
                "320576|青剑湖花园|12|3|1001",
                "320576|青剑湖花园|12|3|1001"
            ),
            4
        );
        assert_eq!(
            lv(
                Kind::Place,
                "320576|青剑湖花园|12|3|1001",
                "320576|青剑湖花园|12|2|502"
            ),
            3
        );
        assert_eq!(
            lv(
                Kind::Place,
                "320576|青剑湖花园|12|3|1001",
                "320576|青剑湖花园|7|1|101"
            ),
            2
        );
        assert_eq!(
            lv(
                Kind::Place,
                "320576|青剑湖花园|12|3|1001",
                "320576|金水湾|12|3|1001"
            ),
            1
        );
    }

    proptest! {
        #[test]
        fn one_edit_agrees_with_strsim(a in "[ab]{0,6}", b in "[ab]{0,6}") {
            prop_assert_eq!(within_one_edit(a.as_bytes(), b.as_bytes()), strsim::osa_distance(&a, &b) <= 1);
        }

        #[test]
        fn fast_jaro_winkler_is_strsims(a in "[a-e ]{0,70}", b in "[a-e ]{0,70}") {
            prop_assert!((jaro_winkler(&a, &b) - strsim::jaro_winkler(&a, &b)).abs() < 1e-12);
        }

        #[test]
        fn levels_are_symmetric_and_in_range(a in "\\PC{0,8}", b in "\\PC{0,8}") {
            for kind in [Kind::Exact, Kind::Name, Kind::Text, Kind::Code, Kind::Date, Kind::Place] {
                let x = lv(kind, &a, &b);
                prop_assert_eq!(x, lv(kind, &b, &a));
                prop_assert!((x as usize) < kind.levels());
            }
        }
    }
}
