//! The quality scorecard of a source, per field: what the data bureau sends back to the
//! department.
//!
//! Fed with every current record (its cleaned fields and issues) and every held quarantine entry
//! (its raw record and reasons), the builder computes for each mapped field its completeness (a
//! value was delivered) and validity (the delivered value passed cleaning without a warning or a
//! blocking issue), for the source its key uniqueness (duplicate keys within a batch) and
//! freshness (time since the last complete delivery, not a quarantine release or a re-clean,
//! against the declared update frequency), and the top issues with example values.
//!
//! It is pure: the caller reads the store and passes the current time.

use crate::clean::{Issue, Severity};
use crate::mapping::Mapping;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Scores of one field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldScore {
    pub field: String,
    pub column: String,
    pub present: u64,
    pub invalid: u64,
    /// Share of records that deliver a value.
    pub completeness: f64,
    /// Share of delivered values that are valid.
    pub validity: f64,
}

/// One kind of issue, how often it occurred and a few of the values behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueScore {
    pub code: String,
    pub field: String,
    pub severity: Severity,
    pub count: u64,
    pub examples: Vec<String>,
}

/// How recent the data is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Freshness {
    pub last_batch_at: Option<i64>,
    pub age_hours: Option<f64>,
    /// The interval the department promised, from `update_frequency`.
    pub expected_hours: Option<f64>,
    /// Within one and a half promised intervals.
    pub fresh: Option<bool>,
}

/// The whole scorecard of one source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub source_id: String,
    pub department: String,
    pub name: String,
    /// Current records plus held quarantine entries: everything the department delivered that
    /// is still in force.
    pub delivered: u64,
    pub current: u64,
    pub quarantined: u64,
    pub duplicate_keys: u64,
    pub key_uniqueness: f64,
    pub freshness: Freshness,
    pub fields: Vec<FieldScore>,
    pub top_issues: Vec<IssueScore>,
}

/// Accumulates a scorecard.
pub struct ScorecardBuilder {
    mapping: Mapping,
    current: u64,
    quarantined: u64,
    duplicates: u64,
    present: Vec<u64>,
    invalid: Vec<u64>,
    issues: HashMap<(String, String), IssueScore>,
}

const EXAMPLES: usize = 3;

impl ScorecardBuilder {
    pub fn new(mapping: Mapping) -> ScorecardBuilder {
        let n = mapping.fields.len();
        ScorecardBuilder {
            mapping,
            current: 0,
            quarantined: 0,
            duplicates: 0,
            present: vec![0; n],
            invalid: vec![0; n],
            issues: HashMap::new(),
        }
    }

    fn count_issues(&mut self, issues: &[Issue], invalid_fields: &mut Vec<usize>) {
        for i in issues {
            // A missing value counts against completeness only; validity judges delivered values.
            let missing = i.code == "required.missing" || i.code == "record_key.missing";
            if i.severity >= Severity::Warning
                && !missing
                && let Some(f) = self.mapping.fields.iter().position(|f| f.field == i.field)
                && !invalid_fields.contains(&f)
            {
                invalid_fields.push(f);
            }
            if i.code == "record_key.duplicate" {
                self.duplicates += 1;
            }
            let entry = self
                .issues
                .entry((i.code.clone(), i.field.clone()))
                .or_insert_with(|| IssueScore {
                    code: i.code.clone(),
                    field: i.field.clone(),
                    severity: i.severity,
                    count: 0,
                    examples: Vec::new(),
                });
            entry.count += 1;
            if entry.examples.len() < EXAMPLES
                && !i.raw.is_empty()
                && !entry.examples.contains(&i.raw)
            {
                entry.examples.push(i.raw.clone());
            }
        }
    }

    /// A current record: its cleaned fields (`role.field` → value) and its issues.
    pub fn add_record(
        &mut self,
        cleaned: &serde_json::Map<String, serde_json::Value>,
        issues: &[Issue],
    ) {
        self.current += 1;
        let mut invalid = Vec::new();
        self.count_issues(issues, &mut invalid);
        for (i, f) in self.mapping.fields.iter().enumerate() {
            // A value that failed cleaning with a warning is absent from the cleaned fields but
            // was delivered.
            if cleaned.contains_key(&f.field) || invalid.contains(&i) {
                self.present[i] += 1;
            }
        }
        for i in invalid {
            self.invalid[i] += 1;
        }
    }

    /// A held quarantine entry: the raw record (a JSON object of columns, if it could be read)
    /// and the reasons it was held.
    pub fn add_quarantined(&mut self, raw: &serde_json::Value, reasons: &[Issue]) {
        self.quarantined += 1;
        let mut invalid = Vec::new();
        self.count_issues(reasons, &mut invalid);
        for (i, f) in self.mapping.fields.iter().enumerate() {
            let delivered = raw
                .get(&f.column)
                .and_then(|v| v.as_str())
                .is_some_and(|s| !s.trim().is_empty());
            if delivered {
                self.present[i] += 1;
            }
        }
        for i in invalid {
            self.invalid[i] += 1;
        }
    }

