//! Source mappings: how one department dataset is read and what its columns mean.
//!
//! A mapping file (TOML) declares a source — its id, department, format, encoding, record key,
//! whether each delivery is a full snapshot — and, for every column used, the standard field it
//! fills and the cleaning step that reads it. A field name may carry a role prefix
//! (`mother.citizen_id`) when one record names several people or things; unprefixed fields belong
//! to the record's subject. Mappings are validated when loaded, so a typo in a cleaning step or a
//! duplicated field is reported with the file and line before any data is read; that the named
//! columns exist is checked against the data file's header when reading starts.
//!
//! This module only describes; it does not read data (`reader`) or clean values (`clean`).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// A whole mapping file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub source: SourceDecl,
    #[serde(rename = "field")]
    pub fields: Vec<FieldMapping>,
}

/// The `[source]` table.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceDecl {
    /// Stable identifier, e.g. `police_household`; letters, digits and underscores.
    pub id: String,
    /// The providing department, e.g. 公安局.
    pub department: String,
    /// A human name for the dataset, e.g. 户籍人口.
    #[serde(default)]
    pub name: String,
    pub format: Format,
    #[serde(default)]
    pub encoding: Encoding,
    /// The columns whose values together identify a record within the source.
    pub record_key: Vec<String>,
    /// What the record is about.
    pub subject: Subject,
    /// A full snapshot: records missing from a new delivery are marked withdrawn.
    #[serde(default)]
    pub snapshot: bool,
    /// The division the data comes from, used as context when parsing addresses that leave the
    /// upper levels out (a grid worker writes 青剑湖花园12-3-1001, not the province).
    #[serde(default)]
    pub division: Option<String>,
    /// How often the department delivers, for the freshness score (e.g. `daily`, `monthly`).
    #[serde(default)]
    pub update_frequency: Option<String>,
}

/// File formats.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array of objects.
    Json,
}

/// Text encodings departments deliver in.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    #[serde(rename = "gbk", alias = "GBK")]
    Gbk,
    #[serde(rename = "gb18030", alias = "GB18030")]
    Gb18030,
}

impl std::fmt::Display for Encoding {
    /// As people write it: UTF-8, GBK, GB18030.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gbk => "GBK",
            Encoding::Gb18030 => "GB18030",
        })
    }
}

/// What a record is about.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    Person,
    Entity,
    Building,
    Room,
    /// A relation between people or things (a marriage, a rental contract).
    Relation,
    /// A fact about a subject (contribution months, a benefit).
    Fact,
}

/// One `[[field]]` entry: a column and what it becomes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The column name in the CSV header or the key in the JSON object.
    pub column: String,
    /// The standard field it fills, optionally with a role prefix: `citizen_id`, `mother.name`.
    pub field: String,
    /// The cleaning step.
    pub clean: Clean,
    /// A missing value blocks the record (it goes to quarantine).
    #[serde(default)]
    pub required: bool,
    /// What an invalid value does; by default it blocks required fields and warns otherwise.
    #[serde(default)]
    pub on_invalid: Option<OnInvalid>,
}

/// Cleaning steps, one per kind of value the standards library reads.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Clean {
    CitizenId,
    CreditCode,
    Name,
    Phone,
    Date,
    /// A month written as 202109, 2021-09 or 2021年9月.
    YearMonth,
    Address,
    Division,
    /// The division a code begins with: a building, room or household number that departments
    /// number within their community (楼栋编码 3205760520010000001 → 320576052001).
    DivisionPrefix,
    /// 男/女, 1/2, M/F.
    Sex,
    Ethnicity,
    /// Free text: half-width, simplified, whitespace and punctuation folded.
    Text,
    Integer,
    Decimal,
    /// Kept exactly as delivered.
    Raw,
}

/// What an invalid value does to its record.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// The record goes to quarantine.
    Quarantine,
    /// The record is kept; the field is left empty and the issue recorded.
    Warn,
}

impl Clean {
    /// The step's name as mappings spell it (`citizen_id`); the prefix of its issue codes.
    pub fn name(self) -> &'static str {
        match self {
            Clean::CitizenId => "citizen_id",
            Clean::CreditCode => "credit_code",
            Clean::Name => "name",
            Clean::Phone => "phone",
            Clean::Date => "date",
            Clean::YearMonth => "year_month",
            Clean::Address => "address",
            Clean::Division => "division",
            Clean::DivisionPrefix => "division_prefix",
            Clean::Sex => "sex",
            Clean::Ethnicity => "ethnicity",
            Clean::Text => "text",
            Clean::Integer => "integer",
            Clean::Decimal => "decimal",
            Clean::Raw => "raw",
        }
    }
}

impl FieldMapping {
    /// The role (`subject` when the field has no prefix) and the bare field name.
    pub fn role_and_name(&self) -> (&str, &str) {
        match self.field.split_once('.') {
            Some((role, name)) => (role, name),
            None => ("subject", self.field.as_str()),
        }
    }

    pub fn on_invalid(&self) -> OnInvalid {
        self.on_invalid.unwrap_or(if self.required {
            OnInvalid::Quarantine
        } else {
            OnInvalid::Warn
        })
    }
}

