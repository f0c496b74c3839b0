//! The text of a person's or legal entity's golden record: how it is stored, and how it is
//! spelled out for the people who read it.
//!
//! A golden record keeps, for each field, the surviving value and where it came from (source,
//! record, role, date). Most of a record's fields come from one or two of its records, so the
//! stored text lists each cited record once, under `cited`, and a field names its entry by
//! number: `{"key", "mentions", "sources", "cited": [{source, record_key, role, date}, …],
//! "fields": {name: {"value", "cited", "agreeing", "disagreeing"}, …}}`, where a field without
//! `cited` cites the first entry and one without `disagreeing` has no other value against it.
//! Written out in every field, the provenance was three eighths of a person's 1.6 KB, and
//! person golden records are the largest thing a resolution run writes. Searches read
//! `fields.<name>.value`, which both forms share.
//!
//! [`spelled_out`] gives readers (the governed API, `tongban show`) each field with its
//! provenance inline, byte for byte as records were stored before; records stored in that form
//! are read as they are. Rooms and buildings have records of their own shape and are not
//! touched here. Pure text in, text out; no I/O.

/// A kept value with its provenance, as a record's field holds it.
pub use tongban_resolution::golden::Kept;
use tongban_standards::json_text::push_serde_string;

/// A person's or legal entity's golden record as stored: the members `key`, `mentions`,
/// `sources`, `cited` and `fields`, in that order. Written by hand rather than through serde,
/// whose machinery per member was three fifths of building a million records; a test holds the
/// spelled-out form to what serde_json writes.
pub fn golden_text(
    key: &str,
    mentions: usize,
    sources: &[&str],
    fields: &[(&str, Kept)],
) -> String {
    use std::fmt::Write as _;
    // Each field's record, by its number in `cited`: the first field from a record lists it.
    let mut cited: Vec<(&str, &str, &str, &str)> = Vec::with_capacity(4);
    let numbers: Vec<usize> = fields
        .iter()
        .map(|(_, k)| {
            let at = (k.source, k.record_key, k.role, k.date);
            cited.iter().position(|c| *c == at).unwrap_or_else(|| {
                cited.push(at);
                cited.len() - 1
            })
        })
        .collect();
    let mut out = String::with_capacity(256 + 80 * cited.len() + 64 * fields.len());
    head(&mut out, key, mentions, sources);
    out.push_str(",\"cited\":[");
    for (i, (source, record_key, role, date)) in cited.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"source\":");
        push_serde_string(&mut out, source);
        out.push_str(",\"record_key\":");
        push_serde_string(&mut out, record_key);
        out.push_str(",\"role\":");
        push_serde_string(&mut out, role);
        if !date.is_empty() {
            out.push_str(",\"date\":");
            push_serde_string(&mut out, date);
        }
        out.push('}');
    }
    out.push_str("],\"fields\":{");
    for (i, ((name, kept), number)) in fields.iter().zip(numbers).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_serde_string(&mut out, name);
        out.push_str(":{\"value\":");
        push_serde_string(&mut out, kept.value);
        // Writing into a String cannot fail. Most fields cite the first record and have no
        // other value against them, so those two numbers are left out when they are 0.
        if number > 0 {
            let _ = write!(out, ",\"cited\":{number}");
        }
        let _ = write!(out, ",\"agreeing\":{}", kept.agreeing);
        if kept.disagreeing > 0 {
            let _ = write!(out, ",\"disagreeing\":{}", kept.disagreeing);
        }
        out.push('}');
    }
    out.push_str("}}");
    out
}

/// A stored golden record with a `cited` list that does not read as one: a member missing or
/// unknown, a field citing an entry the list lacks. Readers must not show it as it is, which
/// would lose the provenance and show the entry numbers instead.
#[derive(Debug, thiserror::Error)]
#[error("a golden record's cited form does not read: {0}")]
pub struct UnreadableGolden(String);

