//! Unified social credit codes (统一社会信用代码) under GB 32100-2015, with the GB 11714
//! organisation code inside them.
//!
//! This module reads an 18-character credit code as departments write it, checks its structure
//! (registration authority, entity type, division, organisation code) and both of its check
//! characters, and builds valid codes for the synthetic generator. It deliberately does not check
//! the 6-digit division against the current division table: like a citizen id, a credit code keeps
//! the code of the registering authority's division for life. It does not read the older
//! 15-digit business registration numbers (注册号) or bare 9-character organisation codes, and it
//! carries no list of real codes that were issued with wrong check characters: the data bureau
//! keeps that list in configuration and passes it to [`parse_with_exceptions`].
//!
//! Layout (positions 1-based):
//!
//! | positions | meaning                                                           |
//! |-----------|-------------------------------------------------------------------|
//! | 1         | registration authority (登记管理部门)                              |
//! | 2         | entity type (机构类别), defined per authority                      |
//! | 3-8       | division code of the registering authority (GB/T 2260)            |
//! | 9-17      | organisation code (GB 11714): 8 body characters + check character |
//! | 18        | check character over positions 1-17                               |
//!
//! All 18 characters come from a 31-character set: the digits and the capital letters except
//! I, O, S, V and Z, which are left out because they are easily mistaken for 1, 0, 5, U and 2.
//!
//! The two check characters use *different* letter values. The final check uses each character's
//! index in the 31-character set (A = 10, …, H = 17, J = 18, …). The organisation-code check is
//! GB 11714's, which values letters by their place in the full alphabet (A = 10, …, Z = 35). This
//! was verified on the published code 91440101MA5CJQ4N59: its organisation code MA5CJQ4N5
//! satisfies the GB 11714 check with alphabet values (check 5) but not with 31-set values (which
//! would give 9), so newly assigned `MA…` organisation codes follow GB 11714 like the old ones and
//! a mismatch is an error, not a note.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::text::{self, FormFold};

/// The 31 characters a credit code may contain, in value order.
pub const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1-17 in the final check (3^i mod 31).
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Weights of the 8 body characters in the GB 11714 organisation-code check.
pub const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Value of a character in the 31-character set.
fn char_value(b: u8) -> Option<u32> {
    CHARSET.iter().position(|&c| c == b).map(|p| p as u32)
}

/// Value of a character under GB 11714: digits 0-9, letters A = 10 … Z = 35.
fn org_char_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

/// Computes the final (18th) check character over the first 17 characters.
///
/// Returns a byte of [`CHARSET`], or `None` if any byte is not in it.
pub fn check_char(body: &[u8; 17]) -> Option<u8> {
    let mut sum = 0u32;
    for (&b, &w) in body.iter().zip(WEIGHTS.iter()) {
        sum += char_value(b)? * w;
    }
    CHARSET.get(((31 - sum % 31) % 31) as usize).copied()
}

/// Computes the GB 11714 organisation-code check character over the 8 body characters.
///
/// Accepts digits and capital letters A-Z (a stand-alone GB 11714 code may use any letter; inside
/// a credit code the charset check rejects I, O, S, V and Z first). Returns `b'0'..=b'9'` or
/// `b'X'`, or `None` if any byte is not a digit or capital letter.
pub fn org_code_check_char(body: &[u8; 8]) -> Option<u8> {
    let mut sum = 0u32;
    for (&b, &w) in body.iter().zip(ORG_WEIGHTS.iter()) {
        sum += org_char_value(b)? * w;
    }
    match 11 - sum % 11 {
        10 => Some(b'X'),
        11 => Some(b'0'),
        n => Some(b'0' + n as u8),
    }
}

