//! A cleaned record's fields, read out of its JSON text only as far as resolution asks.
//!
//! Resolution reads every stored record once and looks at a dozen of its fields. Parsing each
//! record into a `serde_json::Value` tree (a hashed map of owned keys, a string allocated per
//! value) was half of the time it took to read three million records; [`Fields`] instead
//! notes where each top-level value lies in the text and reads a value when it is asked for,
//! borrowing it from the text unless it has escapes. It knows nothing of what the fields mean.
//!
//! Finding where the values lie is a scan of our own rather than serde_json's: the records are
//! JSON the cleaner wrote, and all a scan has to do is step over strings and nested brackets,
//! which it does at a few instructions a byte where serde_json, checking every value fully, took
//! three times as many (callgrind, 66 k records). It is lenient: text that is not JSON reads as
//! something, never as a panic, and a property test holds it to serde_json on every JSON object.

use std::borrow::Cow;
use std::cell::OnceCell;

/// The top-level fields of one JSON object, each kept as its raw text.
#[derive(Debug, Clone, Default)]
pub struct Fields<'a> {
    // A record has a few dozen fields at most, so a list searched in order is quicker than
    // hashing every key of every record.
    entries: Vec<(&'a str, &'a str)>,
    /// The fields of each entry that is an object, read the first time they are asked for:
    /// an address is read by person, place and entity mentions alike.
    objects: Vec<OnceCell<Option<Fields<'a>>>>,
}

impl<'a> Fields<'a> {
    /// The fields of the JSON object `json`. Anything that is not an object (or an object with
    /// a key written with escapes, which the cleaner never writes) has no fields.
    pub fn parse(json: &'a str) -> Fields<'a> {
        let entries = scan_object(json).unwrap_or_default();
        let objects = entries.iter().map(|_| OnceCell::new()).collect();
        Fields { entries, objects }
    }

    /// Where the field's entry is; of a key written twice, the last, as serde_json reads it.
    fn at(&self, field: &str) -> Option<usize> {
        self.entries.iter().rposition(|(k, _)| *k == field)
    }

    fn raw(&self, field: &str) -> Option<&'a str> {
        self.at(field).map(|i| self.entries[i].1)
    }

    /// Whether the record has the field, whatever its value.
    pub fn contains(&self, field: &str) -> bool {
        self.raw(field).is_some()
    }

    /// Whether the record has the field `{prefix}.{field}`, without spelling the name out.
    pub fn contains_prefixed(&self, prefix: &str, field: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| is_prefixed(k, prefix, field))
    }

    /// The field's text; "" when it is missing or not a string.
    pub fn text(&self, field: &str) -> Cow<'a, str> {
        self.raw(field).map_or(Cow::Borrowed(""), string_of)
    }

    /// The field's value as fields of their own, when it is an object.
    pub fn object(&self, field: &str) -> Option<&Fields<'a>> {
        let i = self.at(field)?;
        self.objects[i]
            .get_or_init(|| {
                let raw = self.entries[i].1;
                raw.starts_with('{').then(|| Fields::parse(raw))
            })
            .as_ref()
    }
}

/// Whether `key` is `{prefix}.{field}`.
pub fn is_prefixed(key: &str, prefix: &str, field: &str) -> bool {
    key.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) == Some(field)
}

/// The string a raw JSON value holds: borrowed when written without escapes (a JSON string has
/// no raw quote, backslash or control character inside, so then the text between the quotes is
/// the value), decoded otherwise; "" for any other kind of value.
fn string_of(text: &str) -> Cow<'_, str> {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        Some(_) => serde_json::from_str::<String>(text)
            .map(Cow::Owned)
            .unwrap_or(Cow::Borrowed("")),
        None => Cow::Borrowed(""),
    }
}

