//! The errors departments make when they write the truth down.
//!
//! Each function takes a clean value and a random stream and returns the value as a careless or
//! differently-trained clerk would have typed it: a homophone in a name, one digit of an id
//! mistyped or two swapped, a phone number with +86 and spaces, an address in shorthand with
//! Chinese numerals and a note in brackets. The rates live in `config::Noise`; the exports decide
//! where to apply which function.
//!
//! Nothing here checks that the noisy value is *detectably* wrong: a mistyped id usually fails its
//! check character, but a swap of two equal digits does not change it, so exports only call
//! `mistype_id` when they mean to and record what they did in the truth.

use crate::places::{RoomRef, Street};
use crate::rng::Rng;
use tongban_standards::names;

/// The name with one character replaced by a homophone (张→章, 伟→玮), or unchanged if none of
/// its characters has a known homophone.
pub fn homophone_typo(name: &str, r: &mut Rng) -> String {
    let chars: Vec<char> = name.chars().collect();
    let candidates: Vec<usize> = (0..chars.len())
        .filter(|&i| !names::homophone_variants(chars[i]).is_empty())
        .collect();
    let Some(&i) = r.pick(&candidates) else {
        return name.to_string();
    };
    let variants = names::homophone_variants(chars[i]);
    let mut out = chars.clone();
    if let Some(v) = r.pick(variants) {
        out[i] = *v;
    }
    out.into_iter().collect()
}

/// The id with one digit replaced (two times in three) or two adjacent different digits swapped.
/// Always returns a different string.
pub fn mistype_id(id: &str, r: &mut Rng) -> String {
    let mut b: Vec<u8> = id.bytes().collect();
    if b.len() < 2 {
        return id.to_string();
    }
    if r.chance(0.33) {
        let swappable: Vec<usize> = (0..b.len() - 1)
            .filter(|&i| b[i] != b[i + 1] && b[i + 1] != b'X')
            .collect();
        if let Some(&i) = r.pick(&swappable) {
            b.swap(i, i + 1);
            return String::from_utf8(b).unwrap_or_else(|_| id.to_string());
        }
    }
    let i = r.below(b.len() as u64 - 1) as usize;
    let old = b[i];
    let mut new = b'0' + r.below(10) as u8;
    if new == old {
        new = b'0' + (old - b'0' + 1) % 10;
    }
    b[i] = new;
    String::from_utf8(b).unwrap_or_else(|_| id.to_string())
}

/// A canonical 11-digit mobile number in one of the forms people write.
pub fn phone_form(phone: &str, r: &mut Rng) -> String {
    if phone.len() != 11 || !phone.is_ascii() {
        return phone.to_string();
    }
    let (a, b, c) = (&phone[..3], &phone[3..7], &phone[7..]);
    match r.below(7) {
        0 => format!("+86 {a} {b} {c}"),
        1 => format!("{a}-{b}-{c}"),
        2 => format!("0086{phone}"),
        3 => format!("86-{phone}"),
        4 => format!("{a} {b} {c}"),
        5 => phone.chars().map(fullwidth).collect(),
        _ => format!("+86{phone}"),
    }
}

fn fullwidth(c: char) -> char {
    if c.is_ascii_graphic() {
        char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
    } else {
        c
    }
}

/// Writes a number in Chinese digits, either positionally (1201 → 一二〇一, as room numbers are
/// read) or as a counted quantity (12 → 十二, as buildings and units are).
pub fn chinese_number(n: u32, positional: bool) -> String {
    const D: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    if positional || n >= 100 {
        return n
            .to_string()
            .bytes()
            .map(|b| D[(b - b'0') as usize])
            .collect();
    }
    match n {
        0..=9 => D[n as usize].to_string(),
        10 => "十".to_string(),
        11..=19 => format!("十{}", D[(n % 10) as usize]),
        _ if n.is_multiple_of(10) => format!("{}十", D[(n / 10) as usize]),
        _ => format!("{}十{}", D[(n / 10) as usize], D[(n % 10) as usize]),
    }
}

