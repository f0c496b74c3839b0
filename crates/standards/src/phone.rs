//! Chinese phone numbers: mobile numbers and landlines with area codes.
//!
//! This module turns a phone number as departments write it into one canonical form, so that the
//! same line written five ways links as one: mobiles become 11 digits (`13812345678`), landlines
//! become area code and local number joined by a hyphen (`0512-65551234`), and an extension is
//! kept in its own field. It understands country-code prefixes (`+86`, `0086`, `86`), spaces,
//! hyphens, dots and brackets, full-width characters, and extensions written with 转, 分机, ext,
//! x, # or a trailing hyphen group. It deliberately does not check that an area code or mobile
//! prefix is actually assigned (assignments change, and a stale table would reject real numbers),
//! does not accept numbers of other countries or of Hong Kong and Macao (different numbering
//! plans), and does not accept 400/800 service numbers or short numbers such as 12345, which
//! identify no person or office. A local number written without its area code is accepted only
//! when the caller supplies the area it was collected in.
//!
//! Length rules: mobile numbers have 11 digits and start with 13-19. Area codes are 010, 020-029
//! (three digits, eight-digit local numbers) or four digits starting 03-09 (seven- or eight-digit
//! local numbers). Local numbers never start with 0 or 1, which are the trunk and service
//! prefixes.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::text;

/// What kind of line a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PhoneKind {
    /// A mobile number, canonical form 11 digits.
    Mobile,
    /// A fixed line, canonical form `area-local`.
    Landline,
}

impl fmt::Display for PhoneKind {
    /// The kind in words, as a report prints it: "mobile" or "landline".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneKind::Mobile => "mobile",
            PhoneKind::Landline => "landline",
        })
    }
}

/// A phone number in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone {
    /// Mobile or landline.
    pub kind: PhoneKind,
    /// `13812345678` for a mobile, `0512-65551234` for a landline.
    pub canonical: String,
    /// The extension, 1-6 digits, for landlines that have one.
    pub extension: Option<String>,
}

impl Phone {
    /// The area code with its leading 0, for a landline.
    pub fn area_code(&self) -> Option<&str> {
        match self.kind {
            PhoneKind::Mobile => None,
            PhoneKind::Landline => self.canonical.split('-').next(),
        }
    }

    /// The local number without area code, for a landline.
    pub fn local_number(&self) -> Option<&str> {
        match self.kind {
            PhoneKind::Mobile => None,
            PhoneKind::Landline => self.canonical.split('-').nth(1),
        }
    }
}

impl fmt::Display for Phone {
    /// The canonical form, followed by `-extension` if there is one (a form [`parse_phone`]
    /// reads back to the same value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)?;
        if let Some(ext) = &self.extension {
            write!(f, "-{ext}")?;
        }
        Ok(())
    }
}

