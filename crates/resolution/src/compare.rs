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
    if same(a, b) {
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
    } else if same(a, b) {
        4
    } else {
        similarity_level(a, b)
    }
}

/// `a == b`, for the short values compared per candidate pair: a byte loop in line, where `==`
/// calls the C library's `memcmp` for every two values of equal length (a twentieth of the
/// linker's comparing stage went to that call).
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 32 {
        return a == b;
    }
    let mut differ = 0u8;
    for (x, y) in a.iter().zip(b) {
        differ |= x ^ y;
    }
    differ == 0
}

fn similarity_level(a: &str, b: &str) -> u8 {
    if !jaro_winkler_may_reach(a.as_bytes(), b.as_bytes(), 0.80) {
        return 1;
    }
    let s = jaro_winkler(a, b);
    if s >= 0.92 {
        3
    } else if s >= 0.80 {
        2
    } else {
        1
    }
}

/// Whether the Jaro–Winkler similarity of two ASCII values of 1 to 64 bytes can reach `floor`,
/// judged from which bytes each holds, without matching them up: most candidate pairs compare
/// two different people's names and streets, and settling those as "different" this way is
/// far cheaper than Jaro itself (a fifth of the linker's comparing stage). Anything else may.
///
/// A byte of one value that the other lacks altogether can match nothing, so each distinct one
/// takes at least one position out of the matches; the bytes are told apart by their low five
/// bits, and a collision only makes the bound looser. With at most `m` matches and no
/// transpositions, Jaro is at most (m/|x| + m/|y| + 1) / 3, and Winkler's boost for the values'
/// actual common prefix is added as Jaro–Winkler adds it.
fn jaro_winkler_may_reach(x: &[u8], y: &[u8], floor: f64) -> bool {
    if !(x.is_ascii() && y.is_ascii())
        || x.is_empty()
        || y.is_empty()
        || x.len() > 64
        || y.len() > 64
    {
        return true;
    }
    let set = |v: &[u8]| v.iter().fold(0u32, |s, &c| s | 1 << (c & 31));
    let (sx, sy) = (set(x), set(y));
    let only_x = (sx & !sy).count_ones() as usize;
    let only_y = (sy & !sx).count_ones() as usize;
    let most = (x.len() - only_x.min(x.len())).min(y.len() - only_y.min(y.len()));
    // No match at all gives Jaro 0, which reaches no floor above 0 (the only kind asked for).
    debug_assert!(floor > 0.0);
    if most == 0 {
        return false;
    }
    // Jaro's bound is at least `v` when m(|x| + |y|) ≥ (3v − 1)|x||y|: products of small
    // integers, exact in floating point, where the bound's own three divisions were most of
    // this function's time. A hair of room for rounding only lets a pair through to be
    // computed exactly.
    let (m, lx, ly) = (most as f64, x.len() as f64, y.len() as f64);
    let at_least = |v: f64| m * (lx + ly) >= (3.0 * v - 1.0) * lx * ly - 1e-9;
    // Winkler's boost, given for the values' actual common prefix and only above 0.7, reaches
    // `floor` from a Jaro of (floor − 0.1p) / (1 − 0.1p).
    let prefix = x.iter().take(4).zip(y).take_while(|(p, q)| p == q).count() as f64;
    let boosted_from = (floor - 0.1 * prefix) / (1.0 - 0.1 * prefix);
    at_least(floor) || (at_least(0.7) && at_least(boosted_from))
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
    jaro_winkler_ascii(x, y)
}

/// Jaro–Winkler of two ASCII strings of 1 to 64 bytes. On x86-64, where every processor has
/// SSE2, the positions of a byte in `y` come from comparing it with all of `y` sixteen bytes at
/// a time: no table to fill and clear per call and no thread-local to reach it through, which
/// took a fifth of the comparing stage's samples at a million FEBRL-style records.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn jaro_winkler_ascii(x: &[u8], y: &[u8]) -> f64 {
    // SAFETY: this is compiled only for a target with SSE2 enabled (the x86-64 baseline), so
    // every processor the build runs on has it and the compiler assumes it everywhere already.
    unsafe { jaro_winkler_ascii_sse2(x, y) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn jaro_winkler_ascii_sse2(x: &[u8], y: &[u8]) -> f64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8,
    };
    let chunk = |k: usize| -> __m128i {
        let (mut lo, mut hi) = ([0u8; 8], [0u8; 8]);
        let part = y.get(16 * k..).unwrap_or(&[]);
        let (l, h) = part.split_at(part.len().min(8));
        lo[..l.len()].copy_from_slice(l);
        hi[..h.len().min(8)].copy_from_slice(&h[..h.len().min(8)]);
        _mm_set_epi64x(i64::from_le_bytes(hi), i64::from_le_bytes(lo))
    };
    let hits = |chunk: __m128i, wanted: __m128i| -> u64 {
        u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, wanted)) as u32 & 0xffff)
    };
    // Names and most streets fit one register; longer values take up to four.
    if y.len() <= 16 {
        let only = chunk(0);
        return jaro_ascii(x, y, |c| hits(only, _mm_set1_epi8(c as i8)));
    }
    // At most four registers (the caller's values are at most 64 bytes), held without
    // allocating; the ones past `y` are zero and not read.
    let chunks: [__m128i; 4] = std::array::from_fn(chunk);
    let used = &chunks[..y.len().div_ceil(16).min(4)];
    jaro_ascii(x, y, |c| {
        let wanted = _mm_set1_epi8(c as i8);
        used.iter()
            .enumerate()
            .fold(0u64, |mask, (k, &ch)| mask | hits(ch, wanted) << (16 * k))
    })
}

