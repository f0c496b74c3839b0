//! JSON string literals written by hand where millions are written: on the ingest path, and in
//! the golden records a resolution run writes.
//!
//! Every record's raw form and cleaned fields become JSON text, some twenty strings a record, so
//! the writer copies each run of ordinary bytes at once instead of pushing characters one by one
//! or building a `serde_json::Value` first. Two spellings exist and must stay as they are:
//! the raw record's, whose bytes are hashed to detect changed deliveries (a different escape
//! would make every stored record look changed on the next delivery), and serde_json's, which
//! the cleaned fields and golden records were always written in.
//!
//! This module only escapes; it decides nothing about which fields a record has.

/// How control characters other than tab, newline and carriage return are spelled.
#[derive(Clone, Copy)]
enum Style {
    /// The raw record's spelling: `\uXXXX` for every other control character.
    Raw,
    /// serde_json's spelling: `\b` and `\f` too, `\u00XX` for the rest.
    Serde,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The bytes a JSON string cannot hold as they are: control characters, `"` and `\`. All are
/// ASCII, so a run of other bytes can be copied without looking at its characters.
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes in `w` needs escaping, tested on all eight at once (the
/// classic "has a zero byte" and "has a byte less than n" word tricks, exact for n ≤ 128).
/// Most text has nothing to escape, so eight bytes are skipped for about one comparison.
fn word_needs_escape(w: u64) -> bool {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0;
    below_space || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\')))
}

fn push_string(out: &mut String, s: &str, style: Style) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes[i..].first_chunk::<8>()
            && !word_needs_escape(u64::from_le_bytes(*word))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        i += 1;
        if !needs_escape(b) {
            continue;
        }
        // Every byte that needs escaping is ASCII, so `i - 1` and `i` are character boundaries.
        out.push_str(&s[start..i - 1]);
        start = i;
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 if matches!(style, Style::Serde) => out.push_str("\\b"),
            0x0C if matches!(style, Style::Serde) => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes `s` as a JSON string literal in the raw record's spelling.
pub fn push_raw_string(out: &mut String, s: &str) {
    push_string(out, s, Style::Raw);
}

/// Writes `s` as a JSON string literal exactly as serde_json would.
pub fn push_serde_string(out: &mut String, s: &str) {
    push_string(out, s, Style::Serde);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The raw spelling as it was first written, one character at a time; stored hashes depend
    /// on it.
    fn raw_reference(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn control_characters_are_spelled_as_before() {
        let s = "a\u{8}b\u{c}c\u{1}\"\\\n\r\t é 张";
        let mut raw = String::new();
        push_raw_string(&mut raw, s);
        assert_eq!(raw, raw_reference(s));
        assert_eq!(raw, "\"a\\u0008b\\u000cc\\u0001\\\"\\\\\\n\\r\\t é 张\"");
        let mut serde = String::new();
        push_serde_string(&mut serde, s);
        assert_eq!(serde, serde_json::to_string(s).unwrap());
    }

    proptest! {
        #[test]
        fn both_spellings_match_their_references(s in "\\PC*|[\\x00-\\x20\"\\\\a-z张]{0,40}") {
            let mut raw = String::new();
            push_raw_string(&mut raw, &s);
            prop_assert_eq!(&raw, &raw_reference(&s));
            let mut serde = String::new();
            push_serde_string(&mut serde, &s);
            prop_assert_eq!(&serde, &serde_json::to_string(&s).unwrap());
            let back: String = serde_json::from_str(&raw).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
