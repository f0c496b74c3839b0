//! Cleaning: one raw record and its mapping in, standard fields and a list of issues out.
//!
//! Each mapped column is read by its cleaning step through the standards library. The result is
//! the record's key, its cleaned fields (`role.field` → JSON value, written as one JSON object)
//! and every issue found, each with a code, the field, the raw value, a message and a severity.
//! `Blocking` issues send the record to quarantine; `Warning` issues keep the record but leave the
//! field empty; `Info` issues record a normalisation the department may want to know about (a
//! 15-digit id upgraded, full-width digits, traditional characters).
//!
//! Cleaning runs once for every record of every delivery, so it writes the cleaned JSON directly
//! rather than building a `serde_json::Value` tree, finds the mapped columns by position once per
//! header ([`Cleaner`]), and remembers the last addresses it parsed. The JSON it writes is byte
//! for byte what serializing the fields as a sorted map wrote before.
//!
//! Cleaning is pure: no I/O, no clock, no store. It does not decide whether two records describe
//! the same person (resolution does) and it does not look at other records (duplicate keys are
//! found where the batch is stored).

use crate::mapping::{Clean, FieldMapping, Mapping, OnInvalid};
use crate::reader::{RawRecord, columns_json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Debug;
use std::sync::Arc;
use tongban_standards::json_text::push_serde_string;
use tongban_standards::{
    address, citizen_id, credit_code, date, division, ethnicity, names, phone, text,
};

/// How bad an issue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Blocking,
}

/// At most this many characters of a raw value are kept in an issue.
const RAW_IN_ISSUE: usize = 200;

/// The raw value as an issue keeps it: cut to [`RAW_IN_ISSUE`] characters.
fn raw_for_issue(v: &str) -> String {
    match v.char_indices().nth(RAW_IN_ISSUE) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    }
}

/// One problem or normalisation found in one field of one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Stable machine code, `step.kind`, e.g. `citizen_id.bad_check_char`, `required.missing`.
    pub code: String,
    /// The standard field (`mother.citizen_id`), or `record` for record-level issues.
    pub field: String,
    /// The value as delivered.
    pub raw: String,
    pub message: String,
    pub severity: Severity,
}

/// A cleaned record.
#[derive(Clone, Debug, PartialEq)]
pub struct Cleaned {
    /// The record key: the key columns' values joined by `|`.
    pub key: String,
    /// The cleaned fields as one JSON object, keys in byte order of the field names: the form
    /// the store keeps.
    pub fields_json: String,
    pub issues: Vec<Issue>,
}

impl Cleaned {
    /// Whether the record must go to quarantine.
    pub fn blocked(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Blocking)
    }

    /// The cleaned fields, parsed (for tools and tests; ingest keeps the text).
    pub fn fields(&self) -> serde_json::Map<String, Value> {
        serde_json::from_str(&self.fields_json).unwrap_or_default()
    }
}

/// The snake_case name of an enum variant, from its `Debug` form: `BadCheckChar { .. }` →
/// `bad_check_char`. The standards errors are enums, so this gives every issue a stable code
/// without a hand-kept table that could drift from the variants.
fn variant_code(e: &impl Debug) -> String {
    let dbg = format!("{e:?}");
    let name: &str = dbg
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A cleaned value as it goes into the cleaned JSON object.
#[derive(Clone, Debug)]
enum Out {
    /// A string (unescaped).
    Text(String),
    Int(i64),
    Float(f64),
    /// JSON text already written (an address object); shared with the recent-address memory.
    Json(Arc<str>),
}

impl Out {
    fn as_text(&self) -> Option<&str> {
        match self {
            Out::Text(s) => Some(s),
            _ => None,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Out::Text(s) => push_serde_string(out, s),
            Out::Int(n) => {
                use std::fmt::Write as _;
                let _ = write!(out, "{n}");
            }
            // serde_json's own spelling of a finite float (the step only keeps finite ones).
            Out::Float(n) => out.push_str(&serde_json::to_string(n).unwrap_or_default()),
            Out::Json(j) => out.push_str(j),
        }
    }
}

/// The outcome of one cleaning step on one non-empty value.
#[derive(Clone)]
struct Step {
    value: Option<Out>,
    /// (code suffix, message, severity if the value was usable); errors get the field's
    /// `on_invalid` severity.
    notes: Vec<(String, String)>,
    error: Option<(String, String)>,
}

impl Step {
    fn ok(v: Out) -> Step {
        Step {
            value: Some(v),
            notes: Vec::new(),
            error: None,
        }
    }
    fn text(s: impl Into<String>) -> Step {
        Step::ok(Out::Text(s.into()))
    }
    fn err(code: String, message: String) -> Step {
        Step {
            value: None,
            notes: Vec::new(),
            error: Some((code, message)),
        }
    }
}

fn year_month(s: &str) -> Option<String> {
    let t = text::to_halfwidth(s.trim());
    let digits: Vec<&str> = t
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect();
    let (y, m) = match digits.as_slice() {
        [ym] if ym.len() == 6 => (ym[..4].parse::<u32>().ok()?, ym[4..].parse::<u32>().ok()?),
        [y, m] | [y, m, _] if y.len() == 4 => (y.parse().ok()?, m.parse().ok()?),
        _ => return None,
    };
    ((1900..=2100).contains(&y) && (1..=12).contains(&m)).then(|| format!("{y:04}-{m:02}"))
}

fn sex(s: &str) -> Option<&'static str> {
    // The common spellings first, without the allocations of the general path.
    match s {
        "男" | "1" => return Some("1"),
        "女" | "2" => return Some("2"),
        _ => {}
    }
    match text::to_halfwidth(s.trim()).to_ascii_lowercase().as_str() {
        "男" | "1" | "m" | "male" | "男性" => Some("1"),
        "女" | "2" | "f" | "female" | "女性" => Some("2"),
        _ => None,
    }
}