/// Registration authority (登记管理部门), the first character.
///
/// Codes follow the table of registration authority and entity type codes published with
/// GB 32100-2015 and extended since (A for the Central Military Commission's reform and
/// establishment office, N for agricultural departments registering rural collective economic
/// organisations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Authority {
    /// 1 机构编制: establishment offices (government bodies, public institutions).
    Establishment,
    /// 2 外交: foreign affairs.
    ForeignAffairs,
    /// 3 司法行政: judicial administration.
    Justice,
    /// 4 文化: culture.
    Culture,
    /// 5 民政: civil affairs (social organisations).
    CivilAffairs,
    /// 6 旅游: tourism.
    Tourism,
    /// 7 宗教: religious affairs.
    Religion,
    /// 8 工会: trade unions.
    TradeUnion,
    /// 9 工商: industry and commerce, now market regulation (市场监管).
    MarketRegulation,
    /// A 中央军委改革和编制办公室: the Central Military Commission's reform and establishment office.
    Military,
    /// N 农业: agriculture and rural affairs.
    Agriculture,
    /// Y 其他: other authorities.
    Other,
}

const ALL_AUTHORITIES: [Authority; 12] = [
    Authority::Establishment,
    Authority::ForeignAffairs,
    Authority::Justice,
    Authority::Culture,
    Authority::CivilAffairs,
    Authority::Tourism,
    Authority::Religion,
    Authority::TradeUnion,
    Authority::MarketRegulation,
    Authority::Military,
    Authority::Agriculture,
    Authority::Other,
];

impl Authority {
    /// All authorities, in code order.
    pub fn all() -> &'static [Authority] {
        &ALL_AUTHORITIES
    }

    /// The authority with this code character, if any.
    pub fn from_code(c: char) -> Option<Authority> {
        ALL_AUTHORITIES.iter().copied().find(|a| a.code() == c)
    }

    /// The code character.
    pub fn code(self) -> char {
        match self {
            Authority::Establishment => '1',
            Authority::ForeignAffairs => '2',
            Authority::Justice => '3',
            Authority::Culture => '4',
            Authority::CivilAffairs => '5',
            Authority::Tourism => '6',
            Authority::Religion => '7',
            Authority::TradeUnion => '8',
            Authority::MarketRegulation => '9',
            Authority::Military => 'A',
            Authority::Agriculture => 'N',
            Authority::Other => 'Y',
        }
    }

    /// The Chinese name used in the code table.
    pub fn zh(self) -> &'static str {
        match self {
            Authority::Establishment => "机构编制",
            Authority::ForeignAffairs => "外交",
            Authority::Justice => "司法行政",
            Authority::Culture => "文化",
            Authority::CivilAffairs => "民政",
            Authority::Tourism => "旅游",
            Authority::Religion => "宗教",
            Authority::TradeUnion => "工会",
            Authority::MarketRegulation => "工商",
            Authority::Military => "中央军委改革和编制办公室",
            Authority::Agriculture => "农业",
            Authority::Other => "其他",
        }
    }

    /// The entity types this authority registers: (code, Chinese name).
    pub fn entity_types(self) -> &'static [(char, &'static str)] {
        match self {
            Authority::Establishment => &[
                ('1', "机关"),
                ('2', "事业单位"),
                ('3', "中央编办直接管理机构编制的群众团体"),
                ('9', "其他"),
            ],
            Authority::ForeignAffairs => &[('1', "外国常驻新闻机构"), ('9', "其他")],
            Authority::Justice => &[
                ('1', "律师执业机构"),
                ('2', "公证处"),
                ('3', "基层法律服务所"),
                ('4', "司法鉴定机构"),
                ('5', "仲裁委员会"),
                ('9', "其他"),
            ],
            Authority::Culture => &[('1', "外国在华文化中心"), ('9', "其他")],
            Authority::CivilAffairs => &[
                ('1', "社会团体"),
                ('2', "民办非企业单位"),
                ('3', "基金会"),
                ('9', "其他"),
            ],
            Authority::Tourism => &[
                ('1', "外国旅游部门常驻代表机构"),
                ('2', "港澳台地区旅游部门常驻内地（大陆）代表机构"),
                ('9', "其他"),
            ],
            Authority::Religion => &[('1', "宗教活动场所"), ('2', "宗教院校"), ('9', "其他")],
            Authority::TradeUnion => &[('1', "基层工会"), ('9', "其他")],
            Authority::MarketRegulation => {
                &[('1', "企业"), ('2', "个体工商户"), ('3', "农民专业合作社")]
            }
            Authority::Military => &[('1', "军队事业单位"), ('9', "其他")],
            Authority::Agriculture => &[
                ('1', "组级集体经济组织"),
                ('2', "村级集体经济组织"),
                ('3', "乡镇级集体经济组织"),
                ('9', "其他"),
            ],
            Authority::Other => &[('1', "其他")],
        }
    }

    /// The entity type with this code under this authority, if defined.
    pub fn entity_type(self, code: char) -> Option<EntityType> {
        self.entity_types()
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, zh)| EntityType {
                authority: self,
                code,
                zh,
            })
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.zh())
    }
}

