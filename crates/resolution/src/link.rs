//! `tongban link`: the linker on arbitrary CSV files, configured by a TOML file.
//!
//! This module turns a `link.toml` into [`Settings`], reads one input (deduplicate) or two (link)
//! into a [`Table`] holding only the columns the configuration uses, and derives a truth label
//! per record when the configuration says how (a column, or a pattern over the record id), so a
//! run on a labelled benchmark such as FEBRL can score itself. It is the crate's only module that
//! reads files; every error names the file and line, the setting, and the value.

use crate::blocking::{KeyPart, Rule, Transform};
use crate::compare::Kind;
use crate::linker::{Comparison, Settings};
use crate::table::Table;
use crate::{FastMap, fast_map};
use rayon::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {setting}: {message}")]
    Invalid {
        file: String,
        setting: String,
        message: String,
    },
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    Input {
        file: String,
        line: u64,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    id_column: String,
    #[serde(default = "default_threshold")]
    threshold: f64,
    #[serde(default)]
    max_block: Option<usize>,
    #[serde(default)]
    u_sample: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    cannot_link: Option<String>,
    #[serde(default, rename = "comparison")]
    comparisons: Vec<RawComparison>,
    #[serde(default)]
    blocking: Vec<RawRule>,
    #[serde(default)]
    truth: Option<RawTruth>,
}

