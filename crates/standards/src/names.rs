//! Person names: cleaning, surname split, pinyin, surname frequencies and the confusion tables.
//!
//! A name arrives typed by a clerk: with full-width letters, traditional characters, a space
//! between surname and given name, or any of half a dozen dots between the parts of a Uyghur or
//! Tibetan name. [`clean_name`] folds those to one written form and says what it changed; the
//! pinyin functions give the romanised key that record linkage blocks on, reading surnames the way
//! surnames are read (单 is Shan, not Dan); and the tables of homophones and variant characters
//! describe the mistakes clerks actually make, for the synthetic generator to make them and for
//! resolution to forgive them.
//!
//! This module does not decide whether two names belong to one person, does not guess genders or
//! ethnicity, and does not correct a name: a homophone is a possible confusion, not a fix.

use crate::text::{self, MIDDLE_DOT};
use pinyin::ToPinyin;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::LazyLock;
use thiserror::Error;

/// The longest name accepted, in characters. Transliterated minority names reach about twenty
/// characters and Latin names forty; anything longer is a field mix-up, not a name.
pub const MAX_NAME_CHARS: usize = 64;

/// A cleaned name and what cleaning changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CleanName {
    /// The name in its written standard form: simplified Han characters without spaces, parts of a
    /// transliterated name joined by U+00B7, Latin names uppercased with single spaces.
    pub name: String,
    /// What was changed on the way, in the order the steps ran.
    pub notes: Vec<NameNote>,
}

/// One change [`clean_name`] made, kept so that a data-quality report can say how names arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum NameNote {
    /// Full-width letters or an ideographic space were folded to ASCII.
    FullWidth,
    /// Traditional characters were converted to simplified ones.
    Traditional,
    /// Whitespace inside a Chinese name was removed (张 三 → 张三).
    InnerWhitespace,
    /// A dot look-alike, a full stop or a hyphen between name parts became U+00B7.
    MiddleDotNormalized,
    /// Dots at either end of the name, or repeated dots, were removed.
    StrayDotsRemoved,
    /// Lowercase Latin letters were uppercased.
    Uppercased,
}

impl std::fmt::Display for NameNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameNote::FullWidth => {
                "full-width letters or an ideographic space were folded to ASCII"
            }
            NameNote::Traditional => "traditional characters were converted to simplified ones",
            NameNote::InnerWhitespace => "whitespace inside the Chinese name was removed",
            NameNote::MiddleDotNormalized => {
                "the separator between the name's parts was normalised to the middle dot ·"
            }
            NameNote::StrayDotsRemoved => "dots at either end or repeated dots were removed",
            NameNote::Uppercased => "lowercase Latin letters were uppercased",
        })
    }
}

/// Why a value is not a usable name.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NameError {
    /// Nothing but whitespace.
    #[error("name is empty")]
    Empty,
    /// A digit: names have none, so the field probably holds an id or a phone number.
    #[error("name contains the digit '{0}'; names have no digits")]
    Digit(char),
    /// A character that is neither a letter, a Han character nor a name separator.
    #[error("name contains '{0}', which cannot appear in a name (masked or mistyped?)")]
    InvalidChar(char),
    /// Only separators were left after cleaning.
    #[error("name has no letters or Han characters")]
    NoLetters,
    /// Longer than [`MAX_NAME_CHARS`].
    #[error("name is {0} characters long, more than the {MAX_NAME_CHARS} a name can have")]
    TooLong(usize),
}

/// Clean a person's name: half-width, simplified, whitespace removed inside Chinese names and
/// folded to single spaces in Latin ones (which are uppercased), every dot variant between the
/// parts of a transliterated name normalised to U+00B7.
///
/// Rejects empty values, names containing digits or symbols, names with no letter or Han
/// character, and names longer than [`MAX_NAME_CHARS`].
pub fn clean_name(s: &str) -> Result<CleanName, NameError> {
    if s.chars().all(text::is_space) {
        return Err(NameError::Empty);
    }
    clean_han_name(s).unwrap_or_else(|| clean_general_name(s))
}

