//! Streaming readers for department files: CSV, JSON lines and JSON arrays, in UTF-8, GBK or
//! GB18030.
//!
//! A reader turns a file into a stream of raw records (column → text, in the file's order) and
//! hands each to a callback, so memory stays flat whatever the file's size. Problems are sorted
//! into two kinds. A problem with the *file* — it cannot be opened, is empty, is not in its
//! declared encoding, lacks a column the mapping names, is not a JSON array — stops reading before
//! any record is delivered, with the path, the line and what was found. A problem with one
//! *record* — a ragged CSV row, a JSON line that is not an object or not JSON, bytes that do not
//! decode — is delivered as an [`Item::Unreadable`] with its location and raw text, so the caller
//! can quarantine it and go on.
//!
//! Readers do not interpret values; cleaning does that.

use crate::mapping::{Encoding, Format, Mapping};
use encoding_rs_io::DecodeReaderBytesBuilder;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a record is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// 1-based line (for CSV, the line the record starts on; the header is line 1).
    Line(u64),
    /// 1-based position in a JSON array.
    Element(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Element(n) => write!(f, "element {n}"),
        }
    }
}

/// One record as delivered: columns and their text, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    pub location: Location,
    pub columns: Arc<[String]>,
    pub values: Vec<String>,
}

impl RawRecord {
    /// The value of a column; `None` when the column is absent, `Some("")` when it is empty.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
            .map(String::as_str)
    }

    /// The record as a JSON object in file column order, the form kept as the raw record and
    /// hashed for change detection.
    pub fn to_json(&self) -> String {
        self.json_object(self.columns.len(), |out, i| {
            tongban_standards::json_text::push_raw_string(out, &self.columns[i]);
            out.push(':');
        })
    }

    /// [`RawRecord::to_json`] with each column's key (`"姓名":`) already escaped, `keys[i]` for
    /// column `i`: a file's header is escaped once, not once per record.
    pub fn to_json_with_keys(&self, keys: &[String]) -> String {
        self.json_object(keys.len(), |out, i| out.push_str(&keys[i]))
    }

    /// The values [`RawRecord::to_json`] writes, alone, as a JSON array in the same spelling:
    /// with [`columns_json`] of the header, the store keeps a record in this form and gives the
    /// object back byte for byte (`tongban_store::raw_layout`).
    pub fn values_json(&self) -> String {
        string_array(&self.values[..self.columns.len().min(self.values.len())])
    }

    /// The object of the first `keys` values (at most all of them), each after the key `key`
    /// writes for its column.
    fn json_object(&self, keys: usize, mut key: impl FnMut(&mut String, usize)) -> String {
        let n = keys.min(self.values.len());
        let len: usize = self.values.iter().map(String::len).sum();
        let mut out = String::with_capacity(len + 24 * n + 2);
        out.push('{');
        for (i, v) in self.values.iter().take(n).enumerate() {
            if i > 0 {
                out.push(',');
            }
            key(&mut out, i);
            tongban_standards::json_text::push_raw_string(&mut out, v);
        }
        out.push('}');
        out
    }
}

/// A stored raw record (the JSON object [`RawRecord::to_json`] writes, column → text, in file
/// order) as the record it was read from, for cleaning it again: a quarantine release, a
/// re-clean. It is read as a delivered JSON object is ([`object_record`]; a stored object holds
/// text only). `None` when the text is not a JSON object.
pub fn raw_record_from_object(text: &str, location: Location) -> Option<RawRecord> {
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(text) else {
        return None;
    };
    // serde_json keeps the object's order (the `preserve_order` feature), so the columns come
    // back in file order and the record hashes as a re-ingest of the same file would.
    Some(object_record(location, obj))
}

/// A header's column names as a JSON array, each spelled as [`RawRecord::to_json`] spells it
/// as a key: the layout the store keeps once for every record that has this header.
pub fn columns_json(columns: &[String]) -> String {
    string_array(columns)
}