/// Why a mapping cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// TOML syntax or schema errors, with the line and column toml reports and the offending key
    /// (for example an unknown cleaning step lists the known ones).
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Mapping {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            path: shown.clone(),
            source,
        })?;
        Mapping::parse(&text, &shown)
    }

    /// Parses and validates mapping text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Mapping, MappingError> {
        let mapping: Mapping = toml::from_str(text).map_err(|e| MappingError::Syntax {
            path: origin.to_string(),
            message: syntax_message(text, &e),
        })?;
        mapping
            .validate()
            .map_err(|message| MappingError::Invalid {
                path: origin.to_string(),
                message,
            })?;
        Ok(mapping)
    }

    fn validate(&self) -> Result<(), String> {
        let s = &self.source;
        if s.id.is_empty() || !s.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "source.id {:?} must be non-empty letters, digits and underscores",
                s.id
            ));
        }
        if s.record_key.is_empty() {
            return Err("source.record_key must name at least one column".to_string());
        }
        if self.fields.is_empty() {
            return Err("the mapping has no [[field]] entries".to_string());
        }
        if let Some(d) = &s.division
            && tongban_standards::division::by_code(d).is_none()
        {
            return Err(format!(
                "source.division {d:?} is not a known division code"
            ));
        }
        let mut seen = HashSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            let at = format!("field #{} (column {:?})", i + 1, f.column);
            if f.column.is_empty() {
                return Err(format!("{at}: column is empty"));
            }
            let (role, name) = f.role_and_name();
            let ok = |x: &str| {
                !x.is_empty()
                    && x.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            };
            if !ok(role) || !ok(name) {
                return Err(format!(
                    "{at}: field {:?} must be snake_case, optionally with a role prefix like mother.name",
                    f.field
                ));
            }
            if !seen.insert(f.field.as_str()) {
                return Err(format!("{at}: field {:?} is mapped twice", f.field));
            }
        }
        Ok(())
    }

    /// The columns the data file must have that `header` lacks, in the mapping's order.
    pub fn missing_columns(&self, header: &[String]) -> Vec<&str> {
        self.required_columns()
            .into_iter()
            .filter(|c| !header.iter().any(|h| h == c))
            .collect()
    }

    /// The columns the data file must have.
    pub fn required_columns(&self) -> Vec<&str> {
        let mut cols: Vec<&str> = self.source.record_key.iter().map(String::as_str).collect();
        for f in &self.fields {
            if !cols.contains(&f.column.as_str()) {
                cols.push(&f.column);
            }
        }
        cols
    }
}

/// toml's message with the line number spelled out first, as every other error here does.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[source]
id = "police_household"
department = "公安局"
format = "csv"
encoding = "utf-8"
record_key = ["人员编号"]
subject = "person"
snapshot = true

[[field]]
column = "公民身份号码"
field = "citizen_id"
clean = "citizen_id"
required = true

[[field]]
column = "母亲身份证号"
field = "mother.citizen_id"
clean = "citizen_id"
"#;

    #[test]
    fn a_good_mapping_loads() {
        let m = Mapping::parse(GOOD, "good.toml").unwrap();
        assert_eq!(m.source.id, "police_household");
        assert_eq!(m.fields.len(), 2);
        assert_eq!(m.fields[1].role_and_name(), ("mother", "citizen_id"));
        assert_eq!(m.fields[0].on_invalid(), OnInvalid::Quarantine);
        assert_eq!(m.fields[1].on_invalid(), OnInvalid::Warn);
        assert_eq!(
            m.required_columns(),
            ["人员编号", "公民身份号码", "母亲身份证号"]
        );
    }

    #[test]
    fn an_unknown_cleaning_step_is_named_with_its_line() {
        let bad = GOOD.replace(
            "clean = \"citizen_id\"\nrequired",
            "clean = \"citizen_idd\"\nrequired",
        );
        let err = Mapping::parse(&bad, "m.toml").unwrap_err().to_string();
        assert!(err.starts_with("m.toml: line 14:"), "{err}");
        assert!(err.contains("citizen_idd"), "{err}");
        assert!(err.contains("credit_code"), "lists the known steps: {err}");
    }

    #[test]
    fn duplicates_and_bad_names_are_refused() {
        let dup = GOOD.replace("mother.citizen_id", "citizen_id");
        let err = Mapping::parse(&dup, "m.toml").unwrap_err().to_string();
        assert!(err.contains("mapped twice"), "{err}");
        let bad = GOOD.replace("field = \"mother.citizen_id\"", "field = \"Mother ID\"");
        assert!(
            Mapping::parse(&bad, "m.toml")
                .unwrap_err()
                .to_string()
                .contains("snake_case")
        );
        let bad = GOOD.replace("id = \"police_household\"", "id = \"police household\"");
        assert!(
            Mapping::parse(&bad, "m.toml")
                .unwrap_err()
                .to_string()
                .contains("source.id")
        );
        let bad = GOOD.replace("encoding = \"utf-8\"", "encoding = \"latin1\"");
        assert!(
            Mapping::parse(&bad, "m.toml")
                .unwrap_err()
                .to_string()
                .contains("line 6")
        );
    }
}