/// Most names are Han characters and nothing else: then only simplification can change them (no
/// width, dot, space or case to fold), and the general path would return what this does, at a
/// fraction of the cost on the ingest path. `None` for every other name.
fn clean_han_name(s: &str) -> Option<Result<CleanName, NameError>> {
    if s.is_empty() || !s.chars().all(text::is_han) {
        return None;
    }
    let name = text::to_simplified(s);
    if !name.chars().all(text::is_han) {
        return None;
    }
    let notes = if name != s {
        vec![NameNote::Traditional]
    } else {
        Vec::new()
    };
    Some(checked(name, notes))
}

fn clean_general_name(s: &str) -> Result<CleanName, NameError> {
    let mut notes = Vec::new();
    let half = text::to_halfwidth(s);
    if half != s {
        notes.push(NameNote::FullWidth);
    }
    let simp = text::to_simplified(&half);
    if simp != half {
        notes.push(NameNote::Traditional);
    }
    let has_han = simp.chars().any(text::is_han);

    // Dots: every look-alike becomes U+00B7; in a Chinese name a full stop or hyphen between the
    // parts is the same separator typed on a keyboard without a middle dot.
    let mut dot_changed = false;
    let dotted: String = text::fold_punctuation(&simp)
        .chars()
        .map(|c| {
            let sep = c == MIDDLE_DOT || (has_han && matches!(c, '.' | '-'));
            if sep && c != MIDDLE_DOT {
                dot_changed = true;
            }
            if sep { MIDDLE_DOT } else { c }
        })
        .collect();
    if dot_changed || simp.chars().any(|c| c != MIDDLE_DOT && is_dot_like(c)) {
        notes.push(NameNote::MiddleDotNormalized);
    }

    // Whitespace: one space between Latin words, none next to a Han character or a dot.
    let folded = text::fold_whitespace(&dotted);
    let chars: Vec<char> = folded.chars().collect();
    let mut spaced = String::with_capacity(folded.len());
    let mut inner_removed = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let joins_han =
                |x: Option<&char>| x.is_some_and(|x| text::is_han(*x) || *x == MIDDLE_DOT);
            if joins_han(i.checked_sub(1).and_then(|j| chars.get(j))) || joins_han(chars.get(i + 1))
            {
                inner_removed = true;
                continue;
            }
        }
        spaced.push(c);
    }
    if inner_removed {
        notes.push(NameNote::InnerWhitespace);
    }

    // Stray dots: at either end, or doubled, they separate nothing.
    let mut undotted = String::with_capacity(spaced.len());
    for c in spaced.chars() {
        if c == MIDDLE_DOT && (undotted.is_empty() || undotted.ends_with(MIDDLE_DOT)) {
            continue;
        }
        undotted.push(c);
    }
    while undotted.ends_with(MIDDLE_DOT) {
        undotted.pop();
    }
    if undotted.chars().filter(|c| *c == MIDDLE_DOT).count()
        != spaced.chars().filter(|c| *c == MIDDLE_DOT).count()
    {
        notes.push(NameNote::StrayDotsRemoved);
    }

    let name = if undotted.chars().any(char::is_lowercase) {
        notes.push(NameNote::Uppercased);
        undotted.to_uppercase()
    } else {
        undotted
    };

    checked(name, notes)
}

