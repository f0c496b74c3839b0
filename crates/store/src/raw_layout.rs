//! A raw record kept as its values alone, its column names stored once for every record that
//! shares them.
//!
//! The raw form of a record is a JSON object of column name → text, and in a department's
//! export every record repeats the same names: in the household register they were half of the
//! raw form's 387 bytes. The store keeps such a record as the JSON array of its values and
//! the array of its column names once, in `record_layouts`, and gives the object back when the
//! record is read ([`splice`]). The two arrays hold each name and value exactly as the object
//! spelled it (escapes included), so the object read back is byte for byte the one delivered,
//! and so is its content hash.
//!
//! This module is pure text: it neither escapes nor unescapes anything (the intake writes both
//! arrays with the same escaping as the object), and holds no SQL.

use std::collections::HashSet;
use std::sync::Arc;

/// The distinct column arrays among the records stored anew in one chunk, each once, in the
/// order they first come: each backend looks their layout ids up (or adds them) inside the
/// chunk's transaction. The records of one header share one `Arc`, so most are matched by
/// address, not by text.
pub(crate) fn distinct_columns<'a>(columns: impl Iterator<Item = &'a Arc<str>>) -> Vec<&'a str> {
    let mut seen: HashSet<&'a str> = HashSet::new();
    let mut out = Vec::new();
    let mut last: Option<&'a Arc<str>> = None;
    for c in columns {
        if last.is_some_and(|l| Arc::ptr_eq(l, c)) {
            continue;
        }
        last = Some(c);
        if seen.insert(c) {
            out.push(&**c);
        }
    }
    out
}

/// The JSON string tokens of a JSON array of strings, each with its quotes and escapes as
/// written: `["a","b\"c"]` → `"a"`, `"b\"c"`. `None` when the text is not such an array
/// written without whitespace, the only form the intake writes.
fn string_tokens(array: &str) -> Option<Vec<&str>> {
    let b = array.as_bytes();
    if b.first() != Some(&b'[') || b.last() != Some(&b']') || b.len() < 2 {
        return None;
    }
    let mut tokens = Vec::new();
    let mut i = 1;
    if b.len() == 2 {
        return Some(tokens);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i;
        i += 1;
        loop {
            match b.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        i += 1;
        // Every position stopped at is an ASCII quote, so the slice falls on character bounds.
        tokens.push(array.get(start..i)?);
        match b.get(i)? {
            b',' => i += 1,
            b']' if i + 1 == b.len() => return Some(tokens),
            _ => return None,
        }
    }
}

/// The JSON object a record was delivered as, from the array of its column names and the array
/// of its values: `["姓名","性别"]` and `["张三","男"]` give `{"姓名":"张三","性别":"男"}`. A record
/// with fewer values than columns pairs the first ones, as the object did. `None` when either
/// is not an array of strings or there are more values than columns.
pub fn splice(columns: &str, values: &str) -> Option<String> {
    let names = string_tokens(columns)?;
    let values = string_tokens(values)?;
    if values.len() > names.len() {
        return None;
    }
    let len = values
        .iter()
        .chain(&names)
        .map(|t| t.len() + 2)
        .sum::<usize>()
        + 2;
    let mut out = String::with_capacity(len);
    out.push('{');
    for (i, (name, value)) in names.iter().zip(&values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_names_make_the_object_back() {
        assert_eq!(
            splice(r#"["姓名","性别"]"#, r#"["张三","男"]"#).as_deref(),
            Some(r#"{"姓名":"张三","性别":"男"}"#)
        );
        // Escapes stay as they were written, a quote or a backslash inside included.
        assert_eq!(
            splice(r#"["a\"b","c\\"]"#, r#"["x\\\"y",""]"#).as_deref(),
            Some(r#"{"a\"b":"x\\\"y","c\\":""}"#)
        );
        assert_eq!(
            splice(r#"["a","b"]"#, r#"["1"]"#).as_deref(),
            Some(r#"{"a":"1"}"#)
        );
        assert_eq!(splice("[]", "[]").as_deref(), Some("{}"));
    }

    #[test]
    fn what_is_not_an_array_of_strings_is_refused() {
        for (columns, values) in [
            (r#"["a"]"#, r#"["1","2"]"#),
            (r#"["a"]"#, r#"{"a":"1"}"#),
            (r#"["a"]"#, r#"[1]"#),
            (r#"["a"]"#, r#"["1" ]"#),
            (r#"["a"]"#, r#"["1"#),
            (r#"["a"]"#, r#"["1\"]"#),
            (r#"["a"]"#, "["),
            ("", "[]"),
        ] {
            assert_eq!(splice(columns, values), None, "{columns} {values}");
        }
    }

    proptest::proptest! {
        #[test]
        fn splicing_never_panics(columns in ".{0,30}", values in ".{0,30}") {
            let _ = splice(&columns, &values);
        }

        #[test]
        fn any_strings_come_back_as_serde_json_reads_them(
            pairs in proptest::collection::vec((".{0,8}", ".{0,8}"), 0..6)
        ) {
            let names: Vec<&String> = pairs.iter().map(|(n, _)| n).collect();
            let values: Vec<&String> = pairs.iter().map(|(_, v)| v).collect();
            let object = splice(
                &serde_json::to_string(&names).unwrap(),
                &serde_json::to_string(&values).unwrap(),
            ).unwrap();
            let v: serde_json::Value = serde_json::from_str(&object).unwrap();
            let mut read: Vec<(String, String)> = v
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            // A name written twice keeps its last value, as serde_json reads an object.
            let mut expected: Vec<(String, String)> = Vec::new();
            for (n, v) in &pairs {
                if let Some(e) = expected.iter_mut().find(|(k, _)| k == n) {
                    e.1 = v.clone();
                } else {
                    expected.push((n.clone(), v.clone()));
                }
            }
            expected.sort();
            read.sort();
            proptest::prop_assert_eq!(read, expected);
        }
    }
}