/// The record `text` with each field's provenance written inline, as [`Kept`] serialises:
/// `{"key", "mentions", "sources", "fields": {name: {"value", "source", "record_key", "role",
/// "date", "agreeing", "disagreeing"}, …}}`. `Ok(None)` when the text has no `cited` list (a
/// record written before it, or a room's or building's), which readers take as it is.
pub fn spelled_out(text: &str) -> Result<Option<String>, UnreadableGolden> {
    use serde::Deserialize;
    use std::borrow::Cow;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cited<'a> {
        #[serde(borrow)]
        source: Cow<'a, str>,
        #[serde(borrow)]
        record_key: Cow<'a, str>,
        #[serde(borrow)]
        role: Cow<'a, str>,
        #[serde(borrow, default)]
        date: Cow<'a, str>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Field<'a> {
        #[serde(borrow)]
        value: Cow<'a, str>,
        #[serde(default)]
        cited: usize,
        agreeing: usize,
        #[serde(default)]
        disagreeing: usize,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Stored<'a> {
        #[serde(borrow)]
        key: Cow<'a, str>,
        mentions: usize,
        #[serde(borrow)]
        sources: Vec<Cow<'a, str>>,
        #[serde(borrow)]
        cited: Vec<Cited<'a>>,
        #[serde(borrow)]
        fields: InOrder<'a, Field<'a>>,
    }
    // A key and an opening bracket in quotes can only be a member holding a list: inside a
    // JSON string a quote is escaped. Only the stored form has one named `cited`, so records
    // of every other shape are passed over without being parsed.
    if !text.contains("\"cited\":[") {
        return Ok(None);
    }
    let unreadable = |e: serde_json::Error| UnreadableGolden(e.to_string());
    let stored: Stored = serde_json::from_str(text).map_err(unreadable)?;
    let kept: Vec<(&str, Kept)> = stored
        .fields
        .0
        .iter()
        .map(|(name, f)| {
            let c = stored.cited.get(f.cited).ok_or_else(|| {
                UnreadableGolden(format!(
                    "field {} cites entry {} of {}",
                    name.0,
                    f.cited,
                    stored.cited.len()
                ))
            })?;
            Ok((
                name.0.as_ref(),
                Kept {
                    value: &f.value,
                    source: &c.source,
                    record_key: &c.record_key,
                    role: &c.role,
                    date: &c.date,
                    agreeing: f.agreeing,
                    disagreeing: f.disagreeing,
                },
            ))
        })
        .collect::<Result<_, UnreadableGolden>>()?;
    let sources: Vec<&str> = stored.sources.iter().map(|s| s.as_ref()).collect();
    Ok(Some(inline_text(
        &stored.key,
        stored.mentions,
        &sources,
        &kept,
    )))
}

/// A member's name, borrowed from the text unless it has escapes.
#[derive(serde::Deserialize)]
struct Name<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);

/// A JSON object's members in the order they are written, each value read as `T`: the fields
/// of a record go out in their stored order, and reading them as `T` straight from the text
/// costs no tree of values on the way (a cache miss of the governed API and every candidate of
/// a search read each record this way).
struct InOrder<'a, T>(Vec<(Name<'a>, T)>);

impl<'de: 'a, 'a, T: serde::Deserialize<'de>> serde::Deserialize<'de> for InOrder<'a, T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members<'a, T>(std::marker::PhantomData<(Name<'a>, T)>);
        impl<'de: 'a, 'a, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Members<'a, T> {
            type Value = InOrder<'a, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some(member) = map.next_entry()? {
                    out.push(member);
                }
                Ok(InOrder(out))
            }
        }
        d.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// The record with each field's provenance inline (see [`spelled_out`]).