/// The last checks every cleaned name passes: only letters, Han characters and separators, at
/// least one letter, at most [`MAX_NAME_CHARS`].
fn checked(name: String, notes: Vec<NameNote>) -> Result<CleanName, NameError> {
    for c in name.chars() {
        // The common block of Han characters holds no numeric character (its numerals, 一二三,
        // are letters to Unicode), and `is_numeric` looks outside ASCII up in a table.
        if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
            continue;
        }
        if c.is_numeric() {
            return Err(NameError::Digit(c));
        }
        let allowed = text::is_han(c)
            || c.is_alphabetic()
            || matches!(c, ' ' | '\'' | '-' | '.')
            || c == MIDDLE_DOT;
        if !allowed {
            return Err(NameError::InvalidChar(c));
        }
    }
    if !name.chars().any(|c| text::is_han(c) || c.is_alphabetic()) {
        return Err(NameError::NoLetters);
    }
    let len = name.chars().count();
    if len > MAX_NAME_CHARS {
        return Err(NameError::TooLong(len));
    }
    Ok(CleanName { name, notes })
}

fn is_dot_like(c: char) -> bool {
    matches!(c, '·' | '・' | '•' | '‧' | '･' | '∙' | '⋅')
}

/// Compound (two-character) surnames, checked before falling back to a one-character surname.
pub const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "闻人", "澹台",
    "公冶", "太史", "申屠", "钟离", "完颜", "单于", "濮阳", "淳于", "赫连", "东郭", "拓跋", "司空",
    "亓官", "公羊", "左丘", "梁丘", "第五", "乐正", "鲜于", "闾丘", "宗政", "仲孙", "巫马", "羊舌",
    "微生", "东门", "子车", "颛孙", "段干", "谷梁", "乌孙", "公良", "漆雕", "壤驷", "公西",
];

/// Split a cleaned Chinese name into surname and given name: a compound surname (欧阳, 司马,
/// 尉迟 …) when the name starts with one and has at least three characters, otherwise the first
/// character.
///
/// A two-character name that spells a compound surname (欧阳) is read as one-character surname
/// plus given name, because a person is rarely registered by surname alone. Transliterated names
/// (with U+00B7) have no surname in the Han sense and names that do not start with a Han
/// character are not split: both give `("", name)`.
pub fn split_surname(name: &str) -> (&str, &str) {
    let Some(first) = name.chars().next() else {
        return ("", "");
    };
    if !text::is_han(first) || name.contains(MIDDLE_DOT) {
        return ("", name);
    }
    // The byte offset of the third character, if there is one: the first two characters are
    // then looked up among the compound surnames (all of two characters) in one probe, where a
    // walk through the list cost a comparison per entry for every name read (about 1 % of a
    // `tongban resolve`).
    if let Some((third, _)) = name.char_indices().nth(2)
        && COMPOUND_SURNAME_SET.contains(&name[..third])
    {
        return name.split_at(third);
    }
    name.split_at(first.len_utf8())
}

/// [`COMPOUND_SURNAMES`] for lookups.
static COMPOUND_SURNAME_SET: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| COMPOUND_SURNAMES.iter().copied().collect());

/// How characters are read when they are a surname, where that differs from (or is ambiguous in)
/// the everyday reading: 单 is Shan, 曾 Zeng, 解 Xie. Compound entries give one syllable per
/// character.
const SURNAME_READINGS: &[(&str, &str)] = &[
    ("单", "shan"),
    ("曾", "zeng"),
    ("解", "xie"),
    ("仇", "qiu"),
    ("区", "ou"),
    ("朴", "piao"),
    ("查", "zha"),
    ("盖", "ge"),
    ("乐", "yue"),
    ("繁", "po"),
    ("种", "chong"),
    ("覃", "qin"),
    ("眭", "sui"),
    ("缪", "miao"),
    ("召", "shao"),
    ("华", "hua"),
    ("黑", "he"),
    ("任", "ren"),
    ("便", "pian"),
    ("员", "yun"),
    ("秘", "bi"),
    ("宁", "ning"),
    ("能", "nai"),
    ("柏", "bai"),
    ("重", "chong"),
    ("尹", "yin"),
    ("纪", "ji"),
    ("洗", "xian"),
    ("冼", "xian"),
    ("句", "gou"),
    ("蕃", "pi"),
    ("长", "chang"),
    ("翟", "zhai"),
    ("祭", "zhai"),
    ("沈", "shen"),
    ("石", "shi"),
    ("薄", "bo"),
    ("车", "che"),
    ("贾", "jia"),
    ("藏", "zang"),
    ("过", "guo"),
    ("都", "du"),
    ("那", "na"),
    ("折", "she"),
    ("隗", "wei"),
    ("阚", "kan"),
    ("牟", "mou"),
    ("卜", "bu"),
    ("相", "xiang"),
    ("和", "he"),
    ("殷", "yin"),
    ("恽", "yun"),
    ("莘", "shen"),
    ("乜", "nie"),
    ("佴", "nai"),
    ("厍", "she"),
    ("訾", "zi"),
    ("逄", "pang"),
    ("禚", "zhuo"),
    ("啜", "chuai"),
    ("尉", "wei"),
    ("占", "zhan"),
    ("曲", "qu"),
    ("尉迟", "yu chi"),
    ("万俟", "mo qi"),
    ("长孙", "zhang sun"),
    ("单于", "chan yu"),
    ("澹台", "tan tai"),
    ("乐正", "yue zheng"),
    ("亓官", "qi guan"),
    ("令狐", "ling hu"),
    ("皇甫", "huang fu"),
    ("宇文", "yu wen"),
    ("东方", "dong fang"),
    ("闾丘", "lv qiu"),
];