fn number(s: &str) -> String {
    text::to_halfwidth(s.trim()).replace([',', ' '], "")
}

/// A date as `YYYY-MM-DD`, the form every cleaned date takes.
fn iso_date(d: chrono::NaiveDate) -> String {
    use chrono::Datelike as _;
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        // Years outside four digits are spelled as chrono spells them.
        return d.format("%Y-%m-%d").to_string();
    }
    // Each part is below 10,000, 13 or 32, so every digit below is one ASCII character.
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let y = y as u32;
    let mut s = String::with_capacity(10);
    for c in [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        '-',
        digit(m / 10),
        digit(m),
        '-',
        digit(day / 10),
        digit(day),
    ] {
        s.push(c);
    }
    s
}

fn run_step(step: Clean, raw: &str, context_division: Option<&str>) -> Step {
    match step {
        Clean::CitizenId => match citizen_id::parse_detailed(raw) {
            Ok(p) => {
                let notes = p
                    .notes
                    .iter()
                    .map(|n| (variant_code(n), n.to_string()))
                    .collect();
                let mut s = Step::text(String::from(p.id));
                s.notes = notes;
                s
            }
            Err(e) => {
                let d = citizen_id::diagnose(raw);
                let mut msg = e.to_string();
                if !d.candidates.is_empty() && d.candidates.len() <= 5 {
                    let c: Vec<&str> = d.candidates.iter().map(|c| c.as_str()).collect();
                    msg.push_str(&format!("; likely meant {}", c.join(" or ")));
                }
                Step::err(variant_code(&e), msg)
            }
        },
        Clean::CreditCode => match credit_code::parse_detailed(raw) {
            Ok(p) => {
                let mut s = Step::text(p.code.as_str());
                s.notes = p
                    .notes
                    .iter()
                    .map(|n| (variant_code(n), format!("{n:?}")))
                    .collect();
                s
            }
            Err(e) => Step::err(variant_code(&e), e.to_string()),
        },
        Clean::Name => match names::clean_name(raw) {
            Ok(n) => {
                let notes = n
                    .notes
                    .iter()
                    .map(|x| (variant_code(x), format!("{x:?}")))
                    .collect();
                let mut s = Step::text(n.name);
                s.notes = notes;
                s
            }
            Err(e) => Step::err(variant_code(&e), e.to_string()),
        },
        Clean::Phone => match phone::parse_phone(raw, None) {
            Ok(p) => {
                let canonical = p.to_string();
                let reformatted = canonical != raw.trim();
                let mut s = Step::text(canonical);
                if reformatted {
                    s.notes.push((
                        "reformatted".into(),
                        format!("written {raw:?}, canonical {p}"),
                    ));
                }
                s
            }
            Err(e) => Step::err(variant_code(&e), e.to_string()),
        },
        Clean::Date => match date::parse_date(raw) {
            Ok(d) => Step::text(iso_date(d)),
            Err(e) => Step::err(variant_code(&e), e.to_string()),
        },
        Clean::YearMonth => match year_month(raw) {
            Some(ym) => Step::text(ym),
            None => Step::err(
                "unrecognised".into(),
                format!("{raw:?} is not a month (202109, 2021-09, 2021年9月)"),
            ),
        },
        Clean::Address => match address::parse_address_in(raw, context_division) {
            Ok(a) => {
                let building_key = address::building_key(&a);
                let mut s = Step::ok(Out::Json(address_json(&a, building_key.as_deref()).into()));
                if building_key.is_none() {
                    s.notes.push((
                        "no_building".into(),
                        "the address does not name a building".into(),
                    ));
                }
                if !a.rest.is_empty() {
                    s.notes.push((
                        "unparsed_rest".into(),
                        format!("could not read {:?}", a.rest),
                    ));
                }
                s
            }
            Err(e) => Step::err(variant_code(&e), e.to_string()),
        },
        Clean::Division => {
            let t = raw.trim();
            let found = if t.bytes().all(|b| b.is_ascii_digit()) {
                division::by_code(t).map(|d| d.code.clone())
            } else {
                division::by_name(t).first().map(|d| d.code.clone())
            };
            match found {
                Some(code) => Step::text(code),
                None => Step::err(
                    "unknown".into(),
                    format!("{t:?} is not a known division code or name"),
                ),
            }
        }
        Clean::DivisionPrefix => {
            let t = raw.trim();
            let found = t
                .get(..12)
                .filter(|p| t.bytes().all(|b| b.is_ascii_digit()) && p.len() == 12)
                .and_then(division::by_code)
                .map(|d| d.code.clone());
            match found {
                Some(code) => Step::text(code),
                None => Step::err(
                    "unknown".into(),
                    format!("{t:?} does not begin with a known 12-digit division code"),
                ),
            }
        }
        Clean::Sex => match sex(raw) {
            Some(code) => Step::text(code),
            None => Step::err(
                "unrecognised".into(),
                format!("{raw:?} is not a sex (男/女, 1/2, M/F)"),
            ),
        },
        Clean::Ethnicity => match ethnicity::code_of(raw) {
            Some(code) => Step::text(ethnicity::name_of(&code).unwrap_or(raw)),
            None => Step::err(
                "unknown".into(),
                format!("{raw:?} is not one of the 56 ethnic groups"),
            ),
        },
        Clean::Text => Step::text(text::normalize(raw)),
        Clean::Integer => match number(raw).parse::<i64>() {
            Ok(n) => Step::ok(Out::Int(n)),
            Err(_) => Step::err(
                "not_integer".into(),
                format!("{raw:?} is not a whole number"),
            ),
        },
        Clean::Decimal => match number(raw).parse::<f64>() {
            Ok(n) if n.is_finite() => Step::ok(Out::Float(n)),
            _ => Step::err("not_number".into(), format!("{raw:?} is not a number")),
        },
        Clean::Raw => Step::text(raw),
    }
}