/// Entity type (机构类别), the second character, whose meaning depends on the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct EntityType {
    /// The authority under which the code is defined.
    pub authority: Authority,
    /// The code character.
    pub code: char,
    /// The Chinese name, e.g. "企业".
    pub zh: &'static str,
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.zh)
    }
}

/// Why a value is not a valid credit code. Positions are 1-based character positions in the
/// trimmed, normalised input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CreditCodeError {
    /// Nothing but whitespace.
    #[error("credit code is empty")]
    Empty,
    /// Not 18 characters after trimming and normalisation.
    #[error("credit code has {len} characters but must have 18")]
    WrongLength {
        /// Number of characters found.
        len: usize,
    },
    /// A character outside the 31-character set.
    #[error("position {pos} holds {ch:?}, {}", describe_invalid(.ch))]
    InvalidChar {
        /// 1-based position.
        pos: usize,
        /// The character as written.
        ch: char,
    },
    /// The first character is not a registration authority code.
    #[error(
        "registration authority {ch} (position 1) is not defined; known authorities are {}",
        authority_list()
    )]
    UnknownAuthority {
        /// The character found.
        ch: char,
    },
    /// The second character is not an entity type of the authority.
    #[error(
        "entity type {ch} (position 2) is not defined for registration authority {authority}; defined types are {}",
        type_list(*.authority)
    )]
    UnknownEntityType {
        /// The authority read from position 1.
        authority: Authority,
        /// The character found.
        ch: char,
    },
    /// Positions 3-8 are not 6 digits.
    #[error("division code {division} (position 3-8) must be 6 digits")]
    BadDivision {
        /// The division part as written.
        division: String,
    },
    /// [`new_from_parts`] was given an organisation-code body that is not 8 charset characters.
    #[error(
        "organisation code body {body:?} must be 8 characters from the credit-code set (digits and capital letters except I, O, S, V, Z)"
    )]
    BadOrgBody {
        /// The body given.
        body: String,
    },
    /// Position 17 does not match the GB 11714 check over positions 9-16.
    #[error(
        "organisation code check character (position 17) is {found} but the organisation code body (position 9-16) requires {expected}"
    )]
    BadOrgCheck {
        /// What positions 9-16 require.
        expected: char,
        /// What the value has.
        found: char,
    },
    /// Position 18 does not match the check over positions 1-17.
    #[error("check character is {found} but characters 1-17 require {expected}")]
    BadCheckChar {
        /// What positions 1-17 require.
        expected: char,
        /// What the value has.
        found: char,
    },
}

fn describe_invalid(ch: &char) -> String {
    let likely = match ch {
        'I' => Some("the digit 1"),
        'O' => Some("the digit 0"),
        'S' => Some("the digit 5"),
        'V' => Some("the letter U"),
        'Z' => Some("the digit 2"),
        _ => None,
    };
    match likely {
        Some(l) => format!(
            "a letter credit codes never use (I, O, S, V and Z are excluded as easily misread); it is probably {l}"
        ),
        None => "which is not a digit or one of the capital letters credit codes use".to_string(),
    }
}

fn authority_list() -> String {
    ALL_AUTHORITIES
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn type_list(authority: Authority) -> String {
    authority
        .entity_types()
        .iter()
        .map(|(c, zh)| format!("{c} ({zh})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A presentation issue or waiver that [`parse_detailed`] accepted and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodeNote {
    /// Leading or trailing whitespace (including the full-width space) was removed.
    SurroundingWhitespace,
    /// Full-width digits or letters were converted to ASCII.
    FullWidthChars,
    /// Lowercase letters were converted to uppercase.
    Lowercase,
    /// A check character is wrong, but the code is on the caller's list of codes known to have
    /// been issued that way.
    KnownException,
}

impl fmt::Display for CodeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeNote::SurroundingWhitespace => "surrounding whitespace was removed",
            CodeNote::FullWidthChars => "full-width characters were converted to ASCII",
            CodeNote::Lowercase => "lowercase letters were converted to uppercase",
            CodeNote::KnownException => {
                "a check character is wrong, but the code is a known exception issued that way"
            }
        })
    }
}