/// Given-name readings that the `pinyin` crate's first reading gets wrong for names (长 is read
/// zhang first, but in given names such as 长青 it is chang).
const GIVEN_NAME_READINGS: &[(char, &str)] = &[('长', "chang")];

static SURNAME_READING_MAP: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| SURNAME_READINGS.iter().copied().collect());

/// The plain (toneless, lowercase, ASCII) everyday reading of a Han character. ü is written v,
/// as in the keys every Chinese system uses (吕 → lv).
fn char_reading(c: char) -> Option<String> {
    if let Some((_, r)) = GIVEN_NAME_READINGS.iter().find(|(g, _)| *g == c) {
        return Some((*r).to_string());
    }
    c.to_pinyin().map(|p| p.plain().replace('ü', "v"))
}

/// The pinyin syllables of a name: the surname read from the surname table, the given name by
/// the everyday reading; characters without pinyin are kept, lowercased, runs of Latin letters and
/// digits forming one token, spaces and dots separating tokens.
fn syllables(name: &str) -> Vec<String> {
    let (sur, given) = split_surname(name);
    let mut out = Vec::new();
    if let Some(r) = SURNAME_READING_MAP.get(sur) {
        out.extend(r.split(' ').map(str::to_string));
    } else {
        for c in sur.chars() {
            let mut b = [0u8; 4];
            match SURNAME_READING_MAP.get(c.encode_utf8(&mut b) as &str) {
                Some(r) => out.push((*r).to_string()),
                None => push_tokens(&c.to_string(), &mut out),
            }
        }
    }
    push_tokens(given, &mut out);
    out
}

fn push_tokens(s: &str, out: &mut Vec<String>) {
    let mut token = String::new();
    for c in s.chars() {
        if let Some(r) = char_reading(c) {
            if !token.is_empty() {
                out.push(std::mem::take(&mut token));
            }
            out.push(r);
        } else if c.is_alphanumeric() {
            token.extend(c.to_lowercase());
        } else if !token.is_empty() {
            out.push(std::mem::take(&mut token));
        }
    }
    if !token.is_empty() {
        out.push(token);
    }
}

/// The pinyin of a person's name: lowercase, no tones, syllables separated by spaces, the surname
/// read as a surname (单晓明 → "shan xiao ming", 尉迟恭 → "yu chi gong"). Latin letters and digits
/// are kept lowercased. Pass a [`clean_name`] result: traditional characters are read as the
/// `pinyin` crate reads them, without the surname table.
pub fn name_pinyin(name: &str) -> String {
    syllables(name).join(" ")
}