/// A parsed address as the cleaned record keeps it, in its lean form: each division by its
/// code alone (`"county":"320576"`), then the parts that are present, the unread rest if any,
/// and the room and building keys. Nothing that can be derived is stored: division names come
/// from the code, the standard text from the parts ([`expand_address`] gives both back), and an
/// absent part is left out rather than written `null`.
///
/// Why lean: an address written the first way (each division `{"code":…,"name":…}`, every part
/// with its `null`, the standard text) was about 510 bytes, two thirds of a household-register
/// record's cleaned JSON, and storing a record costs in proportion to its bytes (the write-ahead
/// log and its checkpoint copy every one of them twice). Records stored the first way are read
/// as before: [`address_from_stored`] and the resolution's readers take both forms.
fn address_json(a: &address::Address, building_key: Option<&str>) -> String {
    // The keys are ASCII words that need no escaping, written as they are.
    let mut out = String::with_capacity(256);
    let mut push = |key: &str, v: &str| {
        out.push(if out.is_empty() { '{' } else { ',' });
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        push_serde_string(&mut out, v);
    };
    for (key, d) in a.divisions() {
        if let Some(d) = d {
            push(key, &d.code);
        }
    }
    for (key, v) in a.parts() {
        if let Some(v) = v {
            push(key, v);
        }
    }
    if !a.rest.is_empty() {
        push("rest", &a.rest);
    }
    if let Some(k) = address::room_key(a) {
        push("room_key", &k);
    }
    if let Some(k) = building_key {
        push("building_key", k);
    }
    if out.is_empty() {
        out.push('{');
    }
    out.push('}');
    out
}

/// The address a cleaned record stores under one field, read from either form it has been
/// stored in: the lean one [`address_json`] writes (a division by its code, whose name comes
/// from the division tree) or the first one (a division as `{"code":…,"name":…}`, absent parts
/// `null`). `None` when the value is not an address object. A division code the embedded tree
/// does not know keeps its code and an empty name.
pub fn address_from_stored(v: &Value) -> Option<address::Address> {
    let o = v.as_object()?;
    let known = [
        "province",
        "city",
        "county",
        "street",
        "community",
        "road",
        "road_number",
        "compound",
        "building",
        "unit",
        "floor",
        "room",
        "rest",
        "room_key",
        "building_key",
        "text",
    ];
    if !o.keys().all(|k| known.contains(&k.as_str())) {
        return None;
    }
    let division = |key: &str| -> Option<address::DivRef> {
        match o.get(key)? {
            Value::String(code) => Some(address::DivRef {
                code: code.clone(),
                name: division::by_code(code)
                    .filter(|d| d.code == *code)
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
            }),
            Value::Object(d) => Some(address::DivRef {
                code: d.get("code")?.as_str()?.to_string(),
                name: d
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }),
            _ => None,
        }
    };
    let part = |key: &str| o.get(key).and_then(Value::as_str).map(str::to_string);
    Some(address::Address {
        province: division("province"),
        city: division("city"),
        county: division("county"),
        street: division("street"),
        community: division("community"),
        road: part("road"),
        road_number: part("road_number"),
        compound: part("compound"),
        building: part("building"),
        unit: part("unit"),
        floor: part("floor"),
        room: part("room"),
        rest: part("rest").unwrap_or_default(),
        notes: Vec::new(),
    })
}

