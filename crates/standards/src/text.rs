//! Folding text the way every cleaning step needs it.
//!
//! Department exports write the same value in many shapes: full-width digits typed with a Chinese
//! input method, traditional characters from Hong Kong, Macao and Taiwan residents, Chinese
//! punctuation, ideographic and non-breaking spaces, and numbers spelled as Chinese numerals
//! (十二栋, 一〇〇一室). This module folds those shapes to one canonical form, character by
//! character, so that names, addresses and free text can be compared. [`fold_form`] is the one
//! folding that every code-like value (citizen id, credit code, phone number, date) goes through
//! before it is read, and it reports what it folded so the parsers can say so.
//!
//! It deliberately does not interpret what the text means: it does not know what a name or an
//! address is, does not drop words and never guesses at typos. The one place where meaning leaks
//! in is numeral replacement, which has to know that 三里屯 is a place and not "3 里屯"; that
//! knowledge is kept to a short exception list and to a variant that only touches numerals followed
//! by an address unit (see [`replace_numerals_before_units`]).

/// The middle dot U+00B7, the one separator kept between the parts of a transliterated name
/// (阿依古丽·买买提). Every look-alike dot is folded to it by [`fold_punctuation`].
pub const MIDDLE_DOT: char = '\u{00B7}';

/// Whether `c` is a Han character (CJK unified ideographs, their extensions and the compatibility
/// block). The ideographic zero 〇 is not a Han character in Unicode and is not counted here.
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}'
        | '\u{2A700}'..='\u{2EBEF}'
        | '\u{30000}'..='\u{3134F}')
}

/// Whether `c` counts as whitespace for folding: Unicode white space (which covers U+3000, NBSP,
/// tabs and newlines) plus the invisible zero-width characters that copy-paste from web forms
/// leaves behind, which are never meaningful in a record.
pub fn is_space(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
        )
}

/// Full-width ASCII (U+FF01–U+FF5E) to ASCII and the ideographic space U+3000 to a plain space.
/// CJK characters and everything else are left alone. Dashes other than the full-width hyphen
/// (U+FF0D) are kept; [`fold_form`] folds them too, for values where a dash is only a separator.
pub fn to_halfwidth(s: &str) -> String {
    s.chars().map(halfwidth_char).collect()
}

/// Whether `c` is a dash look-alike that people type, or that word processors substitute, for the
/// ASCII hyphen-minus: the hyphens and dashes U+2010–U+2015, the minus sign U+2212, the hyphen
/// bullet U+2043, the small em dash U+FE58, the small hyphen-minus U+FE63 and the full-width
/// hyphen-minus U+FF0D. The ASCII `-` itself is not counted.
pub fn is_dash(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'..='\u{2015}' | '\u{2043}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}'
    )
}

/// One kind of change [`fold_form`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormFold {
    /// A full-width digit ０-９ became an ASCII digit.
    FullWidthDigit,
    /// A full-width letter Ａ-Ｚ or ａ-ｚ became an ASCII letter (its case is kept).
    FullWidthLetter,
    /// Any other full-width ASCII symbol (＃, ／, ＋ …) became its ASCII form.
    FullWidthSymbol,
    /// The ideographic space U+3000 became a plain space.
    IdeographicSpace,
    /// A dash look-alike (see [`is_dash`], which includes the full-width hyphen) became `-`.
    Dash,
}