    /// The scorecard, with freshness judged at `now` (milliseconds) for the last complete batch.
    pub fn finish(self, last_batch_at: Option<i64>, now: i64) -> Scorecard {
        let delivered = self.current + self.quarantined;
        let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let fields = self
            .mapping
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| FieldScore {
                field: f.field.clone(),
                column: f.column.clone(),
                present: self.present[i],
                invalid: self.invalid[i],
                completeness: ratio(self.present[i], delivered),
                validity: ratio(
                    self.present[i].saturating_sub(self.invalid[i]),
                    self.present[i],
                ),
            })
            .collect();
        let mut top_issues: Vec<IssueScore> = self.issues.into_values().collect();
        top_issues.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.count.cmp(&a.count))
                .then(a.code.cmp(&b.code))
        });
        let expected_hours = self
            .mapping
            .source
            .update_frequency
            .as_deref()
            .and_then(frequency_hours);
        let age_hours = last_batch_at.map(|t| (now - t).max(0) as f64 / 3_600_000.0);
        let fresh = match (age_hours, expected_hours) {
            (Some(a), Some(e)) => Some(a <= e * 1.5),
            _ => None,
        };
        let s = &self.mapping.source;
        Scorecard {
            source_id: s.id.clone(),
            department: s.department.clone(),
            name: s.name.clone(),
            delivered,
            current: self.current,
            quarantined: self.quarantined,
            duplicate_keys: self.duplicates,
            // Of all deliveries of a key within a batch, the share that was the first.
            key_uniqueness: ratio(self.current, self.current + self.duplicates),
            freshness: Freshness {
                last_batch_at,
                age_hours,
                expected_hours,
                fresh,
            },
            fields,
            top_issues,
        }
    }
}

/// Hours between deliveries for the frequencies mappings declare.
pub fn frequency_hours(f: &str) -> Option<f64> {
    Some(match f.trim().to_lowercase().as_str() {
        "realtime" | "hourly" => 1.0,
        "daily" => 24.0,
        "weekly" => 24.0 * 7.0,
        "monthly" => 24.0 * 31.0,
        "quarterly" => 24.0 * 92.0,
        "yearly" | "annually" => 24.0 * 366.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        Mapping::parse(
            r#"
[source]
id = "g"
department = "网格"
format = "jsonl"
record_key = ["id"]
subject = "person"
update_frequency = "daily"
[[field]]
column = "zjhm"
field = "citizen_id"
clean = "citizen_id"
[[field]]
column = "xm"
field = "name"
clean = "name"
required = true
"#,
            "m.toml",
        )
        .unwrap()
    }

    fn issue(code: &str, field: &str, raw: &str, severity: Severity) -> Issue {
        Issue {
            code: code.into(),
            field: field.into(),
            raw: raw.into(),
            message: String::new(),
            severity,
        }
    }

    #[test]
    fn completeness_validity_uniqueness_and_freshness() {
        let mut b = ScorecardBuilder::new(mapping());
        let both: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"citizen_id":"x","name":"张三"}"#).unwrap();
        let name_only: serde_json::Map<_, _> = serde_json::from_str(r#"{"name":"李四"}"#).unwrap();
        b.add_record(&both, &[]);
        b.add_record(&name_only, &[]);
        b.add_record(
            &name_only,
            &[issue(
                "citizen_id.bad_check_char",
                "citizen_id",
                "110105194912310021",
                Severity::Warning,
            )],
        );
        b.add_record(
            &both,
            &[issue("name.traditional", "name", "張三", Severity::Info)],
        );
        b.add_quarantined(
            &serde_json::json!({"id":"9","zjhm":"1101","xm":""}),
            &[issue("required.missing", "name", "", Severity::Blocking)],
        );
        b.add_quarantined(
            &serde_json::json!({"id":"1","xm":"王五"}),
            &[issue(
                "record_key.duplicate",
                "record",
                "1",
                Severity::Blocking,
            )],
        );
        let day = 86_400_000;
        let s = b.finish(Some(0), day / 2);
        assert_eq!(
            (s.delivered, s.current, s.quarantined, s.duplicate_keys),
            (6, 4, 2, 1)
        );
        let id = &s.fields[0];
        // Delivered by 2 clean records, 1 invalid record and 1 quarantined one.
        assert_eq!((id.present, id.invalid), (4, 1));
        assert!((id.completeness - 4.0 / 6.0).abs() < 1e-9);
        assert!((id.validity - 0.75).abs() < 1e-9);
        let name = &s.fields[1];
        // The quarantined row's missing name counts against completeness, not validity.
        assert_eq!((name.present, name.invalid), (5, 0));
        assert!(
            (s.key_uniqueness - 0.8).abs() < 1e-9,
            "{}",
            s.key_uniqueness
        );
        assert_eq!(s.freshness.fresh, Some(true));
        assert_eq!(s.top_issues[0].severity, Severity::Blocking);
        assert_eq!(
            s.top_issues.last().map(|i| i.code.as_str()),
            Some("name.traditional")
        );
        let bad = s
            .top_issues
            .iter()
            .find(|i| i.code == "citizen_id.bad_check_char")
            .unwrap();
        assert_eq!(bad.examples, ["110105194912310021"]);
        assert_eq!(
            ScorecardBuilder::new(mapping())
                .finish(Some(0), 3 * day)
                .freshness
                .fresh,
            Some(false)
        );
    }
}