/// A stored address spelled out for people to read, whichever form it was stored in: every
/// division with its code and name, every part (`null` when absent), the standard text, and
/// the room and building keys as stored. `None` when the value is not an address object.
pub fn expand_address(v: &Value) -> Option<Value> {
    let a = address_from_stored(v)?;
    let mut out = serde_json::to_value(&a).ok()?;
    let o = out.as_object_mut()?;
    o.remove("notes");
    o.insert("text".into(), Value::from(address::format_address(&a)));
    for key in ["room_key", "building_key"] {
        o.insert(key.into(), v.get(key).cloned().unwrap_or(Value::Null));
    }
    Some(out)
}

/// A cleaned record's JSON with every address in it spelled out ([`expand_address`]), for
/// people to read; what is not a JSON object comes back as it parses (or as a string).
pub fn expand_cleaned(cleaned: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(cleaned).unwrap_or_else(|_| Value::String(cleaned.to_string()));
    if let Some(o) = v.as_object_mut() {
        for value in o.values_mut() {
            if let Some(expanded) = expand_address(value) {
                *value = expanded;
            }
        }
    }
    v
}

/// Members of one household follow one another in most exports and share an address, so the
/// last few addresses parsed on a thread are remembered. Parsing an address is the most expensive
/// cleaning step; a general cache of every step was tried and cost more than it saved. A
/// remembered step is cheap to hand out again: its JSON is shared, and notes are rare.
fn recent_address(raw: &str, context: Option<&str>) -> Step {
    const KEEP: usize = 8;
    type Recent = std::collections::VecDeque<(Option<String>, String, Step)>;
    thread_local! {
        static RECENT: std::cell::RefCell<Recent> =
            std::cell::RefCell::new(Recent::with_capacity(KEEP));
    }
    let hit = RECENT.with(|r| {
        r.borrow()
            .iter()
            .find(|(c, v, _)| v == raw && c.as_deref() == context)
            .map(|(_, _, s)| s.clone())
    });
    if let Some(step) = hit {
        return step;
    }
    let step = run_step(Clean::Address, raw, context);
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() == KEEP {
            r.pop_front();
        }
        r.push_back((context.map(str::to_string), raw.to_string(), step.clone()));
    });
    step
}

/// A record as the store keeps it: the JSON array of its values, the JSON array of its
/// header's column names (shared by every record of the remembered header), and the hash of the
/// record's JSON object, by which a re-delivery is recognised as unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct RawForms {
    pub values: String,
    pub columns: Arc<str>,
    pub hash: [u8; 32],
}

/// Where the mapped columns sit in one header, found once for every record that has it.
struct Layout {
    columns: Arc<[String]>,
    keys: Vec<Option<usize>>,
    fields: Vec<Option<usize>>,
    /// Each column's name as the raw record's JSON key, escaped once: `"姓名":`.
    raw_keys: Vec<String>,
    /// The header as the store keeps it once for all its records ([`columns_json`]).
    raw_columns: Arc<str>,
}

/// A mapping made ready to clean many records: the order the cleaned object lists its fields
/// in, and (for files with one header) where each mapped column is.
pub struct Cleaner<'m> {
    mapping: &'m Mapping,
    /// Field indices sorted by field name: the order of the keys in the cleaned JSON object.
    by_name: Vec<usize>,
    /// Each field's name as a key of the cleaned object, escaped once: `"name":`.
    field_keys: Vec<String>,
    layout: Option<Layout>,
}

/// `name` as a JSON object key followed by its colon, in the raw or the serde spelling.
fn json_key(name: &str, push: fn(&mut String, &str)) -> String {
    let mut key = String::with_capacity(name.len() + 3);
    push(&mut key, name);
    key.push(':');
    key
}

impl<'m> Cleaner<'m> {
    pub fn new(mapping: &'m Mapping) -> Cleaner<'m> {
        let mut by_name: Vec<usize> = (0..mapping.fields.len()).collect();
        by_name.sort_by(|&a, &b| mapping.fields[a].field.cmp(&mapping.fields[b].field));
        Cleaner {
            mapping,
            by_name,
            field_keys: mapping
                .fields
                .iter()
                .map(|f| json_key(&f.field, push_serde_string))
                .collect(),
            layout: None,
        }
    }

    /// Remembers where the mapped columns are in `columns`, so that records read with this
    /// header find their values without searching it. Records with another header (JSON lines
    /// list their own keys) are still cleaned correctly, by searching.
    pub fn with_columns(mut self, columns: &Arc<[String]>) -> Cleaner<'m> {
        let find = |name: &str| columns.iter().position(|c| c == name);
        self.layout = Some(Layout {
            columns: columns.clone(),
            keys: self
                .mapping
                .source
                .record_key
                .iter()
                .map(|k| find(k))
                .collect(),
            fields: self
                .mapping
                .fields
                .iter()
                .map(|f| find(&f.column))
                .collect(),
            raw_keys: columns
                .iter()
                .map(|c| json_key(c, tongban_standards::json_text::push_raw_string))
                .collect(),
            raw_columns: columns_json(columns).into(),
        });
        self
    }