/// Why a value is not a usable phone number.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    /// Nothing but whitespace.
    #[error("phone number is empty")]
    Empty,
    /// Letters or words other than an extension marker.
    #[error(
        "phone number contains letters or words ({found}); only digits, separators, a leading + and an extension (转, 分机, ext, x, #) are allowed"
    )]
    Letters {
        /// The letters found, in order.
        found: String,
    },
    /// A symbol that has no place in a phone number.
    #[error("phone number contains {ch:?}, which is not a digit or a separator")]
    UnexpectedChar {
        /// The character found.
        ch: char,
    },
    /// A list separator such as `/` or `,`: the field probably holds several numbers.
    #[error(
        "phone number contains {ch:?}; the field probably holds more than one number, which must be split before parsing"
    )]
    MultipleNumbers {
        /// The separator found.
        ch: char,
    },
    /// A country code other than +86.
    #[error(
        "number starts with country code {prefix}, not +86; only numbers in mainland China are accepted"
    )]
    ForeignNumber {
        /// The digits after + or 00, at most four.
        prefix: String,
    },
    /// Fewer digits than any complete number.
    #[error("phone number has only {digits} digits; the shortest complete number has 7")]
    TooShort {
        /// Number of digits found.
        digits: usize,
    },
    /// More digits than a local number but no leading 0 or 1.
    #[error(
        "phone number has {digits} digits but does not start with 0 (area code) or 1 (mobile); a local number has 7 or 8"
    )]
    TooLong {
        /// Number of digits found.
        digits: usize,
    },
    /// Starts with 1 but is not 11 digits long.
    #[error("mobile numbers have 11 digits, this one has {digits}")]
    MobileLength {
        /// Number of digits found.
        digits: usize,
    },
    /// Starts with 10, 11 or 12, which are not mobile prefixes.
    #[error("mobile numbers start with 13-19; {prefix} is not a mobile prefix")]
    BadMobilePrefix {
        /// The first two digits.
        prefix: String,
    },
    /// An area code that does not have one of the used forms.
    #[error("area code {area} does not have a valid form (010, 020-029, or four digits 03xx-09xx)")]
    UnknownAreaCode {
        /// The digits read as the area code.
        area: String,
    },
    /// The local number after the area code has the wrong length.
    #[error(
        "local number after area code {area} has {digits} digits; expected {}",
        expected_local(.area)
    )]
    LocalNumberLength {
        /// The area code.
        area: String,
        /// Number of local digits found.
        digits: usize,
    },
    /// The local number starts with 0 or 1.
    #[error("local number {local} starts with {}; local numbers start with 2-9", first_char(.local))]
    BadLocalNumber {
        /// The local number.
        local: String,
    },
    /// A local number with no area code and no default area.
    #[error("local number {local} has no area code and no default area code was given")]
    MissingAreaCode {
        /// The local number digits.
        local: String,
    },
    /// The caller's default area code is not a valid area code.
    #[error("default area code {area:?} is not a valid area code (010, 020-029, or 03xx-09xx)")]
    BadDefaultArea {
        /// The default as given.
        area: String,
    },
    /// The extension is not 1-6 digits.
    #[error("extension {ext:?} must be 1 to 6 digits")]
    BadExtension {
        /// The extension as written.
        ext: String,
    },
    /// An extension after a mobile number.
    #[error("mobile numbers have no extensions, but extension {ext} was given")]
    ExtensionOnMobile {
        /// The extension found.
        ext: String,
    },
    /// A 400/800 service number.
    #[error("{number} is a 400/800 service number, not a personal or office line")]
    ServiceNumber {
        /// The ten digits.
        number: String,
    },
}

fn expected_local(area: &str) -> &'static str {
    if area.len() == 3 {
        "8 for a three-digit area code"
    } else {
        "7 or 8"
    }
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or('?')
}

/// Markers that introduce an extension, matched case-insensitively.
const EXTENSION_MARKERS: &[&str] = &["分机号", "分机", "转", "ext", "x", "#"];

/// Parses a phone number into canonical form.
///
/// `default_area` is the area code (with or without its leading 0) to assume for a local number
/// written without one, typically the area of the department that collected it; with `None`
/// such numbers are rejected with [`PhoneError::MissingAreaCode`].
///
/// A hyphen or space group after a complete local number is read as an extension:
/// `0512-65551234-808` has extension 808, and so does `0512-6555123-4` (local 6555123,
/// extension 4), because the writer ended the local number at the hyphen.
pub fn parse_phone(s: &str, default_area: Option<&str>) -> Result<Phone, PhoneError> {
    // Most numbers in department exports are a mobile number written as its eleven digits and
    // nothing else; the general path below folds, tokenises and classifies it to the same
    // answer in about 3,500 instructions (callgrind, `tongban bench ingest`), a fifth of a
    // household-register record's cleaning besides its address. A property test holds the
    // two to the same answers.
    if let Some(p) = plain_mobile(s) {
        return Ok(p);
    }
    parse_phone_general(s, default_area)
}