/// [`name_pinyin`] without spaces ("shanxiaoming"), the blocking key for record linkage.
pub fn name_pinyin_key(name: &str) -> String {
    syllables(name).concat()
}

/// The first letter of every syllable of [`name_pinyin`] ("sxm").
pub fn initials(name: &str) -> String {
    syllables(name)
        .iter()
        .filter_map(|s| s.chars().next())
        .collect()
}

static SURNAME_WEIGHTS: LazyLock<Vec<(&'static str, f64)>> = LazyLock::new(|| {
    let mut rows: Vec<(&'static str, f64)> = include_str!("../data/surnames.csv")
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (name, pop) = line.split_once(',')?;
            let pop: f64 = pop.trim().parse().ok()?;
            let name = name.trim();
            (!name.is_empty() && pop.is_finite() && pop > 0.0).then_some((name, pop))
        })
        .collect();
    let total: f64 = rows.iter().map(|(_, p)| p).sum();
    if total > 0.0 {
        for row in &mut rows {
            row.1 /= total;
        }
    }
    rows
});

/// The 100 most common surnames with their share of the population carrying one of them (the
/// shares sum to 1), most common first, from the embedded `data/surnames.csv`.
pub fn surname_weights() -> &'static [(&'static str, f64)] {
    SURNAME_WEIGHTS.as_slice()
}

/// Characters typed for one another in names because they sound the same or nearly so. Each row
/// is read both ways: 陈 lists 程 and 晨, so 程 and 晨 list 陈 too (but 程 does not list 晨).
const HOMOPHONES: &[(char, &[char])] = &[
    ('张', &['章']),
    ('王', &['汪']),
    ('李', &['黎', '理']),
    ('陈', &['程', '晨']),
    ('林', &['琳', '霖']),
    ('杨', &['阳', '扬']),
    ('刘', &['柳']),
    ('吴', &['伍', '武']),
    ('徐', &['许']),
    ('朱', &['诸', '珠']),
    ('胡', &['湖']),
    ('黄', &['皇', '煌']),
    ('周', &['舟', '州']),
    ('孙', &['荪']),
    ('马', &['玛']),
    ('高', &['郜']),
    ('伟', &['玮', '炜', '薇']),
    ('芳', &['方', '舫']),
    ('娜', &['那']),
    ('敏', &['闵', '珉']),
    ('静', &['晶', '婧']),
    ('丽', &['莉', '力']),
    ('强', &['墙']),
    ('磊', &['蕾']),
    ('军', &['君', '俊']),
    ('洋', &['阳']),
    ('勇', &['永', '涌']),
    ('艳', &['燕', '雁']),
    ('杰', &['洁', '捷']),
    ('娟', &['鹃']),
    ('涛', &['韬']),
    ('明', &['鸣', '铭']),
    ('超', &['潮']),
    ('秀', &['绣']),
    ('霞', &['夏']),
    ('平', &['萍', '苹']),
    ('刚', &['钢']),
    ('桂', &['贵']),
    ('华', &['桦', '骅']),
    ('建', &['健', '剑']),
    ('国', &['帼']),
    ('红', &['虹', '宏', '鸿']),
    ('文', &['雯', '闻']),
    ('辉', &['晖', '慧']),
    ('玲', &['琳', '铃']),
    ('梅', &['玫', '媚']),
    ('英', &['瑛', '莹']),
    ('斌', &['彬']),
    ('宇', &['雨', '语']),
    ('浩', &['昊', '皓']),
    ('凯', &['恺', '锴']),
    ('鹏', &['朋']),
    ('晨', &['辰', '臣']),
    ('婷', &['亭', '庭']),
    ('峰', &['锋', '风']),
    ('燕', &['雁']),
    ('飞', &['菲', '非']),
    ('佳', &['嘉', '家']),
];