fn default_threshold() -> f64 {
    0.9
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComparison {
    column: String,
    kind: Kind,
    #[serde(default)]
    tf: bool,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    keys: Vec<String>,
    #[serde(default = "yes")]
    train: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTruth {
    #[serde(default)]
    column: Option<String>,
    #[serde(default)]
    id_pattern: Option<String>,
}

/// Where a record's true entity comes from, for scoring.
#[derive(Debug, Clone)]
pub enum TruthSource {
    Column(String),
    IdPattern(regex::Regex),
}

/// A parsed configuration, still independent of any input file.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub file: String,
    pub id_column: String,
    /// The columns a run reads, in table order.
    pub columns: Vec<String>,
    pub settings: Settings,
    pub truth: Option<TruthSource>,
}

/// A blocking key part as written: `col`, `col:N` (first N characters) or `pinyin(col)`.
pub(crate) fn parse_key(text: &str) -> Result<(String, Transform), String> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix("pinyin(").and_then(|r| r.strip_suffix(')')) {
        return Ok((inner.trim().to_string(), Transform::Pinyin));
    }
    if let Some((col, n)) = t.rsplit_once(':') {
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{t}`: the part after ':' must be a number of characters"))?;
        if n == 0 {
            return Err(format!(
                "`{t}`: a prefix of 0 characters would put every record in one block"
            ));
        }
        return Ok((col.trim().to_string(), Transform::Prefix(n)));
    }
    if t.is_empty() {
        return Err("an empty key part".into());
    }
    Ok((t.to_string(), Transform::Whole))
}

/// A configuration file's text, or an error naming the file.
pub(crate) fn read_config(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: file.clone(),
        message: e.to_string(),
    })?;
    Ok((file, text))
}

/// TOML into `T`, a syntax or shape error naming the file and line.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        ConfigError::Parse {
            file: match line {
                Some(l) => format!("{file}:{l}"),
                None => file.to_string(),
            },
            message: e.message().to_string(),
        }
    })
}

impl LinkConfig {
    pub fn load(path: &Path) -> Result<LinkConfig, ConfigError> {
        let (file, text) = read_config(path)?;
        LinkConfig::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<LinkConfig, ConfigError> {
        let raw: RawConfig = parse_toml(file, text)?;
        let invalid = |setting: &str, message: String| ConfigError::Invalid {
            file: file.to_string(),
            setting: setting.to_string(),
            message,
        };
        if !(raw.threshold > 0.0 && raw.threshold < 1.0) {
            return Err(invalid(
                "threshold",
                format!(
                    "{} is not a probability strictly between 0 and 1",
                    raw.threshold
                ),
            ));
        }
        if raw.comparisons.is_empty() {
            return Err(invalid(
                "comparison",
                "at least one [[comparison]] is needed".into(),
            ));
        }
        if raw.blocking.is_empty() {
            return Err(invalid(
                "blocking",
                "at least one [[blocking]] rule is needed; comparing all pairs does not scale"
                    .into(),
            ));
        }
        let mut columns: Vec<String> = Vec::new();
        let mut index = |name: &str| -> usize {
            if let Some(i) = columns.iter().position(|c| c == name) {
                i
            } else {
                columns.push(name.to_string());
                columns.len() - 1
            }
        };
        let mut comparisons = Vec::new();
        for (i, c) in raw.comparisons.iter().enumerate() {
            if c.column.trim().is_empty() {
                return Err(invalid(
                    &format!("comparison[{i}].column"),
                    "is empty".into(),
                ));
            }
            comparisons.push(Comparison {
                name: c.name.clone().unwrap_or_else(|| c.column.clone()),
                column: index(c.column.trim()),
                kind: c.kind,
                tf: c.tf,
            });
        }
        if comparisons.len() > crate::model::MAX_COMPARISONS {
            return Err(invalid(
                "comparison",
                format!(
                    "{} comparisons; at most {}",
                    comparisons.len(),
                    crate::model::MAX_COMPARISONS
                ),
            ));
        }
        let mut rules = Vec::new();
        for (i, r) in raw.blocking.iter().enumerate() {
            if r.keys.is_empty() {
                return Err(invalid(&format!("blocking[{i}].keys"), "is empty".into()));
            }
            let mut parts = Vec::new();
            for k in &r.keys {
                let (col, transform) =
                    parse_key(k).map_err(|m| invalid(&format!("blocking[{i}].keys"), m))?;
                parts.push(KeyPart {
                    column: index(&col),
                    transform,
                });
            }
            rules.push(Rule {
                text: r.keys.join(" + "),
                parts,
                train: r.train,
            });
        }
        if !rules.iter().any(|r| r.train) {
            return Err(invalid(
                "blocking",
                "every rule has train = false; EM needs at least one rule to learn from".into(),
            ));
        }
        let cannot_link = raw.cannot_link.as_deref().map(&mut index);
        let mut settings = Settings::new(comparisons, rules);
        settings.threshold = raw.threshold;
        settings.cannot_link = cannot_link;
        if let Some(m) = raw.max_block {
            if m < 2 {
                return Err(invalid(
                    "max_block",
                    format!("{m}: a block needs at least two records"),
                ));
            }
            settings.max_block = m;
        }
        if let Some(u) = raw.u_sample {
            settings.u_sample = u.max(1);
        }
        if let Some(s) = raw.seed {
            settings.seed = s;
        }
        let truth = match raw.truth {
            None => None,
            Some(RawTruth {
                column: Some(c),
                id_pattern: None,
            }) => Some(TruthSource::Column(c)),
            Some(RawTruth {
                column: None,
                id_pattern: Some(p),
            }) => {
                let re = regex::Regex::new(&p)
                    .map_err(|e| invalid("truth.id_pattern", format!("`{p}`: {e}")))?;
                if re.captures_len() < 2 {
                    return Err(invalid(
                        "truth.id_pattern",
                        format!("`{p}` needs a capture group: the true entity is what it captures"),
                    ));
                }
                Some(TruthSource::IdPattern(re))
            }
            Some(_) => {
                return Err(invalid(
                    "truth",
                    "give exactly one of `column` and `id_pattern`".into(),
                ));
            }
        };
        if let Some(TruthSource::Column(c)) = &truth {
            index(c);
        }
        Ok(LinkConfig {
            file: file.to_string(),
            id_column: raw.id_column,
            columns,
            settings,
            truth,
        })
    }
}

/// Records read from the inputs, with their truth labels when configured.
#[derive(Debug)]
pub struct Loaded {
    pub table: Table,
    /// Interned true entity per row, when the configuration names a truth.
    pub truth: Option<Vec<Option<u32>>>,
    pub inputs: Vec<PathBuf>,
}

/// Inputs at least this large, with no quote character anywhere, are parsed in pieces on all
/// cores (see [`read_input`]); smaller ones are not worth the second copy.
const PARALLEL_FROM: usize = 8 << 20;

/// Read one input (deduplicate) or two (link) into a table.
pub fn load(config: &LinkConfig, inputs: &[PathBuf]) -> Result<Loaded, ConfigError> {
    load_with(config, inputs, PARALLEL_FROM)
}

fn load_with(
    config: &LinkConfig,
    inputs: &[PathBuf],
    parallel_from: usize,
) -> Result<Loaded, ConfigError> {
    if inputs.is_empty() || inputs.len() > 2 {
        return Err(ConfigError::Invalid {
            file: config.file.clone(),
            setting: "--input".into(),
            message: format!(
                "{} inputs given; give one to deduplicate or two to link",
                inputs.len()
            ),
        });
    }
    let mut table = Table::new(config.columns.clone());
    let mut truth_labels: Option<Vec<Option<u32>>> = config.truth.as_ref().map(|_| Vec::new());
    let mut interned: FastMap<String, u32> = fast_map();
    for (n, path) in inputs.iter().enumerate() {
        if n == 1 {
            table.split = Some(table.len());
        }
        read_input(
            config,
            path,
            &mut table,
            truth_labels.as_mut(),
            &mut interned,
            parallel_from,
        )?;
    }
    Ok(Loaded {
        table,
        truth: truth_labels,
        inputs: inputs.to_vec(),
    })
}

/// Where the configured columns sit in an input's header.
struct Layout {
    file: String,
    id_at: usize,
    at: Vec<usize>,
    truth_at: Option<usize>,
    width: usize,
    /// Where lines end (see [`line_terminator`]).
    terminator: csv::Terminator,
}

/// Rows read from an input or a piece of one: the rows, each row's line in the file, and each
/// row's truth label as text (numbered once every piece is read, in the order they first
/// appear). A label the id pattern captures as empty counts as none.
struct Part {
    table: Table,
    lines: Vec<u64>,
    /// Each row's truth label as text ("" for none), when a truth is configured.
    labels: crate::table::Column,
}

impl Part {
    fn new(table: Table) -> Part {
        Part {
            table,
            lines: Vec::new(),
            labels: Default::default(),
        }
    }

    /// Empty, keeping the memory it holds.
    fn clear(&mut self) {
        self.table.clear();
        self.lines.clear();
        self.labels.clear();
    }
}

/// Every record `reader` gives, appended to `part`. `lines_before` is added to the reader's line
/// numbers, so that a reader over a piece of a file reports the file's lines.
fn read_part<R: std::io::Read>(
    config: &LinkConfig,
    layout: &Layout,
    reader: &mut csv::Reader<R>,
    lines_before: u64,
    part: &mut Part,
) -> Result<(), ConfigError> {
    let input = |line: u64, message: String| ConfigError::Input {
        file: layout.file.clone(),
        line,
        message,
    };
    let mut record = csv::StringRecord::new();
    let mut locations = match &config.truth {
        Some(TruthSource::IdPattern(re)) => Some(re.capture_locations()),
        _ => None,
    };
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = lines_before + e.position().map_or(0, |p| p.line());
                // The reader's own wording names its record, line and byte, which for a piece
                // of a file are the piece's; the line given with the error is the file's.
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => format!(
                        "field {} is not valid UTF-8 after its first {} bytes",
                        err.field() + 1,
                        err.valid_up_to()
                    ),
                    _ => e.to_string(),
                };
                return Err(input(line, message));
            }
        }
        // A line of a CR alone is the blank line of a CR LF file, which the reader (ending
        // lines at LF) hands over as a record of one empty field.
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue;
        }
        let line = lines_before + record.position().map_or(0, |p| p.line());
        if record.len() != layout.width {
            return Err(input(
                line,
                format!(
                    "a record of {} fields where the header has {}",
                    record.len(),
                    layout.width
                ),
            ));
        }
        let id = record.get(layout.id_at).unwrap_or("").trim();
        if id.is_empty() {
            return Err(input(
                line,
                format!("column `{}` (the record id) is empty", config.id_column),
            ));
        }
        let values: Vec<&str> = layout
            .at
            .iter()
            .map(|&i| record.get(i).unwrap_or("").trim())
            .collect();
        if !part.table.push(id, &values) {
            return Err(input(line, "more than 4 GiB of text in one column".into()));
        }
        part.lines.push(line);
        if config.truth.is_some() {
            let label = match (&config.truth, layout.truth_at, locations.as_mut()) {
                (_, Some(i), _) => {
                    Some(record.get(i).unwrap_or("").trim()).filter(|s| !s.is_empty())
                }
                (Some(TruthSource::IdPattern(re)), None, Some(locs)) => re
                    .captures_read(locs, id)
                    .and_then(|_| locs.get(1))
                    .map(|(s, e)| &id[s..e]),
                _ => None,
            };
            if !part.labels.push(label.unwrap_or("")) {
                return Err(input(line, "more than 4 GiB of truth labels".into()));
            }
        }
    }
    Ok(())
}

/// The start of the first line that begins at or after byte `pos` of `file` and before byte
/// `before`, if one does.
fn line_start_from(
    file: &mut std::fs::File,
    pos: u64,
    before: u64,
) -> std::io::Result<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    // The byte before `pos` says whether a line begins right at it.
    let mut at = pos.saturating_sub(1);
    file.seek(SeekFrom::Start(at))?;
    let mut window = vec![0u8; 64 << 10];
    // Looked for only up to `before` (the next cut): a file whose lines end in CR alone, or one
    // very long line, would otherwise be read to its end once per cut.
    while at < before {
        let n = file.read(&mut window)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = window[..n].iter().position(|&b| b == b'\n') {
            let start = at + i as u64 + 1;
            return Ok((start < before).then_some(start));
        }
        at += n as u64;
    }
    Ok(None)
}

/// Whether `path` holds a quote character anywhere.
/// Where the lines of `path` end: at LF, the CR of a CR LF ending left in the last field to be
/// trimmed with it (the csv crate's own CR LF handling numbers every line one too low,
/// rust-csv #395); only a file whose first 64 KiB hold a CR and no LF (old Mac files) ends its
/// lines at CR.
fn line_terminator(path: &Path) -> std::io::Result<csv::Terminator> {
    use std::io::Read;
    let mut sample = Vec::with_capacity(1 << 16);
    std::fs::File::open(path)?
        .take(1 << 16)
        .read_to_end(&mut sample)?;
    Ok(if sample.contains(&b'\r') && !sample.contains(&b'\n') {
        csv::Terminator::CRLF
    } else {
        csv::Terminator::Any(b'\n')
    })
}

fn has_quote(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(false);
        }
        if block[..n].contains(&b'"') {
            return Ok(true);
        }
    }
}

/// The body of `path` (from byte `body_at`, after `header_lines` lines of header), which holds
/// no quote character, read in pieces cut at line ends and appended to `into` in file order.
/// Each piece is read from the file and parsed on a core of its own, a round of pieces (one per
/// core) at a time, so that besides the rows only a round's pieces are ever in memory.
fn read_in_pieces(
    config: &LinkConfig,
    layout: &Layout,
    path: &Path,
    body_at: u64,
    header_lines: u64,
    into: &mut Part,
) -> Result<(), ConfigError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| ConfigError::Io {
        file: layout.file.clone(),
        message: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let cores = rayon::current_num_threads().max(1);
    // Pieces of at most 16 MiB, and at least four a core: a round of pieces is what is held
    // besides the rows, so it must not grow with the file.
    let body = size.saturating_sub(body_at);
    let pieces = (4 * cores as u64).max(body.div_ceil(16 << 20));
    let step = body.div_ceil(pieces).max(1);
    let mut cuts = vec![body_at];
    for k in 1..pieces {
        let from = body_at + k * step;
        if from >= size {
            break;
        }
        let next = (from + step).min(size);
        if let Some(at) = line_start_from(&mut file, from, next).map_err(io)?
            && cuts.last().is_some_and(|&last| at > last)
        {
            cuts.push(at);
        }
    }
    cuts.push(size);
    let ranges: Vec<(u64, u64)> = cuts
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(start, end)| end > start)
        .collect();
    // Each core keeps its piece's bytes and rows between rounds: fresh memory is slow to touch
    // for the first time (on this repository's VM, clearing pages took a sixth of a million
    // records' samples), so the same buffers are filled again rather than allocated anew.
    let mut buffers: Vec<(Vec<u8>, Part)> = (0..cores)
        .map(|_| (Vec::new(), Part::new(Table::new(config.columns.clone()))))
        .collect();
    let body = body.max(1);
    let mut lines_before = header_lines;
    for round in ranges.chunks(cores) {
        let read: Vec<Result<u64, ConfigError>> = round
            .par_iter()
            .zip(buffers.par_iter_mut())
            .map(|(&(start, end), (piece, part))| {
                let mut file = std::fs::File::open(path).map_err(io)?;
                file.seek(SeekFrom::Start(start)).map_err(io)?;
                piece.clear();
                piece.resize((end - start) as usize, 0);
                file.read_exact(piece).map_err(io)?;
                let newlines = piece.iter().filter(|&&b| b == b'\n').count() as u64;
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .has_headers(false)
                    .terminator(layout.terminator)
                    .from_reader(piece.as_slice());
                part.clear();
                read_part(config, layout, &mut reader, 0, part)?;
                Ok(newlines)
            })
            .collect();
        // Line numbers are the file's: each piece's are moved past the lines before it, and of
        // several failing pieces the first in the file is the one reported.
        for (newlines, (_, part)) in read.into_iter().zip(&buffers) {
            let newlines = match newlines {
                Ok(newlines) => newlines,
                Err(ConfigError::Input {
                    file,
                    line,
                    message,
                }) => {
                    return Err(ConfigError::Input {
                        file,
                        line: line + lines_before,
                        message,
                    });
                }
                Err(e) => return Err(e),
            };
            if into.lines.is_empty() {
                // Room for the whole file, estimated from its first piece, so that the rows
                // are not copied each time their columns double.
                let bytes = round
                    .first()
                    .map_or(1, |&(start, end)| (end - start).max(1));
                into.table
                    .reserve_like(&part.table, body as f64 / bytes as f64);
                into.lines.reserve(
                    (part.lines.len() as f64 * body as f64 / bytes as f64 * 1.05) as usize,
                );
            }
            if !into.table.append(&part.table) || !into.labels.append(&part.labels) {
                return Err(ConfigError::Input {
                    file: layout.file.clone(),
                    line: part.lines.first().map_or(0, |l| l + lines_before),
                    message: "more than 4 GiB of text in one column".into(),
                });
            }
            into.lines
                .extend(part.lines.iter().map(|l| l + lines_before));
            lines_before += newlines;
        }
    }
    Ok(())
}

fn read_input(
    config: &LinkConfig,
    path: &Path,
    table: &mut Table,
    truth: Option<&mut Vec<Option<u32>>>,
    interned: &mut FastMap<String, u32>,
    parallel_from: usize,
) -> Result<(), ConfigError> {
    let file = path.display().to_string();
    let io = |e: csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        ConfigError::Input {
            file: file.clone(),
            line,
            message: e.to_string(),
        }
    };
    // Fields are trimmed as they are read rather than by the reader, whose trimming rebuilds
    // every record. Record lengths are checked against the header's by `read_part`.
    let terminator = line_terminator(path).map_err(|e| ConfigError::Io {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .terminator(terminator)
        .from_path(path)
        .map_err(|e| ConfigError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(io)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let find = |name: &str| -> Result<usize, ConfigError> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ConfigError::Input {
                file: file.clone(),
                line: 1,
                message: format!(
                    "the configuration names column `{name}`, which the header lacks (it has: {})",
                    header.join(", ")
                ),
            })
    };
    let layout = Layout {
        file: file.clone(),
        id_at: find(&config.id_column)?,
        at: config
            .columns
            .iter()
            .map(|c| find(c))
            .collect::<Result<_, _>>()?,
        truth_at: match &config.truth {
            Some(TruthSource::Column(c)) => Some(find(c)?),
            _ => None,
        },
        width: header.len(),
        terminator,
    };
    // Without a quote character no record spans lines, so a large file's body can be cut at
    // any line end and the pieces parsed on all cores (a million FEBRL-style records: 0.5–0.6 s
    // instead of 0.8–1.3 s). Otherwise it is streamed through one reader.
    let body_at = reader.position().byte();
    let header_lines = reader.position().line().saturating_sub(1);
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let in_pieces = size >= parallel_from as u64
        && !has_quote(path).map_err(|e| ConfigError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
    let first_row = table.len();
    let mut part = Part::new(std::mem::take(table));
    let read = if in_pieces {
        read_in_pieces(config, &layout, path, body_at, header_lines, &mut part)
    } else {
        read_part(config, &layout, &mut reader, 0, &mut part)
    };
    drop(reader);
    let Part {
        table: read_table,
        lines,
        labels,
    } = part;
    *table = read_table;
    read?;
    if let Some(truth) = truth {
        // Numbered in the order the labels first appear in the inputs.
        truth.reserve(labels.len());
        for i in 0..labels.len() {
            let label = labels.get(i);
            truth.push((!label.is_empty()).then(|| match interned.get(label) {
                Some(&n) => n,
                None => {
                    let n = interned.len() as u32;
                    interned.insert(label.to_string(), n);
                    n
                }
            }));
        }
    }
    // Ids must be unique within a file, or the output could not say which record is which.
    // Checked once at the end by sorting the ids' hashes with their rows: equal ids have equal
    // hashes, so they end up in one run of equal hashes, where the strings are compared. Sorting
    // the strings themselves (through their rows) took 4 % of `tongban link`'s time at a million
    // records; a set of a million strings would take 32 MB.
    let hasher = crate::fast_hasher();
    let mut order: Vec<(u64, u32)> = (first_row..table.len())
        .into_par_iter()
        .map(|row| {
            use std::hash::BuildHasher;
            (hasher.hash_one(table.ids.get(row)), row as u32)
        })
        .collect();
    order.par_sort_unstable();
    // The first line that repeats an earlier line's id is the one reported.
    let mut repeated: Option<usize> = None;
    for run in order
        .chunk_by(|x, y| x.0 == y.0)
        .filter(|run| run.len() > 1)
    {
        // A run holds rows in file order: nearly always one row, two for a duplicate, and as
        // many as the file has lines when an id column holds one value throughout. The first
        // row equal to one before it is the run's answer, found after one comparison in that
        // last case (checking every pair of a million equal ids would never end).
        let first_repeat = (1..run.len()).find(|&x| {
            let id = table.ids.get(run[x].1 as usize);
            run[..x].iter().any(|e| table.ids.get(e.1 as usize) == id)
        });
        if let Some(x) = first_repeat {
            let later = run[x].1 as usize;
            repeated = Some(repeated.map_or(later, |r| r.min(later)));
        }
    }
    if let Some(second) = repeated {
        return Err(ConfigError::Input {
            file,
            line: lines[second - first_row],
            message: format!(
                "record id `{}` appears twice in this file",
                table.ids.get(second)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEBRL: &str = r#"
id_column = "rec_id"
threshold = 0.9

[[comparison]]
column = "given_name"
kind = "name"
tf = true

[[comparison]]
column = "surname"
kind = "name"

[[blocking]]
keys = ["surname:3", "given_name"]

[truth]
id_pattern = "^rec-(\\d+)-"
"#;

    #[test]
    fn parses_a_config() {
        let c = LinkConfig::parse("link.toml", FEBRL).unwrap();
        assert_eq!(c.columns, vec!["given_name", "surname"]);
        assert_eq!(
            c.settings.rules[0].parts[0],
            KeyPart {
                column: 1,
                transform: Transform::Prefix(3)
            }
        );
        assert!(matches!(c.truth, Some(TruthSource::IdPattern(_))));
    }

    #[test]
    fn errors_name_the_file_line_and_setting() {
        let e = LinkConfig::parse(
            "link.toml",
            "id_column = \"x\"\n[[comparison]]\ncolumn = \"a\"\nkind = \"fuzzy\"\n",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("link.toml:4"), "{s}");
        assert!(s.contains("fuzzy"), "{s}");
        let e =
            LinkConfig::parse("link.toml", &FEBRL.replace("surname:3", "surname:x")).unwrap_err();
        assert!(e.to_string().contains("blocking[0].keys"), "{e}");
        let e = LinkConfig::parse("link.toml", &FEBRL.replace("0.9", "1.5")).unwrap_err();
        assert!(e.to_string().contains("threshold"), "{e}");
    }

    #[test]
    fn inputs_report_missing_columns_and_duplicate_ids() {
        let dir = tempfile::tempdir().unwrap();
        let c = LinkConfig::parse("link.toml", FEBRL).unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "rec_id, given_name\nrec-1-org, ann\n").unwrap();
        let e = load(&c, std::slice::from_ref(&a)).unwrap_err().to_string();
        assert!(e.contains("a.csv:1") && e.contains("`surname`"), "{e}");
        std::fs::write(
            &a,
            "rec_id, given_name, surname\nrec-1-org, ann, lee\nrec-1-org, ann, lee\n",
        )
        .unwrap();
        let e = load(&c, std::slice::from_ref(&a)).unwrap_err().to_string();
        assert!(e.contains("a.csv:3") && e.contains("twice"), "{e}");
        // Two ids repeated far apart: the first line that repeats an earlier id is named.
        let mut text = String::from("rec_id, given_name, surname\n");
        for i in 0..3_000 {
            let id = match i {
                1_998 => "rec-10-org".to_string(),
                1_498 => "rec-1200-org".to_string(),
                _ => format!("rec-{i}-org"),
            };
            text.push_str(&format!("{id}, ann{i}, lee\n"));
        }
        std::fs::write(&a, text).unwrap();
        let e = load(&c, std::slice::from_ref(&a)).unwrap_err().to_string();
        assert!(
            e.contains("a.csv:1500:") && e.contains("`rec-1200-org` appears twice"),
            "{e}"
        );
        // An id column holding one value throughout: the second line is named, at once.
        let mut text = String::from("rec_id, given_name, surname\n");
        for i in 0..200_000 {
            text.push_str(&format!("rec-1-org, ann{i}, lee\n"));
        }
        std::fs::write(&a, text).unwrap();
        let e = load(&c, std::slice::from_ref(&a)).unwrap_err().to_string();
        assert!(e.contains("a.csv:3:") && e.contains("twice"), "{e}");
        std::fs::write(&a, "rec_id, given_name, surname\nrec-1-org, ann, lee\nrec-1-dup-0, anne, lee\nrec-2-org, bo, wu\n").unwrap();
        let loaded = load(&c, &[a]).unwrap();
        assert_eq!(loaded.table.len(), 3);
        assert_eq!(loaded.truth.unwrap(), vec![Some(0), Some(0), Some(1)]);
    }

    /// A FEBRL-like input of `rows` records with a few duplicates.
    fn febrl_like(rows: usize) -> String {
        let mut text = String::from("rec_id,given_name,surname\n");
        for i in 0..rows {
            let (id, given) = if i % 3 == 2 {
                (
                    format!("rec-{}-dup-0", i - 1),
                    format!("nam{}", (i - 1) % 97),
                )
            } else {
                (format!("rec-{i}-org"), format!("name{}", i % 97))
            };
            text.push_str(&format!("{id},{given},sur{}\n", i % 13));
        }
        text
    }

    /// Patterns of up to ten comparisons are held in four bytes and longer ones in eight: both
    /// paths must give what two comparisons give when the others only ever compare missing
    /// values (level 0, weight 0). The two that count come last, so that with eleven their
    /// levels sit in the pattern's bits 27 to 32, which four bytes would cut.
    #[test]
    fn eleven_comparisons_give_the_clusters_of_two() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        // Every third row repeats the one before it, with a typo in the given name now and then.
        let mut text = String::from("rec_id,given_name,surname,note\n");
        for i in 0..3_000usize {
            let person = if i % 3 == 2 { i - 1 } else { i };
            let mut given = format!(
                "{}{}",
                ["ann", "bob", "cat", "dan", "eve"][person % 5],
                person % 211
            );
            if i % 3 == 2 && i % 4 == 0 {
                given.insert(1, 'x');
            }
            let id = if i % 3 == 2 {
                format!("rec-{person}-dup-0")
            } else {
                format!("rec-{person}-org")
            };
            text.push_str(&format!("{id},{given},s{},\n", person % 37));
        }
        std::fs::write(&a, text).unwrap();
        let with_empty = |extra: usize| {
            let config = format!(
                "id_column = \"rec_id\"\nthreshold = 0.9\n\n{}\
                 [[comparison]]\ncolumn = \"given_name\"\nkind = \"name\"\ntf = true\n\n\
                 [[comparison]]\ncolumn = \"surname\"\nkind = \"name\"\n\n\
                 [[blocking]]\nkeys = [\"surname\"]\n",
                "[[comparison]]\ncolumn = \"note\"\nkind = \"exact\"\n\n".repeat(extra)
            );
            let c = LinkConfig::parse("link.toml", &config).unwrap();
            assert_eq!(c.settings.comparisons.len(), 2 + extra);
            let loaded = load(&c, std::slice::from_ref(&a)).unwrap();
            crate::linker::run(&loaded.table, &c.settings, &mut |_| {}).unwrap()
        };
        let two = with_empty(0);
        assert!(two.stats.linked_pairs > 0);
        for extra in [8, 9] {
            let more = with_empty(extra);
            assert_eq!(more.labels, two.labels, "{} comparisons", 2 + extra);
            assert_eq!(more.pairs, two.pairs);
            assert_eq!(more.weights, two.weights);
        }
    }

    #[test]
    fn inputs_read_in_pieces_read_as_in_one_go() {
        let dir = tempfile::tempdir().unwrap();
        let c = LinkConfig::parse("link.toml", FEBRL).unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        std::fs::write(&a, febrl_like(5_000)).unwrap();
        std::fs::write(&b, febrl_like(300).replace("rec-", "rec-b")).unwrap();
        let inputs = [a.clone(), b.clone()];
        let whole = load_with(&c, &inputs, usize::MAX).unwrap();
        let pieces = load_with(&c, &inputs, 0).unwrap();
        assert_eq!(whole.table.len(), 5_300);
        assert_eq!(pieces.table.split, whole.table.split);
        for i in 0..whole.table.len() {
            assert_eq!(pieces.table.ids.get(i), whole.table.ids.get(i));
            for col in 0..whole.table.columns.len() {
                assert_eq!(
                    pieces.table.columns[col].get(i),
                    whole.table.columns[col].get(i)
                );
            }
        }
        assert_eq!(pieces.truth, whole.truth);
        // A quoted field may span lines: such a file is read in one go, pieces or not.
        let mut text = febrl_like(4_000);
        text.push_str("rec-9999-org,\"ann\nmarie\",lee\n");
        text.push_str(
            &febrl_like(1_000)
                .replace("rec_id,given_name,surname\n", "")
                .replace("rec-", "rec-q"),
        );
        std::fs::write(&a, &text).unwrap();
        let whole = load_with(&c, std::slice::from_ref(&a), usize::MAX).unwrap();
        let pieces = load_with(&c, std::slice::from_ref(&a), 0).unwrap();
        assert_eq!(whole.table.len(), 5_001);
        assert_eq!(pieces.table.len(), 5_001);
        assert_eq!(pieces.table.columns[0].get(4_000), "ann\nmarie");
        assert_eq!(pieces.truth, whole.truth);
        // Lines ending in CR alone, or CR LF: the same rows either way.
        for end in ["\r", "\r\n"] {
            std::fs::write(&a, febrl_like(3_000).replace('\n', end)).unwrap();
            let whole = load_with(&c, std::slice::from_ref(&a), usize::MAX).unwrap();
            let pieces = load_with(&c, std::slice::from_ref(&a), 0).unwrap();
            assert_eq!(whole.table.len(), 3_000);
            assert_eq!(pieces.table.len(), 3_000);
            assert_eq!(pieces.table.ids.get(2_999), whole.table.ids.get(2_999));
            assert_eq!(pieces.truth, whole.truth);
        }
        // Errors name the file's own line, wherever the piece that holds it starts.
        let mut bytes = febrl_like(5_000).into_bytes();
        bytes.extend_from_slice(b"rec-9999-org,an\xffn,lee\n");
        std::fs::write(&a, &bytes).unwrap();
        for parallel_from in [0, usize::MAX] {
            let e = load_with(&c, std::slice::from_ref(&a), parallel_from)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("a.csv:5002:") && e.contains("field 2 is not valid UTF-8"),
                "{e}"
            );
        }
        let mut text = febrl_like(5_000);
        text.push_str("rec-9999-org,ann\n");
        // With CR LF endings the same line is named, and after a blank line the line after it.
        for body in [text.clone(), text.replace('\n', "\r\n")] {
            std::fs::write(&a, &body).unwrap();
            for parallel_from in [0, usize::MAX] {
                let e = load_with(&c, std::slice::from_ref(&a), parallel_from)
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("a.csv:5002:") && e.contains("2 fields"), "{e}");
            }
        }
        let mut blank = febrl_like(5_000).replace('\n', "\r\n");
        blank.push_str("\r\nrec-9999-org,ann\r\n");
        std::fs::write(&a, &blank).unwrap();
        for parallel_from in [0, usize::MAX] {
            let e = load_with(&c, std::slice::from_ref(&a), parallel_from)
                .unwrap_err()
                .to_string();
            assert!(e.contains("a.csv:5003:") && e.contains("2 fields"), "{e}");
        }
        let mut text = febrl_like(5_000);
        text.push_str("rec-7-org,ann,lee\n");
        std::fs::write(&a, &text).unwrap();
        for parallel_from in [0, usize::MAX] {
            let e = load_with(&c, std::slice::from_ref(&a), parallel_from)
                .unwrap_err()
                .to_string();
            assert!(e.contains("a.csv:5002:") && e.contains("twice"), "{e}");
        }
    }
}