/// `s` as a mobile number when it is exactly eleven ASCII digits, the first 1 and the second
/// 3–9: what [`parse_phone_general`] would answer for it, without its work.
fn plain_mobile(s: &str) -> Option<Phone> {
    let b = s.as_bytes();
    (b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit))
    .then(|| Phone {
        kind: PhoneKind::Mobile,
        canonical: s.to_string(),
        extension: None,
    })
}

/// [`parse_phone`] for any form.
fn parse_phone_general(s: &str, default_area: Option<&str>) -> Result<Phone, PhoneError> {
    let t = normalise(s);
    if t.is_empty() {
        return Err(PhoneError::Empty);
    }
    let (main, raw_ext) = split_extension(&t);
    // Letters in the number itself are reported before a malformed extension, because "Fax …"
    // is better explained by its letters than by an extension marker found inside a word.
    let tokens = tokenise(main)?;
    let ext = raw_ext.map(validate_extension).transpose()?;
    let (digits, bounds) = strip_country(tokens)?;
    let (kind, canonical, hyphen_ext) = classify(&digits, &bounds, ext.is_some(), default_area)?;
    let extension = match (kind, ext.or(hyphen_ext)) {
        (PhoneKind::Mobile, Some(ext)) => return Err(PhoneError::ExtensionOnMobile { ext }),
        (_, ext) => ext,
    };
    Ok(Phone {
        kind,
        canonical,
        extension,
    })
}

/// Trims and folds the form ([`text::fold_form`]: full-width characters, the ideographic space
/// and dash look-alikes to ASCII). The enumeration comma 、 becomes a comma so that a list of
/// numbers is reported as one. Phone numbers carry no notes, so what was folded is not kept.
fn normalise(s: &str) -> String {
    let (folded, _) = text::fold_form(s.trim_matches(text::is_space));
    folded.replace('、', ",")
}