/// Texts as a JSON array of strings in the raw record's spelling.
fn string_array(texts: &[String]) -> String {
    let mut out = String::with_capacity(texts.iter().map(|t| t.len() + 3).sum::<usize>() + 2);
    out.push('[');
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        tongban_standards::json_text::push_raw_string(&mut out, t);
    }
    out.push(']');
    out
}

/// Why one record could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum RecordProblem {
    #[error("row has {found} fields but the header has {expected}")]
    Ragged { expected: usize, found: usize },
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: String },
    #[error("not valid JSON: {message}")]
    InvalidJson { message: String },
    #[error("bytes that are not valid {encoding} (shown as �)")]
    Undecodable { encoding: String },
    #[error("contains a NUL character, which no text field may hold")]
    NulCharacter,
    #[error(
        "the record is {bytes} bytes, more than the {MAX_RECORD_BYTES} a record may have (raw value cut)"
    )]
    TooLarge { bytes: usize },
}

/// The largest record accepted: bigger ones are quarantined with their first kilobyte, so one
/// runaway field cannot blow up memory or the store.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Turns a record that no store could hold faithfully into an unreadable item: undecodable
/// bytes, a NUL character (PostgreSQL text cannot contain one), or an oversized record.
fn screen(item: Item, encoding_name: &str) -> Item {
    let Item::Record(r) = item else { return item };
    let bytes: usize = r.values.iter().map(String::len).sum::<usize>()
        + r.columns.iter().map(String::len).sum::<usize>();
    let problem = if bytes > MAX_RECORD_BYTES {
        RecordProblem::TooLarge { bytes }
    } else if r.values.iter().any(|v| v.contains('\u{FFFD}')) {
        RecordProblem::Undecodable {
            encoding: encoding_name.to_string(),
        }
    } else if r
        .values
        .iter()
        .chain(r.columns.iter())
        .any(|v| v.contains('\0'))
    {
        RecordProblem::NulCharacter
    } else {
        return Item::Record(r);
    };
    let mut raw = r.to_json();
    if raw.len() > 1024 {
        let cut = (0..=1024)
            .rev()
            .find(|&i| raw.is_char_boundary(i))
            .unwrap_or(0);
        raw.truncate(cut);
        raw.push('…');
    }
    Item::Unreadable {
        location: r.location,
        raw,
        problem,
    }
}

/// What a reader delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Record(RawRecord),
    Unreadable {
        location: Location,
        raw: String,
        problem: RecordProblem,
    },
}

/// Why a file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E> {
    #[error("cannot read {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is empty")]
    Empty { path: String },
    #[error("{path}: line {line}: {message}")]
    Encoding {
        path: String,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: the header lacks column(s) {missing:?} named by the mapping (the header has {found:?})"
    )]
    MissingColumns {
        path: String,
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("{path}: line {line}: {message}")]
    Csv {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: line 1: the header names column {column:?} twice")]
    DuplicateColumn { path: String, column: String },
    #[error("{path}: {message}")]
    Json { path: String, message: String },
    /// The callback refused a record; reading stopped there.
    #[error(transparent)]
    Sink(E),
}

/// What a reader saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub records: u64,
    pub unreadable: u64,
    /// The file started with a byte-order mark (removed).
    pub had_bom: bool,
}

fn encoding_rs_of(e: Encoding) -> &'static encoding_rs::Encoding {
    match e {
        Encoding::Utf8 => encoding_rs::UTF_8,
        Encoding::Gbk => encoding_rs::GBK,
        Encoding::Gb18030 => encoding_rs::GB18030,
    }
}