/// The entries of the JSON object `json`, each key with the text of its value, in order; `None`
/// when `json` is not an object, or has a key written with escapes (never decoded here). Every
/// position it stops at is an ASCII byte or the end, so every slice falls on a character
/// boundary.
fn scan_object(json: &str) -> Option<Vec<(&str, &str)>> {
    let b = json.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut entries = Vec::with_capacity(24);
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_space(b, i + 1) == b.len()).then_some(entries);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = json.get(i + 1..key_end - 1)?;
        if key.contains('\\') {
            return None;
        }
        i = skip_space(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(b, i + 1);
        let value_end = value_end(b, i)?;
        entries.push((key, json.get(i..value_end)?));
        i = skip_space(b, value_end);
        match b.get(i) {
            Some(b',') => i = skip_space(b, i + 1),
            Some(b'}') => return (skip_space(b, i + 1) == b.len()).then_some(entries),
            _ => return None,
        }
    }
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// Just past the string that opens at `b[start]` (a quote): past its closing quote, stepping
/// over escaped characters.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i += b.get(i..)?.iter().position(|&c| c == b'"' || c == b'\\')?;
        if b[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// Just past the value that starts at `b[start]`: a string, an object or array, or a number or
/// literal (up to the next delimiter). An object's end is found by counting its own kind of
/// bracket outside strings, which in JSON suffices (brackets of the other kind nest inside
/// whole), so only three bytes are of interest.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        &open @ (b'{' | b'[') => {
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut i = start;
            loop {
                i += b
                    .get(i..)?
                    .iter()
                    .position(|&c| c == b'"' || c == open || c == close)?;
                match b[i] {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    c if c == open => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                }
                i += 1;
            }
        }
        b',' | b'}' | b']' | b':' => None,
        _ => {
            let len = b[start..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - start);
            Some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn fields_read_as_the_value_tree_reads_them() {
        let record = json!({
            "name": "王小明", "quoted": "a \"b\" \\ c", "number": 12, "none": null,
            "address": {"room_key": "320576|青剑湖花园|12|3|1001", "county": {"code": "320576"}},
        });
        let text = record.to_string();
        let f = Fields::parse(&text);
        assert_eq!(f.text("name"), "王小明");
        assert!(matches!(f.text("name"), Cow::Borrowed(_)));
        assert_eq!(f.text("quoted"), "a \"b\" \\ c");
        assert_eq!(f.text("number"), "");
        assert_eq!(f.text("missing"), "");
        assert!(f.contains("none") && !f.contains("missing"));
        let roles = Fields::parse(r#"{"mother.name": "李娜", "mothername": "x"}"#);
        assert!(roles.contains_prefixed("mother", "name"));
        assert!(
            !roles.contains_prefixed("mother", "sex") && !roles.contains_prefixed("mothe", "name")
        );
        let address = f.object("address").unwrap();
        assert_eq!(address.text("room_key"), "320576|青剑湖花园|12|3|1001");
        assert_eq!(address.object("county").unwrap().text("code"), "320576");
        assert!(f.object("name").is_none());
        assert_eq!(Fields::parse(r#"{"a": "x", "a": "y"}"#).text("a"), "y");
        for bad in ["", "[1]", "\"x\"", "{", "{\"a\":}", "null"] {
            assert!(!Fields::parse(bad).contains("a"), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, parsing never panics, and a string field reads back exactly as
        /// serde_json reads it.
        #[test]
        fn any_text_parses_and_strings_read_back(key in "[a-z_.]{1,12}", value in any_string(), junk in ".{0,40}") {
            let _ = Fields::parse(&junk);
            let text = json!({ key.clone(): value.clone(), "other": [1, {"x": "y"}] }).to_string();
            let f = Fields::parse(&text);
            let expected: Value = serde_json::from_str(&text).unwrap();
            let read = f.text(&key);
            proptest::prop_assert_eq!(read.as_ref(), expected[&key].as_str().unwrap());
        }
    }

    /// Any JSON value, nested a few levels, with keys and strings that need escapes.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-z_.]{1,8}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Every field of `object` reads through `fields` as serde_json reads it: strings as the
    /// same text, objects recursively, and every key there (and no other).
    fn same(fields: &Fields, object: &serde_json::Map<String, Value>) -> bool {
        fields.entries.len() == object.len()
            && object.iter().all(|(k, v)| {
                fields.contains(k)
                    && fields.text(k) == v.as_str().unwrap_or("")
                    && match v {
                        Value::Object(inner) => fields.object(k).is_some_and(|f| same(f, inner)),
                        _ => fields.object(k).is_none(),
                    }
            })
    }

    proptest::proptest! {
        /// The scan finds exactly what serde_json finds in any JSON object, written compactly
        /// or pretty-printed.
        #[test]
        fn the_scan_reads_any_object_as_serde_json_does(
            fields in proptest::collection::vec(("[a-z_.]{1,8}", any_json()), 0..8)
        ) {
            let object: serde_json::Map<String, Value> = fields.into_iter().collect();
            let compact = Value::Object(object.clone()).to_string();
            let pretty = serde_json::to_string_pretty(&Value::Object(object.clone())).unwrap();
            for text in [compact, pretty] {
                proptest::prop_assert!(same(&Fields::parse(&text), &object), "{}", text);
            }
        }

        /// Cut anywhere, or with any byte changed, an object's text still parses without panic.
        #[test]
        fn damaged_objects_never_panic(value in any_json(), cut in 0usize..400, byte in 0u8..128) {
            let text = json!({ "a": value, "b": "x" }).to_string();
            let cut = text.char_indices().map(|(i, _)| i).rfind(|&i| i <= cut).unwrap_or(0);
            let damaged = format!("{}{}{}", &text[..cut], byte as char, &text[cut..]);
            for t in [&text[..cut], damaged.as_str()] {
                let f = Fields::parse(t);
                for key in ["a", "b"] {
                    let _ = f.text(key);
                    let _ = f.object(key).map(|o| o.text("x"));
                }
            }
        }
    }

    fn any_string() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("(.|\n|\t|\"|\\\\|\u{1}){0,20}").unwrap()
    }
}
