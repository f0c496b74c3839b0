//! Citizen identity numbers (公民身份号码) under GB 11643-1999.
//!
//! This module reads a citizen id as departments actually write it, checks it against the
//! standard, upgrades the old 15-digit form to 18 digits, builds valid ids for the synthetic
//! generator, and, for a value that fails, explains in plain terms what is probably wrong and which
//! valid ids it was probably meant to be. It deliberately does not reject a county code that is
//! missing from the current division table: an id keeps the code of the county where it was first
//! issued for life, so a code abolished by a later re-division is still correct ([`diagnose`]
//! mentions such a code, and the id stays valid). It reads no clock: [`CitizenId::parse`] cannot
//! tell that a birth date lies in the future, so callers that have a clock pass their today to
//! [`parse_as_of`]. It does not decide what to do with a bad id; that is the intake's business.
//!
//! Layout of the 18-character form (positions are 1-based, as people count them):
//!
//! | positions | meaning                                                   |
//! |-----------|-----------------------------------------------------------|
//! | 1-6       | county code at first issue (first two digits: province)   |
//! | 7-14      | birth date `YYYYMMDD`                                     |
//! | 15-17     | sequence code; odd for men, even for women                |
//! | 18        | check character (ISO 7064 MOD 11-2): `0`-`9` or `X`       |
//!
//! The pre-1999 15-character form is the same without the century (`YYMMDD`, always 19xx) and
//! without the check character.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::division;
use crate::text::{self, FormFold};

/// Weights of positions 1-17 in the check sum (2^(17-i) mod 11).
pub const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check characters indexed by the weighted sum mod 11.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Province-level codes (first two digits) that have ever been used in citizen ids.
///
/// 11-15 North China, 21-23 North-east, 31-37 East, 41-46 Central-south (46 Hainan since 1988),
/// 50-54 South-west (50 Chongqing since 1997), 61-65 North-west, 71 Taiwan (the GB/T 2260 code),
/// and 81, 82, 83: Hong Kong, Macao and Taiwan residents' residence permits (港澳台居民居住证),
/// which since 2018 carry 18-character numbers in this same format with county codes 810000,
/// 820000 and 830000.
pub const PROVINCE_CODES: &[&str] = &[
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82", "83",
];

/// Earliest and latest birth years accepted. Nobody born before 1880 was alive when ids were
/// first issued in 1984; the upper bound is generous because this module has no clock.
const BIRTH_YEARS: std::ops::RangeInclusive<i32> = 1880..=2099;

/// The most candidates [`diagnose`] returns. At most one substitution per position can repair the
/// check sum and there are 17 adjacent pairs, so fewer than 36 candidates can exist; the cap only
/// guards against a future change to the candidate rules.
pub const MAX_CANDIDATES: usize = 40;

/// Sex as recorded in the sequence code (odd = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    /// 男: odd sequence code.
    Male,
    /// 女: even sequence code.
    Female,
}

impl Sex {
    /// The GB/T 2261.1 code: "1" for male, "2" for female.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "1",
            Sex::Female => "2",
        }
    }

    /// The Chinese name: "男" or "女".
    pub fn zh(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }
}

/// Computes the check character for the first 17 characters of an id.
///
/// Returns `b'0'..=b'9'` or `b'X'`, or `None` if any byte is not an ASCII digit.
pub fn check_char(body: &[u8; 17]) -> Option<u8> {
    let mut sum = 0u32;
    for (&b, &w) in body.iter().zip(WEIGHTS.iter()) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    CHECK_CHARS.get((sum % 11) as usize).copied()
}

/// Why a value is not a valid citizen id. Positions are 1-based positions among the id's own
/// characters (after trimming, and with separators between digit groups removed), as a person
/// reading the id would count them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Nothing but whitespace.
    #[error("citizen id is empty")]
    Empty,
    /// Neither 18 nor 15 characters after trimming and normalisation.
    #[error("citizen id has {len} characters but must have 18 (or 15 for the pre-1999 form)")]
    WrongLength {
        /// Number of characters found.
        len: usize,
    },
    /// A character that is not allowed at its position.
    #[error(
        "position {pos} holds {ch:?}, but a citizen id has only digits (and X only as the 18th, check character)"
    )]
    InvalidChar {
        /// 1-based position.
        pos: usize,
        /// The character as written.
        ch: char,
    },
    /// The first two digits are not a province-level code ever used in ids.
    #[error(
        "province code {code} (positions 1-2) is not a province-level code that has ever been used in citizen ids"
    )]
    UnknownProvince {
        /// The two digits found.
        code: String,
    },
    /// The birth date digits do not form a calendar date.
    #[error("birth date {digits} does not exist (position {start}-{end})")]
    ImpossibleDate {
        /// The date digits as written (8 in the 18-character form, 6 in the 15-character form).
        digits: String,
        /// 1-based first position of the date.
        start: usize,
        /// 1-based last position of the date.
        end: usize,
    },
    /// The birth date exists but is outside 1880-01-01..=2099-12-31.
    #[error(
        "birth date {date} (position {start}-{end}) is outside the accepted range 1880-01-01 to 2099-12-31"
    )]
    BirthOutOfRange {
        /// The date read.
        date: NaiveDate,
        /// 1-based first position of the date.
        start: usize,
        /// 1-based last position of the date.
        end: usize,
    },
    /// The birth date is after the caller's today ([`parse_as_of`]).
    #[error("birth date {date} (position {start}-{end}) is after today, {today}")]
    BornInFuture {
        /// The date read.
        date: NaiveDate,
        /// The caller's today.
        today: NaiveDate,
        /// 1-based first position of the date.
        start: usize,
        /// 1-based last position of the date.
        end: usize,
    },
    /// The check character does not match the first 17 digits.
    #[error("check character is {found} but digits 1-17 require {expected}")]
    BadCheckChar {
        /// What digits 1-17 require.
        expected: char,
        /// What the value has.
        found: char,
    },
    /// [`new_from_parts`] was given a county code that is not 6 ASCII digits.
    #[error("county code {county:?} must be exactly 6 ASCII digits")]
    BadCounty {
        /// The county code given.
        county: String,
    },
    /// [`new_from_parts`] was given a sequence above 999.
    #[error("sequence {sequence} is out of range: the sequence code has 3 digits (0-999)")]
    SequenceOutOfRange {
        /// The sequence given.
        sequence: u16,
    },
}