/// Checks the first 64 KiB against the declared encoding, so that a file in the wrong encoding
/// is refused before anything is stored rather than ingested as mojibake.
fn sniff_encoding(sample: &[u8], declared: Encoding, path: &str) -> Result<(), (u64, String)> {
    // A multi-byte character may be cut at the end of the sample: `error_len() == None` means
    // the bytes stop in the middle of a character, which is not an error.
    let body = match std::str::from_utf8(sample) {
        Err(e) if e.error_len().is_none() => &sample[..e.valid_up_to()],
        _ => sample,
    };
    let line_of = |offset: usize| body[..offset].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    match declared {
        Encoding::Utf8 => {
            if let Err(e) = std::str::from_utf8(body) {
                let at = e.valid_up_to();
                // Decode from the start of the offending line: the UTF-8 error may sit in the
                // middle of a GBK character.
                let line_start = body[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let hint = if !decodes_cleanly(encoding_rs::GBK, &body[line_start..]) {
                    ""
                } else {
                    "; the file reads cleanly as GBK: declare encoding = \"gbk\""
                };
                return Err((
                    line_of(at),
                    format!(
                        "byte 0x{:02X} is not valid UTF-8 as declared for {path}{hint}",
                        body[at]
                    ),
                ));
            }
        }
        Encoding::Gbk | Encoding::Gb18030 => {
            if let Ok(text) = std::str::from_utf8(body)
                && let Some(at) = text.find(|c: char| !c.is_ascii())
            {
                return Err((
                    line_of(at),
                    format!(
                        "the file is UTF-8 (found {:?}), not {declared} as declared: declare encoding = \"utf-8\"",
                        text[at..].chars().next().unwrap_or(' ')
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether `bytes` decode without a malformed sequence, a character cut at the end allowed.
fn decodes_cleanly(encoding: &'static encoding_rs::Encoding, bytes: &[u8]) -> bool {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3 / 2 + 16);
    let (result, _) = decoder.decode_to_string_without_replacement(bytes, &mut out, false);
    !matches!(result, encoding_rs::DecoderResult::Malformed(..))
}

/// Reads `path` as the mapping declares, calling `on_item` for every record or unreadable record.
pub fn read_file<E>(
    path: &Path,
    mapping: &Mapping,
    on_item: &mut dyn FnMut(Item) -> Result<(), E>,
) -> Result<ReadSummary, ReadError<E>> {
    read_file_counting(path, mapping, None, on_item)
}

/// Counts the bytes it passes on, for a progress bar that knows the file's size.
struct Counting<'a, R> {
    inner: R,
    bytes: Option<&'a AtomicU64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = self.bytes {
            b.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// [`read_file`], adding the number of bytes read so far to `bytes_read` as it goes.
pub fn read_file_counting<E>(
    path: &Path,
    mapping: &Mapping,
    bytes_read: Option<&AtomicU64>,
    on_item: &mut dyn FnMut(Item) -> Result<(), E>,
) -> Result<ReadSummary, ReadError<E>> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: shown.clone(),
        source,
    })?;
    read_stream(file, &shown, mapping, bytes_read, on_item)
}

/// [`read_file_counting`] on any byte stream (an open file, or bytes in memory for the
/// property tests and the fuzz target); `shown` names it in errors.
pub fn read_stream<R: Read, E>(
    mut file: R,
    shown: &str,
    mapping: &Mapping,
    bytes_read: Option<&AtomicU64>,
    on_item: &mut dyn FnMut(Item) -> Result<(), E>,
) -> Result<ReadSummary, ReadError<E>> {
    let shown = shown.to_string();
    let io = |source| ReadError::Io {
        path: shown.clone(),
        source,
    };
    let mut sample = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while filled < sample.len() {
        let n = file.read(&mut sample[filled..]).map_err(io)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    sample.truncate(filled);
    let had_bom = sample.starts_with(&[0xEF, 0xBB, 0xBF]);
    let body = if had_bom { &sample[3..] } else { &sample[..] };
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ReadError::Empty { path: shown });
    }
    sniff_encoding(body, mapping.source.encoding, &shown).map_err(|(line, message)| {
        ReadError::Encoding {
            path: shown.clone(),
            line,
            message,
        }
    })?;
    // Lines end at LF, and a CR before it is taken off the line's last value: a CR LF ending
    // left to the csv crate puts every record's line one too low (rust-csv #395), and
    // departments' exports from Windows and Excel end their lines so. Only a file whose sample
    // has carriage returns and no line feed at all (old Mac files) ends its lines at CR.
    let lines_end_at_cr = body.contains(&b'\r') && !body.contains(&b'\n');
    if let Some(b) = bytes_read {
        b.fetch_add(filled as u64, Ordering::Relaxed);
    }
    let chained = std::io::Cursor::new(sample).chain(Counting {
        inner: file,
        bytes: bytes_read,
    });
    let decoder = DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding_rs_of(mapping.source.encoding)))
        .strip_bom(true)
        .build(chained);
    let encoding_name = mapping.source.encoding.to_string();
    let mut summary = ReadSummary {
        had_bom,
        ..Default::default()
    };
    let mut deliver = |item: Item, summary: &mut ReadSummary| -> Result<(), ReadError<E>> {
        let item = screen(item, &encoding_name);
        match &item {
            Item::Record(_) => summary.records += 1,
            Item::Unreadable { .. } => summary.unreadable += 1,
        }
        on_item(item).map_err(ReadError::Sink)
    };
    match mapping.source.format {
        Format::Csv => read_csv(decoder, mapping, &shown, lines_end_at_cr, &mut |i| {
            deliver(i, &mut summary)
        })?,
        Format::Jsonl => read_jsonl(decoder, &shown, &mut |i| deliver(i, &mut summary))?,
        Format::Json => read_json_array(decoder, &shown, &mut |i| deliver(i, &mut summary))?,
    }
    Ok(summary)
}

fn read_csv<R: Read, E>(
    input: R,
    mapping: &Mapping,
    path: &str,
    lines_end_at_cr: bool,
    deliver: &mut dyn FnMut(Item) -> Result<(), ReadError<E>>,
) -> Result<(), ReadError<E>> {
    let line_feeds = LineFeeds::default();
    let input = line_feeds.watch(input);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .terminator(if lines_end_at_cr {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_reader(input);
    let csv_err = |e: csv::Error| {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        ReadError::Csv {
            path: path.to_string(),
            line,
            message: e.to_string(),
        }
    };
    let header: Arc<[String]> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(ReadError::Empty {
            path: path.to_string(),
        });
    }
    for (i, h) in header.iter().enumerate() {
        if !h.is_empty() && header[..i].contains(h) {
            return Err(ReadError::DuplicateColumn {
                path: path.to_string(),
                column: h.clone(),
            });
        }
    }
    let missing: Vec<String> = mapping
        .missing_columns(&header)
        .into_iter()
        .map(String::from)
        .collect();
    if !missing.is_empty() {
        return Err(ReadError::MissingColumns {
            path: path.to_string(),
            missing,
            found: header.to_vec(),
        });
    }
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).map_err(csv_err)? {
        // The line a record starts on, counted back from where it ends: the csv crate's own
        // start position comes before the blank lines it skipped, and with CR LF endings
        // before the LF that ended the previous line.
        let line = if lines_end_at_cr {
            rec.position().map(|p| p.line()).unwrap_or(0)
        } else {
            let after = rdr.position();
            // After a record with a line feed the reader stands on the next line; after the
            // file's last line without one, on the same line.
            let last = if line_feeds.ended_at(after.byte()) {
                after.line().saturating_sub(1)
            } else {
                after.line()
            };
            let inside: usize = rec.iter().map(|f| f.matches('\n').count()).sum();
            last.saturating_sub(inside as u64)
        };
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue;
        }
        let mut values: Vec<String> = rec.iter().map(String::from).collect();
        // The CR of a CR LF line ending (see `lines_end_at_cr`).
        if let Some(last) = values.last_mut()
            && last.ends_with('\r')
        {
            last.pop();
        }
        if values.len() != header.len() {
            let raw = values.join(",");
            deliver(Item::Unreadable {
                location: Location::Line(line),
                raw,
                problem: RecordProblem::Ragged {
                    expected: header.len(),
                    found: values.len(),
                },
            })?;
            continue;
        }
        deliver(Item::Record(RawRecord {
            location: Location::Line(line),
            columns: header.clone(),
            values,
        }))?;
    }
    Ok(())
}

/// Where the line feeds are in the text a CSV reader has read ahead, so that the line a record
/// ends on can be told from where the reader stands after it: the csv crate's own count cannot
/// say whether the last record ended with a line feed or with the file.
#[derive(Clone, Default)]
struct LineFeeds(std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<u64>>>);

impl LineFeeds {
    fn watch<R: Read>(&self, inner: R) -> Watched<R> {
        Watched {
            inner,
            offset: 0,
            feeds: self.clone(),
        }
    }

    /// Whether the byte just before `offset` is a line feed. Offsets only grow, so the ones
    /// before it are dropped: only the reader's read-ahead is ever kept.
    fn ended_at(&self, offset: u64) -> bool {
        let Some(before) = offset.checked_sub(1) else {
            return false;
        };
        let mut feeds = self.0.borrow_mut();
        while feeds.front().is_some_and(|&f| f < before) {
            feeds.pop_front();
        }
        feeds.front() == Some(&before)
    }
}

/// A reader that notes where its line feeds are (see [`LineFeeds`]).
struct Watched<R> {
    inner: R,
    offset: u64,
    feeds: LineFeeds,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut feeds = self.feeds.0.borrow_mut();
        feeds.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| self.offset + i as u64),
        );
        self.offset += n as u64;
        Ok(n)
    }
}