static HOMOPHONE_MAP: LazyLock<HashMap<char, Vec<char>>> = LazyLock::new(|| {
    let mut map: HashMap<char, Vec<char>> = HashMap::new();
    let mut add = |a: char, b: char| {
        let v = map.entry(a).or_default();
        if a != b && !v.contains(&b) {
            v.push(b);
        }
    };
    for (c, vs) in HOMOPHONES {
        for v in *vs {
            add(*c, *v);
        }
    }
    for (c, vs) in HOMOPHONES {
        for v in *vs {
            add(*v, *c);
        }
    }
    map
});

/// Characters that may be typed instead of `c` in a name because they sound alike (张 → 章,
/// 伟 → 玮 炜 薇); empty when none is known. The relation is symmetric.
pub fn homophone_variants(c: char) -> &'static [char] {
    HOMOPHONE_MAP.get(&c).map_or(&[], Vec::as_slice)
}

/// Variant characters written for one another in surnames (闫/阎, 付/傅, 肖/萧, 于/於, and 钟/锺,
/// which simplification of 鍾 produces): both directions.
const VARIANT_PAIRS: &[(char, char)] = &[
    ('闫', '阎'),
    ('付', '傅'),
    ('肖', '萧'),
    ('于', '於'),
    ('钟', '锺'),
];

/// Typos of a surname by a look-alike character: only the typo points to the surname (候 → 侯,
/// 沉 → 沈), never the other way.
const TYPOS: &[(char, char)] = &[('候', '侯'), ('沉', '沈')];