/// A room's address as people write it when nobody checks: levels left out, the old 唯亭镇, the
/// 12-3-1201 shorthand, Chinese numerals, spaces and notes.
pub fn messy_address(street: &Street, room: &RoomRef, r: &mut Rng) -> String {
    let compound = &street.compound(room).name;
    let (province, city) = (street.province.short.as_str(), street.city.short.as_str());
    let (county, alias, town) = (
        street.county.name.as_str(),
        street.county_alias(),
        street.short(),
    );
    let prefix = match r.below(6) {
        0 => String::new(),
        1 => format!("{alias}{town}"),
        2 => format!("{county}{}", street.name),
        // Streets that were towns are still written with 镇 by people who remember them.
        3 => format!("{province}{city}{alias}{town}镇"),
        4 => format!("{}{}", street.city.name, street.name),
        _ => format!("{}市{alias}{}", city, street.name),
    };
    let body = match r.below(5) {
        0 => format!("{compound}{}-{}-{}", room.building, room.unit, room.number),
        1 => format!(
            "{compound}{}幢{}单元{}",
            chinese_number(room.building, false),
            chinese_number(room.unit, false),
            chinese_number(room.number, true)
        ),
        2 => format!(
            "{compound} {}栋 {}单元 {}室",
            room.building, room.unit, room.number
        ),
        3 => format!(
            "{compound}{}号楼{}单元{}",
            room.building, room.unit, room.number
        ),
        _ => format!("{compound}{}座{}-{}", room.building, room.unit, room.number),
    };
    let note = match r.below(6) {
        0 => "（出租）",
        1 => "(近地铁站)",
        2 => " ",
        _ => "",
    };
    format!("{prefix}{body}{note}")
}

/// A room's address written so that its room cannot be told for certain: the unit left out
/// (青剑湖花园12幢1001) or the compound's suffix dropped (青剑湖12-3-1001).
pub fn hard_address(street: &Street, room: &RoomRef, r: &mut Rng) -> String {
    let compound = &street.compound(room).name;
    let town = street.short();
    if r.chance(0.5) {
        format!("{town}{compound}{}幢{}", room.building, room.number)
    } else {
        let stem = [
            "花园", "新村", "家园", "雅苑", "名邸", "小区", "人家", "佳园", "公寓", "苑",
        ]
        .iter()
        .find_map(|s| compound.strip_suffix(s))
        .unwrap_or(compound);
        format!(
            "{town}{stem}{}-{}-{}",
            room.building, room.unit, room.number
        )
    }
}

/// The name in traditional characters, as older civil affairs systems and Hong Kong or Taiwan
/// documents write it.
pub fn traditional(name: &str) -> String {
    zhconv::zhconv(name, zhconv::Variant::ZhHant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn mistyped_ids_always_differ_and_keep_length() {
        let mut r = Rng::for_item(1, Stream::Noise, 0);
        for _ in 0..2_000 {
            let m = mistype_id("11010519491231002X", &mut r);
            assert_ne!(m, "11010519491231002X");
            assert_eq!(m.len(), 18);
        }
    }

    #[test]
    fn chinese_numbers_read_as_people_write_them() {
        assert_eq!(chinese_number(12, false), "十二");
        assert_eq!(chinese_number(3, false), "三");
        assert_eq!(chinese_number(20, false), "二十");
        assert_eq!(chinese_number(1201, true), "一二〇一");
    }

    #[test]
    fn phone_forms_keep_the_digits() {
        let mut r = Rng::for_item(1, Stream::Noise, 1);
        for _ in 0..100 {
            let f = phone_form("13812345678", &mut r);
            let digits: String = f
                .chars()
                .filter_map(|c| {
                    c.to_digit(10).or_else(|| {
                        let u = c as u32;
                        (0xFF10..=0xFF19).contains(&u).then(|| u - 0xFF10)
                    })
                })
                .map(|d| char::from(b'0' + d as u8))
                .collect();
            assert!(digits.ends_with("13812345678"), "{f}");
        }
    }

    #[test]
    fn traditional_names_differ_for_simplified_characters() {
        assert_eq!(traditional("陈伟"), "陳偉");
        assert_eq!(traditional("王芳"), "王芳");
    }
}