/// The record behind a JSON object: strings as they are, numbers and booleans as written,
/// nested values as JSON text, nulls left out (a null is a missing value).
fn object_record(location: Location, obj: serde_json::Map<String, serde_json::Value>) -> RawRecord {
    let mut columns = Vec::with_capacity(obj.len());
    let mut values = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        columns.push(k);
        values.push(text);
    }
    RawRecord {
        location,
        columns: columns.into(),
        values,
    }
}

fn json_kind(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
    .to_string()
}

/// Reads JSON lines from any reader (an HTTP body, say); `origin` names it in errors.
pub fn read_ndjson<R: Read, E>(
    input: R,
    origin: &str,
    on_item: &mut dyn FnMut(Item) -> Result<(), E>,
) -> Result<ReadSummary, ReadError<E>> {
    let mut summary = ReadSummary::default();
    read_jsonl(input, origin, &mut |item| {
        let item = screen(item, "UTF-8");
        match &item {
            Item::Record(_) => summary.records += 1,
            Item::Unreadable { .. } => summary.unreadable += 1,
        }
        on_item(item).map_err(ReadError::Sink)
    })?;
    Ok(summary)
}

fn read_jsonl<R: Read, E>(
    input: R,
    path: &str,
    deliver: &mut dyn FnMut(Item) -> Result<(), ReadError<E>>,
) -> Result<(), ReadError<E>> {
    let mut rdr = BufReader::with_capacity(1 << 16, input);
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = rdr.read_line(&mut line).map_err(|source| ReadError::Io {
            path: path.to_string(),
            source,
        })?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let location = Location::Line(n);
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(obj)) => {
                deliver(Item::Record(object_record(location, obj)))?
            }
            Ok(other) => deliver(Item::Unreadable {
                location,
                raw: text.to_string(),
                problem: RecordProblem::NotAnObject {
                    found: json_kind(&other),
                },
            })?,
            Err(e) => deliver(Item::Unreadable {
                location,
                raw: text.to_string(),
                problem: RecordProblem::InvalidJson {
                    message: e.to_string(),
                },
            })?,
        }
    }
}