/// Jaro–Winkler of two ASCII strings of 1 to 64 bytes, with a table of where each byte occurs
/// in `y` (kept per thread: clearing a kilobyte for each of tens of millions of comparisons
/// showed in the linker's profile, so only the entries of `y`'s bytes are set and cleared).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn jaro_winkler_ascii_by_table(x: &[u8], y: &[u8]) -> f64 {
    POSITIONS.with_borrow_mut(|positions| {
        for (j, &c) in y.iter().enumerate() {
            positions[usize::from(c & 0x7f)] |= 1 << j;
        }
        let jaro = jaro_ascii(x, y, |c| positions[usize::from(c & 0x7f)]);
        // Only the entries of y's bytes were set; clearing them leaves the table as it came.
        for &c in y {
            positions[usize::from(c & 0x7f)] = 0;
        }
        jaro
    })
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn jaro_winkler_ascii(x: &[u8], y: &[u8]) -> f64 {
    jaro_winkler_ascii_by_table(x, y)
}

thread_local! {
    /// Where each byte occurs in the second string, as a bit mask (see
    /// [`jaro_winkler_ascii_by_table`]); all zero between calls.
    static POSITIONS: std::cell::RefCell<[u64; 128]> = const { std::cell::RefCell::new([0; 128]) };
}

/// Jaro–Winkler of two ASCII strings of 1 to 64 bytes, given `positions_in_y(c)`: where byte
/// `c` occurs in `y`, as a bit mask. Finding x[i]'s first unused match inside its window is then
/// one AND and a count of trailing zeros instead of a scan of the window.
#[inline(always)]
fn jaro_ascii(x: &[u8], y: &[u8], positions_in_y: impl Fn(u8) -> u64) -> f64 {
    let range = (x.len().max(y.len()) / 2).saturating_sub(1);
    // Branch-free: whether a byte finds a match is as good as random to the processor, and a
    // mispredicted branch per byte cost more than the work it skipped.
    let (mut x_flags, mut y_flags) = (0u64, 0u64);
    for (i, &c) in x.iter().enumerate() {
        let lo = i.saturating_sub(range);
        // An empty window (x longer than y and past its end) gives no bits.
        let hi = (i + range + 1).min(y.len()).max(lo);
        let window = (((1u128 << hi) - (1u128 << lo)) & u128::from(u64::MAX)) as u64;
        let free = positions_in_y(c) & window & !y_flags;
        x_flags |= u64::from(free != 0) << i;
        y_flags |= free & free.wrapping_neg();
    }
    let matches = x_flags.count_ones() as usize;
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut ys = y_flags;
    let mut xs = x_flags;
    while xs != 0 {
        let i = xs.trailing_zeros() as usize;
        let j = ys.trailing_zeros() as usize;
        transpositions += usize::from(x[i] != y[j]);
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

        // The bound never settles a pair as different that Jaro–Winkler puts at the floor or
        // above, on values that share many bytes (where the bound is closest).
        #[test]
        fn jaro_winkler_bound_never_below_it(a in "[a-f]{1,12}|[ -~]{1,64}", b in "[a-f]{1,12}|[ -~]{1,64}") {
            for floor in [0.5, 0.7, 0.8, 0.92] {
                if strsim::jaro_winkler(&a, &b) >= floor {
                    prop_assert!(jaro_winkler_may_reach(a.as_bytes(), b.as_bytes(), floor));
                }
            }
        }

        // Both fast paths, whichever this processor takes, on any ASCII (NUL included, which
        // the SIMD path's padding of `y` is also made of).
        #[test]
        fn both_fast_paths_are_strsims(a in "[\\x00-\\x7f]{1,64}", b in "[\\x00-\\x7f]{1,64}") {
            let want = strsim::jaro_winkler(&a, &b);
            prop_assert!((jaro_winkler_ascii(a.as_bytes(), b.as_bytes()) - want).abs() < 1e-12);
            prop_assert!((jaro_winkler_ascii_by_table(a.as_bytes(), b.as_bytes()) - want).abs() < 1e-12);
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