/// A valid credit code in canonical form: 18 ASCII characters from [`CHARSET`].
///
/// Serialises as the canonical string; deserialising runs [`CreditCode::parse`] (with no
/// exception list).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode {
    value: String,
}

/// The result of [`parse_detailed`]: the code and what was normalised or waived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The valid code.
    pub code: CreditCode,
    /// Notes in the order first met; empty for a canonical, fully valid input.
    pub notes: Vec<CodeNote>,
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl FromStr for CreditCode {
    type Err = CreditCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreditCode::parse(s)
    }
}

impl TryFrom<String> for CreditCode {
    type Error = CreditCodeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CreditCode::parse(&s)
    }
}

impl From<CreditCode> for String {
    fn from(c: CreditCode) -> String {
        c.value
    }
}

impl CreditCode {
    /// Parses a credit code with no exception list; see [`parse_with_exceptions`].
    pub fn parse(s: &str) -> Result<CreditCode, CreditCodeError> {
        parse_detailed(s).map(|p| p.code)
    }

    /// The canonical 18-character form.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    fn byte(&self, i: usize) -> char {
        char::from(self.value.as_bytes().get(i).copied().unwrap_or(b'?'))
    }

    /// The registration authority (position 1).
    pub fn authority(&self) -> Authority {
        // Parsing guarantees the code is known; Other is an unreachable fallback that keeps this
        // accessor total without a panic path.
        Authority::from_code(self.byte(0)).unwrap_or(Authority::Other)
    }

    /// The entity type (position 2), interpreted under the authority.
    pub fn entity_type(&self) -> EntityType {
        let authority = self.authority();
        let code = self.byte(1);
        authority.entity_type(code).unwrap_or(EntityType {
            authority,
            code,
            zh: "",
        })
    }

    /// The 6-digit division code of the registering authority (positions 3-8).
    pub fn division_code(&self) -> &str {
        self.value.get(2..8).unwrap_or("")
    }

    /// The 9-character GB 11714 organisation code (positions 9-17), check character included.
    pub fn org_code(&self) -> &str {
        self.value.get(8..17).unwrap_or("")
    }
}

/// Builds a valid code from its parts, computing both check characters.
///
/// `org_body8` is the 8-character organisation-code body, from [`CHARSET`].
pub fn new_from_parts(
    authority: char,
    entity_type: char,
    division: &str,
    org_body8: &str,
) -> Result<CreditCode, CreditCodeError> {
    let auth = Authority::from_code(authority)
        .ok_or(CreditCodeError::UnknownAuthority { ch: authority })?;
    if auth.entity_type(entity_type).is_none() {
        return Err(CreditCodeError::UnknownEntityType {
            authority: auth,
            ch: entity_type,
        });
    }
    if division.len() != 6 || !division.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CreditCodeError::BadDivision {
            division: division.to_string(),
        });
    }
    let bad_body = || CreditCodeError::BadOrgBody {
        body: org_body8.to_string(),
    };
    let org: [u8; 8] = org_body8.as_bytes().try_into().map_err(|_| bad_body())?;
    if !org.iter().all(|&b| char_value(b).is_some()) {
        return Err(bad_body());
    }
    let org_check = org_code_check_char(&org).ok_or_else(bad_body)?;
    let mut value = format!("{authority}{entity_type}{division}{org_body8}");
    value.push(char::from(org_check));
    let body: [u8; 17] = value.as_bytes().try_into().map_err(|_| bad_body())?;
    let check = check_char(&body).ok_or_else(bad_body)?;
    value.push(char::from(check));
    Ok(CreditCode { value })
}