/// Streams the elements of a top-level JSON array without holding the array in memory.
struct ArraySeed<'a, E> {
    deliver: &'a mut dyn FnMut(Item) -> Result<(), ReadError<E>>,
    failed: &'a mut Option<ReadError<E>>,
}

impl<'de, E> DeserializeSeed<'de> for ArraySeed<'_, E> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E> Visitor<'de> for ArraySeed<'_, E> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0u64;
        while let Some(v) = seq.next_element::<serde_json::Value>()? {
            n += 1;
            let location = Location::Element(n);
            let item = match v {
                serde_json::Value::Object(obj) => Item::Record(object_record(location, obj)),
                other => Item::Unreadable {
                    location,
                    raw: other.to_string(),
                    problem: RecordProblem::NotAnObject {
                        found: json_kind(&other),
                    },
                },
            };
            if let Err(e) = (self.deliver)(item) {
                *self.failed = Some(e);
                return Err(serde::de::Error::custom("stopped by the record sink"));
            }
        }
        Ok(())
    }
}

fn read_json_array<R: Read, E>(
    input: R,
    path: &str,
    deliver: &mut dyn FnMut(Item) -> Result<(), ReadError<E>>,
) -> Result<(), ReadError<E>> {
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, input));
    let result = ArraySeed {
        deliver,
        failed: &mut failed,
    }
    .deserialize(&mut de)
    .and_then(|_| de.end());
    if let Some(e) = failed {
        return Err(e);
    }
    result.map_err(|e| ReadError::Json {
        path: path.to_string(),
        // serde_json's message already ends with the line and column.
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mapping(format: &str, encoding: &str) -> Mapping {
        Mapping::parse(
            &format!(
                r#"
[source]
id = "t"
department = "d"
format = "{format}"
encoding = "{encoding}"
record_key = ["id"]
subject = "person"
[[field]]
column = "name"
field = "name"
clean = "name"
"#
            ),
            "t.toml",
        )
        .unwrap()
    }

    fn read(bytes: &[u8], m: &Mapping) -> Result<(Vec<Item>, ReadSummary), String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let mut items = Vec::new();
        read_file::<std::convert::Infallible>(f.path(), m, &mut |i| {
            items.push(i);
            Ok(())
        })
        .map(|s| (items, s))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn csv_with_bom_and_a_ragged_row() {
        let m = mapping("csv", "utf-8");
        let (items, s) = read(
            "\u{feff}id,name\n1,张三\n2,李四,多余\n3,\"王,五\"\n".as_bytes(),
            &m,
        )
        .unwrap();
        assert!(s.had_bom);
        assert_eq!((s.records, s.unreadable), (2, 1));
        let Item::Record(r) = &items[0] else { panic!() };
        assert_eq!(
            (r.get("id"), r.get("name"), r.location),
            (Some("1"), Some("张三"), Location::Line(2))
        );
        assert_eq!(r.to_json(), r#"{"id":"1","name":"张三"}"#);
        assert!(matches!(
            &items[1],
            Item::Unreadable {
                location: Location::Line(3),
                problem: RecordProblem::Ragged {
                    expected: 2,
                    found: 3
                },
                ..
            }
        ));
        let Item::Record(r) = &items[2] else { panic!() };
        assert_eq!(r.get("name"), Some("王,五"));
    }

    #[test]
    fn gbk_is_decoded_and_a_wrong_declaration_is_caught() {
        let (gbk, _, _) = encoding_rs::GBK.encode("id,name\n1,陳偉\n");
        let (items, _) = read(&gbk, &mapping("csv", "gbk")).unwrap();
        let Item::Record(r) = &items[0] else { panic!() };
        assert_eq!(r.get("name"), Some("陳偉"));
        let err = read(&gbk, &mapping("csv", "utf-8")).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("not valid UTF-8") && err.contains("gbk"),
            "{err}"
        );
        let err = read("id,name\n1,张三\n".as_bytes(), &mapping("csv", "gbk")).unwrap_err();
        assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn a_header_naming_a_column_twice_is_refused() {
        let err = read("id,name,name\n1,a,b\n".as_bytes(), &mapping("csv", "utf-8")).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("\"name\" twice"),
            "{err}"
        );
    }

    #[test]
    fn missing_columns_and_empty_files_are_file_errors() {
        let err = read("id,xm\n1,张三\n".as_bytes(), &mapping("csv", "utf-8")).unwrap_err();
        assert!(err.contains("[\"name\"]") && err.contains("xm"), "{err}");
        let err = read(b"", &mapping("csv", "utf-8")).unwrap_err();
        assert!(err.ends_with("is empty"), "{err}");
        let err = read(b"\xEF\xBB\xBF\n\n", &mapping("jsonl", "utf-8")).unwrap_err();
        assert!(err.ends_with("is empty"), "{err}");
    }

    #[test]
    fn json_lines_keep_going_past_bad_lines() {
        let m = mapping("jsonl", "utf-8");
        let text = "{\"id\":1,\"name\":\"张三\",\"x\":null}\n[1,2]\n{not json\n\n{\"id\":\"4\",\"name\":\"赵六\",\"n\":{\"a\":1}}\n";
        let (items, s) = read(text.as_bytes(), &m).unwrap();
        assert_eq!((s.records, s.unreadable), (2, 2));
        let Item::Record(r) = &items[0] else { panic!() };
        assert_eq!((r.get("id"), r.get("x")), (Some("1"), None));
        assert!(matches!(
            &items[1],
            Item::Unreadable {
                location: Location::Line(2),
                problem: RecordProblem::NotAnObject { .. },
                ..
            }
        ));
        assert!(matches!(
            &items[2],
            Item::Unreadable {
                location: Location::Line(3),
                problem: RecordProblem::InvalidJson { .. },
                ..
            }
        ));
        let Item::Record(r) = &items[3] else { panic!() };
        assert_eq!(
            (r.location, r.get("n")),
            (Location::Line(5), Some("{\"a\":1}"))
        );
    }

    #[test]
    fn nul_characters_and_oversized_records_are_held_not_stored() {
        let m = mapping("jsonl", "utf-8");
        let big = "x".repeat(MAX_RECORD_BYTES + 10);
        let text = format!(
            "{{\"id\":\"1\",\"name\":\"a\\u0000b\"}}\n{{\"id\":\"2\",\"name\":\"{big}\"}}\n{{\"id\":\"3\",\"name\":\"ok\"}}\n"
        );
        let (items, s) = read(text.as_bytes(), &m).unwrap();
        assert_eq!((s.records, s.unreadable), (1, 2));
        assert!(matches!(
            &items[0],
            Item::Unreadable {
                problem: RecordProblem::NulCharacter,
                ..
            }
        ));
        let Item::Unreadable {
            problem: RecordProblem::TooLarge { .. },
            raw,
            ..
        } = &items[1]
        else {
            panic!()
        };
        assert!(raw.len() < 1100, "the raw value is cut");
    }

    #[test]
    fn crlf_lines_are_numbered_as_an_editor_numbers_them() {
        let m = mapping("csv", "utf-8");
        let lf = "id,name\n1,张三\n\n2,李四,多余\n3,\"王,五\"\n4,\"两\n行\"\n5,赵六\n";
        let crlf = lf.replace('\n', "\r\n");
        let (lf_items, _) = read(lf.as_bytes(), &m).unwrap();
        let (crlf_items, s) = read(crlf.as_bytes(), &m).unwrap();
        assert_eq!((s.records, s.unreadable), (4, 1));
        let lines = |items: &[Item]| -> Vec<Location> {
            items
                .iter()
                .map(|i| match i {
                    Item::Record(r) => r.location,
                    Item::Unreadable { location, .. } => *location,
                })
                .collect()
        };
        let expected = [2, 4, 5, 6, 8].map(Location::Line).to_vec();
        assert_eq!(lines(&lf_items), expected);
        assert_eq!(lines(&crlf_items), expected);
        let values = |items: &[Item]| -> Vec<Vec<String>> {
            items
                .iter()
                .filter_map(|i| match i {
                    Item::Record(r) => Some(r.values.clone()),
                    _ => None,
                })
                .collect()
        };
        // The same values, but for the line break inside the quoted value, kept as written.
        let mut from_crlf = values(&crlf_items);
        assert_eq!(from_crlf[2][1], "两\r\n行");
        from_crlf[2][1] = "两\n行".into();
        assert_eq!(from_crlf, values(&lf_items));
        assert_eq!(values(&lf_items)[1], ["3", "王,五"]);
        // The last line without its line break.
        for text in ["id,name\n1,a\n\n2,b", "id,name\r\n1,a\r\n\r\n2,b"] {
            let (items, _) = read(text.as_bytes(), &m).unwrap();
            assert_eq!(
                lines(&items),
                [2, 4].map(Location::Line).to_vec(),
                "{text:?}"
            );
        }
        // Old Mac files end their lines with CR alone.
        let (cr_items, s) = read(lf.replace('\n', "\r").as_bytes(), &m).unwrap();
        assert_eq!((s.records, s.unreadable, cr_items.len()), (4, 1, 5));
    }

    #[test]
    fn json_arrays_stream_and_report_where_they_break() {
        let m = mapping("json", "utf-8");
        let (items, s) = read(br#"[{"id":"1","name":"a"}, 7, {"id":"3"}]"#, &m).unwrap();
        assert_eq!((s.records, s.unreadable, items.len()), (2, 1, 3));
        let err = read(br#"{"id":"1"}"#, &m).unwrap_err();
        assert!(err.contains("a JSON array"), "{err}");
        let err = read(b"[{\"id\":\"1\"},\n{\"id\":", &m).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    proptest::proptest! {
        /// The store keeps a record as its values and its header (`values_json`, `columns_json`)
        /// and splices the object back: byte for byte `to_json`, for any text, with fewer or more
        /// values than columns, and a column named twice.
        #[test]
        fn values_and_header_give_the_object_back(
            columns in proptest::collection::vec("[\\PC\"\\\\\t\n\u{0}\u{1f}]{0,6}", 0..6),
            values in proptest::collection::vec("[\\PC\"\\\\\t\n\u{0}\u{7f}]{0,6}", 0..8),
        ) {
            let raw = RawRecord {
                location: Location::Line(2),
                columns: columns.into(),
                values,
            };
            let spliced = tongban_store::raw_layout::splice(&columns_json(&raw.columns), &raw.values_json());
            proptest::prop_assert_eq!(spliced, Some(raw.to_json()));
        }

        /// Any bytes, in any declared format and encoding, read without a panic: either an
        /// error for the whole file or items that each are a record or an unreadable record
        /// with its reason; a record holds no NUL and no replacement character, and a CSV
        /// record has as many values as its header has columns.
        #[test]
        fn any_bytes_read_without_a_panic(
            head in proptest::sample::select(vec![
                &b""[..], b"id,name\n", b"\xEF\xBB\xBFid,name\n", b"[", b"{\"id\":", b"id,id\n",
            ]),
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(b",\"\n\r{}[]:0 \\".to_vec()),
                    proptest::sample::select(vec![0xE5u8, 0xBC, 0xA0, 0xD5, 0xC5, 0x00]),
                ],
                0..400,
            ),
            format in proptest::sample::select(vec!["csv", "jsonl", "json"]),
            encoding in proptest::sample::select(vec!["utf-8", "gbk", "gb18030"]),
        ) {
            let m = mapping(format, encoding);
            let bytes: Vec<u8> = head.iter().chain(body.iter()).copied().collect();
            let mut items = Vec::new();
            let read = read_stream::<_, std::convert::Infallible>(
                std::io::Cursor::new(&bytes), "any", &m, None, &mut |i| {
                    items.push(i);
                    Ok(())
                },
            );
            if let Ok(summary) = read {
                proptest::prop_assert_eq!((summary.records + summary.unreadable) as usize, items.len());
                for item in &items {
                    if let Item::Record(r) = item {
                        proptest::prop_assert!(r.values.iter().all(|v| !v.contains('\0') && !v.contains(char::REPLACEMENT_CHARACTER)), "a record with a NUL or an undecodable byte");
                        if format == "csv" {
                            proptest::prop_assert_eq!(r.values.len(), r.columns.len());
                        }
                    }
                }
            }
        }
    }
}