fn inline_text(key: &str, mentions: usize, sources: &[&str], fields: &[(&str, Kept)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(256 + 160 * fields.len());
    head(&mut out, key, mentions, sources);
    out.push_str(",\"fields\":{");
    for (i, (name, kept)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_serde_string(&mut out, name);
        out.push_str(":{\"value\":");
        push_serde_string(&mut out, kept.value);
        out.push_str(",\"source\":");
        push_serde_string(&mut out, kept.source);
        out.push_str(",\"record_key\":");
        push_serde_string(&mut out, kept.record_key);
        out.push_str(",\"role\":");
        push_serde_string(&mut out, kept.role);
        if !kept.date.is_empty() {
            out.push_str(",\"date\":");
            push_serde_string(&mut out, kept.date);
        }
        let _ = write!(
            out,
            ",\"agreeing\":{},\"disagreeing\":{}}}",
            kept.agreeing, kept.disagreeing
        );
    }
    out.push_str("}}");
    out
}

/// `{"key":…,"mentions":…,"sources":[…]`, the start both forms share.
fn head(out: &mut String, key: &str, mentions: usize, sources: &[&str]) {
    use std::fmt::Write as _;
    out.push_str("{\"key\":");
    push_serde_string(out, key);
    let _ = write!(out, ",\"mentions\":{mentions},\"sources\":[");
    for (i, source) in sources.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_serde_string(out, source);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        /// Stored, a record is JSON whose values read back as they went in; spelled out, it is
        /// byte for byte what serde_json writes of each field's [`Kept`], whatever the values
        /// hold (quotes, backslashes, control characters, any script).
        #[test]
        fn a_stored_record_spells_out_as_serde_json_writes_it(
            key in ".{0,12}",
            sources in proptest::collection::vec("(.|\n|\"|\\\\|\u{1f}){0,8}", 0..4),
            fields in proptest::collection::vec(
                ("[a-z_]{1,8}", "(.|\t|\u{0}|\u{8}|\u{c}|\"|\\\\){0,10}", "(K1|K2|.{0,6})", "(|2024-01-02)", 0usize..9),
                0..6,
            ),
        ) {
            let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
            let mut unique: Vec<(&str, Kept)> = Vec::new();
            for (name, value, record, date, n) in &fields {
                // Two sources and two roles, so that records are told apart by each part.
                let kept = Kept {
                    value,
                    source: if n % 3 == 0 { "grid_collection" } else { "police_household" },
                    record_key: record,
                    role: if n % 4 == 1 { "mother" } else { "subject" },
                    date,
                    agreeing: *n,
                    disagreeing: n / 2,
                };
                match unique.iter_mut().find(|(u, _)| u == name) {
                    Some(slot) => slot.1 = kept,
                    None => unique.push((name, kept)),
                }
            }
            let mut map = serde_json::Map::new();
            for (name, kept) in &unique {
                map.insert(name.to_string(), serde_json::to_value(kept).unwrap());
            }
            let expected = json!({"key": key, "mentions": 7, "sources": sources, "fields": map});
            let stored = golden_text(&key, 7, &sources, &unique);
            let read: serde_json::Value = serde_json::from_str(&stored).unwrap();
            for (name, kept) in &unique {
                proptest::prop_assert_eq!(read["fields"][name]["value"].as_str(), Some(kept.value));
            }
            proptest::prop_assert_eq!(spelled_out(&stored).unwrap(), Some(expected.to_string()));
        }

        /// Any text at all: no panic, and text that is not a stored record is left to be read
        /// as it is.
        #[test]
        fn any_text_spells_out_without_panicking(text in "(.|\"cited\":\\[){0,200}") {
            let _ = spelled_out(&text);
        }
    }

    #[test]
    fn a_record_cites_each_record_once() {
        let kept = |value, record_key, date| Kept {
            value,
            source: "police_household",
            record_key,
            role: "subject",
            date,
            agreeing: 2,
            disagreeing: 0,
        };
        let fields = [
            ("name", kept("王小明", "H1", "2020-01-01")),
            (
                "sex",
                Kept {
                    disagreeing: 1,
                    ..kept("1", "H1", "2020-01-01")
                },
            ),
            ("phone", kept("13912345678", "H2", "")),
            ("birth_date", kept("1990-01-02", "H1", "2020-01-01")),
        ];
        let stored = golden_text("P1", 3, &["police_household"], &fields);
        assert_eq!(
            stored,
            concat!(
                r#"{"key":"P1","mentions":3,"sources":["police_household"],"cited":["#,
                r#"{"source":"police_household","record_key":"H1","role":"subject","date":"2020-01-01"},"#,
                r#"{"source":"police_household","record_key":"H2","role":"subject"}],"fields":{"#,
                r#""name":{"value":"王小明","agreeing":2},"#,
                r#""sex":{"value":"1","agreeing":2,"disagreeing":1},"#,
                r#""phone":{"value":"13912345678","cited":1,"agreeing":2},"#,
                r#""birth_date":{"value":"1990-01-02","agreeing":2}}}"#
            )
        );
        let long = spelled_out(&stored).unwrap().unwrap();
        assert!(long.contains(r#""phone":{"value":"13912345678","source":"police_household","record_key":"H2","role":"subject","agreeing":2,"disagreeing":0}"#), "{long}");
        assert!(long.contains(r#""sex":{"value":"1","source":"police_household","record_key":"H1","role":"subject","date":"2020-01-01","agreeing":2,"disagreeing":1}"#), "{long}");
        // A record stored before and a room's are read as they are.
        assert_eq!(spelled_out(&long).unwrap(), None);
        assert_eq!(
            spelled_out(r#"{"key":"R1","address_key":"320576|x|1|1|101"}"#).unwrap(),
            None
        );
        // A field citing an entry that is not there, a field without its count of agreeing
        // records, a member no reader knows: none is passed on as if it were readable.
        for broken in [
            stored.replace(r#""cited":1"#, r#""cited":2"#),
            stored.replace(r#","agreeing":2}"#, "}"),
            stored.replace(r#""mentions":3"#, r#""mentions":3,"weight":1"#),
            stored.replace(r#""role":"subject"}"#, r#""role":"subject","page":4}"#),
        ] {
            assert!(spelled_out(&broken).is_err(), "{broken}");
        }
    }
}