/// Parses a credit code with no exception list, reporting what was normalised.
pub fn parse_detailed(s: &str) -> Result<Parsed, CreditCodeError> {
    parse_with_exceptions(s, &HashSet::new())
}

/// Parses a credit code, accepting the codes in `exceptions` despite wrong check characters.
///
/// Lenient about form: surrounding whitespace is trimmed, full-width characters become ASCII and
/// lowercase becomes uppercase, each reported as a [`CodeNote`]. Strict about content: length,
/// charset, authority, entity type, division digits and both check characters must be right.
///
/// Some early codes were issued with a wrong check character and remain the entity's legal
/// identifier. `exceptions` holds those codes in canonical form; the data bureau maintains the
/// list in configuration because no authoritative list can be embedded here. An exception only
/// waives the two check characters (noted as [`CodeNote::KnownException`]); every structural rule
/// still applies, so accessors stay meaningful.
pub fn parse_with_exceptions(
    s: &str,
    exceptions: &HashSet<String>,
) -> Result<Parsed, CreditCodeError> {
    let trimmed = s.trim_matches(text::is_space);
    let mut notes = Vec::new();
    if trimmed.len() != s.len() {
        notes.push(CodeNote::SurroundingWhitespace);
    }
    if trimmed.is_empty() {
        return Err(CreditCodeError::Empty);
    }
    let mut chars: Vec<(char, char)> = Vec::with_capacity(18);
    for c in trimmed.chars() {
        // Folded one character at a time so that an error can name the character as written.
        // A folded dash or space is not a code character and is refused below by position.
        let mut n = c;
        if let Some((folded, kind)) = text::fold_form_char(c) {
            n = folded;
            let full_width = matches!(
                kind,
                FormFold::FullWidthDigit | FormFold::FullWidthLetter | FormFold::FullWidthSymbol
            );
            if full_width && !notes.contains(&CodeNote::FullWidthChars) {
                notes.push(CodeNote::FullWidthChars);
            }
        }
        if n.is_ascii_lowercase() {
            n = n.to_ascii_uppercase();
            if !notes.contains(&CodeNote::Lowercase) {
                notes.push(CodeNote::Lowercase);
            }
        }
        chars.push((c, n));
    }
    if chars.len() != 18 {
        return Err(CreditCodeError::WrongLength { len: chars.len() });
    }
    let mut bytes = [0u8; 18];
    for (i, (slot, &(orig, n))) in bytes.iter_mut().zip(chars.iter()).enumerate() {
        let b = u8::try_from(u32::from(n))
            .ok()
            .filter(|&b| char_value(b).is_some());
        *slot = b.ok_or(CreditCodeError::InvalidChar {
            pos: i + 1,
            ch: orig,
        })?;
    }
    let [a, t, rest @ ..] = bytes;
    let authority = Authority::from_code(char::from(a))
        .ok_or(CreditCodeError::UnknownAuthority { ch: char::from(a) })?;
    if authority.entity_type(char::from(t)).is_none() {
        return Err(CreditCodeError::UnknownEntityType {
            authority,
            ch: char::from(t),
        });
    }
    let division = rest.get(..6).unwrap_or(&[]);
    if !division.iter().all(u8::is_ascii_digit) {
        return Err(CreditCodeError::BadDivision {
            division: String::from_utf8_lossy(division).into_owned(),
        });
    }
    let value: String = bytes.iter().map(|&b| char::from(b)).collect();
    let check_result = verify_checks(&bytes);
    match check_result {
        Ok(()) => {}
        Err(_) if exceptions.contains(&value) => notes.push(CodeNote::KnownException),
        Err(e) => return Err(e),
    }
    Ok(Parsed {
        code: CreditCode { value },
        notes,
    })
}