/// Splits off an explicit extension introduced by one of [`EXTENSION_MARKERS`], unvalidated.
fn split_extension(t: &str) -> (&str, Option<&str>) {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` are char
    // boundaries in `t` too.
    let lower = t.to_ascii_lowercase();
    let found = EXTENSION_MARKERS
        .iter()
        .filter_map(|m| lower.find(m).map(|i| (i, m.len())))
        .min_by_key(|&(i, len)| (i, std::cmp::Reverse(len)));
    match found {
        Some((i, len)) => (
            t.get(..i).unwrap_or(""),
            Some(t.get(i + len..).unwrap_or("")),
        ),
        None => (t, None),
    }
}

/// Checks that an extension is 1-6 digits once punctuation around it is removed.
fn validate_extension(raw: &str) -> Result<String, PhoneError> {
    let ext = raw.trim_matches(|c: char| matches!(c, ' ' | '.' | ':' | '-' | '号'));
    if ext.is_empty() || ext.len() > 6 || !ext.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PhoneError::BadExtension {
            ext: raw.trim().to_string(),
        });
    }
    Ok(ext.to_string())
}

/// Digits of the main number, with a leading `+` flag and group boundaries.
struct Tokens {
    plus: bool,
    digits: Vec<u8>,
    /// Digit counts at the end of each group except the last: where the writer put separators.
    bounds: Vec<usize>,
}

fn tokenise(main: &str) -> Result<Tokens, PhoneError> {
    let mut tokens = Tokens {
        plus: false,
        digits: Vec::new(),
        bounds: Vec::new(),
    };
    let letters: String = main
        .chars()
        .filter(|c| c.is_alphabetic())
        .take(12)
        .collect();
    if !letters.is_empty() {
        return Err(PhoneError::Letters { found: letters });
    }
    for c in main.chars() {
        match c {
            '0'..='9' => tokens.digits.push(c as u8),
            '+' if !tokens.plus && tokens.digits.is_empty() => tokens.plus = true,
            ' ' | '\t' | '-' | '.' | '(' | ')' | '[' | ']' => {
                let n = tokens.digits.len();
                if n > 0 && tokens.bounds.last() != Some(&n) {
                    tokens.bounds.push(n);
                }
            }
            '/' | ',' | ';' | '|' => return Err(PhoneError::MultipleNumbers { ch: c }),
            _ => return Err(PhoneError::UnexpectedChar { ch: c }),
        }
    }
    // A separator after the last digit does not end a group that matters.
    let n = tokens.digits.len();
    tokens.bounds.retain(|&b| b < n);
    Ok(tokens)
}

fn text(digits: &[u8]) -> String {
    digits.iter().map(|&b| char::from(b)).collect()
}

/// Removes a +86 / 0086 / 86 country code and restores the trunk 0 an international form drops.
fn strip_country(tokens: Tokens) -> Result<(Vec<u8>, Vec<usize>), PhoneError> {
    let Tokens {
        plus,
        digits,
        bounds,
    } = tokens;
    let first_group = bounds.first().copied().unwrap_or(digits.len());
    let foreign = |from: usize| PhoneError::ForeignNumber {
        prefix: format!(
            "+{}",
            text(digits.get(from..first_group.min(from + 4)).unwrap_or(&[]))
        ),
    };
    if digits.is_empty() {
        return Err(PhoneError::TooShort { digits: 0 });
    }
    let strip = if plus {
        if digits.starts_with(b"86") {
            2
        } else {
            return Err(foreign(0));
        }
    } else if digits.starts_with(b"0086") {
        4
    } else if digits.starts_with(b"00") {
        return Err(foreign(2));
    } else if digits.starts_with(b"86")
        && (first_group == 2
            || (12..=13).contains(&first_group)
            || ((12..=13).contains(&digits.len()) && !bounds.iter().any(|&b| b == 7 || b == 8)))
    {
        // Without a +, a leading 86 is a country code only when it stands alone, or when the
        // digits are as many as 86 plus a complete number and no separator marks off a 7- or
        // 8-digit local number (which may itself begin with 86) followed by an extension.
        2
    } else {
        0
    };
    if strip == 0 {
        return Ok((digits, bounds));
    }
    let mut rest = digits.get(strip..).unwrap_or(&[]).to_vec();
    let mut bounds: Vec<usize> = bounds
        .into_iter()
        .filter(|&b| b > strip)
        .map(|b| b - strip)
        .collect();
    let is_mobile =
        rest.first() == Some(&b'1') && rest.get(1).is_some_and(|d| (b'3'..=b'9').contains(d));
    if !rest.is_empty() && rest.first() != Some(&b'0') && !is_mobile {
        // International forms drop the trunk 0 of the area code (+86 512 … is 0512 …).
        rest.insert(0, b'0');
        for b in &mut bounds {
            *b += 1;
        }
    }
    Ok((rest, bounds))
}

type Classified = (PhoneKind, String, Option<String>);

fn classify(
    d: &[u8],
    bounds: &[usize],
    explicit_ext: bool,
    default_area: Option<&str>,
) -> Result<Classified, PhoneError> {
    let n = d.len();
    match d.first() {
        None => Err(PhoneError::TooShort { digits: 0 }),
        Some(b'1') => {
            if n < 7 {
                return Err(PhoneError::TooShort { digits: n });
            }
            if n != 11 {
                return Err(PhoneError::MobileLength { digits: n });
            }
            if !d.get(1).is_some_and(|p| (b'3'..=b'9').contains(p)) {
                return Err(PhoneError::BadMobilePrefix {
                    prefix: text(d.get(..2).unwrap_or(&[])),
                });
            }
            Ok((PhoneKind::Mobile, text(d), None))
        }
        Some(b'0') => landline(d, bounds, explicit_ext),
        Some(_) if n == 10 && (d.starts_with(b"400") || d.starts_with(b"800")) => {
            Err(PhoneError::ServiceNumber { number: text(d) })
        }
        Some(_) => match default_area {
            Some(area) => {
                let area = normalise_area(area)?;
                let mut full = area.clone().into_bytes();
                full.extend_from_slice(d);
                let mut shifted = vec![area.len()];
                shifted.extend(bounds.iter().map(|b| b + area.len()));
                landline(&full, &shifted, explicit_ext)
            }
            None => {
                let local_end = if explicit_ext {
                    None
                } else {
                    bounds
                        .iter()
                        .copied()
                        .find(|&b| (7..=8).contains(&b) && (1..=6).contains(&(n - b)))
                };
                match local_end {
                    Some(b) => Err(PhoneError::MissingAreaCode {
                        local: text(d.get(..b).unwrap_or(&[])),
                    }),
                    None if (7..=8).contains(&n) => {
                        Err(PhoneError::MissingAreaCode { local: text(d) })
                    }
                    None if n < 7 => Err(PhoneError::TooShort { digits: n }),
                    None => Err(PhoneError::TooLong { digits: n }),
                }
            }
        },
    }
}

/// Length of the area code at the start of `d` (which starts with 0), or the error for it.
fn area_len(d: &[u8]) -> Result<usize, PhoneError> {
    let bad = |len: usize| PhoneError::UnknownAreaCode {
        area: text(d.get(..len.min(d.len())).unwrap_or(&[])),
    };
    match (d.get(1), d.get(2)) {
        (Some(b'1'), Some(b'0')) | (Some(b'2'), Some(_)) => Ok(3),
        (Some(b'3'..=b'9'), Some(_)) if d.len() >= 4 => Ok(4),
        (Some(b'0' | b'1'), _) => Err(bad(3)),
        _ => Err(PhoneError::TooShort { digits: d.len() }),
    }
}

fn valid_local_len(area_len: usize, local_len: usize) -> bool {
    if area_len == 3 {
        local_len == 8
    } else {
        local_len == 7 || local_len == 8
    }
}

fn landline(d: &[u8], bounds: &[usize], explicit_ext: bool) -> Result<Classified, PhoneError> {
    let n = d.len();
    if n < 7 {
        return Err(PhoneError::TooShort { digits: n });
    }
    let a = area_len(d)?;
    let area = text(d.get(..a).unwrap_or(&[]));
    // A separator right after a complete local number, followed by a few more digits, marks an
    // extension; it takes precedence over reading all digits as the number.
    let hyphen_end = if explicit_ext {
        None
    } else {
        bounds
            .iter()
            .copied()
            .find(|&b| b > a && valid_local_len(a, b - a) && (1..=6).contains(&(n - b)))
    };
    let (local_end, ext) = match hyphen_end {
        Some(b) => (b, Some(text(d.get(b..).unwrap_or(&[])))),
        None if valid_local_len(a, n - a) => (n, None),
        None => {
            return Err(PhoneError::LocalNumberLength {
                area,
                digits: n - a,
            });
        }
    };
    let local = text(d.get(a..local_end).unwrap_or(&[]));
    if matches!(local.as_bytes().first(), Some(b'0' | b'1')) {
        return Err(PhoneError::BadLocalNumber { local });
    }
    Ok((PhoneKind::Landline, format!("{area}-{local}"), ext))
}

/// Validates a caller's default area code, adding the leading 0 if it was left off.
fn normalise_area(area: &str) -> Result<String, PhoneError> {
    let bad = || PhoneError::BadDefaultArea {
        area: area.to_string(),
    };
    let t = normalise(area);
    let t = t.trim_matches(|c| c == '(' || c == ')');
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let with_zero = if t.starts_with('0') {
        t.to_string()
    } else {
        format!("0{t}")
    };
    // Append a dummy local part so area_len sees a full number; only the length matters here.
    let mut probe = with_zero.clone().into_bytes();
    probe.extend_from_slice(b"2345678");
    match area_len(&probe) {
        Ok(len) if len == with_zero.len() => Ok(with_zero),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Phone {
        parse_phone(s, None).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn mobile(s: &str) -> Phone {
        Phone {
            kind: PhoneKind::Mobile,
            canonical: s.to_string(),
            extension: None,
        }
    }

    fn landline(s: &str, ext: Option<&str>) -> Phone {
        Phone {
            kind: PhoneKind::Landline,
            canonical: s.to_string(),
            extension: ext.map(str::to_string),
        }
    }

    #[test]
    fn mobile_forms() {
        for s in [
            "13812345678",
            "+86 138 1234 5678",
            "+8613812345678",
            "008613812345678",
            "8613812345678",
            "86-138-1234-5678",
            "138-1234-5678",
            "138 1234 5678",
            "１３８１２３４５６７８",
            " (+86) 138.1234.5678 ",
        ] {
            assert_eq!(ok(s), mobile("13812345678"), "{s}");
        }
    }

    #[test]
    fn landline_forms() {
        for s in [
            "0512-65551234",
            "(0512)65551234",
            "（0512）65551234",
            "0512 6555 1234",
            "051265551234",
            "+86 512 6555 1234",
            "+86 (0)512 65551234",
            "0086-512-65551234",
            "86 512 65551234",
            "０５１２－６５５５１２３４",
            "0512\u{2010}65551234",
            "0512\u{2014}65551234",
            "0512\u{FE58}65551234",
            "0512\u{FE63}65551234",
            "0512\u{2212}65551234",
            "0512\u{3000}65551234",
        ] {
            assert_eq!(ok(s), landline("0512-65551234", None), "{s}");
        }
        assert_eq!(PhoneKind::Landline.to_string(), "landline");
        assert_eq!(PhoneKind::Mobile.to_string(), "mobile");
        assert_eq!(ok("010-65551234"), landline("010-65551234", None));
        assert_eq!(ok("+86 10 6555 1234"), landline("010-65551234", None));
        assert_eq!(ok("020 8888 9999"), landline("020-88889999", None));
        assert_eq!(ok("0951-5051234"), landline("0951-5051234", None));
    }

    #[test]
    fn extensions() {
        let want = landline("0512-65551234", Some("808"));
        for s in [
            "0512-65551234-808",
            "0512-65551234转808",
            "0512-65551234 转 808",
            "0512-65551234 ext. 808",
            "0512-65551234 EXT808",
            "0512-65551234x808",
            "0512-65551234#808",
            "0512-65551234分机808",
            "0512-65551234 分机号：808",
        ] {
            assert_eq!(ok(s), want, "{s}");
        }
        // The writer ended the local number at the hyphen: seven digits, extension 4.
        assert_eq!(ok("0512-6555123-4"), landline("0512-6555123", Some("4")));
        assert_eq!(want.to_string(), "0512-65551234-808");
        assert_eq!(ok(&want.to_string()), want);
        assert_eq!(want.area_code(), Some("0512"));
        assert_eq!(want.local_number(), Some("65551234"));
        assert_eq!(mobile("13812345678").area_code(), None);
    }

    #[test]
    fn default_area() {
        assert_eq!(
            parse_phone("65551234", Some("0512")).unwrap(),
            landline("0512-65551234", None)
        );
        assert_eq!(
            parse_phone("6555 1234", Some("512")).unwrap(),
            landline("0512-65551234", None)
        );
        assert_eq!(
            parse_phone("65551234-808", Some("010")).unwrap(),
            landline("010-65551234", Some("808"))
        );
        // Numbers with their own area code ignore the default.
        assert_eq!(
            parse_phone("010-65551234", Some("0512")).unwrap(),
            landline("010-65551234", None)
        );
        assert_eq!(
            parse_phone("65551234", None),
            Err(PhoneError::MissingAreaCode {
                local: "65551234".into()
            })
        );
        assert_eq!(
            parse_phone("65551234", Some("05")),
            Err(PhoneError::BadDefaultArea { area: "05".into() })
        );
        assert_eq!(
            parse_phone("6555123", Some("010")),
            Err(PhoneError::LocalNumberLength {
                area: "010".into(),
                digits: 7
            })
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        use PhoneError as E;
        let err = |s: &str| parse_phone(s, None).unwrap_err();
        assert_eq!(err("  "), E::Empty);
        assert_eq!(err("1381234567"), E::MobileLength { digits: 10 });
        assert_eq!(
            err("12812345678"),
            E::BadMobilePrefix {
                prefix: "12".into()
            }
        );
        assert_eq!(
            err("0112-65551234"),
            E::UnknownAreaCode { area: "011".into() }
        );
        assert_eq!(
            err("0512-655512345"),
            E::LocalNumberLength {
                area: "0512".into(),
                digits: 9
            }
        );
        assert!(
            err("010-6555123").to_string().contains("expected 8"),
            "{}",
            err("010-6555123")
        );
        assert_eq!(
            err("0512-05551234"),
            E::BadLocalNumber {
                local: "05551234".into()
            }
        );
        assert_eq!(
            err("tel 13812345678"),
            E::Letters {
                found: "tel".into()
            }
        );
        assert_eq!(
            err("电话13812345678"),
            E::Letters {
                found: "电话".into()
            }
        );
        assert_eq!(
            err("+1 212 555 1234"),
            E::ForeignNumber {
                prefix: "+1".into()
            }
        );
        assert_eq!(
            err("00852 2345 6789"),
            E::ForeignNumber {
                prefix: "+852".into()
            }
        );
        assert_eq!(err("12345"), E::TooShort { digits: 5 });
        assert_eq!(err("5125551234123"), E::TooLong { digits: 13 });
        assert_eq!(
            err("400-820-8820"),
            E::ServiceNumber {
                number: "4008208820".into()
            }
        );
        assert_eq!(
            err("13812345678/13912345678"),
            E::MultipleNumbers { ch: '/' }
        );
        assert_eq!(
            err("13812345678转8"),
            E::ExtensionOnMobile { ext: "8".into() }
        );
        assert_eq!(
            err("0512-65551234转abc"),
            E::BadExtension { ext: "abc".into() }
        );
        assert_eq!(err("0512*65551234"), E::UnexpectedChar { ch: '*' });
        assert_eq!(err("138+12345678"), E::UnexpectedChar { ch: '+' });
    }

    fn fullwidth(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(u32::from(c) + 0xfee0).unwrap(),
                ' ' => '\u{3000}',
                _ => c,
            })
            .collect()
    }

    fn digits(n: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(0u8..10, n)
            .prop_map(|v| v.iter().map(|d| char::from(b'0' + d)).collect())
    }

    fn mobile_strategy() -> impl Strategy<Value = String> {
        (3u8..=9, digits(9)).prop_map(|(p, rest)| format!("1{p}{rest}"))
    }

    /// (area, local) with valid lengths.
    fn landline_strategy() -> impl Strategy<Value = (String, String)> {
        let three = (
            prop_oneof![
                Just("010".to_string()),
                (0u8..10).prop_map(|d| format!("02{d}"))
            ],
            2u8..10,
            digits(7),
        )
            .prop_map(|(a, first, rest)| (a, format!("{first}{rest}")));
        let four = (
            3u8..10,
            digits(2),
            2u8..10,
            prop_oneof![digits(6), digits(7)],
        )
            .prop_map(|(b, rest, first, local)| (format!("0{b}{rest}"), format!("{first}{local}")));
        prop_oneof![three, four]
    }

    proptest! {
        #[test]
        fn plain_mobiles_read_as_the_general_path_reads_them(
            digits in "1[0-9]{10}|[0-9]{11}|1[0-9]{9,11}",
            area in prop::option::of(prop::sample::select(vec!["0512", "512", "010"])),
        ) {
            let fast = plain_mobile(&digits);
            let general = parse_phone_general(&digits, area);
            match fast {
                Some(p) => prop_assert_eq!(Ok(p), general.clone()),
                None => prop_assert!(
                    !(digits.len() == 11 && general.as_ref().is_ok_and(|p| p.kind == PhoneKind::Mobile)),
                    "{digits}: the fast path missed a plain mobile"
                ),
            }
            prop_assert_eq!(parse_phone(&digits, area), general);
        }

        #[test]
        fn mobile_presentations_round_trip(
            m in mobile_strategy(),
            prefix in prop::sample::select(vec!["", "+86", "+86 ", "0086", "0086 ", "86", "86-", "(+86)"]),
            grouping in 0usize..3,
            wide in any::<bool>(),
            pad in prop::sample::select(vec!["", " ", "\t", "\u{3000}"]),
        ) {
            let body = match grouping {
                0 => m.clone(),
                1 => format!("{} {} {}", &m[..3], &m[3..7], &m[7..]),
                _ => format!("{}-{}-{}", &m[..3], &m[3..7], &m[7..]),
            };
            let mut s = format!("{prefix}{body}");
            if wide {
                s = fullwidth(&s);
            }
            let s = format!("{pad}{s}{pad}");
            let p = parse_phone(&s, None).unwrap();
            prop_assert_eq!(p, mobile(&m));
        }

        #[test]
        fn landline_presentations_round_trip(
            (area, local) in landline_strategy(),
            style in 0usize..7,
            ext in prop::option::of((1usize..=6).prop_flat_map(digits)),
            ext_style in prop::sample::select(vec!["-", "转", " ext. ", "x", "#", " 分机"]),
            wide in any::<bool>(),
        ) {
            let a0 = &area[1..];
            let mut s = match style {
                0 => format!("{area}-{local}"),
                1 => format!("({area}){local}"),
                2 => format!("{area} {local}"),
                3 => format!("{area} {} {}", &local[..4], &local[4..]),
                4 => format!("+86 {a0} {local}"),
                5 => format!("0086{a0}{local}"),
                _ => format!("{area}{local}"),
            };
            if let Some(e) = &ext {
                s = format!("{s}{ext_style}{e}");
            }
            if wide {
                s = fullwidth(&s);
            }
            let canonical = format!("{area}-{local}");
            let p = parse_phone(&s, None);
            prop_assert_eq!(p, Ok(landline(&canonical, ext.as_deref())), "{}", s);
            let again = parse_phone(&landline(&canonical, ext.as_deref()).to_string(), None);
            prop_assert_eq!(again, Ok(landline(&canonical, ext.as_deref())));
        }

        #[test]
        fn local_with_default_area(
            (area, local) in landline_strategy(),
            drop_zero in any::<bool>(),
        ) {
            let default = if drop_zero { &area[1..] } else { &area[..] };
            let p = parse_phone(&local, Some(default)).unwrap();
            prop_assert_eq!(p.canonical, format!("{area}-{local}"));
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>(), area in any::<Option<String>>()) {
            if let Ok(p) = parse_phone(&s, area.as_deref()) {
                prop_assert!(p.canonical.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
            }
        }

        #[test]
        fn never_panics_on_relevant_chars(
            v in prop::collection::vec(
                prop::sample::select(
                    "0123456789０１２３４５６７８９+＋-－ ()（）.转分机xX#ext号/、".chars().collect::<Vec<_>>()
                ),
                0..24,
            )
        ) {
            let s: String = v.into_iter().collect();
            match parse_phone(&s, Some("0512")) {
                Ok(p) => {
                    let reparsed = parse_phone(&p.to_string(), None);
                    prop_assert_eq!(reparsed, Ok(p));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
