//! Calendar dates in the forms departments really write them.
//!
//! This module reads a date cell (`2020-01-02`, `2020/1/2`, `2020.1.2`, `2020 1 2`, `20200102`,
//! `2020年1月2日`, `二〇二〇年一月二日`, full-width digits and dashes, a trailing time of day,
//! system timestamps such as `20200102153000`, or a spreadsheet serial number such as `43831`)
//! into a [`NaiveDate`], or says precisely why it cannot: the value has no recognisable form, the
//! date does not exist, or it is outside the plausible years. It deliberately does not guess:
//! day-first and month-first forms such as `02/01/2020` are refused as ambiguous rather than read
//! one way, six-digit `YYMMDD` values are read only when the caller asks and says which century,
//! and a bare four-digit year is not turned into a date. It ignores any time of day rather than
//! interpreting time zones, and it does not parse lunar dates or relative dates (昨天, 上周一).
//!
//! Spreadsheet serials follow the Excel 1900 date system, in which serial 1 is 1900-01-01 and
//! serial 60 is 1900-02-29, a day that never existed (Excel copied Lotus 1-2-3's mistaken belief
//! that 1900 was a leap year). Serial 60 is therefore reported as an impossible date, and serials
//! from 61 on are one day behind a plain count: 61 is 1900-03-01 and 43831 is 2020-01-01.

use chrono::{Datelike, Days, NaiveDate};
use thiserror::Error;

use crate::text;

/// The largest serial Excel accepts: 9999-12-31.
pub const MAX_SERIAL: u64 = 2_958_465;

/// How lenient [`parse_date_with`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOptions {
    /// Read a bare number of up to 7 digits (optionally with a fraction, the time of day) as a
    /// spreadsheet serial. Default `true`.
    pub allow_serial: bool,
    /// Read six digits as `YYMMDD` in [`DateOptions::yymmdd_century`]. Default `false`, because
    /// the century cannot be known from the value.
    pub allow_yymmdd: bool,
    /// The century added to a two-digit `YY`, e.g. 1900 for dates from 15-digit citizen ids.
    /// Default 1900.
    pub yymmdd_century: i32,
    /// Earliest accepted year. Default 1880.
    pub min_year: i32,
    /// Latest accepted year. Default 2100.
    pub max_year: i32,
}

impl Default for DateOptions {
    fn default() -> Self {
        DateOptions {
            allow_serial: true,
            allow_yymmdd: false,
            yymmdd_century: 1900,
            min_year: 1880,
            max_year: 2100,
        }
    }
}

/// Why a value is not a usable date.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateError {
    /// Nothing but whitespace.
    #[error("date is empty")]
    Empty,
    /// No supported form matches.
    #[error(
        "{value:?} is not in a recognised date form (2020-01-02, 2020/1/2, 2020.1.2, 2020 1 2, 20200102, 20200102153000, 2020年1月2日 or a spreadsheet serial)"
    )]
    Unrecognised {
        /// The value, trimmed.
        value: String,
    },
    /// Day and month order cannot be told apart.
    #[error(
        "{value:?} puts the year last, so it could be day/month/year or month/day/year; write it year first"
    )]
    Ambiguous {
        /// The value, trimmed.
        value: String,
    },
    /// A bare year.
    #[error("{year} is a year, not a date")]
    YearOnly {
        /// The year.
        year: i32,
    },
    /// Six digits while `allow_yymmdd` is off.
    #[error(
        "{value} has six digits: it may be YYMMDD but the century is unknown, so it is read only when the caller enables allow_yymmdd"
    )]
    YymmddNotAllowed {
        /// The six digits.
        value: String,
    },
    /// The fields do not form a calendar date.
    #[error("{}", impossible_message(*.year, *.month, *.day))]
    Impossible {
        /// Year as written.
        year: i32,
        /// Month as written.
        month: u32,
        /// Day as written.
        day: u32,
    },
    /// A real date outside the accepted years.
    #[error("year {year} is outside the accepted range {min_year}-{max_year}")]
    OutOfRange {
        /// The year.
        year: i32,
        /// Earliest accepted year.
        min_year: i32,
        /// Latest accepted year.
        max_year: i32,
    },
    /// A spreadsheet serial that is 0, too large, or falls outside the accepted years.
    #[error("{}", serial_message(*.serial, *.min_year, *.max_year))]
    SerialOutOfRange {
        /// The serial's whole-day part.
        serial: u64,
        /// Earliest accepted year.
        min_year: i32,
        /// Latest accepted year.
        max_year: i32,
    },
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn serial_message(serial: u64, min_year: i32, max_year: i32) -> String {
    match serial_date(serial) {
        // Serial 0 is not 1899-12-31 or any other day: the 1900 system has no day before serial 1.
        _ if serial == 0 => {
            "spreadsheet serial 0 is not a date: serials start at 1 (1900-01-01)".to_string()
        }
        _ if serial > MAX_SERIAL => {
            format!("spreadsheet serial {serial} is past the last one, {MAX_SERIAL} (9999-12-31)")
        }
        Some(date) => format!(
            "spreadsheet serial {serial} is {date}, outside the accepted years {min_year}-{max_year}"
        ),
        None => format!(
            "spreadsheet serial {serial} does not fall in the accepted years {min_year}-{max_year} (serial 1 is 1900-01-01, {MAX_SERIAL} is 9999-12-31)"
        ),
    }
}