    /// The layout that fits `raw`'s header, if any.
    fn layout_for(&self, raw: &RawRecord) -> Option<&Layout> {
        self.layout
            .as_ref()
            .filter(|l| Arc::ptr_eq(&l.columns, &raw.columns))
    }

    /// The record as the JSON object kept as its raw form (see [`RawRecord::to_json`]), with
    /// the header's keys escaped once when the header is the remembered one.
    pub fn raw_json(&self, raw: &RawRecord) -> String {
        match self.layout_for(raw) {
            Some(l) => raw.to_json_with_keys(&l.raw_keys),
            None => raw.to_json(),
        }
    }

    /// The record as the store keeps it ([`RawForms`]): its values, its header, and the hash of
    /// the JSON object [`Cleaner::raw_json`] writes, which the store gives back byte for byte.
    pub fn raw_forms(&self, raw: &RawRecord) -> RawForms {
        let Some(l) = self.layout_for(raw) else {
            return RawForms {
                values: raw.values_json(),
                columns: columns_json(&raw.columns).into(),
                hash: *blake3::hash(raw.to_json().as_bytes()).as_bytes(),
            };
        };
        // The object is put together from the escaped keys and each value as just escaped into
        // the array, in a buffer kept per thread: escaping every value twice and allocating
        // the object for each record only to hash it cost more than the copying.
        thread_local! {
            static OBJECT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let n = l.raw_keys.len().min(raw.values.len());
        let len: usize = raw.values.iter().map(String::len).sum();
        let mut values = String::with_capacity(len + 3 * n + 2);
        values.push('[');
        let hash = OBJECT.with(|object| {
            let mut object = object.borrow_mut();
            object.clear();
            object.push('{');
            for (i, (key, v)) in l.raw_keys.iter().zip(&raw.values).enumerate() {
                if i > 0 {
                    values.push(',');
                    object.push(',');
                }
                let start = values.len();
                tongban_standards::json_text::push_raw_string(&mut values, v);
                object.push_str(key);
                object.push_str(&values[start..]);
            }
            object.push('}');
            *blake3::hash(object.as_bytes()).as_bytes()
        });
        values.push(']');
        RawForms {
            values,
            columns: l.raw_columns.clone(),
            hash,
        }
    }

    /// Cleans one record.
    pub fn clean(&self, raw: &RawRecord) -> Cleaned {
        let layout = self.layout_for(raw);
        let value_at = |i: Option<usize>| i.and_then(|i| raw.values.get(i)).map(String::as_str);
        let mapping = self.mapping;
        let mut issues = Vec::new();
        let mut key = String::new();
        for (n, k) in mapping.source.record_key.iter().enumerate() {
            let v = match layout {
                Some(l) => value_at(l.keys[n]),
                None => raw.get(k),
            };
            let v = v.map(str::trim).unwrap_or("");
            if v.is_empty() {
                issues.push(Issue {
                    code: "record_key.missing".into(),
                    field: "record".into(),
                    raw: String::new(),
                    message: format!("record key column {k:?} is empty"),
                    severity: Severity::Blocking,
                });
            }
            if n > 0 {
                key.push('|');
            }
            key.push_str(v);
        }
        let context = mapping.source.division.as_deref();
        let mut values: Vec<Option<Out>> = Vec::with_capacity(mapping.fields.len());
        for (n, f) in mapping.fields.iter().enumerate() {
            let value = match layout {
                Some(l) => value_at(l.fields[n]),
                None => raw.get(&f.column),
            };
            values.push(clean_field(f, value.unwrap_or(""), context, &mut issues));
        }
        let sorted: Vec<(usize, &Out)> = self
            .by_name
            .iter()
            .filter_map(|&i| Some((i, values[i].as_ref()?)))
            .collect();
        check_id_agreement(mapping, &sorted, &mut issues);
        let mut fields_json = String::with_capacity(1024);
        fields_json.push('{');
        for (n, (i, value)) in sorted.iter().enumerate() {
            if n > 0 {
                fields_json.push(',');
            }
            fields_json.push_str(&self.field_keys[*i]);
            value.write(&mut fields_json);
        }
        fields_json.push('}');
        Cleaned {
            key,
            fields_json,
            issues,
        }
    }
}

/// Cleans one record (a [`Cleaner`] is cheaper for many).
pub fn clean_record(mapping: &Mapping, raw: &RawRecord) -> Cleaned {
    Cleaner::new(mapping).clean(raw)
}

/// Cleans one field's value, recording its issues; the cleaned value, if there is one.
fn clean_field(
    f: &FieldMapping,
    value: &str,
    context: Option<&str>,
    issues: &mut Vec<Issue>,
) -> Option<Out> {
    if value.trim().is_empty() {
        if f.required {
            issues.push(Issue {
                code: "required.missing".into(),
                field: f.field.clone(),
                raw: raw_for_issue(value),
                message: format!("required column {:?} is empty", f.column),
                severity: Severity::Blocking,
            });
        }
        return None;
    }
    let step = if f.clean == Clean::Address {
        recent_address(value, context)
    } else {
        run_step(f.clean, value, context)
    };
    let prefix = f.clean.name();
    for (code, message) in step.notes {
        issues.push(Issue {
            code: format!("{prefix}.{code}"),
            field: f.field.clone(),
            raw: raw_for_issue(value),
            message,
            severity: Severity::Info,
        });
    }
    if let Some((code, message)) = step.error {
        issues.push(Issue {
            code: format!("{prefix}.{code}"),
            field: f.field.clone(),
            raw: raw_for_issue(value),
            message: format!("column {:?}: {message}", f.column),
            severity: match f.on_invalid() {
                OnInvalid::Quarantine => Severity::Blocking,
                OnInvalid::Warn => Severity::Warning,
            },
        });
    }
    step.value
}

/// A valid id whose birth date or sex disagrees with the record's own birth date or sex is a sign
/// that one of them was mistyped or that the id belongs to someone else; resolution will not link
/// on it deterministically, and the department should know. `fields` are in name order.
fn check_id_agreement(mapping: &Mapping, fields: &[(usize, &Out)], issues: &mut Vec<Issue>) {
    let name_of = |i: usize| mapping.fields[i].field.as_str();
    let text_of = |role: &str, name: &str| {
        fields
            .iter()
            .find(|(i, _)| {
                let f = name_of(*i);
                f.len() == role.len() + name.len() && f.starts_with(role) && f.ends_with(name)
            })
            .and_then(|(_, v)| v.as_text())
    };
    for &(i, value) in fields {
        let name = name_of(i);
        let Some(role) = name.strip_suffix("citizen_id") else {
            continue;
        };
        let Some(id) = value
            .as_text()
            .and_then(|s| citizen_id::CitizenId::parse(s).ok())
        else {
            continue;
        };
        let birth = iso_date(id.birth_date());
        if let Some(b) = text_of(role, "birth_date")
            && b != birth
        {
            issues.push(Issue {
                code: "citizen_id.birth_date_disagrees".into(),
                field: name.to_string(),
                raw: id.as_str().to_string(),
                message: format!("the id says born {birth} but the record says {b}"),
                severity: Severity::Warning,
            });
        }
        if let Some(s) = text_of(role, "sex")
            && s != id.sex().code()
        {
            issues.push(Issue {
                code: "citizen_id.sex_disagrees".into(),
                field: name.to_string(),
                raw: id.as_str().to_string(),
                message: format!(
                    "the id says {} but the record says {}",
                    id.sex().zh(),
                    if s == "1" { "男" } else { "女" }
                ),
                severity: Severity::Warning,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::Location;
    use std::sync::Arc;

    fn mapping() -> Mapping {
        Mapping::parse(
            r#"
[source]
id = "t"
department = "d"
format = "csv"
record_key = ["编号"]
subject = "person"
division = "320576052"
[[field]]
column = "身份证"
field = "citizen_id"
clean = "citizen_id"
required = true
[[field]]
column = "姓名"
field = "name"
clean = "name"
required = true
[[field]]
column = "性别"
field = "sex"
clean = "sex"
[[field]]
column = "出生"
field = "birth_date"
clean = "date"
[[field]]
column = "电话"
field = "phone"
clean = "phone"
[[field]]
column = "地址"
field = "address"
clean = "address"
[[field]]
column = "母亲身份证"
field = "mother.citizen_id"
clean = "citizen_id"
"#,
            "t.toml",
        )
        .unwrap()
    }

    fn rec(values: &[&str]) -> RawRecord {
        let cols: Arc<[String]> = [
            "编号",
            "身份证",
            "姓名",
            "性别",
            "出生",
            "电话",
            "地址",
            "母亲身份证",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        RawRecord {
            location: Location::Line(2),
            columns: cols,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_clean_record_has_standard_fields() {
        let c = clean_record(
            &mapping(),
            &rec(&[
                "7",
                "11010519491231002x",
                "張 三",
                "女",
                "1949年12月31日",
                "+86 138 1234 5678",
                "青剑湖花园12-3-1001",
                "",
            ]),
        );
        assert!(!c.blocked(), "{:?}", c.issues);
        assert_eq!(c.key, "7");
        let fields = c.fields();
        assert_eq!(fields["citizen_id"], "11010519491231002X");
        assert_eq!(fields["name"], "张三");
        assert_eq!(fields["sex"], "2");
        assert_eq!(fields["birth_date"], "1949-12-31");
        assert_eq!(fields["phone"], "13812345678");
        assert_eq!(fields["address"]["room_key"], "320576|青剑湖花园|12|3|1001");
        assert!(!fields.contains_key("mother.citizen_id"));
        let codes: Vec<&str> = c.issues.iter().map(|i| i.code.as_str()).collect();
        assert!(codes.contains(&"citizen_id.lowercase_x"), "{codes:?}");
        assert!(codes.contains(&"name.traditional"), "{codes:?}");
        assert!(c.issues.iter().all(|i| i.severity == Severity::Info));
    }

    #[test]
    fn a_bad_required_id_blocks_and_a_bad_optional_one_warns() {
        let c = clean_record(
            &mapping(),
            &rec(&[
                "8",
                "110105194912310021",
                "李四",
                "",
                "",
                "",
                "",
                "110105194912310021",
            ]),
        );
        assert!(c.blocked());
        let id = c.issues.iter().find(|i| i.field == "citizen_id").unwrap();
        assert_eq!(id.code, "citizen_id.bad_check_char");
        assert_eq!(id.severity, Severity::Blocking);
        assert!(id.message.contains("身份证"), "{}", id.message);
        let mother = c
            .issues
            .iter()
            .find(|i| i.field == "mother.citizen_id")
            .unwrap();
        assert_eq!(mother.severity, Severity::Warning);
        assert!(!c.fields().contains_key("citizen_id"));
    }

    #[test]
    fn missing_key_and_required_values_block() {
        let c = clean_record(&mapping(), &rec(&["", "", "", "", "", "", "", ""]));
        let codes: Vec<&str> = c.issues.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(
            codes,
            ["record_key.missing", "required.missing", "required.missing"]
        );
    }

    #[test]
    fn ids_that_disagree_with_birth_date_or_sex_are_flagged() {
        let c = clean_record(
            &mapping(),
            &rec(&[
                "9",
                "11010519491231002X",
                "王五",
                "男",
                "1950-01-01",
                "",
                "",
                "",
            ]),
        );
        let codes: Vec<&str> = c.issues.iter().map(|i| i.code.as_str()).collect();
        assert!(
            codes.contains(&"citizen_id.birth_date_disagrees"),
            "{codes:?}"
        );
        assert!(codes.contains(&"citizen_id.sex_disagrees"), "{codes:?}");
        assert!(!c.blocked());
    }

    #[test]
    fn months_and_variant_codes() {
        assert_eq!(year_month("202109").as_deref(), Some("2021-09"));
        assert_eq!(year_month("2021年9月").as_deref(), Some("2021-09"));
        assert_eq!(year_month("2021-13"), None);
        assert_eq!(variant_code(&Clean::CitizenId), "citizen_id");
        assert_eq!(variant_code(&Some(1)), "some");
    }

    #[test]
    fn step_names_are_the_mapping_spelling() {
        use Clean::*;
        for c in [
            CitizenId,
            CreditCode,
            Name,
            Phone,
            Date,
            YearMonth,
            Address,
            Division,
            DivisionPrefix,
            Sex,
            Ethnicity,
            Text,
            Integer,
            Decimal,
            Raw,
        ] {
            assert_eq!(c.name(), variant_code(&c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        }
    }

    #[test]
    fn cleaned_fields_are_written_in_name_order_as_serde_json_would() {
        let c = clean_record(
            &mapping(),
            &rec(&[
                "7",
                "11010519491231002X",
                "张三",
                "女",
                "19491231",
                "13812345678",
                "青剑湖花园12-3-1001",
                "",
            ]),
        );
        let sorted: std::collections::BTreeMap<String, Value> =
            serde_json::from_str(&c.fields_json).unwrap();
        assert_eq!(c.fields_json, serde_json::to_string(&sorted).unwrap());
        assert!(
            c.fields_json.starts_with(r#"{"address":{"#),
            "{}",
            c.fields_json
        );
        assert_eq!(
            iso_date(chrono::NaiveDate::from_ymd_opt(7, 3, 9).unwrap()),
            "0007-03-09"
        );
    }

    #[test]
    fn a_remembered_header_gives_what_searching_gives() {
        let m = mapping();
        let r = rec(&["7", "11010519491231002X", "张三", "女", "", "", "", ""]);
        let with = Cleaner::new(&m).with_columns(&r.columns).clean(&r);
        assert_eq!(with, clean_record(&m, &r));
        // A record with another header (its own JSON keys) is searched, not misread.
        let other = RawRecord {
            location: Location::Line(3),
            columns: ["姓名", "编号", "身份证"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            values: vec!["李四".into(), "8".into(), "".into()],
        };
        let c = Cleaner::new(&m).with_columns(&r.columns).clean(&other);
        assert_eq!(c.key, "8");
        assert_eq!(c.fields()["name"], "李四");
        assert!(c.blocked());
    }

    /// The address object as it was first written: serde_json's own serialisation, edited.
    fn address_reference(a: &address::Address) -> String {
        let mut v = serde_json::to_value(a).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("text".into(), serde_json::json!(address::format_address(a)));
        o.insert(
            "building_key".into(),
            serde_json::json!(address::building_key(a)),
        );
        o.insert("room_key".into(), serde_json::json!(address::room_key(a)));
        o.remove("notes");
        v.to_string()
    }

    /// The lean form keeps everything the first form held: read back it is the parsed address
    /// (without its notes), spelled out it is the first form exactly, and so is the first form
    /// itself spelled out; and it holds no `null` and no division's name.
    fn assert_address_as_before(raw: &str) {
        if let Ok(a) = address::parse_address_in(raw, Some("320576052")) {
            let key = address::building_key(&a);
            let lean = address_json(&a, key.as_deref());
            let reference: Value = serde_json::from_str(&address_reference(&a)).unwrap();
            let stored: Value = serde_json::from_str(&lean).unwrap();
            let without_notes = address::Address {
                notes: Vec::new(),
                ..a.clone()
            };
            assert_eq!(address_from_stored(&stored), Some(without_notes), "{raw}");
            assert_eq!(expand_address(&stored).as_ref(), Some(&reference), "{raw}");
            assert_eq!(
                expand_address(&reference).as_ref(),
                Some(&reference),
                "{raw}"
            );
            assert!(
                !lean.contains("null") && !lean.contains("\"name\""),
                "{lean}"
            );
        }
    }

    /// The forms the store keeps splice back into the object `raw_json` writes, and the hash is
    /// that object's, whether the record has the remembered header or one of its own.
    fn assert_raw_forms_agree(values: &[&str]) {
        let m = mapping();
        let r = rec(values);
        let other = RawRecord {
            columns: r.columns.iter().rev().cloned().collect(),
            ..r.clone()
        };
        let cleaner = Cleaner::new(&m).with_columns(&r.columns);
        for record in [&r, &other] {
            let object = cleaner.raw_json(record);
            let forms = cleaner.raw_forms(record);
            assert_eq!(forms.hash, *blake3::hash(object.as_bytes()).as_bytes());
            assert_eq!(
                tongban_store::raw_layout::splice(&forms.columns, &forms.values),
                Some(object)
            );
        }
    }

    #[test]
    fn raw_forms_give_the_object_and_its_hash() {
        assert_raw_forms_agree(&["7", "11010519491231002X", "张\"三", "女", "", "", "", ""]);
        assert_raw_forms_agree(&["7", "1"]);
        assert_raw_forms_agree(&[
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9 more than columns",
        ]);
    }

    #[test]
    fn an_address_is_stored_lean_and_read_back_whole() {
        for raw in [
            "江苏省苏州市苏州工业园区唯亭街道青剑湖花园1幢1单元201室",
            "青剑湖花园12-3-1001",
            "苏州工业园区星华街88号",
            "唯亭街道",
            "园区唯亭青剑湖花园十二栋三单元一〇〇一（近地铁）",
            "青剑湖社区 \"阳光\"花园\\A座\t5楼",
        ] {
            assert_address_as_before(raw);
        }
        let a = address::parse_address_in(
            "江苏省苏州市苏州工业园区唯亭街道青剑湖花园1幢1单元201室",
            None,
        )
        .unwrap();
        assert_eq!(
            address_json(&a, address::building_key(&a).as_deref()),
            r#"{"province":"32","city":"3205","county":"320576","street":"320576052","compound":"青剑湖花园","building":"1","unit":"1","floor":"2","room":"201","room_key":"320576|青剑湖花园|1|1|201","building_key":"320576|青剑湖花园|1"}"#
        );
        // What is not an address is left as it is.
        let record = expand_cleaned(r#"{"name":"张三","extra":{"x":1},"n":3}"#);
        assert_eq!(
            record,
            serde_json::json!({"name":"张三","extra":{"x":1},"n":3})
        );
        assert_eq!(expand_cleaned("not json"), Value::from("not json"));
    }

    proptest::proptest! {
        #[test]
        fn cleaning_never_panics(values in proptest::collection::vec(".{0,40}", 8)) {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let c = clean_record(&mapping(), &rec(&refs));
            // Whatever came in, every issue names a mapped field (or the record), and every
            // field that was kept belongs to the mapping.
            let m = mapping();
            let mapped: Vec<&str> = m.fields.iter().map(|f| f.field.as_str()).collect();
            for i in &c.issues {
                proptest::prop_assert!(i.field == "record" || mapped.contains(&i.field.as_str()), "{:?}", i);
            }
            for k in c.fields().keys() {
                proptest::prop_assert!(mapped.contains(&k.as_str()));
            }
        }

        #[test]
        fn raw_forms_agree_for_any_values(values in proptest::collection::vec("[\\PC\"\\\\\t\u{0}]{0,8}", 0..10)) {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            assert_raw_forms_agree(&refs);
        }

        #[test]
        fn addresses_are_written_as_before(raw in "[江苏省州市园区唯亭街道青剑湖花园社区幢栋单元室号楼路0-9一二三十A-C\\-\"\\\\ ]{0,30}") {
            assert_address_as_before(&raw);
        }
    }
}
