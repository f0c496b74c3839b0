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
use rayon::prelude::*;
use serde::Deserialize;
use std::collections::HashMap;
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

/// Read one input (deduplicate) or two (link) into a table.
pub fn load(config: &LinkConfig, inputs: &[PathBuf]) -> Result<Loaded, ConfigError> {
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
    let mut interned: HashMap<String, u32> = HashMap::new();
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
        )?;
    }
    Ok(Loaded {
        table,
        truth: truth_labels,
        inputs: inputs.to_vec(),
    })
}

fn read_input(
    config: &LinkConfig,
    path: &Path,
    table: &mut Table,
    mut truth: Option<&mut Vec<Option<u32>>>,
    interned: &mut HashMap<String, u32>,
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
    // every record.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
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
    let id_at = find(&config.id_column)?;
    let at: Vec<usize> = config
        .columns
        .iter()
        .map(|c| find(c))
        .collect::<Result<_, _>>()?;
    let truth_at = match &config.truth {
        Some(TruthSource::Column(c)) => Some(find(c)?),
        _ => None,
    };
    let first_row = table.len();
    let mut lines: Vec<u64> = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut locations = match &config.truth {
        Some(TruthSource::IdPattern(re)) => Some(re.capture_locations()),
        _ => None,
    };
    while reader.read_record(&mut record).map_err(io)? {
        let line = record.position().map_or(0, |p| p.line());
        let id = record.get(id_at).unwrap_or("").trim();
        if id.is_empty() {
            return Err(ConfigError::Input {
                file,
                line,
                message: format!("column `{}` (the record id) is empty", config.id_column),
            });
        }
        let values: Vec<&str> = at
            .iter()
            .map(|&i| record.get(i).unwrap_or("").trim())
            .collect();
        if !table.push(id, &values) {
            return Err(ConfigError::Input {
                file,
                line,
                message: "more than 4 GiB of text in one column".into(),
            });
        }
        lines.push(line);
        if let Some(labels) = truth.as_deref_mut() {
            let label = match (&config.truth, truth_at, locations.as_mut()) {
                (_, Some(i), _) => {
                    Some(record.get(i).unwrap_or("").trim()).filter(|s| !s.is_empty())
                }
                (Some(TruthSource::IdPattern(re)), None, Some(locs)) => re
                    .captures_read(locs, id)
                    .and_then(|_| locs.get(1))
                    .map(|(s, e)| &id[s..e]),
                _ => None,
            };
            labels.push(label.map(|l| match interned.get(l) {
                Some(&n) => n,
                None => {
                    let n = interned.len() as u32;
                    interned.insert(l.to_string(), n);
                    n
                }
            }));
        }
    }
    // Ids must be unique within a file, or the output could not say which record is which.
    // Checked once at the end by sorting, which is cheaper than a set of a million strings.
    let mut order: Vec<u32> = (first_row as u32..table.len() as u32).collect();
    order.par_sort_unstable_by(|&x, &y| {
        table
            .ids
            .get(x as usize)
            .cmp(table.ids.get(y as usize))
            .then(x.cmp(&y))
    });
    if let Some(w) = order
        .windows(2)
        .find(|w| table.ids.get(w[0] as usize) == table.ids.get(w[1] as usize))
    {
        let second = w[1] as usize;
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
        std::fs::write(&a, "rec_id, given_name, surname\nrec-1-org, ann, lee\nrec-1-dup-0, anne, lee\nrec-2-org, bo, wu\n").unwrap();
        let loaded = load(&c, &[a]).unwrap();
        assert_eq!(loaded.table.len(), 3);
        assert_eq!(loaded.truth.unwrap(), vec![Some(0), Some(0), Some(1)]);
    }
}