fn impossible_message(year: i32, month: u32, day: u32) -> String {
    let date = format!("{year:04}-{month:02}-{day:02}");
    if !(1..=12).contains(&month) {
        format!("{date} does not exist: there is no month {month}")
    } else if day == 0 {
        format!("{date} does not exist: there is no day 0")
    } else if month == 2 && day == 29 {
        format!("{date} does not exist: {year} is not a leap year")
    } else {
        format!(
            "{date} does not exist: {year:04}-{month:02} has only {} days",
            days_in_month(year, month)
        )
    }
}

/// Parses a date with the default [`DateOptions`].
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    parse_date_with(s, &DateOptions::default())
}

/// Parses a date with the given options.
///
/// Forms, after trimming and [`text::fold_form`] (full-width characters to ASCII, dash
/// look-alikes such as `‐` U+2010 to `-`):
///
/// - `YYYY-MM-DD`, `YYYY/M/D`, `YYYY.M.D` (one or two digits for month and day, one separator
///   used twice);
/// - `YYYY M D`: exactly three groups of digits separated by spaces, the four-digit year first
///   (with the year last, `02 01 2020`, it is as ambiguous as `02/01/2020`);
/// - `YYYYMMDD` (eight digits are always this, never a serial);
/// - `YYYYMMDDHHmm` and `YYYYMMDDHHmmss`, the timestamps systems export (12 or 14 digits; the time
///   must be a real time of day and is then ignored);
/// - `YYYY年M月D日` with ASCII digits or Chinese numerals (`二〇二〇年一月二日`, `十二月三十一日`),
///   `号` for `日`, spaces allowed around the parts;
/// - any of the above followed by a time of day after a space or `T`, which is ignored, or by a
///   part of the day alone (`2020-01-02 上午`);
/// - a spreadsheet serial of 1-7 digits, optionally with a fraction (`43831`, `43831.5`), if
///   [`DateOptions::allow_serial`];
/// - six digits `YYMMDD`, only if [`DateOptions::allow_yymmdd`].
///
/// A bare four-digit number from 1000 to 2999 is refused as [`DateError::YearOnly`] rather than
/// read as a serial, which would put it in 1902-1908.
pub fn parse_date_with(s: &str, opts: &DateOptions) -> Result<NaiveDate, DateError> {
    parse_plain(s, opts).unwrap_or_else(|| parse_general(s, opts))
}

/// Every form [`parse_date_with`] reads.
fn parse_general(s: &str, opts: &DateOptions) -> Result<NaiveDate, DateError> {
    let t = normalise(s);
    if t.is_empty() {
        return Err(DateError::Empty);
    }
    let unrecognised = || DateError::Unrecognised { value: t.clone() };
    if t.contains('年') {
        let (y, m, d) = parse_chinese(&t).ok_or_else(unrecognised)?;
        return build(y, m, d, opts);
    }
    if let Some(result) = parse_spaced(&t, opts) {
        return result;
    }
    let (date_part, time_part) = split_time(&t);
    if let Some(time) = time_part
        && !is_time(time)
    {
        return Err(unrecognised());
    }
    if date_part.bytes().all(|b| b.is_ascii_digit()) {
        return parse_number(date_part, opts).unwrap_or_else(|| Err(unrecognised()));
    }
    if time_part.is_none()
        && let Some((whole, frac)) = date_part.split_once('.')
    {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // 2020.1 is a year and month, not serial 2020 with a fraction.
        let year_like = whole.len() == 4 && (1000..=2999).contains(&number(whole));
        if digits(whole) && digits(frac) && !year_like && opts.allow_serial {
            // The fraction of a serial is the time of day, which is ignored.
            return parse_number(whole, opts).unwrap_or_else(|| Err(unrecognised()));
        }
    }
    for sep in ['-', '/', '.'] {
        let parts: Vec<&str> = date_part.split(sep).collect();
        let [y, m, d] = parts.as_slice() else {
            continue;
        };
        if !parts.iter().all(|p| is_digits(p, 1, 4)) {
            continue;
        }
        if y.len() == 4 && m.len() <= 2 && d.len() <= 2 {
            return build(number(y), number(m) as u32, number(d) as u32, opts);
        }
        if d.len() == 4 && y.len() <= 2 && m.len() <= 2 {
            return Err(DateError::Ambiguous { value: t.clone() });
        }
    }
    Err(unrecognised())
}