/// A presentation issue that [`parse_detailed`] accepted and normalised. Intake records these so
/// a department can be told how its data is written without the record being rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FormNote {
    /// Leading or trailing whitespace (including the full-width space) was removed.
    SurroundingWhitespace,
    /// Full-width digits (０-９) were converted to ASCII digits.
    FullWidthDigits,
    /// A full-width Ｘ or ｘ was converted to X.
    FullWidthX,
    /// A lowercase x was converted to X.
    LowercaseX,
    /// A 15-character id was upgraded to the 18-character form.
    UpgradedFrom15,
    /// Spaces or hyphens between digit groups (110105-19491231-002X) were removed.
    Separators,
}

impl fmt::Display for FormNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormNote::SurroundingWhitespace => "surrounding whitespace was removed",
            FormNote::FullWidthDigits => "full-width digits (０-９) were converted to ASCII digits",
            FormNote::FullWidthX => "a full-width Ｘ was converted to X",
            FormNote::LowercaseX => "a lowercase x was converted to X",
            FormNote::UpgradedFrom15 => {
                "a 15-character id was upgraded to 18 characters (19 inserted before the year, check character appended)"
            }
            FormNote::Separators => "spaces or hyphens between the digit groups were removed",
        })
    }
}

/// A valid citizen id in canonical form: 18 ASCII characters, check character upper-case.
///
/// Equality, ordering and hashing use the canonical string only, so an id read from its old
/// 15-character form equals the same id read from its 18-character form: both name one person,
/// and record linkage depends on that. Serialises as the canonical string; deserialising runs
/// [`CitizenId::parse`], so the upgrade flag is not carried through serialisation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CitizenId {
    value: String,
    birth: NaiveDate,
    upgraded: bool,
}

/// The result of [`parse_detailed`]: the id and the presentation issues that were normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The valid id.
    pub id: CitizenId,
    /// What was normalised on the way, in the order first met; empty for a canonical input.
    pub notes: Vec<FormNote>,
}

impl PartialEq for CitizenId {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for CitizenId {}

impl std::hash::Hash for CitizenId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl PartialOrd for CitizenId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CitizenId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl FromStr for CitizenId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CitizenId::parse(s)
    }
}

impl TryFrom<String> for CitizenId {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CitizenId::parse(&s)
    }
}

impl From<CitizenId> for String {
    fn from(id: CitizenId) -> String {
        id.value
    }
}

impl CitizenId {
    /// Parses a citizen id, accepting the presentation variants listed in [`FormNote`].
    ///
    /// Use [`parse_detailed`] to learn which variants were normalised.
    pub fn parse(s: &str) -> Result<CitizenId, IdError> {
        parse_detailed(s).map(|p| p.id)
    }

    /// The canonical 18-character form.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The 6-digit county code at first issue (positions 1-6).
    pub fn county_code(&self) -> &str {
        self.value.get(0..6).unwrap_or("")
    }

    /// The 2-digit province code (positions 1-2).
    pub fn province_code(&self) -> &str {
        self.value.get(0..2).unwrap_or("")
    }

    /// The birth date (positions 7-14).
    pub fn birth_date(&self) -> NaiveDate {
        self.birth
    }

    /// The 3-digit sequence code (positions 15-17) as a number.
    pub fn sequence(&self) -> u16 {
        // The value holds only ASCII digits at these positions, so the fold cannot overflow.
        self.value
            .as_bytes()
            .get(14..17)
            .map_or(0, |d| digits_value(d) as u16)
    }

    /// The sex encoded by the parity of the sequence code.
    pub fn sex(&self) -> Sex {
        if self.sequence() % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Whether this id was read from the 15-character form.
    pub fn was_upgraded_from_15(&self) -> bool {
        self.upgraded
    }

    /// `Ok` if the holder was born on or before `today`, otherwise [`IdError::BornInFuture`]
    /// (with the positions of the birth date in the form the id was read from). This module has no
    /// clock, so this is the check for callers that have one; [`parse_as_of`] runs it.
    pub fn check_born_by(&self, today: NaiveDate) -> Result<(), IdError> {
        if self.birth <= today {
            return Ok(());
        }
        Err(IdError::BornInFuture {
            date: self.birth,
            today,
            start: 7,
            end: if self.upgraded { 12 } else { 14 },
        })
    }

    /// Age in whole years on `d`; 0 if `d` is before the birth date.
    ///
    /// Someone born on 29 February turns a year older on 1 March in common years, because the
    /// anniversary has not been reached while (month, day) is still before (2, 29).
    pub fn age_on(&self, d: NaiveDate) -> u32 {
        d.years_since(self.birth).unwrap_or(0)
    }

    /// The old 15-character form, which exists only for people born 1900-1999.
    pub fn to_15(&self) -> Option<String> {
        if !(1900..=1999).contains(&self.birth.year()) {
            return None;
        }
        let county = self.value.get(0..6)?;
        let rest = self.value.get(8..17)?;
        Some(format!("{county}{rest}"))
    }
}

/// Builds a valid id from its parts, computing the check character.
///
/// `county` must be 6 ASCII digits with a known province prefix; it is not checked against the
/// current division table. `birth` must be in 1880..=2099 and `sequence` in 0..=999.
pub fn new_from_parts(county: &str, birth: NaiveDate, sequence: u16) -> Result<CitizenId, IdError> {
    if county.len() != 6 || !county.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::BadCounty {
            county: county.to_string(),
        });
    }
    check_province(county.as_bytes())?;
    if !BIRTH_YEARS.contains(&birth.year()) {
        return Err(IdError::BirthOutOfRange {
            date: birth,
            start: 7,
            end: 14,
        });
    }
    if sequence > 999 {
        return Err(IdError::SequenceOutOfRange { sequence });
    }
    let body = format!(
        "{county}{:04}{:02}{:02}{sequence:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let bytes: [u8; 17] = body
        .as_bytes()
        .try_into()
        .map_err(|_| IdError::WrongLength { len: body.len() })?;
    let check = check_char(&bytes).ok_or_else(|| IdError::BadCounty {
        county: county.to_string(),
    })?;
    let mut value = body;
    value.push(char::from(check));
    Ok(CitizenId {
        value,
        birth,
        upgraded: false,
    })
}