/// The variant of `c` that registers treat as the same surname (闫 ↔ 阎, 付 ↔ 傅, 肖 ↔ 萧,
/// 于 ↔ 於), or the surname a typo stands for (候 → 侯, 沉 → 沈).
pub fn variant_of(c: char) -> Option<char> {
    VARIANT_PAIRS
        .iter()
        .find_map(|&(a, b)| {
            if a == c {
                Some(b)
            } else if b == c {
                Some(a)
            } else {
                None
            }
        })
        .or_else(|| TYPOS.iter().find(|(t, _)| *t == c).map(|(_, s)| *s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clean_chinese_names() {
        let n = clean_name("张 三").unwrap();
        assert_eq!(n.name, "张三");
        assert_eq!(n.notes, [NameNote::InnerWhitespace]);
        assert_eq!(
            n.notes[0].to_string(),
            "whitespace inside the Chinese name was removed"
        );
        let n = clean_name("  陳麗華 ").unwrap();
        assert_eq!(n.name, "陈丽华");
        assert_eq!(n.notes, [NameNote::Traditional]);
        let n = clean_name("王\u{3000}小明").unwrap();
        assert_eq!(n.name, "王小明");
        assert!(n.notes.contains(&NameNote::FullWidth));
        assert!(n.notes.contains(&NameNote::InnerWhitespace));
        assert_eq!(clean_name("李四").unwrap().notes, []);
    }

    #[test]
    fn clean_transliterated_names_normalises_dots() {
        for raw in [
            "阿依古丽·买买提",
            "阿依古丽・买买提",
            "阿依古丽.买买提",
            "阿依古丽 • 买买提",
            "阿依古丽－买买提",
            "·阿依古丽··买买提·",
        ] {
            let n = clean_name(raw).unwrap();
            assert_eq!(n.name, "阿依古丽·买买提", "{raw}");
        }
        assert!(
            clean_name("阿依古丽．买买提")
                .unwrap()
                .notes
                .contains(&NameNote::MiddleDotNormalized)
        );
        assert!(
            clean_name("·阿依古丽")
                .unwrap()
                .notes
                .contains(&NameNote::StrayDotsRemoved)
        );
    }

    #[test]
    fn clean_latin_names() {
        let n = clean_name("  john   smith ").unwrap();
        assert_eq!(n.name, "JOHN SMITH");
        assert_eq!(n.notes, [NameNote::Uppercased]);
        let n = clean_name("ｍａｒｙ o'brien-lee").unwrap();
        assert_eq!(n.name, "MARY O'BRIEN-LEE");
        assert!(n.notes.contains(&NameNote::FullWidth));
    }

    #[test]
    fn clean_rejects_non_names() {
        assert_eq!(clean_name(""), Err(NameError::Empty));
        assert_eq!(clean_name(" \u{3000}\t"), Err(NameError::Empty));
        assert_eq!(clean_name("张3"), Err(NameError::Digit('3')));
        assert_eq!(clean_name("１３８００"), Err(NameError::Digit('1')));
        assert_eq!(clean_name("张*"), Err(NameError::InvalidChar('*')));
        assert_eq!(clean_name("··"), Err(NameError::NoLetters));
        assert_eq!(clean_name("--"), Err(NameError::NoLetters));
        assert!(matches!(
            clean_name(&"A".repeat(100)),
            Err(NameError::TooLong(100))
        ));
        assert_eq!(
            NameError::Digit('3').to_string(),
            "name contains the digit '3'; names have no digits"
        );
    }

    #[test]
    fn surname_split() {
        assert_eq!(split_surname("张三"), ("张", "三"));
        assert_eq!(split_surname("欧阳修"), ("欧阳", "修"));
        assert_eq!(split_surname("司马相如"), ("司马", "相如"));
        assert_eq!(split_surname("万俟卨"), ("万俟", "卨"));
        assert_eq!(split_surname("欧阳"), ("欧", "阳"));
        assert_eq!(split_surname("阿依古丽·买买提"), ("", "阿依古丽·买买提"));
        assert_eq!(split_surname("JOHN SMITH"), ("", "JOHN SMITH"));
        assert_eq!(split_surname(""), ("", ""));
        assert_eq!(split_surname("王"), ("王", ""));
    }

    #[test]
    fn surname_readings_differ_from_everyday_ones() {
        assert_eq!(name_pinyin("单晓明"), "shan xiao ming");
        assert_eq!(name_pinyin("王单"), "wang dan");
        assert_eq!(name_pinyin("曾国藩"), "zeng guo fan");
        assert_eq!(name_pinyin("解缙"), "xie jin");
        assert_eq!(name_pinyin("尉迟恭"), "yu chi gong");
        assert_eq!(name_pinyin("万俟卨"), "mo qi xie");
        assert_eq!(name_pinyin("长孙无忌"), "zhang sun wu ji");
        assert_eq!(name_pinyin("朴正熙"), "piao zheng xi");
        assert_eq!(name_pinyin("区小红"), "ou xiao hong");
        assert_eq!(name_pinyin("欧阳修"), "ou yang xiu");
        assert_eq!(name_pinyin("吕布"), "lv bu");
        assert_eq!(name_pinyin("张长青"), "zhang chang qing");
        assert_eq!(name_pinyin("阿依古丽·买买提"), "a yi gu li mai mai ti");
        assert_eq!(name_pinyin("JOHN SMITH"), "john smith");
        assert_eq!(name_pinyin("王2"), "wang 2");
        assert_eq!(name_pinyin(""), "");
        assert_eq!(name_pinyin_key("单晓明"), "shanxiaoming");
        assert_eq!(initials("单晓明"), "sxm");
        assert_eq!(initials("JOHN SMITH"), "js");
    }

    #[test]
    fn surname_weights_come_from_the_embedded_table() {
        let w = surname_weights();
        assert_eq!(w.len(), 100);
        assert_eq!(w[0].0, "王");
        assert_eq!(w[2].0, "张");
        let total: f64 = w.iter().map(|(_, p)| p).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(w.windows(2).all(|p| p[0].1 >= p[1].1));
        assert!(w.iter().all(|(s, _)| s.chars().count() == 1));
    }

    #[test]
    fn homophones_are_symmetric_data() {
        assert_eq!(homophone_variants('张'), ['章']);
        assert!(homophone_variants('章').contains(&'张'));
        assert!(homophone_variants('伟').contains(&'炜'));
        assert!(homophone_variants('晨').contains(&'陈'));
        assert!(homophone_variants('晨').contains(&'辰'));
        assert!(!homophone_variants('程').contains(&'晨'));
        assert!(homophone_variants('x').is_empty());
        for (c, _) in HOMOPHONES {
            for v in homophone_variants(*c) {
                assert!(homophone_variants(*v).contains(c), "{c} {v}");
                assert_ne!(v, c);
            }
        }
    }

    #[test]
    fn variants_and_typos() {
        assert_eq!(variant_of('闫'), Some('阎'));
        assert_eq!(variant_of('阎'), Some('闫'));
        assert_eq!(variant_of('付'), Some('傅'));
        assert_eq!(variant_of('萧'), Some('肖'));
        assert_eq!(variant_of('候'), Some('侯'));
        assert_eq!(variant_of('侯'), None);
        assert_eq!(variant_of('沉'), Some('沈'));
        assert_eq!(variant_of('王'), None);
        assert_eq!(
            variant_of(text::to_simplified("鍾").chars().next().unwrap()),
            Some('钟')
        );
    }

    fn name_alphabet() -> impl Strategy<Value = String> {
        let chars: Vec<char> = "张王李单曾欧阳司马尉迟万俟长孙明华丽·・•.- 　\tａＢ01２abcZ'*"
            .chars()
            .collect();
        proptest::collection::vec(proptest::sample::select(chars), 0..16)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn the_han_shortcut_agrees_with_the_general_path(
            s in "[张張王汪章陳陈李黄黃劉刘欧阳歐陽國国華华明红紅丽麗\\u{4E00}-\\u{4E3F}\\u{F900}-\\u{F90F}]{1,12}",
        ) {
            let fast = clean_han_name(&s);
            prop_assert!(fast.is_some() || !text::to_simplified(&s).chars().all(text::is_han));
            if let Some(fast) = fast {
                prop_assert_eq!(fast, clean_general_name(&s), "{}", s);
            }
        }

        #[test]
        fn the_surname_lookup_agrees_with_the_list(s in name_alphabet()) {
            // The definition: a compound surname the name starts with, when it has at least
            // three characters; otherwise its first character.
            let first = s.chars().next();
            let expected = match first {
                None => ("", ""),
                Some(c) if !text::is_han(c) || s.contains(MIDDLE_DOT) => ("", s.as_str()),
                Some(c) => {
                    let compound = COMPOUND_SURNAMES
                        .iter()
                        .find(|sur| s.chars().count() >= 3 && s.starts_with(**sur));
                    s.split_at(compound.map_or(c.len_utf8(), |sur| sur.len()))
                }
            };
            prop_assert_eq!(split_surname(&s), expected, "{}", s);
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            if let Ok(n) = clean_name(&s) {
                prop_assert!(!n.name.is_empty());
            }
            let (a, b) = split_surname(&s);
            prop_assert_eq!(format!("{a}{b}"), s.clone());
            let p = name_pinyin(&s);
            prop_assert!(!p.contains("  "));
            let _ = initials(&s);
        }

        #[test]
        fn cleaning_is_idempotent(s in name_alphabet()) {
            if let Ok(n) = clean_name(&s) {
                let again = clean_name(&n.name).unwrap();
                prop_assert_eq!(&again.name, &n.name);
                prop_assert!(again.notes.is_empty(), "{:?}", again.notes);
                prop_assert!(!n.name.starts_with(MIDDLE_DOT) && !n.name.ends_with(MIDDLE_DOT));
                prop_assert!(!n.name.chars().any(|c| c.is_ascii_digit() || c == '\t'));
                let (a, b) = split_surname(&n.name);
                prop_assert_eq!(format!("{a}{b}"), n.name.clone());
                prop_assert_eq!(name_pinyin_key(&n.name), name_pinyin(&n.name).replace(' ', ""));
                prop_assert_eq!(initials(&n.name).chars().count(), name_pinyin(&n.name).split(' ').filter(|s| !s.is_empty()).count());
            }
        }
    }
}