/// The two forms most exports use, `YYYYMMDD` and `YYYY-MM-DD` with nothing around them, read
/// without normalising: ingest reads millions. The answer is the one the general path gives
/// (a property test checks); anything else is `None` and takes that path.
fn parse_plain(s: &str, opts: &DateOptions) -> Option<Result<NaiveDate, DateError>> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let n = |r: std::ops::Range<usize>| s.get(r).map_or(0, number);
    match b.len() {
        8 if digits(0..8) => Some(build(n(0..4), n(4..6) as u32, n(6..8) as u32, opts)),
        10 if digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10) => {
            Some(build(n(0..4), n(5..7) as u32, n(8..10) as u32, opts))
        }
        _ => None,
    }
}

/// Reads `2020 1 2`: exactly three space-separated groups of digits. Checked before a space is
/// taken to start a time of day, which would read `2020 1 2` as the year 2020 at 1 o'clock and
/// `02 01 2020` as serial 2.
fn parse_spaced(t: &str, opts: &DateOptions) -> Option<Result<NaiveDate, DateError>> {
    let parts: Vec<&str> = t.split(' ').filter(|p| !p.is_empty()).collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    if !parts.iter().all(|p| is_digits(p, 1, 4)) {
        return None;
    }
    if y.len() == 4 && m.len() <= 2 && d.len() <= 2 {
        return Some(build(number(y), number(m) as u32, number(d) as u32, opts));
    }
    if d.len() == 4 && y.len() <= 2 && m.len() <= 2 {
        return Some(Err(DateError::Ambiguous {
            value: t.to_string(),
        }));
    }
    None
}

fn is_digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Value of a short run of ASCII digits (at most 9, so no overflow).
fn number(s: &str) -> i32 {
    s.bytes().take(9).fold(0i32, |acc, b| {
        acc * 10 + i32::from(b.wrapping_sub(b'0') % 10)
    })
}

fn build(year: i32, month: u32, day: u32, opts: &DateOptions) -> Result<NaiveDate, DateError> {
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(DateError::Impossible {
        year,
        month,
        day,
    })?;
    if !(opts.min_year..=opts.max_year).contains(&year) {
        return Err(DateError::OutOfRange {
            year,
            min_year: opts.min_year,
            max_year: opts.max_year,
        });
    }
    Ok(date)
}

/// Trims, folds the form ([`text::fold_form`]) and turns every inner space (tab, no-break space,
/// ideographic space) into an ASCII space. Dates carry no notes, so what was folded is not kept.
fn normalise(s: &str) -> String {
    let (folded, _) = text::fold_form(s.trim_matches(text::is_space));
    folded
        .chars()
        .map(|c| if text::is_space(c) { ' ' } else { c })
        .collect()
}

/// Splits `2020-01-02 13:45` or `2020-01-02T13:45` into date and time parts.
fn split_time(t: &str) -> (&str, Option<&str>) {
    if let Some((date, time)) = t.split_once(' ') {
        return (date, Some(time.trim_start()));
    }
    // A T between a digit and a digit starts an ISO 8601 time.
    let bytes = t.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'T'
            && i > 0
            && bytes.get(i - 1).is_some_and(u8::is_ascii_digit)
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            return (t.get(..i).unwrap_or(t), t.get(i + 1..));
        }
    }
    (t, None)
}

/// Parts of the day written before a time (下午 3:00) or instead of one (2020-01-02 上午).
const DAY_PARTS: &[&str] = &["凌晨", "早上", "上午", "中午", "下午", "晚上"];

/// Whether `s` looks like a time of day, which is then ignored: a part of the day alone
/// ([`DAY_PARTS`]), or a digit (after an optional part of the day) followed only by digits and
/// time punctuation.
fn is_time(s: &str) -> bool {
    let s = s.trim();
    let (s, day_part) = match DAY_PARTS.iter().find_map(|p| s.strip_prefix(p)) {
        Some(rest) => (rest.trim_start(), true),
        None => (s, false),
    };
    if s.is_empty() {
        return day_part;
    }
    // Bare digits are a time only as one group of hours, HHmm or HHmmss (the T153000 of ISO 8601);
    // `2020 1 2 3` is four numbers, not the year 2020 at "1 2 3".
    if s.bytes().all(|b| b.is_ascii_digit() || b == b' ') {
        return matches!(s.len(), 1 | 2 | 4 | 6) && !s.contains(' ');
    }
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    ':' | '.' | ',' | ' ' | '+' | '-' | 'Z' | 'z' | '时' | '分' | '秒' | '点'
                )
                || matches!(c, 'A' | 'P' | 'M' | 'a' | 'p' | 'm')
        })
}