/// Parses an id and reports the presentation variants it normalised.
///
/// Lenient about form: surrounding whitespace is trimmed, full-width digits and Ｘ become ASCII,
/// lowercase x becomes X, spaces and hyphens (of any width) between digits are removed
/// (`110105-19491231-002X`, `110105 19491231 002X`), and a 15-character id is upgraded; each is
/// reported as a [`FormNote`]. Strict about content: length, characters, province, birth date and
/// check character must all be right. Separators are accepted anywhere between two characters of
/// the id, but what remains must still have 18 or 15 characters, so two ids run together are
/// still refused (as 36 characters).
pub fn parse_detailed(s: &str) -> Result<Parsed, IdError> {
    if let Some(id) = parse_canonical(s) {
        return Ok(Parsed {
            id,
            notes: Vec::new(),
        });
    }
    let n = normalise(s);
    let id = parse_normalised(&n.chars)?;
    let mut notes = n.notes;
    if id.upgraded {
        notes.push(FormNote::UpgradedFrom15);
    }
    Ok(Parsed { id, notes })
}

/// Parses an id as [`CitizenId::parse`] does and also refuses a birth date after `today`
/// ([`IdError::BornInFuture`]). For callers that have a clock; this module reads none.
pub fn parse_as_of(s: &str, today: NaiveDate) -> Result<CitizenId, IdError> {
    parse_detailed_as_of(s, today).map(|p| p.id)
}

/// [`parse_detailed`], refusing a birth date after `today` as [`parse_as_of`] does.
pub fn parse_detailed_as_of(s: &str, today: NaiveDate) -> Result<Parsed, IdError> {
    let p = parse_detailed(s)?;
    p.id.check_born_by(today)?;
    Ok(p)
}

/// The common case, a valid id already in canonical form (18 ASCII characters, an uppercase X
/// if any), read without normalising it character by character: ingest reads millions. Anything
/// else, valid or not, returns `None` and takes the general path, which also words the errors.
fn parse_canonical(s: &str) -> Option<CitizenId> {
    let bytes = s.as_bytes();
    let (body, check) = bytes.split_first_chunk::<17>()?;
    let &[found] = check else {
        return None;
    };
    if !body.iter().all(u8::is_ascii_digit) || !(found.is_ascii_digit() || found == b'X') {
        return None;
    }
    check_province(body).ok()?;
    let birth = read_birth(body, 6, None).ok()?;
    (check_char(body)? == found).then(|| CitizenId {
        value: s.to_string(),
        birth,
        upgraded: false,
    })
}

/// A character of the trimmed input: as written and as normalised.
#[derive(Clone, Copy)]
struct NChar {
    orig: char,
    norm: char,
}

struct Normalised {
    chars: Vec<NChar>,
    notes: Vec<FormNote>,
}

fn is_trimmable(c: char) -> bool {
    // Byte-order marks and zero-width spaces are not Unicode whitespace, but spreadsheet exports
    // leave them around values often enough that treating them as surrounding space is right.
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

fn push_note(notes: &mut Vec<FormNote>, note: FormNote) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// Whether a folded character separates digit groups: a space of any kind or a hyphen (every
/// dash look-alike is a hyphen once folded).
fn is_separator(c: char) -> bool {
    c == '-' || is_trimmable(c)
}

fn normalise(s: &str) -> Normalised {
    let trimmed = s.trim_matches(is_trimmable);
    let mut notes = Vec::new();
    if trimmed.len() != s.len() {
        notes.push(FormNote::SurroundingWhitespace);
    }
    // Folded one character at a time, so that an error can still name the character as written.
    let folded: Vec<(char, char, Option<FormFold>)> = trimmed
        .chars()
        .map(|c| match text::fold_form_char(c) {
            Some((f, kind)) => (c, f, Some(kind)),
            None => (c, c, None),
        })
        .collect();
    // Only separators *between* two characters of the id are dropped; a leading or trailing
    // hyphen is not a separator of anything and is reported as the stray character it is.
    let first = folded.iter().position(|&(_, f, _)| !is_separator(f));
    let last = folded.iter().rposition(|&(_, f, _)| !is_separator(f));
    let inner = |i: usize| first.is_some_and(|a| a < i) && last.is_some_and(|b| i < b);
    let mut chars = Vec::with_capacity(folded.len());
    for (i, (orig, mut norm, kind)) in folded.into_iter().enumerate() {
        if inner(i) && is_separator(norm) {
            push_note(&mut notes, FormNote::Separators);
            continue;
        }
        match kind {
            Some(FormFold::FullWidthDigit) => push_note(&mut notes, FormNote::FullWidthDigits),
            Some(FormFold::FullWidthLetter) if norm.eq_ignore_ascii_case(&'x') => {
                push_note(&mut notes, FormNote::FullWidthX);
            }
            _ => {}
        }
        if norm == 'x' {
            push_note(&mut notes, FormNote::LowercaseX);
            norm = 'X';
        }
        chars.push(NChar { orig, norm });
    }
    Normalised { chars, notes }
}

fn digits_value(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |acc, &b| {
        acc * 10 + u32::from(b.wrapping_sub(b'0') % 10)
    })
}

fn check_province(bytes: &[u8]) -> Result<(), IdError> {
    let code = bytes.get(0..2).unwrap_or(&[]);
    if PROVINCE_CODES.iter().any(|p| p.as_bytes() == code) {
        Ok(())
    } else {
        Err(IdError::UnknownProvince {
            code: String::from_utf8_lossy(code).into_owned(),
        })
    }
}

