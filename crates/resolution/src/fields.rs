//! A cleaned record's fields, read out of its JSON text only as far as resolution asks.
//!
//! Resolution reads every stored record once and looks at a dozen of its fields. Parsing each
//! record into a `serde_json::Value` tree (a hashed map of owned keys, a string allocated per
//! value) was half of the time it took to read three million records; [`Fields`] instead
//! notes where each top-level value lies in the text and reads a value when it is asked for,
//! borrowing it from the text unless it has escapes. It knows nothing of what the fields mean.

use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::OnceCell;

/// The top-level fields of one JSON object, each kept as its raw text.
#[derive(Debug, Clone, Default)]
pub struct Fields<'a> {
    // A record has a few dozen fields at most, so a list searched in order is quicker than
    // hashing every key of every record.
    entries: Vec<(&'a str, &'a RawValue)>,
    /// The fields of each entry that is an object, read the first time they are asked for:
    /// an address is read by person, place and entity mentions alike.
    objects: Vec<OnceCell<Option<Fields<'a>>>>,
}

impl<'a> Fields<'a> {
    /// The fields of the JSON object `json`. Anything that is not an object (or an object with
    /// a key written with escapes, which the cleaner never writes) has no fields.
    pub fn parse(json: &'a str) -> Fields<'a> {
        let entries = serde_json::from_str::<Entries<'a>>(json)
            .map(|e| e.0)
            .unwrap_or_default();
        let objects = entries.iter().map(|_| OnceCell::new()).collect();
        Fields { entries, objects }
    }

    fn at(&self, field: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == field)
    }

    fn raw(&self, field: &str) -> Option<&'a RawValue> {
        self.at(field).map(|i| self.entries[i].1)
    }

    /// Whether the record has the field, whatever its value.
    pub fn contains(&self, field: &str) -> bool {
        self.raw(field).is_some()
    }

    /// Whether the record has the field `{prefix}.{field}`, without spelling the name out.
    pub fn contains_prefixed(&self, prefix: &str, field: &str) -> bool {
        self.entries.iter().any(|(k, _)| {
            k.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) == Some(field)
        })
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
                let raw = self.entries[i].1.get();
                raw.starts_with('{').then(|| Fields::parse(raw))
            })
            .as_ref()
    }
}

/// The string a raw JSON value holds: borrowed when written without escapes (a JSON string has
/// no raw quote, backslash or control character inside, so then the text between the quotes is
/// the value), decoded otherwise; "" for any other kind of value.
fn string_of(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        Some(_) => serde_json::from_str::<String>(text)
            .map(Cow::Owned)
            .unwrap_or(Cow::Borrowed("")),
        None => Cow::Borrowed(""),
    }
}

/// The entries of a JSON object in order, deserialised without copying keys or values.
struct Entries<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Entries<'de>, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visit)
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
        assert!(!roles.contains_prefixed("mother", "sex") && !roles.contains_prefixed("mothe", "name"));
        let address = f.object("address").unwrap();
        assert_eq!(address.text("room_key"), "320576|青剑湖花园|12|3|1001");
        assert_eq!(address.object("county").unwrap().text("code"), "320576");
        assert!(f.object("name").is_none());
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

    fn any_string() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("(.|\n|\t|\"|\\\\|\u{1}){0,20}").unwrap()
    }
}