/// Reads an all-digit value: `YYYYMMDD`, `YYYYMMDDHHmm(ss)`, `YYMMDD` or a serial. `None` means
/// no form applies.
fn parse_number(s: &str, opts: &DateOptions) -> Option<Result<NaiveDate, DateError>> {
    let n = |r: std::ops::Range<usize>| s.get(r).map_or(0, number);
    match s.len() {
        8 => Some(build(n(0..4), n(4..6) as u32, n(6..8) as u32, opts)),
        // A timestamp whose time is not a time of day (20200102256100) is not this form, and
        // nothing else has 12 or 14 digits, so it is unrecognised rather than half-read.
        12 | 14 if n(8..10) <= 23 && n(10..12) <= 59 && n(12..14) <= 59 => {
            Some(build(n(0..4), n(4..6) as u32, n(6..8) as u32, opts))
        }
        6 if opts.allow_yymmdd => Some(build(
            opts.yymmdd_century.saturating_add(n(0..2)),
            n(2..4) as u32,
            n(4..6) as u32,
            opts,
        )),
        6 => Some(Err(DateError::YymmddNotAllowed {
            value: s.to_string(),
        })),
        // A bare 1000-2999 is far likelier a year than a serial for a day in 1902-1908.
        4 if (1000..=2999).contains(&number(s)) => {
            Some(Err(DateError::YearOnly { year: number(s) }))
        }
        1..=7 if opts.allow_serial => Some(from_serial(number(s) as u64, opts)),
        _ => None,
    }
}

/// The date of an Excel 1900-system serial, ignoring the accepted years: `None` for 0, for 60
/// (the phantom 1900-02-29) and past [`MAX_SERIAL`].
fn serial_date(serial: u64) -> Option<NaiveDate> {
    if serial == 0 || serial == 60 || serial > MAX_SERIAL {
        return None;
    }
    // Before the phantom leap day serials count from 1899-12-31; after it, one day earlier.
    let epoch = if serial < 60 {
        (1899, 12, 31)
    } else {
        (1899, 12, 30)
    };
    NaiveDate::from_ymd_opt(epoch.0, epoch.1, epoch.2)
        .and_then(|e| e.checked_add_days(Days::new(serial)))
}

/// Maps an Excel 1900-system serial to a date.
fn from_serial(serial: u64, opts: &DateOptions) -> Result<NaiveDate, DateError> {
    if serial == 60 {
        return Err(DateError::Impossible {
            year: 1900,
            month: 2,
            day: 29,
        });
    }
    let out_of_range = DateError::SerialOutOfRange {
        serial,
        min_year: opts.min_year,
        max_year: opts.max_year,
    };
    match serial_date(serial) {
        Some(date) if (opts.min_year..=opts.max_year).contains(&date.year()) => Ok(date),
        _ => Err(out_of_range),
    }
}

/// The spreadsheet serial of a date in the Excel 1900 system, if it has one (1900-01-01 to
/// 9999-12-31). Useful for writing spreadsheets and for tests.
pub fn to_serial(date: NaiveDate) -> Option<u64> {
    let mar1 = NaiveDate::from_ymd_opt(1900, 3, 1)?;
    let epoch = if date < mar1 {
        NaiveDate::from_ymd_opt(1899, 12, 31)?
    } else {
        NaiveDate::from_ymd_opt(1899, 12, 30)?
    };
    let days = u64::try_from(date.signed_duration_since(epoch).num_days()).ok()?;
    (1..=MAX_SERIAL).contains(&days).then_some(days)
}

/// The offset of China Standard Time from UTC in seconds (UTC+8 all year: China has no daylight
/// saving time since 1991).
pub const CHINA_UTC_OFFSET_SECS: i32 = 8 * 3600;

/// The calendar date at the moment `unix_secs` (seconds since 1970-01-01T00:00:00Z) at a fixed
/// offset from UTC, e.g. [`CHINA_UTC_OFFSET_SECS`]. This module reads no clock; a caller that has
/// one turns its reading into "today" with this, and compares dates such as a birth date with it.
/// `None` only for moments outside the years chrono can represent.
pub fn date_at_unix(unix_secs: i64, utc_offset_secs: i32) -> Option<NaiveDate> {
    let local = unix_secs.checked_add(i64::from(utc_offset_secs))?;
    chrono::DateTime::from_timestamp(local, 0).map(|t| t.date_naive())
}

/// A moment (milliseconds since the Unix epoch) as RFC 3339 text in China Standard Time, as the
/// API and exports give times: `2026-12-05T12:07:45.123+08:00`. People in China read it as
/// their clock shows it, and a program parses it without knowing the offset beforehand. Empty
/// only for moments outside the years chrono can represent.
pub fn china_time(unix_millis: i64) -> String {
    let Some(offset) = chrono::FixedOffset::east_opt(CHINA_UTC_OFFSET_SECS) else {
        return String::new();
    };
    chrono::DateTime::from_timestamp_millis(unix_millis)
        .map(|t| {
            t.with_timezone(&offset)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        })
        .unwrap_or_default()
}