/// Reads the birth date at `start..start + len` of `bytes` (ASCII digits), with `century`
/// prepended for the 15-character form.
fn read_birth(bytes: &[u8], start: usize, century: Option<i32>) -> Result<NaiveDate, IdError> {
    let len = if century.is_some() { 6 } else { 8 };
    let digits = bytes.get(start..start + len).unwrap_or(&[]);
    let (year_digits, md) = digits.split_at(digits.len().saturating_sub(4));
    let year = century.unwrap_or(0) + digits_value(year_digits) as i32;
    let month = digits_value(md.get(0..2).unwrap_or(&[]));
    let day = digits_value(md.get(2..4).unwrap_or(&[]));
    let (first, last) = (start + 1, start + len);
    let date =
        NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| IdError::ImpossibleDate {
            digits: String::from_utf8_lossy(digits).into_owned(),
            start: first,
            end: last,
        })?;
    if !BIRTH_YEARS.contains(&date.year()) {
        return Err(IdError::BirthOutOfRange {
            date,
            start: first,
            end: last,
        });
    }
    Ok(date)
}

/// Validates normalised characters; the heart of [`parse_detailed`] and of candidate search.
fn parse_normalised(chars: &[NChar]) -> Result<CitizenId, IdError> {
    let len = chars.len();
    if len == 0 {
        return Err(IdError::Empty);
    }
    if len != 18 && len != 15 {
        return Err(IdError::WrongLength { len });
    }
    let mut bytes = Vec::with_capacity(18);
    for (i, c) in chars.iter().enumerate() {
        let ok = c.norm.is_ascii_digit() || (len == 18 && i == 17 && c.norm == 'X');
        if !ok {
            return Err(IdError::InvalidChar {
                pos: i + 1,
                ch: c.orig,
            });
        }
        // Checked above to be ASCII, so the cast is exact.
        bytes.push(c.norm as u8);
    }
    check_province(&bytes)?;
    if len == 15 {
        let birth = read_birth(&bytes, 6, Some(1900))?;
        let mut body = [0u8; 17];
        for (slot, &b) in body
            .iter_mut()
            .zip(bytes[..6].iter().chain(b"19").chain(&bytes[6..15]))
        {
            *slot = b;
        }
        let check = check_char(&body).ok_or(IdError::WrongLength { len })?;
        let mut value: String = body.iter().map(|&b| char::from(b)).collect();
        value.push(char::from(check));
        return Ok(CitizenId {
            value,
            birth,
            upgraded: true,
        });
    }
    let birth = read_birth(&bytes, 6, None)?;
    let body: [u8; 17] = bytes
        .get(..17)
        .and_then(|b| b.try_into().ok())
        .ok_or(IdError::WrongLength { len })?;
    let expected = check_char(&body).ok_or(IdError::WrongLength { len })?;
    let found = bytes.get(17).copied().unwrap_or(b'?');
    if expected != found {
        return Err(IdError::BadCheckChar {
            expected: char::from(expected),
            found: char::from(found),
        });
    }
    Ok(CitizenId {
        value: bytes.iter().map(|&b| char::from(b)).collect(),
        birth,
        upgraded: false,
    })
}

/// One thing [`diagnose`] found wrong, in plain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A presentation issue that parsing would accept and normalise.
    Form(FormNote),
    /// The rule the value breaks, exactly as [`CitizenId::parse`] reports it.
    Invalid(IdError),
    /// 17 digits: the check character is probably missing.
    CheckCharMissing {
        /// The check character the 17 digits require.
        would_be: char,
    },
    /// 19 characters: one character too many.
    ExtraChar,
    /// An 18-character value that is probably one slip away from a valid id.
    LikelyTypo,
    /// A valid id whose county code (positions 1-6) is not in the embedded 2023 division table.
    /// Not an error: an id keeps the county code of its first issue, so the code may be one that
    /// a later re-division abolished (320524 吴县, abolished in 2001). Only reported when the
    /// table covers the province at all (it has no Taiwan, Hong Kong or Macao counties).
    CountyNotInTable {
        /// The six digits.
        code: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Form(note) => note.fmt(f),
            Problem::Invalid(e) => e.fmt(f),
            Problem::CheckCharMissing { would_be } => write!(
                f,
                "17 digits: the check character is probably missing; it would be {would_be}"
            ),
            Problem::ExtraChar => f.write_str(
                "19 characters: one character too many; the candidates are the valid ids left by removing one",
            ),
            Problem::LikelyTypo => f.write_str(
                "one character is probably mistyped or two neighbouring characters swapped; the check character detects such slips but cannot say where, so every valid id one slip away is listed as a candidate",
            ),
            Problem::CountyNotInTable { code } => write!(
                f,
                "county code {code} (positions 1-6) is not in the 2023 division table; the id is still valid, because an id keeps the county code of its first issue and the code may be historical (320524 吴县, for one, was abolished in 2001)"
            ),
        }
    }
}

/// What is probably wrong with a value, and the valid ids it was probably meant to be.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnosis {
    /// Everything found, most fundamental first; empty for a canonical valid id whose county code
    /// is in the division table.
    pub problems: Vec<Problem>,
    /// Valid ids one slip away (at most [`MAX_CANDIDATES`]), in position order.
    pub candidates: Vec<CitizenId>,
}