impl FormFold {
    const ALL: [FormFold; 5] = [
        FormFold::FullWidthDigit,
        FormFold::FullWidthLetter,
        FormFold::FullWidthSymbol,
        FormFold::IdeographicSpace,
        FormFold::Dash,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The set of [`FormFold`]s that [`fold_form`] made: callers turn it into their own notes (a
/// citizen id reports full-width digits, a credit code any full-width character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FormFolds {
    bits: u8,
}

impl FormFolds {
    /// Whether `fold` happened at least once.
    pub fn contains(self, fold: FormFold) -> bool {
        self.bits & fold.bit() != 0
    }

    /// Whether nothing was folded.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// Whether any full-width ASCII character (digit, letter, symbol or the full-width hyphen)
    /// was folded.
    pub fn any_full_width(self) -> bool {
        self.contains(FormFold::FullWidthDigit)
            || self.contains(FormFold::FullWidthLetter)
            || self.contains(FormFold::FullWidthSymbol)
    }

    /// Records `fold`.
    pub fn insert(&mut self, fold: FormFold) {
        self.bits |= fold.bit();
    }

    /// The folds made, in [`FormFold`] declaration order.
    pub fn iter(self) -> impl Iterator<Item = FormFold> {
        FormFold::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

/// Folds one character the way [`fold_form`] does: `Some((folded, kind))` when it changes,
/// `None` when it is kept. One character always becomes exactly one character, so a caller can
/// keep the written form of every position next to the folded one (to report "position 9 holds
/// 四" as written).
pub fn fold_form_char(c: char) -> Option<(char, FormFold)> {
    // The full-width hyphen sits in the full-width block but is reported as a dash: to a parser it
    // is a separator like the other dashes, not a character of the value.
    if is_dash(c) {
        return Some(('-', FormFold::Dash));
    }
    let folded = halfwidth_char(c);
    if folded == c {
        return None;
    }
    let kind = if c == '\u{3000}' {
        FormFold::IdeographicSpace
    } else if folded.is_ascii_digit() {
        FormFold::FullWidthDigit
    } else if folded.is_ascii_alphabetic() {
        FormFold::FullWidthLetter
    } else {
        FormFold::FullWidthSymbol
    };
    Some((folded, kind))
}

/// The one folding every code-like value needs before it is read (citizen ids, credit codes,
/// phone numbers, dates): full-width ASCII to ASCII, the ideographic space to a space, and every
/// dash look-alike ([`is_dash`]) to `-`. Returns the folded text and which folds happened, so that
/// a parser can still report, say, that full-width digits were converted.
///
/// It does not trim, change case, touch Han characters or fold other punctuation: what counts as
/// a separator, and whether a fold deserves a note, is the caller's business.
pub fn fold_form(s: &str) -> (String, FormFolds) {
    let mut folds = FormFolds::default();
    let out = s
        .chars()
        .map(|c| match fold_form_char(c) {
            Some((f, kind)) => {
                folds.insert(kind);
                f
            }
            None => c,
        })
        .collect();
    (out, folds)
}

fn halfwidth_char(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        // The full-width block mirrors ASCII 0x21–0x7E at a fixed offset, so the subtraction
        // always lands on a valid ASCII character.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Traditional to simplified Chinese, with zhconv's phrase-level context (so that 乾隆 stays 乾隆
/// while 乾燥 becomes 干燥).
///
/// zhconv runs an Aho–Corasick automaton over the whole text and builds it on first use (tens of
/// milliseconds once per process), so ASCII-only input, which cannot contain traditional
/// characters, is returned without touching it.
pub fn to_simplified(s: &str) -> String {
    if s.is_ascii() || !simplification_may_change(s) {
        return s.to_string();
    }
    zhconv::zhconv(s, zhconv::Variant::ZhHans)
}

/// Whether some rule of zhconv's traditional-to-simplified table matches somewhere in `s`. When
/// none does, the automaton would copy `s` unchanged; and most names and addresses in department
/// exports are already simplified. The automaton spent about 3,000 instructions on a
/// two-character name (callgrind, `tongban bench ingest`); this check, a table lookup per
/// character, a few dozen. Which of several matching rules applies is still the automaton's to
/// decide (leftmost, longest), so any match sends the text there.
fn simplification_may_change(s: &str) -> bool {
    let rules = simplification_rules();
    s.char_indices().any(|(i, c)| {
        rules.get(&c).is_some_and(|sources| {
            let here = s.get(i..).unwrap_or("");
            sources
                .iter()
                .any(|source| here.starts_with(source.as_str()))
        })
    })
}

/// The source texts of zhconv's traditional-to-simplified rules (the table its built-in `ZhHans`
/// converter is built from), by their first character; read once per process.
fn simplification_rules() -> &'static foldhash::HashMap<char, Vec<String>> {
    static RULES: std::sync::OnceLock<foldhash::HashMap<char, Vec<String>>> =
        std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        let mut rules: foldhash::HashMap<char, Vec<String>> = foldhash::HashMap::default();
        for (source, _) in zhconv::tables::expand_table(zhconv::tables::ZH_HANS_TABLE) {
            if let Some(first) = source.chars().next() {
                rules.entry(first).or_default().push(source);
            }
        }
        rules
    })
}

/// Whether `s` contains anything that simplification would change, i.e. it was (at least partly)
/// written in traditional characters. It costs one conversion; ASCII input is answered for free.
pub fn is_probably_traditional(s: &str) -> bool {
    !s.is_ascii() && to_simplified(s) != s
}

/// Trim and collapse every run of whitespace (including U+3000, NBSP, tabs and newlines) to one
/// ASCII space.
pub fn fold_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(is_space).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Remove all whitespace. Chinese names and addresses contain none, so any space in them is noise.
pub fn strip_whitespace(s: &str) -> String {
    s.chars().filter(|c| !is_space(*c)).collect()
}

/// Chinese and full-width punctuation to the ASCII equivalent, and every dot look-alike used
/// between the parts of a name (・ • ‧ ･ ∙ ⋅) to the middle dot U+00B7.
///
/// Dashes of all widths (— – － ‐ ‑ ‒ ― − ﹣) become `-`, because addresses write
/// building-unit-room as 12－3－1001 or 12—3—1001 as often as 12-3-1001.
pub fn fold_punctuation(s: &str) -> String {
    s.chars().map(fold_punct_char).collect()
}

fn fold_punct_char(c: char) -> char {
    match c {
        '，' | '、' | '﹐' => ',',
        '。' | '｡' | '．' => '.',
        '（' | '﹙' => '(',
        '）' | '﹚' => ')',
        '【' | '〔' | '［' | '〖' => '[',
        '】' | '〕' | '］' | '〗' => ']',
        '：' | '﹕' => ':',
        '；' | '﹔' => ';',
        '“' | '”' | '「' | '」' | '『' | '』' | '＂' | '〝' | '〞' => '"',
        '‘' | '’' | '＇' => '\'',
        c if is_dash(c) => '-',
        '～' | '〜' => '~',
        '！' => '!',
        '？' => '?',
        '《' | '〈' => '<',
        '》' | '〉' => '>',
        '·' | '・' | '•' | '‧' | '･' | '∙' | '⋅' => MIDDLE_DOT,
        _ => c,
    }
}

/// The value of a Chinese digit character, including the financial forms and 两; `○` (U+25CB) is
/// accepted for 〇 because it is what most input methods produce for "zero" in years and rooms.
fn digit_value(c: char) -> Option<u64> {
    Some(match c {
        '零' | '〇' | '○' => 0,
        '一' | '壹' => 1,
        '二' | '两' | '贰' | '貳' => 2,
        '三' | '叁' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' | '陸' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

/// The value of a Chinese multiplier character.
fn unit_value(c: char) -> Option<u64> {
    Some(match c {
        '十' | '拾' => 10,
        '百' | '佰' => 100,
        '千' | '仟' => 1_000,
        '万' | '萬' => 10_000,
        '亿' | '億' => 100_000_000,
        _ => return None,
    })
}

/// Whether `c` can be part of a Chinese numeral (a digit or a multiplier).
pub fn is_chinese_numeral(c: char) -> bool {
    digit_value(c).is_some() || unit_value(c).is_some()
}

/// The value of a Chinese numeral, or `None` when `s` is not one (empty, other characters,
/// malformed such as 十百, or larger than `u64`).
///
/// Two forms are understood:
/// - positional, digits only: 一二三 = 123, 二〇二〇 = 2020, 一〇〇一 = 1001;
/// - multiplicative: 十二 = 12, 二十 = 20, 一百一十 = 110, 一千零一 = 1001, 三万五千 = 35000,
///   including the spoken abbreviation where a last digit right after a multiplier counts in the
///   next lower place (一百一 = 110, 三万五 = 35000), but not after 零 (一百零一 = 101).
///
/// Financial numerals (壹贰叁肆伍陆柒捌玖拾佰仟) and 两 are accepted everywhere.
pub fn chinese_numeral_to_u64(s: &str) -> Option<u64> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return None;
    }
    if chars.iter().all(|c| digit_value(*c).is_some()) {
        let mut n: u64 = 0;
        for c in &chars {
            n = n.checked_mul(10)?.checked_add(digit_value(*c)?)?;
        }
        return Some(n);
    }
    multiplicative(&chars)
}

fn multiplicative(chars: &[char]) -> Option<u64> {
    // `total` holds completed 亿 groups, `wan` completed 万 groups inside the current 亿 group and
    // `sec` the part below 万; `pending` is a digit still waiting for its multiplier.
    let mut total: u64 = 0;
    let mut wan: u64 = 0;
    let mut sec: u64 = 0;
    let mut pending: Option<u64> = None;
    // Multipliers inside a section must decrease (千 then 百 then 十); `cap` is the bound the next
    // one must stay under.
    let mut cap: u64 = 10_000;
    let mut last_unit: u64 = 1;
    let mut zero_since_unit = false;
    let (mut seen_wan, mut seen_yi) = (false, false);
    for &c in chars {
        if let Some(d) = digit_value(c) {
            if d == 0 {
                // 零 only marks a gap (一千零一); a digit already waiting makes it malformed.
                if pending.is_some() {
                    return None;
                }
                zero_since_unit = true;
                continue;
            }
            if pending.is_some() {
                return None;
            }
            pending = Some(d);
            continue;
        }
        let u = unit_value(c)?;
        match u {
            10 | 100 | 1_000 => {
                if u >= cap {
                    return None;
                }
                // A bare multiplier means one of it: 十二 is 12, 百 is 100.
                let n = pending.take().unwrap_or(1);
                sec = sec.checked_add(n.checked_mul(u)?)?;
                cap = u;
            }
            10_000 => {
                if seen_wan {
                    return None;
                }
                let group = sec.checked_add(pending.take().unwrap_or(0))?;
                let group = if group == 0 { 1 } else { group };
                wan = group.checked_mul(10_000)?;
                sec = 0;
                cap = 10_000;
                seen_wan = true;
            }
            _ => {
                if seen_yi {
                    return None;
                }
                let group = wan
                    .checked_add(sec)?
                    .checked_add(pending.take().unwrap_or(0))?;
                let group = if group == 0 { 1 } else { group };
                total = group.checked_mul(100_000_000)?;
                wan = 0;
                sec = 0;
                cap = 10_000;
                seen_wan = false;
                seen_yi = true;
            }
        }
        last_unit = u;
        zero_since_unit = false;
    }
    let tail = match pending {
        // 一百一 is 110 and 三万五 is 35000: a final digit right after 百 or larger counts in the
        // next lower place. After 十 (十二) or after 零 (一百零一) it is a plain unit digit.
        Some(d) if !zero_since_unit && last_unit >= 100 => d.checked_mul(last_unit / 10)?,
        Some(d) => d,
        None => 0,
    };
    total.checked_add(wan)?.checked_add(sec)?.checked_add(tail)
}

/// Words that begin with a numeral character but are not numbers: place and brand names that
/// appear in addresses and free text. Kept short on purpose; see [`replace_chinese_numerals`].
const NUMERAL_EXCEPTIONS: &[&str] = &[
    "万达",
    "万科",
    "万家",
    "万象",
    "万年",
    "万寿",
    "万柳",
    "一品",
    "一中",
    "三里屯",
    "三元",
    "三亚",
    "十里",
    "十全",
    "七星",
    "七里",
    "千灯",
    "千岛",
    "千万",
    "百花",
    "百货",
    "百合",
    "百胜",
    "九龙",
    "九华",
    "四季",
    "五星",
    "五洲",
    "五角场",
    "六合",
    "八一",
    "二七",
    "三八",
    "五四",
    "五一",
    "一心",
    "一路",
    "万一",
    "一些",
    "一样",
    "一起",
    "一直",
    "一定",
    "两岸",
    "千秋",
    "百年",
    "万里",
    "九州",
];

/// Address unit characters: a numeral right before one of these is a number (三单元, 十二栋).
const ADDRESS_UNITS: &[char] = &[
    '号', '栋', '幢', '座', '楼', '层', '室', '期', '区', '弄', '巷', '组', '户', '#', '-',
];

/// Replace every maximal run of Chinese numerals in `s` with its Arabic value (三单元 → 3单元,
/// 十二栋 → 12栋, 一〇〇一室 → 1001室, 二〇二〇年 → 2020年).
///
/// Runs that start one of a few known words (万达, 三里屯, 九龙, 四季, 六合 …) are kept, as are
/// runs that are not well-formed numerals (十百) and runs of bare multipliers other than 十
/// (千万, 百): those are almost always words, not numbers. This is still a blunt tool on free
/// text (一致 has no exception and becomes 1致); addresses use the stricter
/// [`replace_numerals_before_units`].
pub fn replace_chinese_numerals(s: &str) -> String {
    replace_runs(s, |_| true)
}

/// Replace Chinese numeral runs only where they are immediately followed by an address unit
/// character (号栋幢座楼单元层室期区弄巷组户, `#` or `-`), or end the text right after such a unit
/// or an Arabic digit, or are the whole text: 十二栋三单元一〇〇一 → 12栋3单元1001, while 九龙仓,
/// 一品苑, 三里屯 and 古娄一村 are untouched, and so is the name in 1001室张三.
///
/// Addresses are full of place and compound names containing numeral characters, and those are
/// practically never followed by a unit, whereas the building, unit, floor and room numbers always
/// are (or end the address when 室 is left out). Gating on the following character is therefore
/// both safer and simpler than growing the exception list without end. A run that ends the text is
/// a room number only where a number is expected, after a unit; after anything else it is a word,
/// typically the name of a contact written after the address (…1001室 张三).
pub fn replace_numerals_before_units(s: &str) -> String {
    replace_runs_with(s, |before, after| match after.chars().next() {
        None => before.is_empty() || ends_with_unit(before),
        Some('单') => after.starts_with("单元"),
        Some(c) => ADDRESS_UNITS.contains(&c),
    })
}

/// Whether `s` ends with an address unit (see [`ADDRESS_UNITS`]), 单元 or an Arabic digit.
fn ends_with_unit(s: &str) -> bool {
    s.ends_with("单元")
        || s.chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_digit() || ADDRESS_UNITS.contains(&c))
}

fn replace_runs(s: &str, accept_before: impl Fn(&str) -> bool) -> String {
    replace_runs_with(s, |_, after| accept_before(after))
}

/// Replaces numeral runs for which `accept(before, after)` holds, `before` and `after` being the
/// text of `s` on either side of the run.
fn replace_runs_with(s: &str, accept: impl Fn(&str, &str) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if !is_chinese_numeral(c) {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let mut end = rest
            .char_indices()
            .find(|(_, ch)| !is_chinese_numeral(*ch))
            .map_or(rest.len(), |(i, _)| i);
        // An exception word at the start of the run is kept when it is the whole run (五一) or
        // reaches past it (万达广场, 三里屯); one that is only a prefix of a longer run (五一 in
        // 五一〇) is not a word there. Further in, an exception that reaches past the run cuts
        // the run where it begins, so 一万达 is 一 followed by 万达.
        let starts_word = |i: usize| {
            NUMERAL_EXCEPTIONS.iter().find(|w| {
                rest[i..].starts_with(**w) && (i + w.len() > end || (i == 0 && w.len() == end))
            })
        };
        if let Some(word) = starts_word(0) {
            out.push_str(word);
            rest = &rest[word.len()..];
            continue;
        }
        if let Some((i, _)) = rest[..end]
            .char_indices()
            .skip(1)
            .find(|(i, _)| starts_word(*i).is_some())
        {
            end = i;
        }
        let before = s.get(..s.len() - rest.len()).unwrap_or("");
        let (run, after) = rest.split_at(end);
        let only_big_units = run.chars().all(|ch| unit_value(ch).is_some_and(|u| u > 10));
        match chinese_numeral_to_u64(run) {
            Some(n) if !only_big_units && accept(before, after) => out.push_str(&n.to_string()),
            _ => out.push_str(run),
        }
        rest = after;
    }
    out
}

/// The standard pipeline for free-text fields: half-width, simplified, punctuation folded,
/// whitespace folded. Numerals are left alone because their meaning depends on the field.
/// The enumeration comma 、 is kept: it has no ASCII equivalent, and official category names
/// are written with it (GB/T 4754's 居民服务、修理和其他服务业), which a comma would change.
pub fn normalize(s: &str) -> String {
    let folded: String = to_simplified(&to_halfwidth(s))
        .chars()
        .map(|c| if c == '、' { c } else { fold_punct_char(c) })
        .collect();
    fold_whitespace(&folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The standard multiplicative spelling of `n` (below 10^12), to check the parser against.
    fn to_chinese(n: u64) -> String {
        const D: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
        fn section(n: u64) -> String {
            let mut out = String::new();
            let mut zero = false;
            for (p, u) in [(1000, "千"), (100, "百"), (10, "十"), (1, "")] {
                let d = (n / p % 10) as usize;
                if d == 0 {
                    zero = !out.is_empty();
                    continue;
                }
                if zero {
                    out.push('零');
                    zero = false;
                }
                out.push(D[d]);
                out.push_str(u);
            }
            out
        }
        if n == 0 {
            return "零".into();
        }
        let groups = [
            (n / 100_000_000, "亿"),
            (n / 10_000 % 10_000, "万"),
            (n % 10_000, ""),
        ];
        let mut out = String::new();
        let mut need_zero = false;
        for (g, u) in groups {
            if g == 0 {
                need_zero = !out.is_empty();
                continue;
            }
            if !out.is_empty() && (need_zero || g < 1000) {
                out.push('零');
            }
            need_zero = false;
            out.push_str(&section(g));
            out.push_str(u);
        }
        out
    }

    #[test]
    fn halfwidth_folds_ascii_block_and_ideographic_space() {
        assert_eq!(to_halfwidth("１２３ＡＢｃ，＃－"), "123ABc,#-");
        assert_eq!(to_halfwidth("张\u{3000}三"), "张 三");
        assert_eq!(to_halfwidth("青剑湖花园"), "青剑湖花园");
        assert_eq!(to_halfwidth("～！"), "~!");
    }

    #[test]
    fn fold_form_folds_full_width_spaces_and_dashes_and_says_which() {
        let (s, f) = fold_form("２０２０‐０１－０２");
        assert_eq!(s, "2020-01-02");
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            vec![FormFold::FullWidthDigit, FormFold::Dash]
        );
        assert!(f.any_full_width());
        for d in [
            '\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2014}', '\u{2015}', '\u{2212}',
            '\u{FE58}', '\u{FE63}', '\u{FF0D}',
        ] {
            let (s, f) = fold_form(&format!("1{d}2"));
            assert_eq!(s, "1-2", "U+{:04X}", d as u32);
            assert_eq!(f.iter().collect::<Vec<_>>(), vec![FormFold::Dash]);
        }
        let (s, f) = fold_form("ｘＡ＃\u{3000}青剑湖");
        assert_eq!(s, "xA# 青剑湖");
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            vec![
                FormFold::FullWidthLetter,
                FormFold::FullWidthSymbol,
                FormFold::IdeographicSpace
            ]
        );
        let (s, f) = fold_form("110105-1949 abc");
        assert_eq!(s, "110105-1949 abc");
        assert!(f.is_empty());
        assert!(!f.any_full_width());
        // Dashes only ever become the ASCII hyphen; fold_punctuation agrees with fold_form.
        assert_eq!(fold_punctuation("12\u{FE58}3\u{2212}1001"), "12-3-1001");
        assert!(!is_dash('-'));
    }

    #[test]
    fn simplified_converts_traditional_and_keeps_simplified() {
        assert_eq!(to_simplified("蘇州工業園區"), "苏州工业园区");
        assert_eq!(to_simplified("張偉"), "张伟");
        assert_eq!(to_simplified("青剑湖花园12幢"), "青剑湖花园12幢");
        assert_eq!(to_simplified("乾隆"), "乾隆");
        assert_eq!(to_simplified("乾燥"), "干燥");
        assert!(is_probably_traditional("陳麗華"));
        assert!(!is_probably_traditional("陈丽华"));
        assert!(!is_probably_traditional("abc"));
    }

    #[test]
    fn whitespace_is_folded_and_stripped() {
        assert_eq!(fold_whitespace("  a\t\tb\u{3000}\u{00A0}c\n"), "a b c");
        assert_eq!(fold_whitespace("\u{200B} x \u{FEFF}"), "x");
        assert_eq!(fold_whitespace(""), "");
        assert_eq!(strip_whitespace(" 张 \u{3000}三\t"), "张三");
    }

    #[test]
    fn punctuation_folds_to_ascii_and_dots_to_middle_dot() {
        assert_eq!(
            fold_punctuation("（近地铁站），【备注】：是；"),
            "(近地铁站),[备注]:是;"
        );
        assert_eq!(fold_punctuation("“甲”‘乙’"), "\"甲\"'乙'");
        assert_eq!(fold_punctuation("12—3–1001－2‐3"), "12-3-1001-2-3");
        assert_eq!(fold_punctuation("阿依古丽・买买提"), "阿依古丽·买买提");
        assert_eq!(fold_punctuation("阿依古丽•买买提"), "阿依古丽·买买提");
        assert_eq!(fold_punctuation("好。"), "好.");
        assert_eq!(fold_punctuation("～"), "~");
    }

    #[test]
    fn numerals_positional_and_multiplicative() {
        let cases = [
            ("一二三", 123),
            ("二〇二〇", 2020),
            ("二○二○", 2020),
            ("一〇〇一", 1001),
            ("零", 0),
            ("十", 10),
            ("十二", 12),
            ("二十", 20),
            ("二十一", 21),
            ("一百一十", 110),
            ("一百一", 110),
            ("一百零一", 101),
            ("一千零一", 1001),
            ("三万五千", 35_000),
            ("三万五", 35_000),
            ("两千", 2_000),
            ("一万零五百", 10_500),
            ("一千二百万", 12_000_000),
            ("十万", 100_000),
            ("三亿零五万", 300_050_000),
            ("壹仟贰佰叁拾肆", 1234),
            ("玖拾玖", 99),
        ];
        for (s, n) in cases {
            assert_eq!(chinese_numeral_to_u64(s), Some(n), "{s}");
        }
        for bad in ["", "十百", "二三百", "abc", "一万二万", "12", "三楼"] {
            assert_eq!(chinese_numeral_to_u64(bad), None, "{bad}");
        }
        assert_eq!(chinese_numeral_to_u64(&"九".repeat(25)), None);
    }

    #[test]
    fn replace_converts_runs_and_keeps_words() {
        assert_eq!(replace_chinese_numerals("三单元"), "3单元");
        assert_eq!(
            replace_chinese_numerals("十二栋三单元一〇〇一室"),
            "12栋3单元1001室"
        );
        assert_eq!(replace_chinese_numerals("二〇二〇年五月"), "2020年5月");
        for kept in [
            "万达广场",
            "一品苑",
            "三里屯",
            "十里铺",
            "七星路",
            "千灯镇",
            "百花园",
            "九龙仓",
            "四季花城",
            "五星村",
            "六合区",
        ] {
            assert_eq!(replace_chinese_numerals(kept), kept);
        }
        assert_eq!(replace_chinese_numerals("千万小心"), "千万小心");
        assert_eq!(replace_chinese_numerals("一万达"), "1万达");
    }

    #[test]
    fn address_replacement_is_gated_on_units() {
        assert_eq!(
            replace_numerals_before_units("青剑湖花园十二栋三单元一〇〇一"),
            "青剑湖花园12栋3单元1001"
        );
        assert_eq!(replace_numerals_before_units("二期五号楼"), "2期5号楼");
        assert_eq!(replace_numerals_before_units("古娄一村"), "古娄一村");
        assert_eq!(replace_numerals_before_units("九龙仓三幢"), "九龙仓3幢");
        assert_eq!(
            replace_numerals_before_units("十二-三-一〇〇一"),
            "12-3-1001"
        );
        assert_eq!(replace_numerals_before_units("三元一村"), "三元一村");
        assert_eq!(replace_numerals_before_units("三单身"), "三单身");
        // A run that ends the text is a room only right after a unit or digit; after anything
        // else it is a word, such as a contact's name written after the address.
        assert_eq!(
            replace_numerals_before_units("青剑湖花园12栋3单元1001室张三"),
            "青剑湖花园12栋3单元1001室张三"
        );
        assert_eq!(replace_numerals_before_units("张三"), "张三");
        assert_eq!(replace_numerals_before_units("王五一"), "王五一");
        assert_eq!(replace_numerals_before_units("12栋一〇〇一"), "12栋1001");
        assert_eq!(replace_numerals_before_units("12-一〇〇一"), "12-1001");
        assert_eq!(replace_numerals_before_units("一〇〇一"), "1001");
        // Numeral-only exception words (五一, 八一) do not split a longer positional number.
        assert_eq!(replace_numerals_before_units("一八五一〇室"), "18510室");
        assert_eq!(replace_chinese_numerals("五一路"), "五一路");
    }

    #[test]
    fn normalize_runs_the_whole_pipeline() {
        assert_eq!(
            normalize("  蘇州 ，工業園區（１２號）\u{3000}"),
            "苏州 ,工业园区(12号)"
        );
        assert_eq!(
            normalize("居民服务、修理和其他服务业"),
            "居民服务、修理和其他服务业"
        );
    }

    #[test]
    fn helper_spells_numbers_as_expected() {
        assert_eq!(to_chinese(1001), "一千零一");
        assert_eq!(to_chinese(35_000), "三万五千");
        assert_eq!(to_chinese(110), "一百一十");
        assert_eq!(to_chinese(10_500), "一万零五百");
        assert_eq!(to_chinese(12), "一十二");
    }

    fn alphabet() -> impl Strategy<Value = String> {
        let chars: Vec<char> = "零〇○一二三四五六七八九十百千万亿两壹贰叁肆伍陆柒捌玖拾佰仟省市区路号栋幢座单元层室期弄巷组0123456789０１２３４５ＡＢ　 -—–－‐#·・•()（）【】万达九龙古娄村"
            .chars()
            .collect();
        proptest::collection::vec(proptest::sample::select(chars), 0..40)
            .prop_map(|v| v.into_iter().collect())
    }

    /// Text made of characters that begin or continue zhconv's rules, names' common characters
    /// and address words, so that rules match often, sometimes only partly.
    fn simplification_text() -> impl Strategy<Value = String> {
        let mut pool: Vec<char> = "张王李刘陈杨黄赵周吴徐孙马朱胡郭何林高罗郑梁谢宋唐伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华欧阳修苏州园区幢单元室号路街干乾坤隆发髮后後里裏面麵只隻台臺 ·-0123"
            .chars()
            .collect();
        let mut sources: Vec<&String> = simplification_rules().values().flatten().collect();
        sources.sort();
        pool.extend(sources.iter().step_by(7).flat_map(|s| s.chars()));
        let whole: Vec<String> = sources.iter().step_by(11).map(|s| s.to_string()).collect();
        let piece = prop_oneof![
            3 => proptest::sample::select(pool).prop_map(String::from),
            1 => proptest::sample::select(whole),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn text_no_rule_matches_is_left_as_it_is(s in simplification_text()) {
            let converted = zhconv::zhconv(&s, zhconv::Variant::ZhHans);
            if !simplification_may_change(&s) {
                prop_assert_eq!(&converted, &s);
            }
            prop_assert_eq!(to_simplified(&s), converted);
        }

        #[test]
        fn multiplicative_round_trip(n in 0u64..1_000_000_000_000) {
            prop_assert_eq!(chinese_numeral_to_u64(&to_chinese(n)), Some(n));
        }

        #[test]
        fn positional_round_trip(n in 0u64..10_000_000_000) {
            const D: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
            let s: String = n.to_string().bytes().map(|b| D[(b - b'0') as usize]).collect();
            prop_assert_eq!(chinese_numeral_to_u64(&s), Some(n));
            prop_assert_eq!(replace_numerals_before_units(&format!("{s}室")), format!("{n}室"));
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            let _ = to_halfwidth(&s);
            let _ = to_simplified(&s);
            let _ = fold_whitespace(&s);
            let _ = strip_whitespace(&s);
            let _ = fold_punctuation(&s);
            let _ = chinese_numeral_to_u64(&s);
            let _ = replace_chinese_numerals(&s);
            let _ = replace_numerals_before_units(&s);
            let n = normalize(&s);
            prop_assert_eq!(n.trim(), n.as_str());
        }

        #[test]
        fn never_panics_on_numeral_alphabet(s in alphabet()) {
            let r = replace_chinese_numerals(&s);
            let g = replace_numerals_before_units(&s);
            let _ = chinese_numeral_to_u64(&s);
            // Replacement only ever touches numerals: the other characters survive in order.
            let keep = |t: &str| t.chars().filter(|c| !is_chinese_numeral(*c) && !c.is_ascii_digit()).collect::<String>();
            prop_assert_eq!(keep(&r), keep(&s));
            prop_assert_eq!(keep(&g), keep(&s));
        }

        #[test]
        fn fold_form_keeps_length_and_reports_exactly_its_changes(s in any::<String>()) {
            let (f, folds) = fold_form(&s);
            prop_assert_eq!(f.chars().count(), s.chars().count());
            prop_assert_eq!(folds.is_empty(), f == s);
            let unfolded = |c: char| is_dash(c) || c == '\u{3000}' || ('\u{FF01}'..='\u{FF5E}').contains(&c);
            prop_assert!(!f.chars().any(unfolded), "left unfolded in {:?}", f);
            prop_assert_eq!(fold_form(&f), (f.clone(), FormFolds::default()));
        }

        #[test]
        fn folding_is_idempotent(s in alphabet()) {
            let h = to_halfwidth(&s);
            prop_assert_eq!(to_halfwidth(&h), h.clone());
            let fullwidth = |c: char| ('\u{FF01}'..='\u{FF5E}').contains(&c);
            prop_assert!(!h.chars().any(fullwidth), "full-width left in {:?}", h);
            let w = fold_whitespace(&s);
            prop_assert_eq!(fold_whitespace(&w), w.clone());
            prop_assert!(!w.contains("  "));
            let p = fold_punctuation(&s);
            prop_assert_eq!(fold_punctuation(&p), p.clone());
            prop_assert!(!strip_whitespace(&s).chars().any(is_space));
        }
    }
}