/// A moment (milliseconds since the Unix epoch) to the minute as a clock in China shows it,
/// for tables people read at a terminal: `2026-12-05 12:07`. Programs get [`china_time`].
/// Empty only for moments outside the years chrono can represent.
pub fn china_minute(unix_millis: i64) -> String {
    let local = unix_millis.checked_add(i64::from(CHINA_UTC_OFFSET_SECS) * 1000);
    local
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The names of the fields that hold a moment (epoch milliseconds in the store) in the JSON that
/// commands and the API give out.
pub const TIME_FIELDS: [&str; 11] = [
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "resolved_at",
    "expires_at",
    "revoked_at",
    "valid_from",
    "valid_to",
    "last_batch_at",
    "withdrawn_at",
];

/// Stored rows as JSON for people and programs, with every moment (a [`TIME_FIELDS`] field at
/// any depth) as RFC 3339 text in China Standard Time ([`china_time`]): the store's epoch
/// milliseconds would make each client convert them. A field of another name, and null, stay.
pub fn with_china_times(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (name, value) in map.iter_mut() {
                    match value.as_i64() {
                        Some(ms) if TIME_FIELDS.contains(&name.as_str()) => {
                            *value = china_time(ms).into();
                        }
                        _ => walk(value),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Value of a Chinese digit, including the zero forms people write (〇, ○, 零, and a letter O).
fn cn_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '○' | '零' | 'O' | 'o' | '0' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

/// Reads a month or day: 1-2 ASCII digits, or a Chinese number up to 39 (一, 十, 十二, 二十,
/// 二十一, 廿一, 卅, also digit by digit as in 〇二 or 一二).
fn cn_small(s: &str) -> Option<u32> {
    if is_digits(s, 1, 2) {
        return Some(number(s) as u32);
    }
    let chars: Vec<char> = s.chars().collect();
    let (tens, rest): (u32, &[char]) = match chars.as_slice() {
        ['廿', rest @ ..] => (2, rest),
        ['卅', rest @ ..] => (3, rest),
        ['十', rest @ ..] => (1, rest),
        [t, '十', rest @ ..] => (cn_digit(*t).filter(|&d| d >= 1)?, rest),
        [a, b] => return Some(cn_digit(*a)? * 10 + cn_digit(*b)?),
        [a] => return cn_digit(*a),
        _ => return None,
    };
    match rest {
        [] => Some(tens * 10),
        [u] => Some(tens * 10 + cn_digit(*u).filter(|&d| d >= 1)?),
        _ => None,
    }
}

/// Reads `Y年M月D日`, ignoring spaces and a following time. `None` if the shape is wrong.
fn parse_chinese(t: &str) -> Option<(i32, u32, u32)> {
    let (year, rest) = t.split_once('年')?;
    let (month, rest) = rest.split_once('月')?;
    let (day, time) = match rest.find(['日', '号']) {
        // Both markers are three bytes long in UTF-8.
        Some(i) => (rest.get(..i)?, rest.get(i + '日'.len_utf8()..)?),
        None => match rest.split_once(' ') {
            Some((d, time)) => (d, time),
            None => (rest, ""),
        },
    };
    let year: String = year.chars().filter(|&c| c != ' ').collect();
    let year = if is_digits(&year, 4, 4) {
        number(&year)
    } else {
        let digits: Option<Vec<u32>> = year.chars().map(cn_digit).collect();
        let digits = digits.filter(|d| d.len() == 4)?;
        digits.iter().fold(0i32, |acc, &d| acc * 10 + d as i32)
    };
    // 元月 is a common name for January.
    let month = match month.trim() {
        "元" => 1,
        m => cn_small(m)?,
    };
    let day = cn_small(day.trim())?;
    let time = time.trim();
    if !time.is_empty() && !is_time(time) {
        return None;
    }
    Some((year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn json_times_are_given_in_china_time_at_any_depth() {
        let v = with_china_times(serde_json::json!({
            "created_at": 1_796_443_665_123_i64,
            "tokens": [{"expires_at": null, "revoked_at": 0}],
            "freshness": {"last_batch_at": 1_796_486_400_000_i64, "age_hours": 3},
            "id": 7,
        }));
        assert_eq!(
            v,
            serde_json::json!({
                "created_at": "2026-12-05T12:07:45.123+08:00",
                "tokens": [{"expires_at": null, "revoked_at": "1970-01-01T08:00:00.000+08:00"}],
                "freshness": {"last_batch_at": "2026-12-06T00:00:00.000+08:00", "age_hours": 3},
                "id": 7,
            })
        );
    }

    #[test]
    fn times_are_given_in_china_standard_time() {
        // 2026-12-05T04:07:45.123Z is 12:07:45.123 in Beijing; 16:00Z is the next day there.
        assert_eq!(
            china_time(1_796_443_665_123),
            "2026-12-05T12:07:45.123+08:00"
        );
        assert_eq!(
            china_time(1_796_486_400_000),
            "2026-12-06T00:00:00.000+08:00"
        );
        assert_eq!(china_time(0), "1970-01-01T08:00:00.000+08:00");
        assert_eq!(china_time(i64::MAX), "");
        assert_eq!(china_minute(1_796_443_665_123), "2026-12-05 12:07");
        assert_eq!(china_minute(1_796_486_400_000), "2026-12-06 00:00");
        assert_eq!(china_minute(i64::MAX), "");
    }

    #[test]
    fn everyday_forms() {
        let want = date(2020, 1, 2);
        for s in [
            "2020-01-02",
            "2020-1-2",
            "2020/1/2",
            "2020/01/02",
            "2020.1.2",
            "20200102",
            "2020年1月2日",
            "2020年01月02日",
            "2020 年 1 月 2 日",
            "2020年1月2号",
            "２０２０年１月２日",
            "２０２０－０１－０２",
            "二〇二〇年一月二日",
            "二○二○年元月二日",
            "2020-01-02 13:45:00",
            "2020-01-02T13:45:00",
            "2020-01-02T13:45:00+08:00",
            "2020/1/2 0:00",
            "2020年1月2日 13时45分",
            "2020年1月2日13:45",
            "  2020-01-02\u{3000}",
            "2020\u{2010}01\u{2010}02",
            "2020\u{2013}1\u{2013}2",
            "2020\u{FE63}01\u{FE63}02",
            "2020 1 2",
            "2020  01\u{3000}02",
            "20200102000000",
            "20200102235959",
            "202001021530",
            "20200102T153000",
            "2020-01-02 上午",
            "2020-01-02 下午",
            "2020/1/2 下午 3:00",
            "2020年1月2日上午",
            "2020年1月2日 晚上 8点",
        ] {
            assert_eq!(parse_date(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_date("二〇一九年十二月三十一日"),
            Ok(date(2019, 12, 31))
        );
        assert_eq!(parse_date("二〇一九年十月廿一日"), Ok(date(2019, 10, 21)));
        assert_eq!(parse_date("一九四九年十月一日"), Ok(date(1949, 10, 1)));
        assert_eq!(parse_date("二OO八年八月八日"), Ok(date(2008, 8, 8)));
    }

    #[test]
    fn spreadsheet_serials() {
        assert_eq!(parse_date("43831"), Ok(date(2020, 1, 1)));
        assert_eq!(parse_date("43831.0"), Ok(date(2020, 1, 1)));
        assert_eq!(parse_date("43831.75"), Ok(date(2020, 1, 1)));
        assert_eq!(parse_date("1"), Ok(date(1900, 1, 1)));
        assert_eq!(parse_date("59"), Ok(date(1900, 2, 28)));
        assert_eq!(parse_date("61"), Ok(date(1900, 3, 1)));
        let e = parse_date("60").unwrap_err();
        assert_eq!(
            e,
            DateError::Impossible {
                year: 1900,
                month: 2,
                day: 29
            }
        );
        assert_eq!(
            e.to_string(),
            "1900-02-29 does not exist: 1900 is not a leap year"
        );
        let e = parse_date("0").unwrap_err();
        assert!(matches!(e, DateError::SerialOutOfRange { serial: 0, .. }));
        assert_eq!(
            e.to_string(),
            "spreadsheet serial 0 is not a date: serials start at 1 (1900-01-01)"
        );
        assert_eq!(
            parse_date("2958465").unwrap_err().to_string(),
            "spreadsheet serial 2958465 is 9999-12-31, outside the accepted years 1880-2100"
        );
        assert_eq!(
            parse_date_with(
                "2958466",
                &DateOptions {
                    max_year: 9999,
                    ..DateOptions::default()
                }
            )
            .unwrap_err()
            .to_string(),
            "spreadsheet serial 2958466 is past the last one, 2958465 (9999-12-31)"
        );
        // 2958465 is 9999-12-31: a real serial, but outside the default years.
        assert!(matches!(
            parse_date("2958465"),
            Err(DateError::SerialOutOfRange { .. })
        ));
        let wide = DateOptions {
            max_year: 9999,
            ..DateOptions::default()
        };
        assert_eq!(parse_date_with("2958465", &wide), Ok(date(9999, 12, 31)));
        assert!(matches!(
            parse_date_with("2958466", &wide),
            Err(DateError::SerialOutOfRange { .. })
        ));
        let no_serial = DateOptions {
            allow_serial: false,
            ..DateOptions::default()
        };
        assert!(matches!(
            parse_date_with("43831", &no_serial),
            Err(DateError::Unrecognised { .. })
        ));
        assert_eq!(to_serial(date(2020, 1, 1)), Some(43831));
        assert_eq!(to_serial(date(1900, 2, 28)), Some(59));
        assert_eq!(to_serial(date(1900, 3, 1)), Some(61));
        assert_eq!(to_serial(date(1899, 12, 31)), None);
    }

    #[test]
    fn date_at_unix_applies_the_offset() {
        assert_eq!(date_at_unix(0, 0), Some(date(1970, 1, 1)));
        // 2020-01-01T00:00:00Z is already 08:00 in China; one second earlier it is still
        // 2019-12-31 in UTC but 07:59:59 on 2020-01-01 in China.
        assert_eq!(date_at_unix(1_577_836_800, 0), Some(date(2020, 1, 1)));
        assert_eq!(date_at_unix(1_577_836_799, 0), Some(date(2019, 12, 31)));
        assert_eq!(
            date_at_unix(1_577_836_799, CHINA_UTC_OFFSET_SECS),
            Some(date(2020, 1, 1))
        );
        assert_eq!(
            date_at_unix(1_577_808_000 - 1, CHINA_UTC_OFFSET_SECS),
            Some(date(2019, 12, 31))
        );
        assert_eq!(date_at_unix(i64::MAX, CHINA_UTC_OFFSET_SECS), None);
        assert_eq!(date_at_unix(i64::MIN, -1), None);
    }

    #[test]
    fn yymmdd_only_when_asked() {
        assert_eq!(
            parse_date("900102"),
            Err(DateError::YymmddNotAllowed {
                value: "900102".into()
            })
        );
        let opts = DateOptions {
            allow_yymmdd: true,
            ..DateOptions::default()
        };
        assert_eq!(parse_date_with("900102", &opts), Ok(date(1990, 1, 2)));
        let opts2000 = DateOptions {
            yymmdd_century: 2000,
            ..opts
        };
        assert_eq!(parse_date_with("200102", &opts2000), Ok(date(2020, 1, 2)));
        assert!(matches!(
            parse_date_with("990230", &opts),
            Err(DateError::Impossible { .. })
        ));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(parse_date(" "), Err(DateError::Empty));
        let e = parse_date("2023-02-29").unwrap_err();
        assert_eq!(
            e.to_string(),
            "2023-02-29 does not exist: 2023 is not a leap year"
        );
        assert_eq!(parse_date("2024-02-29"), Ok(date(2024, 2, 29)));
        assert_eq!(
            parse_date("2023-04-31").unwrap_err().to_string(),
            "2023-04-31 does not exist: 2023-04 has only 30 days"
        );
        assert_eq!(
            parse_date("2023年13月1日").unwrap_err().to_string(),
            "2023-13-01 does not exist: there is no month 13"
        );
        assert_eq!(
            parse_date("20230100").unwrap_err().to_string(),
            "2023-01-00 does not exist: there is no day 0"
        );
        assert_eq!(
            parse_date("1850-01-01"),
            Err(DateError::OutOfRange {
                year: 1850,
                min_year: 1880,
                max_year: 2100
            })
        );
        assert!(matches!(
            parse_date("02/01/2020"),
            Err(DateError::Ambiguous { .. })
        ));
        // Spaced with the year last is as ambiguous, not serial 2 with a time of day.
        assert!(matches!(
            parse_date("02 01 2020"),
            Err(DateError::Ambiguous { .. })
        ));
        assert!(matches!(
            parse_date("20200229000000"),
            Ok(d) if d == date(2020, 2, 29)
        ));
        assert_eq!(
            parse_date("20230229120000").unwrap_err().to_string(),
            "2023-02-29 does not exist: 2023 is not a leap year"
        );
        assert_eq!(parse_date("2020"), Err(DateError::YearOnly { year: 2020 }));
        for s in [
            "2020-01",
            "2020-01-02-03",
            "2020-1/2",
            "hello",
            "2020-01-02 noon",
            "2020年1月",
            "2020.1",
            "-5",
            "20-01-02",
            "2020--01",
            "202001021",
            "20200102246000",
            "202001021560",
            "2020010215300",
            "2020 1 2 3",
            "2020 1 x",
            "2020-01-02 傍晚",
            "2020-01-02 上午 noon",
        ] {
            assert!(
                matches!(parse_date(s), Err(DateError::Unrecognised { .. })),
                "{s}: {:?}",
                parse_date(s)
            );
        }
    }

    #[test]
    fn chinese_small_numbers() {
        let cases = [
            ("一", 1),
            ("十", 10),
            ("十一", 11),
            ("二十", 20),
            ("二十九", 29),
            ("廿九", 29),
            ("三十一", 31),
            ("卅", 30),
            ("〇二", 2),
            ("一二", 12),
            ("12", 12),
        ];
        for (s, v) in cases {
            assert_eq!(cn_small(s), Some(v), "{s}");
        }
        for s in ["", "十十", "〇十", "二十〇", "一二三", "甲"] {
            assert_eq!(cn_small(s), None, "{s}");
        }
    }

    fn cn_number(n: u32) -> String {
        const D: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
        match n {
            0..=9 => D[n as usize].to_string(),
            10 => "十".into(),
            11..=19 => format!("十{}", D[(n % 10) as usize]),
            _ if n.is_multiple_of(10) => format!("{}十", D[(n / 10) as usize]),
            _ => format!("{}十{}", D[(n / 10) as usize], D[(n % 10) as usize]),
        }
    }

    fn cn_year(y: i32) -> String {
        const D: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
        format!("{y:04}")
            .bytes()
            .map(|b| D[(b - b'0') as usize])
            .collect()
    }

    fn fullwidth(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(u32::from(c) + 0xfee0).unwrap(),
                _ => c,
            })
            .collect()
    }

    fn format_in(d: NaiveDate, form: usize) -> String {
        let (y, m, day) = (d.year(), d.month(), d.day());
        match form {
            0 => format!("{y}-{m:02}-{day:02}"),
            1 => format!("{y}/{m}/{day}"),
            2 => format!("{y}.{m}.{day}"),
            3 => format!("{y}{m:02}{day:02}"),
            4 => format!("{y}年{m}月{day}日"),
            5 => format!("{}年{}月{}日", cn_year(y), cn_number(m), cn_number(day)),
            6 => fullwidth(&format!("{y}年{m:02}月{day:02}日")),
            7 => format!("{y}-{m:02}-{day:02} 13:45:00"),
            8 => format!("{y}-{m:02}-{day:02}T08:00:00Z"),
            9 => fullwidth(&format!("{y}/{m:02}/{day:02}")),
            10 => format!("{y} {m} {day}"),
            11 => format!("{y}{m:02}{day:02}235959"),
            12 => format!("{y}{m:02}{day:02}0800"),
            _ => format!("{y}\u{2010}{m:02}\u{2010}{day:02} 上午"),
        }
    }

    fn date_strategy() -> impl Strategy<Value = NaiveDate> {
        dates_in(1880..=2100)
    }

    fn dates_in(years: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = NaiveDate> {
        (years, 1u32..=12, 1u32..=31).prop_map(|(y, m, d)| {
            NaiveDate::from_ymd_opt(y, m, d.min(days_in_month(y, m))).unwrap()
        })
    }

    proptest! {
        #[test]
        fn the_plain_shortcut_agrees_with_the_general_path(
            s in "[0-9]{8}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9-]{8,10}",
        ) {
            let opts = DateOptions::default();
            if let Some(fast) = parse_plain(&s, &opts) {
                prop_assert_eq!(fast, parse_general(&s, &opts), "{}", s);
            }
        }

        #[test]
        fn every_form_round_trips(d in date_strategy(), form in 0usize..14) {
            let s = format_in(d, form);
            prop_assert_eq!(parse_date(&s), Ok(d), "{}", s);
        }

        #[test]
        fn serials_round_trip(d in dates_in(1900..=2100), frac in prop::sample::select(vec!["", ".0", ".5", ".999"])) {
            let serial = to_serial(d).unwrap();
            // Four-digit serials (1902-1908) are deliberately read as bare years.
            if (1000..=2999).contains(&serial) {
                return Ok(());
            }
            prop_assert_eq!(parse_date(&format!("{serial}{frac}")), Ok(d));
        }

        #[test]
        fn yymmdd_round_trips(d in dates_in(1900..=1999)) {
            let opts = DateOptions { allow_yymmdd: true, ..DateOptions::default() };
            let s = format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day());
            prop_assert_eq!(parse_date_with(&s, &opts), Ok(d));
        }

        #[test]
        fn impossible_days_are_reported_in_every_form(
            y in 1880i32..=2100,
            m in prop::sample::select(vec![2u32, 4, 6, 9, 11]),
            over in 1u32..=3,
            form in 0usize..10,
        ) {
            // Forms 7-9 below are the spaced, timestamp and U+2010 forms.
            // Months shorter than 31 days, pushed one to three days past their end.
            let day = (days_in_month(y, m) + over).min(31);
            let s = match form {
                0 => format!("{y}-{m:02}-{day:02}"),
                1 => format!("{y}/{m}/{day}"),
                2 => format!("{y}.{m}.{day}"),
                3 => format!("{y}{m:02}{day:02}"),
                4 => format!("{y}年{m}月{day}日"),
                5 => format!("{}年{}月{}日", cn_year(y), cn_number(m), cn_number(day)),
                6 => format!("{y}-{m:02}-{day:02}T13:45:00"),
                7 => format!("{y} {m} {day}"),
                8 => format!("{y}{m:02}{day:02}134500"),
                _ => format!("{y}\u{2010}{m}\u{2010}{day}"),
            };
            prop_assert_eq!(
                parse_date(&s),
                Err(DateError::Impossible { year: y, month: m, day }),
                "{}", s
            );
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            if let Ok(d) = parse_date(&s) {
                prop_assert!((1880..=2100).contains(&d.year()));
            }
            let all = DateOptions { allow_yymmdd: true, min_year: i32::MIN, max_year: i32::MAX, ..DateOptions::default() };
            let _ = parse_date_with(&s, &all);
        }

        #[test]
        fn never_panics_on_relevant_chars(
            v in prop::collection::vec(
                prop::sample::select(
                    "0123456789０１２３４５６７８９-/.:T 年月日号〇一二三四五六七八九十廿卅时分上下午‐－\u{3000}".chars().collect::<Vec<_>>()
                ),
                0..20,
            ),
            yymmdd in any::<bool>(),
        ) {
            let s: String = v.into_iter().collect();
            let opts = DateOptions { allow_yymmdd: yymmdd, ..DateOptions::default() };
            match parse_date_with(&s, &opts) {
                Ok(d) => prop_assert!((1880..=2100).contains(&d.year())),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