/// Explains what is wrong with a value and suggests corrections.
///
/// For a valid id the diagnosis lists the form notes and, when the county code is not in the
/// embedded division table, [`Problem::CountyNotInTable`] (the id stays valid). For an invalid one
/// it lists the error `parse` reports and, where the shape allows a guess:
///
/// - 17 digits: the check character is probably missing; the candidate is the id with it added.
/// - 19 characters: every valid id obtained by deleting one character.
/// - 18 characters that fail (bad check character, impossible date, unknown province, a stray
///   character): every valid id obtained by changing one character or swapping two neighbours.
///
/// The check character catches every single-character substitution and every swap of two
/// different neighbouring characters, because the weights are non-zero modulo the prime 11 and
/// each weight is twice the next one; but it cannot say *where* the slip is, which is why this
/// returns a list and leaves the choice to a person with the source document. Candidates must
/// themselves be valid ids, so a correction that would give an impossible birth date is not
/// offered.
pub fn diagnose(s: &str) -> Diagnosis {
    let n = normalise(s);
    let mut diagnosis = Diagnosis {
        problems: n.notes.iter().copied().map(Problem::Form).collect(),
        candidates: Vec::new(),
    };
    let err = match parse_normalised(&n.chars) {
        Ok(id) => {
            if id.upgraded {
                diagnosis
                    .problems
                    .push(Problem::Form(FormNote::UpgradedFrom15));
            }
            let code = id.county_code();
            if !county_in_table(code) {
                diagnosis.problems.push(Problem::CountyNotInTable {
                    code: code.to_string(),
                });
            }
            return diagnosis;
        }
        Err(e) => e,
    };
    diagnosis.problems.push(Problem::Invalid(err.clone()));
    let chars = &n.chars;
    match (&err, chars.len()) {
        (IdError::WrongLength { .. }, 17) => {
            let body: Option<[u8; 17]> = chars
                .iter()
                .map(|c| c.norm.is_ascii_digit().then_some(c.norm as u8))
                .collect::<Option<Vec<u8>>>()
                .and_then(|v| v.try_into().ok());
            if let Some(check) = body.as_ref().and_then(check_char) {
                diagnosis.problems.push(Problem::CheckCharMissing {
                    would_be: char::from(check),
                });
                let mut fixed = chars.clone();
                fixed.push(NChar {
                    orig: char::from(check),
                    norm: char::from(check),
                });
                try_candidate(&fixed, &mut diagnosis.candidates);
            }
        }
        (IdError::WrongLength { .. }, 19) => {
            diagnosis.problems.push(Problem::ExtraChar);
            for i in 0..chars.len() {
                let mut fixed = chars.clone();
                fixed.remove(i);
                try_candidate(&fixed, &mut diagnosis.candidates);
            }
        }
        (IdError::WrongLength { .. } | IdError::Empty, _) => {}
        (_, 18) => {
            let mut fixed = chars.clone();
            for i in 0..18 {
                let original = fixed[i];
                for &r in b"0123456789X" {
                    let r = char::from(r);
                    if r == original.norm || (r == 'X' && i != 17) {
                        continue;
                    }
                    fixed[i] = NChar { orig: r, norm: r };
                    try_candidate(&fixed, &mut diagnosis.candidates);
                }
                fixed[i] = original;
            }
            for i in 0..17 {
                if fixed[i].norm != fixed[i + 1].norm {
                    fixed.swap(i, i + 1);
                    try_candidate(&fixed, &mut diagnosis.candidates);
                    fixed.swap(i, i + 1);
                }
            }
            if !diagnosis.candidates.is_empty() || matches!(err, IdError::BadCheckChar { .. }) {
                diagnosis.problems.push(Problem::LikelyTypo);
            }
        }
        _ => {}
    }
    diagnosis
}

/// Whether the division table knows the 6-digit `code`, or does not cover its province at all
/// (Taiwan, Hong Kong and Macao, whose codes ids and residence permits use but the NBS tables
/// leave out), in which case nothing can be said. A code ending in 00 or 0000 names the city or
/// province itself (320500 is 苏州市) and is known when that is.
fn county_in_table(code: &str) -> bool {
    let (Some(province), Some(city)) = (code.get(..2), code.get(..4)) else {
        return false;
    };
    division::by_code(province).is_none()
        || division::by_code(code).is_some()
        || (code.ends_with("0000") || (code.ends_with("00") && division::by_code(city).is_some()))
}