/// Checks the final check character, then the organisation-code check character. The final check
/// comes first because it covers every position, so it is the one a typo anywhere trips.
fn verify_checks(bytes: &[u8; 18]) -> Result<(), CreditCodeError> {
    let mut body = [0u8; 17];
    body.copy_from_slice(bytes.get(..17).unwrap_or(&[0; 17]));
    let expected = check_char(&body).unwrap_or(b'?');
    let found = bytes.get(17).copied().unwrap_or(b'?');
    if expected != found {
        return Err(CreditCodeError::BadCheckChar {
            expected: char::from(expected),
            found: char::from(found),
        });
    }
    let mut org = [0u8; 8];
    org.copy_from_slice(bytes.get(8..16).unwrap_or(&[0; 8]));
    let expected = org_code_check_char(&org).unwrap_or(b'?');
    let found = bytes.get(16).copied().unwrap_or(b'?');
    if expected != found {
        return Err(CreditCodeError::BadOrgCheck {
            expected: char::from(expected),
            found: char::from(found),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, StrDeserializer};

    const XIAMEN: &str = "91350200776049653A";
    const GUANGZHOU: &str = "91440101MA5CJQ4N59";

    #[test]
    fn published_examples_pass_both_checks() {
        for s in [XIAMEN, GUANGZHOU] {
            let p = parse_detailed(s).unwrap();
            assert_eq!(p.code.as_str(), s);
            assert!(p.notes.is_empty());
        }
        assert_eq!(check_char(b"91350200776049653"), Some(b'A'));
        assert_eq!(check_char(b"91440101MA5CJQ4N5"), Some(b'9'));
        assert_eq!(org_code_check_char(b"77604965"), Some(b'3'));
        assert_eq!(org_code_check_char(b"MA5CJQ4N"), Some(b'5'));
    }

    #[test]
    fn org_check_uses_alphabet_values_not_charset_values() {
        // The finding recorded in the module docs: with 31-set values the MA… example fails.
        let sum: u32 = b"MA5CJQ4N"
            .iter()
            .zip(ORG_WEIGHTS)
            .map(|(&b, w)| char_value(b).unwrap() * w)
            .sum();
        assert_eq!(11 - sum % 11, 9);
        assert_ne!(Some(b'9'), org_code_check_char(b"MA5CJQ4N"));
    }

    #[test]
    fn org_check_special_values() {
        // Sum ≡ 1 (mod 11) gives 10 → X; sum ≡ 0 gives 11 → 0.
        assert_eq!(org_code_check_char(b"00000000"), Some(b'0'));
        assert_eq!(org_code_check_char(b"00000006"), Some(b'X')); // 6·2 = 12 ≡ 1
        assert_eq!(org_code_check_char(b"00000005"), Some(b'1')); // 5·2 = 10 → 11 − 10
        assert_eq!(org_code_check_char(b"a0000000"), None);
    }

    #[test]
    fn accessors() {
        let c = CreditCode::parse(GUANGZHOU).unwrap();
        assert_eq!(c.authority(), Authority::MarketRegulation);
        assert_eq!(c.authority().zh(), "工商");
        assert_eq!(c.entity_type().code, '1');
        assert_eq!(c.entity_type().zh, "企业");
        assert_eq!(c.division_code(), "440101");
        assert_eq!(c.org_code(), "MA5CJQ4N5");
        assert_eq!(c.to_string(), GUANGZHOU);
    }

    #[test]
    fn form_variants_are_accepted_and_reported() {
        let p = parse_detailed(" ９１４４０１０１ｍａ５ｃｊｑ４ｎ５９\u{3000}").unwrap();
        assert_eq!(p.code.as_str(), GUANGZHOU);
        assert_eq!(
            p.notes,
            vec![
                CodeNote::SurroundingWhitespace,
                CodeNote::FullWidthChars,
                CodeNote::Lowercase
            ]
        );
        let p = parse_detailed("91440101ma5cjq4n59").unwrap();
        assert_eq!(p.notes, vec![CodeNote::Lowercase]);
        // A dash look-alike is folded but is still no code character; the error names it as
        // written, at its position.
        assert_eq!(
            CreditCode::parse("914401\u{2010}01MA5CJQ4N5"),
            Err(CreditCodeError::InvalidChar {
                pos: 7,
                ch: '\u{2010}'
            })
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        use CreditCodeError as E;
        assert_eq!(CreditCode::parse(""), Err(E::Empty));
        assert_eq!(
            CreditCode::parse("91440101MA5CJQ4N5"),
            Err(E::WrongLength { len: 17 })
        );
        let e = CreditCode::parse("91440101MA5CJQ4NO9").unwrap_err();
        assert_eq!(e, E::InvalidChar { pos: 17, ch: 'O' });
        assert!(e.to_string().contains("probably the digit 0"), "{e}");
        let e = CreditCode::parse("91440101MA5CJQ4N5中").unwrap_err();
        assert_eq!(e, E::InvalidChar { pos: 18, ch: '中' });
        let e = CreditCode::parse("B1440101MA5CJQ4N59").unwrap_err();
        assert_eq!(e, E::UnknownAuthority { ch: 'B' });
        let e = CreditCode::parse("94440101MA5CJQ4N59").unwrap_err();
        assert_eq!(
            e,
            E::UnknownEntityType {
                authority: Authority::MarketRegulation,
                ch: '4'
            }
        );
        assert!(e.to_string().contains("2 (个体工商户)"), "{e}");
        let e = CreditCode::parse("9144A101MA5CJQ4N59").unwrap_err();
        assert_eq!(
            e,
            E::BadDivision {
                division: "44A101".into()
            }
        );
        let e = CreditCode::parse("91440101MA5CJQ4N58").unwrap_err();
        assert_eq!(
            e,
            E::BadCheckChar {
                expected: '9',
                found: '8'
            }
        );
        assert_eq!(
            e.to_string(),
            "check character is 8 but characters 1-17 require 9"
        );
    }

    #[test]
    fn bad_org_check_is_reported_when_final_check_passes() {
        // Keep the org code wrong (check 6 instead of 5) but give the code a correct final check.
        let body = *b"91440101MA5CJQ4N6";
        let mut s = String::from_utf8(body.to_vec()).unwrap();
        s.push(char::from(check_char(&body).unwrap()));
        assert_eq!(
            CreditCode::parse(&s),
            Err(CreditCodeError::BadOrgCheck {
                expected: '5',
                found: '6'
            })
        );
    }

    #[test]
    fn exceptions_waive_checks_only() {
        let bad = "91440101MA5CJQ4N58";
        let exceptions: HashSet<String> = [bad.to_string(), "O1".to_string()].into();
        let p = parse_with_exceptions(bad, &exceptions).unwrap();
        assert_eq!(p.code.as_str(), bad);
        assert_eq!(p.notes, vec![CodeNote::KnownException]);
        // Lowercase input is normalised before the lookup.
        let p = parse_with_exceptions("91440101ma5cjq4n58", &exceptions).unwrap();
        assert_eq!(p.notes, vec![CodeNote::Lowercase, CodeNote::KnownException]);
        // A valid code is not noted even if listed.
        let listed: HashSet<String> = [GUANGZHOU.to_string()].into();
        assert!(
            parse_with_exceptions(GUANGZHOU, &listed)
                .unwrap()
                .notes
                .is_empty()
        );
        // Structure still applies.
        let structural: HashSet<String> = ["B1440101MA5CJQ4N59".to_string()].into();
        assert!(parse_with_exceptions("B1440101MA5CJQ4N59", &structural).is_err());
        assert!(CreditCode::parse(bad).is_err());
    }

    #[test]
    fn new_from_parts_builds_the_examples() {
        assert_eq!(
            new_from_parts('9', '1', "350200", "77604965")
                .unwrap()
                .as_str(),
            XIAMEN
        );
        assert_eq!(
            new_from_parts('9', '1', "440101", "MA5CJQ4N")
                .unwrap()
                .as_str(),
            GUANGZHOU
        );
        use CreditCodeError as E;
        assert!(matches!(
            new_from_parts('B', '1', "440101", "MA5CJQ4N"),
            Err(E::UnknownAuthority { .. })
        ));
        assert!(matches!(
            new_from_parts('Y', '2', "440101", "MA5CJQ4N"),
            Err(E::UnknownEntityType { .. })
        ));
        assert!(matches!(
            new_from_parts('9', '1', "44010", "MA5CJQ4N"),
            Err(E::BadDivision { .. })
        ));
        assert!(matches!(
            new_from_parts('9', '1', "440101", "MA5CJQ4O"),
            Err(E::BadOrgBody { .. })
        ));
        assert!(matches!(
            new_from_parts('9', '1', "440101", "MA5CJQ4"),
            Err(E::BadOrgBody { .. })
        ));
    }

    #[test]
    fn authority_table_is_consistent() {
        for &a in Authority::all() {
            assert_eq!(Authority::from_code(a.code()), Some(a));
            assert!(!a.entity_types().is_empty());
            for &(c, zh) in a.entity_types() {
                assert_eq!(a.entity_type(c).map(|t| t.zh), Some(zh));
            }
        }
        assert_eq!(Authority::from_code('Z'), None);
        assert_eq!(
            Authority::CivilAffairs.entity_type('3').unwrap().zh,
            "基金会"
        );
    }

    #[test]
    fn serde_goes_through_the_string() {
        let de: StrDeserializer<'_, DeError> = "91440101ma5cjq4n59".into_deserializer();
        let c = CreditCode::deserialize(de).unwrap();
        assert_eq!(String::from(c), GUANGZHOU);
        let de: StrDeserializer<'_, DeError> = "91440101MA5CJQ4N58".into_deserializer();
        assert!(CreditCode::deserialize(de).is_err());
    }

    fn parts_strategy() -> impl Strategy<Value = (char, char, String, String)> {
        let charset: Vec<u8> = CHARSET.to_vec();
        (
            prop::sample::select(Authority::all()),
            any::<prop::sample::Index>(),
            0u32..1_000_000,
            prop::collection::vec(prop::sample::select(charset), 8),
        )
            .prop_map(|(a, idx, div, org)| {
                let (t, _) = *idx.get(a.entity_types());
                (
                    a.code(),
                    t,
                    format!("{div:06}"),
                    String::from_utf8(org).unwrap(),
                )
            })
    }

    fn code_strategy() -> impl Strategy<Value = CreditCode> {
        parts_strategy().prop_map(|(a, t, d, o)| new_from_parts(a, t, &d, &o).unwrap())
    }

    proptest! {
        #[test]
        fn generated_codes_round_trip((a, t, d, o) in parts_strategy()) {
            let code = new_from_parts(a, t, &d, &o).unwrap();
            let back = CreditCode::parse(code.as_str()).unwrap();
            prop_assert_eq!(&back, &code);
            prop_assert_eq!(back.authority().code(), a);
            prop_assert_eq!(back.entity_type().code, t);
            prop_assert_eq!(back.division_code(), d.as_str());
            prop_assert_eq!(back.org_code().get(..8), Some(o.as_str()));
            let lower = code.as_str().to_ascii_lowercase();
            prop_assert_eq!(CreditCode::parse(&lower).unwrap(), code);
        }

        #[test]
        fn single_substitution_is_detected(
            code in code_strategy(),
            pos in 0usize..18,
            replacement in prop::sample::select(CHARSET.to_vec()),
        ) {
            let mut bytes = code.as_str().as_bytes().to_vec();
            if bytes[pos] == replacement {
                // Not a typo; proptest's reject budget is too small to filter these out.
                return Ok(());
            }
            bytes[pos] = replacement;
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert!(CreditCode::parse(&typo).is_err());
        }

        #[test]
        fn adjacent_swap_is_detected(code in code_strategy(), pos in 0usize..17) {
            let mut bytes = code.as_str().as_bytes().to_vec();
            if bytes[pos] == bytes[pos + 1] {
                // Swapping equal neighbours changes nothing.
                return Ok(());
            }
            bytes.swap(pos, pos + 1);
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert!(CreditCode::parse(&typo).is_err());
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            if let Ok(c) = CreditCode::parse(&s) {
                prop_assert_eq!(c.as_str().len(), 18);
            }
        }

        #[test]
        fn never_panics_on_relevant_chars(
            v in prop::collection::vec(
                prop::sample::select(
                    "0123456789ABIOSVZXYmaｍａ９１ＭＡ０-. \u{3000}中".chars().collect::<Vec<_>>()
                ),
                0..22,
            )
        ) {
            let s: String = v.into_iter().collect();
            match parse_detailed(&s) {
                Ok(p) => {
                    prop_assert!(p.code.as_str().bytes().all(|b| CHARSET.contains(&b)));
                    let _ = (p.code.authority(), p.code.entity_type(), p.code.org_code());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