/// Adds the id spelt by `chars` to `out` if it is a valid 18-character id not already listed.
fn try_candidate(chars: &[NChar], out: &mut Vec<CitizenId>) {
    if out.len() >= MAX_CANDIDATES || chars.len() != 18 {
        return;
    }
    if let Ok(id) = parse_normalised(chars)
        && !out.contains(&id)
    {
        out.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, StrDeserializer};

    const EXAMPLE: &str = "11010519491231002X";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_retired_county_code_keeps_the_id_valid() {
        // 吴县 (320524) was abolished in 2001 and is missing from the 2023 division table, but
        // everyone first registered there keeps it in their id.
        assert!(crate::division::by_code("320524").is_none());
        let id = new_from_parts("320524", date(1980, 5, 6), 123).unwrap();
        assert_eq!(
            CitizenId::parse(id.as_str()).unwrap().county_code(),
            "320524"
        );
    }

    #[test]
    fn published_example_is_valid() {
        let id = CitizenId::parse(EXAMPLE).unwrap();
        assert_eq!(id.as_str(), EXAMPLE);
        assert_eq!(id.county_code(), "110105");
        assert_eq!(id.province_code(), "11");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.sequence(), 2);
        assert_eq!(id.sex(), Sex::Female);
        assert!(!id.was_upgraded_from_15());
        assert_eq!(id.to_string(), EXAMPLE);
    }

    #[test]
    fn check_char_matches_example_and_rejects_non_digits() {
        let body: [u8; 17] = EXAMPLE.as_bytes()[..17].try_into().unwrap();
        assert_eq!(check_char(&body), Some(b'X'));
        let mut bad = body;
        bad[3] = b'A';
        assert_eq!(check_char(&bad), None);
        // Every check value maps to its own character.
        let mut seen = std::collections::HashSet::new();
        for last in 0..=99u8 {
            let mut b = body;
            b[15] = b'0' + last / 10;
            b[16] = b'0' + last % 10;
            seen.insert(check_char(&b).unwrap());
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn sex_codes() {
        assert_eq!(Sex::Male.code(), "1");
        assert_eq!(Sex::Female.code(), "2");
        assert_eq!(Sex::Male.zh(), "男");
        assert_eq!(Sex::Female.zh(), "女");
    }

    #[test]
    fn form_variants_are_accepted_and_reported() {
        let p = parse_detailed("１１０１０５１９４９１２３１００２ｘ").unwrap();
        assert_eq!(p.id.as_str(), EXAMPLE);
        assert_eq!(
            p.notes,
            vec![
                FormNote::FullWidthDigits,
                FormNote::FullWidthX,
                FormNote::LowercaseX
            ]
        );
        let p = parse_detailed(" \u{3000}11010519491231002x\t").unwrap();
        assert_eq!(p.id.as_str(), EXAMPLE);
        assert_eq!(
            p.notes,
            vec![FormNote::SurroundingWhitespace, FormNote::LowercaseX]
        );
        assert!(parse_detailed(EXAMPLE).unwrap().notes.is_empty());
    }

    #[test]
    fn separators_between_groups_are_removed_and_noted() {
        for s in [
            "110105-19491231-002X",
            "110105 19491231 002X",
            "110105\u{3000}19491231\u{3000}002X",
            "110105 - 19491231 - 002X",
            "110105\u{2010}19491231\u{2014}002X",
            "1101 0519 4912 3100 2X",
        ] {
            let p = parse_detailed(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(p.id.as_str(), EXAMPLE, "{s}");
            assert_eq!(p.notes, vec![FormNote::Separators], "{s}");
        }
        let p = parse_detailed("１１０１０５－１９４９１２３１－００２ｘ").unwrap();
        assert_eq!(
            p.notes,
            vec![
                FormNote::FullWidthDigits,
                FormNote::Separators,
                FormNote::FullWidthX,
                FormNote::LowercaseX
            ]
        );
        let p = parse_detailed("110105 491231 002").unwrap();
        assert_eq!(p.id.as_str(), EXAMPLE);
        assert_eq!(
            p.notes,
            vec![FormNote::Separators, FormNote::UpgradedFrom15]
        );
        // Positions in errors count the id's own characters, separators left out.
        assert_eq!(
            CitizenId::parse("110105-1949123四-002X"),
            Err(IdError::InvalidChar { pos: 14, ch: '四' })
        );
        // A hyphen that separates nothing is a stray character, and two ids run together are
        // still too long.
        assert_eq!(
            CitizenId::parse("-1101051949123100X"),
            Err(IdError::InvalidChar { pos: 1, ch: '-' })
        );
        assert_eq!(
            CitizenId::parse("11010519491231002X 11010519491231002X"),
            Err(IdError::WrongLength { len: 36 })
        );
        assert_eq!(
            FormNote::Separators.to_string(),
            "spaces or hyphens between the digit groups were removed"
        );
        let d = diagnose("110105-19491231-002x");
        assert_eq!(
            d.problems,
            vec![
                Problem::Form(FormNote::Separators),
                Problem::Form(FormNote::LowercaseX)
            ]
        );
    }

    #[test]
    fn parse_as_of_refuses_a_birth_after_today() {
        let today = date(2025, 6, 1);
        let future = new_from_parts("110105", date(2030, 1, 1), 1).unwrap();
        let e = parse_as_of(future.as_str(), today).unwrap_err();
        assert_eq!(
            e,
            IdError::BornInFuture {
                date: date(2030, 1, 1),
                today,
                start: 7,
                end: 14
            }
        );
        assert_eq!(
            e.to_string(),
            "birth date 2030-01-01 (position 7-14) is after today, 2025-06-01"
        );
        // Without a clock the same id is valid.
        assert!(CitizenId::parse(future.as_str()).is_ok());
        let born_today = new_from_parts("110105", today, 1).unwrap();
        assert_eq!(parse_as_of(born_today.as_str(), today), Ok(born_today));
        assert!(parse_as_of(EXAMPLE, today).is_ok());
        // In the 15-character form the date is at positions 7-12.
        let old = new_from_parts("110105", date(1995, 3, 4), 2)
            .unwrap()
            .to_15()
            .unwrap();
        let e = parse_detailed_as_of(&old, date(1990, 1, 1)).unwrap_err();
        assert!(
            matches!(
                e,
                IdError::BornInFuture {
                    start: 7,
                    end: 12,
                    ..
                }
            ),
            "{e:?}"
        );
        // Other errors still come first.
        assert!(matches!(
            parse_as_of("110105194912310023", today),
            Err(IdError::BadCheckChar { .. })
        ));
    }

    #[test]
    fn fifteen_digit_upgrade() {
        let id = CitizenId::parse(EXAMPLE).unwrap();
        let old = id.to_15().unwrap();
        assert_eq!(old, "110105491231002");
        let p = parse_detailed(&old).unwrap();
        assert_eq!(p.id, id);
        assert!(p.id.was_upgraded_from_15());
        assert_eq!(p.notes, vec![FormNote::UpgradedFrom15]);
        let born_2000 = new_from_parts("110105", date(2000, 1, 1), 1).unwrap();
        assert_eq!(born_2000.to_15(), None);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(CitizenId::parse("  "), Err(IdError::Empty));
        assert_eq!(
            CitizenId::parse("1101051949123100"),
            Err(IdError::WrongLength { len: 16 })
        );
        assert_eq!(
            CitizenId::parse("11010519四91231002X"),
            Err(IdError::InvalidChar { pos: 9, ch: '四' })
        );
        assert_eq!(
            CitizenId::parse("1101X519491231002X"),
            Err(IdError::InvalidChar { pos: 5, ch: 'X' })
        );
        assert_eq!(
            CitizenId::parse("99010519491231002X"),
            Err(IdError::UnknownProvince { code: "99".into() })
        );
        let e = CitizenId::parse("110105199902300021").unwrap_err();
        assert_eq!(
            e.to_string(),
            "birth date 19990230 does not exist (position 7-14)"
        );
        let e = CitizenId::parse("110105990230002").unwrap_err();
        assert_eq!(
            e.to_string(),
            "birth date 990230 does not exist (position 7-12)"
        );
        let e = CitizenId::parse("110105187001010021").unwrap_err();
        assert!(matches!(e, IdError::BirthOutOfRange { .. }), "{e:?}");
        let e = CitizenId::parse("110105194912310023").unwrap_err();
        assert_eq!(
            e,
            IdError::BadCheckChar {
                expected: 'X',
                found: '3'
            }
        );
        assert_eq!(
            e.to_string(),
            "check character is 3 but digits 1-17 require X"
        );
    }

    #[test]
    fn every_used_province_is_accepted() {
        for p in PROVINCE_CODES {
            let id = new_from_parts(&format!("{p}0000"), date(1990, 5, 6), 7).unwrap();
            assert_eq!(CitizenId::parse(id.as_str()).unwrap(), id);
        }
        // 16, 24 and 47 were never province codes.
        for p in ["16", "24", "47", "00", "91"] {
            assert!(matches!(
                new_from_parts(&format!("{p}0000"), date(1990, 5, 6), 7),
                Err(IdError::UnknownProvince { .. })
            ));
        }
    }

    #[test]
    fn new_from_parts_validates() {
        let id = new_from_parts("110105", date(1949, 12, 31), 2).unwrap();
        assert_eq!(id.as_str(), EXAMPLE);
        assert!(matches!(
            new_from_parts("11010", date(1949, 12, 31), 2),
            Err(IdError::BadCounty { .. })
        ));
        assert!(matches!(
            new_from_parts("11０105", date(1949, 12, 31), 2),
            Err(IdError::BadCounty { .. })
        ));
        assert_eq!(
            new_from_parts("110105", date(1949, 12, 31), 1000),
            Err(IdError::SequenceOutOfRange { sequence: 1000 })
        );
        assert!(matches!(
            new_from_parts("110105", date(1879, 12, 31), 2),
            Err(IdError::BirthOutOfRange { .. })
        ));
        let male = new_from_parts("110105", date(1949, 12, 31), 999).unwrap();
        assert_eq!(male.sex(), Sex::Male);
        assert_eq!(male.sequence(), 999);
    }

    #[test]
    fn age_on_counts_whole_years() {
        let id = CitizenId::parse(EXAMPLE).unwrap();
        assert_eq!(id.age_on(date(2019, 12, 30)), 69);
        assert_eq!(id.age_on(date(2019, 12, 31)), 70);
        assert_eq!(id.age_on(date(1900, 1, 1)), 0);
        let leap = new_from_parts("110105", date(2000, 2, 29), 1).unwrap();
        assert_eq!(leap.age_on(date(2001, 2, 28)), 0);
        assert_eq!(leap.age_on(date(2001, 3, 1)), 1);
        assert_eq!(leap.age_on(date(2004, 2, 29)), 4);
    }

    #[test]
    fn equality_ignores_how_the_id_was_written() {
        use std::collections::HashSet;
        let a = CitizenId::parse(EXAMPLE).unwrap();
        let b = CitizenId::parse("110105491231002").unwrap();
        assert_eq!(a, b);
        let set: HashSet<CitizenId> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn serde_goes_through_the_string() {
        let de: StrDeserializer<'_, DeError> = "110105491231002".into_deserializer();
        let id = CitizenId::deserialize(de).unwrap();
        assert_eq!(id.as_str(), EXAMPLE);
        let de: StrDeserializer<'_, DeError> = "110105194912310023".into_deserializer();
        let err = CitizenId::deserialize(de).unwrap_err();
        assert!(err.to_string().contains("require X"), "{err}");
        assert_eq!(String::from(id), EXAMPLE);
    }

    #[test]
    fn diagnose_valid_id_has_no_problems() {
        let d = diagnose(EXAMPLE);
        assert!(d.problems.is_empty());
        assert!(d.candidates.is_empty());
        let d = diagnose("11010519491231002x");
        assert_eq!(d.problems, vec![Problem::Form(FormNote::LowercaseX)]);
    }

    #[test]
    fn diagnose_names_a_county_missing_from_the_table_but_keeps_the_id_valid() {
        let wuxian = new_from_parts("320524", date(1980, 5, 6), 123).unwrap();
        let d = diagnose(wuxian.as_str());
        assert_eq!(
            d.problems,
            vec![Problem::CountyNotInTable {
                code: "320524".into()
            }]
        );
        assert!(d.candidates.is_empty());
        let msg = d.problems[0].to_string();
        assert!(msg.contains("not in the 2023 division table"), "{msg}");
        assert!(msg.contains("still valid"), "{msg}");
        // Known counties, a city's own code, and provinces the table does not cover say nothing.
        for county in ["110105", "320576", "320500", "710000", "810000", "820000"] {
            let id = new_from_parts(county, date(1990, 1, 1), 5).unwrap();
            assert!(diagnose(id.as_str()).problems.is_empty(), "{county}");
        }
    }

    #[test]
    fn diagnose_missing_check_char() {
        let d = diagnose("11010519491231002");
        assert!(
            d.problems
                .contains(&Problem::CheckCharMissing { would_be: 'X' })
        );
        assert_eq!(d.candidates, vec![CitizenId::parse(EXAMPLE).unwrap()]);
        assert!(
            d.problems
                .iter()
                .any(|p| p.to_string().contains("would be X"))
        );
    }

    #[test]
    fn diagnose_extra_char() {
        let d = diagnose("110105194912311002X");
        assert!(d.problems.contains(&Problem::ExtraChar));
        assert!(d.candidates.contains(&CitizenId::parse(EXAMPLE).unwrap()));
        for c in &d.candidates {
            assert!(CitizenId::parse(c.as_str()).is_ok());
        }
    }

    #[test]
    fn diagnose_mistyped_and_swapped() {
        let original = CitizenId::parse(EXAMPLE).unwrap();
        // Sequence 002 mistyped as 007.
        let d = diagnose("11010519491231007X");
        assert!(d.problems.contains(&Problem::LikelyTypo));
        assert!(d.candidates.contains(&original));
        assert!(d.candidates.len() <= MAX_CANDIDATES);
        // Day 31 swapped to 13 is a valid date, but the check character catches it.
        let d = diagnose("11010519491213002X");
        assert!(d.candidates.contains(&original));
        // Birth month mistyped into an impossible one: the fix is among the candidates, and no
        // candidate has an impossible date.
        let d = diagnose("11010519493231002X");
        assert!(matches!(
            d.problems.first(),
            Some(Problem::Invalid(IdError::ImpossibleDate { .. }))
        ));
        assert!(d.candidates.contains(&original));
    }

    fn county_strategy() -> impl Strategy<Value = String> {
        (prop::sample::select(PROVINCE_CODES), 0u32..10_000)
            .prop_map(|(p, rest)| format!("{p}{rest:04}"))
    }

    fn birth_strategy(years: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = NaiveDate> {
        (years, 1u32..=12, 1u32..=31).prop_map(|(y, m, d)| {
            NaiveDate::from_ymd_opt(y, m, d)
                .or_else(|| NaiveDate::from_ymd_opt(y, m, 28))
                .unwrap()
        })
    }

    fn id_strategy() -> impl Strategy<Value = CitizenId> {
        (county_strategy(), birth_strategy(1880..=2099), 0u16..=999)
            .prop_map(|(c, b, s)| new_from_parts(&c, b, s).unwrap())
    }

    fn relevant_chars() -> impl Strategy<Value = String> {
        let chars: Vec<char> = "0123456789０１２３４５６７８９XxＸｘ年月日-. \u{3000}一é"
            .chars()
            .collect();
        prop::collection::vec(prop::sample::select(chars), 0..24)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        /// The shortcut for canonical ids agrees with the general path wherever it answers, on
        /// valid ids and on their one-character slips.
        #[test]
        fn the_canonical_shortcut_agrees_with_the_general_path(
            county in county_strategy(),
            birth in birth_strategy(1880..=2099),
            seq in 0u16..=999,
            slip in 0usize..19,
            with in prop::sample::select(vec!['0', '7', 'X', 'x', ' ', '１']),
        ) {
            let id = new_from_parts(&county, birth, seq).unwrap();
            let mut chars: Vec<char> = id.as_str().chars().collect();
            if slip < 18 {
                chars[slip] = with;
            }
            let s: String = chars.into_iter().collect();
            let n = normalise(&s);
            let general = parse_normalised(&n.chars);
            match parse_canonical(&s) {
                Some(fast) => {
                    prop_assert!(n.notes.is_empty());
                    prop_assert_eq!(Ok(fast), general);
                }
                None => prop_assert!(general.is_err() || !n.notes.is_empty() || s.len() != 18),
            }
        }

        #[test]
        fn generated_ids_round_trip(
            county in county_strategy(),
            birth in birth_strategy(1880..=2099),
            seq in 0u16..=999,
        ) {
            let id = new_from_parts(&county, birth, seq).unwrap();
            let back = CitizenId::parse(id.as_str()).unwrap();
            prop_assert_eq!(&back, &id);
            prop_assert_eq!(back.county_code(), county.as_str());
            prop_assert_eq!(back.birth_date(), birth);
            prop_assert_eq!(back.sequence(), seq);
            prop_assert_eq!(back.sex() == Sex::Male, seq % 2 == 1);
        }

        #[test]
        fn upgrade_from_15_round_trips(
            county in county_strategy(),
            birth in birth_strategy(1900..=1999),
            seq in 0u16..=999,
        ) {
            let id = new_from_parts(&county, birth, seq).unwrap();
            let old = id.to_15().unwrap();
            prop_assert_eq!(old.len(), 15);
            let back = CitizenId::parse(&old).unwrap();
            prop_assert_eq!(back.as_str(), id.as_str());
            prop_assert!(back.was_upgraded_from_15());
            prop_assert_eq!(back.to_15(), Some(old));
        }

        #[test]
        fn single_substitution_is_detected_and_diagnosed(
            id in id_strategy(),
            pos in 0usize..18,
            replacement in prop::sample::select(b"0123456789X".to_vec()),
        ) {
            let mut bytes = id.as_str().as_bytes().to_vec();
            if bytes[pos] == replacement {
                // Not a typo; proptest's reject budget is too small to filter these out.
                return Ok(());
            }
            bytes[pos] = replacement;
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert!(CitizenId::parse(&typo).is_err());
            let d = diagnose(&typo);
            prop_assert!(d.candidates.contains(&id), "{} not among {:?}", id, d.candidates);
        }

        #[test]
        fn adjacent_swap_is_detected_and_diagnosed(id in id_strategy(), pos in 0usize..17) {
            let mut bytes = id.as_str().as_bytes().to_vec();
            if bytes[pos] == bytes[pos + 1] {
                // Swapping equal neighbours changes nothing.
                return Ok(());
            }
            bytes.swap(pos, pos + 1);
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert!(CitizenId::parse(&typo).is_err());
            prop_assert!(diagnose(&typo).candidates.contains(&id));
        }

        #[test]
        fn separators_anywhere_inside_are_removed(
            id in id_strategy(),
            cuts in prop::collection::btree_set(1usize..18, 0..5),
            sep in prop::sample::select(vec![" ", "-", " - ", "\u{2010}", "\u{3000}", "\u{FF0D}"]),
        ) {
            let mut written = String::new();
            for (i, c) in id.as_str().chars().enumerate() {
                if cuts.contains(&i) {
                    written.push_str(sep);
                }
                written.push(c);
            }
            let p = parse_detailed(&written).map_err(|e| TestCaseError::fail(format!("{written}: {e}")))?;
            prop_assert_eq!(&p.id, &id);
            prop_assert_eq!(p.notes.contains(&FormNote::Separators), !cuts.is_empty());
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            if let Ok(id) = CitizenId::parse(&s) {
                prop_assert_eq!(id.as_str().len(), 18);
            }
            let _ = diagnose(&s);
        }

        #[test]
        fn never_panics_on_relevant_chars(s in relevant_chars()) {
            match parse_detailed(&s) {
                Ok(p) => {
                    prop_assert_eq!(p.id.as_str().len(), 18);
                    prop_assert!(p.id.as_str().bytes().all(|b| b.is_ascii_digit() || b == b'X'));
                    prop_assert_eq!(CitizenId::parse(p.id.as_str()).unwrap(), p.id.clone());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            let d = diagnose(&s);
            prop_assert!(d.candidates.len() <= MAX_CANDIDATES);
        }
    }
}
