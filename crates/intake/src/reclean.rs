//! Re-cleaning: bringing a source's stored records up to date with today's cleaning rules, or
//! with a fixed mapping, without the department delivering its data again.
//!
//! Ingest recognises an unchanged record by the hash of its raw form, so a record stored before
//! a cleaning rule improved (an address parser that now reads a compound named after a district
//! elsewhere as the compound) keeps its old cleaned values for as long as the department keeps
//! sending the same row. Re-cleaning reads every current record of a source, cleans its stored
//! raw record again with the mapping given, and stores each record whose cleaned fields or
//! issues came out different as a new version (same raw record, same content hash, the old
//! version kept), in a batch of its own; the next ingest of the same file still finds every
//! record unchanged. A record that would now be blocked, or whose key the mapping now derives
//! differently, is left as stored and reported: re-cleaning never withdraws or re-keys what a
//! department delivered. Interrupted, it can be run again: records already re-cleaned come out
//! equal and are skipped, and each stored chunk is atomic. A difference of form alone (an
//! address stored before addresses were kept lean, an issue's message reworded) is not a change:
//! cleaned records are compared as `clean::expand_cleaned` spells them out, issues by code,
//! field, raw value and severity.
//!
//! This module decides no values (`clean` does), holds no SQL (the store's
//! `store_recleaned` does) and does not resolve: run `tongban resolve` afterwards for the base
//! libraries to see the new values.

use crate::clean::{Cleaner, Issue, expand_cleaned};
use crate::mapping::{Format, Mapping};
use crate::pipeline::{IngestError, first_message, prepare_with};
use crate::reader::{Item, Location, raw_record_from_object};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tongban_store::{BatchRow, IncomingRecord, RecordVersion, Store};

/// Records read, cleaned and compared together (one store transaction for those that changed).
const PAGE: i64 = 8192;

/// Examples kept per kind in a report, enough to see what changed without flooding a terminal.
const EXAMPLES: usize = 10;

/// One field whose cleaned value changed, as an example for the data engineer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldChange {
    pub key: String,
    pub field: String,
    /// The stored value's JSON text, `None` when the field was absent.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What a re-clean found and did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RecleanReport {
    pub source_id: String,
    /// Current records read.
    pub examined: u64,
    /// Records whose cleaned fields or issues come out different today.
    pub changed: u64,
    /// Changed records stored as a new version (none in a dry run).
    pub stored: u64,
    /// Changed records left as stored because their key changed while this ran.
    pub kept: u64,
    /// Per field, how many records' cleaned value changed (issues counted as `issues`).
    pub fields: BTreeMap<String, u64>,
    pub examples: Vec<FieldChange>,
    /// Records the mapping would now block, left as stored: key and the blocking reason.
    pub now_blocked: u64,
    pub blocked_examples: Vec<(String, String)>,
    /// Records whose stored raw form could not be cleaned again (not an object, or a key the
    /// mapping now derives differently), left as stored: key and why.
    pub skipped: u64,
    pub skipped_examples: Vec<(String, String)>,
    /// The batch that holds the new versions, when any were stored.
    pub batch: Option<BatchRow>,
}

/// What cleaning one stored record again gives.
enum Outcome {
    Same,
    Changed(IncomingRecord),
    Blocked(String),
    Skipped(String),
}

/// Cleans one stored record again with `cleaner`; pure, so a page runs on all cores.
fn reclean_one(cleaner: &Cleaner<'_>, stored: &RecordVersion) -> Outcome {
    let Some(raw) = raw_record_from_object(&stored.raw, Location::Line(0)) else {
        return Outcome::Skipped("the stored raw record is not a JSON object".into());
    };
    match prepare_with(cleaner, Item::Record(raw)) {
        Ok(mut rec) => {
            // The record rebuilt from its stored object must be the one delivered (a header
            // with two empty column names, say, comes back as one): a new version of anything
            // else would no longer read back as delivered.
            if rec.hash != stored.content_hash {
                return Outcome::Skipped(
                    "the stored raw record does not read back exactly as delivered".into(),
                );
            }
            if rec.key != stored.key {
                return Outcome::Skipped(format!(
                    "the mapping now derives record key {:?}; ingest the file again to store it under that key",
                    rec.key
                ));
            }
            if same_meaning(&stored.cleaned, &rec.cleaned)
                && same_issues(&stored.issues, &rec.issues)
            {
                return Outcome::Same;
            }
            // The same delivery, from the same place in its file.
            rec.location = stored.location.clone();
            Outcome::Changed(rec)
        }
        Err(q) => Outcome::Blocked(first_message(&q.reasons)),
    }
}

/// Whether two cleaned records say the same, whichever form each was stored in.
fn same_meaning(stored: &str, cleaned: &str) -> bool {
    stored == cleaned || expand_cleaned(stored) == expand_cleaned(cleaned)
}

/// Whether two lists of issues name the same problems (a message reworded is not a change).
fn same_issues(stored: &str, issues: &str) -> bool {
    if stored == issues {
        return true;
    }
    let read = |t: &str| -> Option<Vec<(String, String, String, crate::clean::Severity)>> {
        let issues: Vec<Issue> = serde_json::from_str(t).ok()?;
        Some(
            issues
                .into_iter()
                .map(|i| (i.code, i.field, i.raw, i.severity))
                .collect(),
        )
    };
    matches!((read(stored), read(issues)), (Some(a), Some(b)) if a == b)
}

/// Refuses a CSV mapping that names a column the stored records lack, as ingest refuses a file
/// without it: re-cleaning with a misspelt column would clean that field as absent in every
/// record. (JSON records may lack keys one by one, so their mappings are not checked here.)
fn check_columns(mapping: &Mapping, stored: &RecordVersion) -> Result<(), IngestError> {
    if mapping.source.format != Format::Csv {
        return Ok(());
    }
    let Some(raw) = raw_record_from_object(&stored.raw, Location::Line(0)) else {
        return Ok(());
    };
    let missing = mapping.missing_columns(&raw.columns);
    if missing.is_empty() {
        return Ok(());
    }
    Err(IngestError::Read(format!(
        "the mapping names columns the stored records of {} lack: {} (they have: {}); nothing was re-cleaned",
        mapping.source.id,
        missing.join(", "),
        raw.columns.join(", ")
    )))
}

/// The fields of two cleaned records (JSON objects) whose values differ, with both values.
fn changed_fields(before: &str, after: &str) -> Vec<(String, Option<String>, Option<String>)> {
    // Spelled out, so that a lean address and the same address stored whole compare equal.
    let parse = |t: &str| -> serde_json::Map<String, serde_json::Value> {
        match expand_cleaned(t) {
            serde_json::Value::Object(o) => o,
            other => [("record".to_string(), other)].into_iter().collect(),
        }
    };
    let (b, a) = (parse(before), parse(after));
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            (
                k.clone(),
                b.get(k).map(|v| v.to_string()),
                a.get(k).map(|v| v.to_string()),
            )
        })
        .collect()
}

/// Checks, before anything is registered or stored, that `mapping` fits the stored records of
/// its source (see [`check_columns`]).
pub async fn check_mapping(store: &dyn Store, mapping: &Mapping) -> Result<(), IngestError> {
    match store
        .current_records(&mapping.source.id, None, 1)
        .await?
        .first()
    {
        Some(first) => check_columns(mapping, first),
        None => Ok(()),
    }
}

/// Re-cleans every current record of `mapping`'s source with `mapping` and, unless `dry_run`,
/// stores those that changed as new versions in one batch named `batch_name`. `examined`
/// counts progress. A failure after the batch began marks it failed; what was stored before
/// stays stored, and running again goes on from there.
pub async fn reclean_source(
    store: &dyn Store,
    mapping: &Mapping,
    batch_name: &str,
    dry_run: bool,
    examined: &AtomicU64,
) -> Result<RecleanReport, IngestError> {
    check_mapping(store, mapping).await?;
    let mut report = RecleanReport {
        source_id: mapping.source.id.clone(),
        ..Default::default()
    };
    let mut batch_id: Option<i64> = None;
    let done = reclean_pages(
        store,
        mapping,
        batch_name,
        dry_run,
        examined,
        &mut report,
        &mut batch_id,
    )
    .await;
    match (done, batch_id) {
        (Ok(()), Some(id)) => {
            // A re-clean delivers nothing, so it withdraws nothing whatever the source declares.
            report.batch = Some(store.finish_batch(id, false).await?);
            Ok(report)
        }
        (Ok(()), None) => Ok(report),
        (Err(e), Some(id)) => {
            if let Err(also) = store
                .fail_batch(id, &format!("re-cleaning failed: {e}"))
                .await
            {
                return Err(IngestError::Read(format!(
                    "re-cleaning failed: {e}; marking batch {id} failed failed too: {also}"
                )));
            }
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// The pages of [`reclean_source`], each read, cleaned on all cores, compared and stored.
#[allow(clippy::too_many_arguments)]
async fn reclean_pages(
    store: &dyn Store,
    mapping: &Mapping,
    batch_name: &str,
    dry_run: bool,
    examined: &AtomicU64,
    report: &mut RecleanReport,
    batch_id: &mut Option<i64>,
) -> Result<(), IngestError> {
    let source_id = mapping.source.id.clone();
    // Each record's columns are rebuilt from its stored object, so a cleaner cannot be told a
    // header once (`Cleaner::with_columns` matches one shared header); it finds the mapped
    // columns of each record by name.
    let cleaner = Cleaner::new(mapping);
    let mut after: Option<String> = None;
    loop {
        let page = store
            .current_records(&source_id, after.as_deref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        let full = page.len() as i64 == PAGE;
        let outcomes: Vec<Outcome> = page.par_iter().map(|r| reclean_one(&cleaner, r)).collect();
        let mut records = Vec::new();
        let mut from_versions = Vec::new();
        for (stored, outcome) in page.iter().zip(outcomes) {
            report.examined += 1;
            match outcome {
                Outcome::Same => {}
                Outcome::Changed(rec) => {
                    report.changed += 1;
                    let mut fields = changed_fields(&stored.cleaned, &rec.cleaned);
                    if stored.issues != rec.issues {
                        fields.push((
                            "issues".into(),
                            Some(stored.issues.clone()),
                            Some(rec.issues.clone()),
                        ));
                    }
                    for (field, before, after) in fields {
                        *report.fields.entry(field.clone()).or_default() += 1;
                        if report.examples.len() < EXAMPLES {
                            report.examples.push(FieldChange {
                                key: stored.key.clone(),
                                field,
                                before,
                                after,
                            });
                        }
                    }
                    from_versions.push(stored.version);
                    records.push(rec);
                }
                Outcome::Blocked(why) => {
                    report.now_blocked += 1;
                    if report.blocked_examples.len() < EXAMPLES {
                        report.blocked_examples.push((stored.key.clone(), why));
                    }
                }
                Outcome::Skipped(why) => {
                    report.skipped += 1;
                    if report.skipped_examples.len() < EXAMPLES {
                        report.skipped_examples.push((stored.key.clone(), why));
                    }
                }
            }
        }
        examined.fetch_add(page.len() as u64, Ordering::Relaxed);
        if !dry_run && !records.is_empty() {
            let id = match *batch_id {
                Some(id) => id,
                None => {
                    let id = store.begin_batch(&source_id, batch_name).await?;
                    *batch_id = Some(id);
                    id
                }
            };
            let o = store
                .store_recleaned(id, &source_id, records, from_versions)
                .await?;
            report.stored += o.updated as u64;
            report.kept += o.unchanged as u64;
        }
        if !full {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
[source]
id = "people"
department = "测试局"
format = "csv"
record_key = ["编号"]
subject = "person"
[[field]]
column = "编号"
field = "record_no"
clean = "raw"
[[field]]
column = "住址"
field = "address"
clean = "address"
"#;

    fn stored(raw: &str, cleaned: &str, issues: &str) -> RecordVersion {
        RecordVersion {
            source_id: "people".into(),
            key: "1".into(),
            version: 1,
            status: tongban_store::RecordStatus::Current,
            batch_id: 1,
            seen_batch: 1,
            location: "line 2".into(),
            content_hash: blake3::hash(raw.as_bytes()).as_bytes().to_vec(),
            raw: raw.into(),
            cleaned: cleaned.into(),
            issues: issues.into(),
            ingested_at: 0,
            withdrawn_at: None,
        }
    }

    #[test]
    fn a_difference_of_form_alone_is_no_change() {
        let mapping = Mapping::parse(MAPPING, "m.toml").unwrap();
        let cleaner = Cleaner::new(&mapping);
        let raw =
            r#"{"编号":"1","住址":"江苏省苏州市苏州工业园区唯亭街道青剑湖花园1幢1单元201室"}"#;
        let Outcome::Changed(today) = reclean_one(&cleaner, &stored(raw, "{}", "[]")) else {
            panic!("an empty cleaned record changes");
        };
        // The same address stored whole (division names and standard text), as before
        // addresses were kept lean, and an issue whose message has since been reworded.
        let whole = serde_json::to_string(&expand_cleaned(&today.cleaned)).unwrap();
        assert_ne!(whole, today.cleaned);
        assert!(matches!(
            reclean_one(&cleaner, &stored(raw, &whole, &today.issues)),
            Outcome::Same
        ));
        let issue =
            r#"[{"code":"x.y","field":"f","raw":"r","message":"old words","severity":"warning"}]"#;
        let reworded = issue.replace("old words", "new words");
        assert!(same_issues(issue, &reworded));
        assert!(!same_issues(
            issue,
            &reworded.replace("warning", "blocking")
        ));
        assert!(!same_issues(issue, "[]"));
    }

    #[test]
    fn a_raw_record_that_does_not_read_back_is_skipped() {
        let mapping = Mapping::parse(MAPPING, "m.toml").unwrap();
        let cleaner = Cleaner::new(&mapping);
        // Two empty column names come back as one: not the record delivered.
        let raw = r#"{"编号":"1","住址":"青剑湖花园1幢1单元201室","":"a","":"b"}"#;
        assert!(matches!(
            reclean_one(&cleaner, &stored(raw, "{}", "[]")),
            Outcome::Skipped(why) if why.contains("does not read back")
        ));
        // A mapping naming a column the stored records lack is refused.
        let misspelt = Mapping::parse(&MAPPING.replace("\"住址\"", "\"地址\""), "m.toml").unwrap();
        let e = check_columns(&misspelt, &stored(raw, "{}", "[]")).unwrap_err();
        assert!(e.to_string().contains("lack: 地址"), "{e}");
        assert!(check_columns(&mapping, &stored(raw, "{}", "[]")).is_ok());
    }

    #[test]
    fn changed_fields_name_each_difference_once() {
        let d = changed_fields(
            r#"{"name":"张三","sex":"1","address":{"county":"320902"}}"#,
            r#"{"name":"张三","sex":"2","address":{"county":"320576"},"phone":"13800000000"}"#,
        );
        let names: Vec<&str> = d.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(names, ["address", "phone", "sex"]);
        assert_eq!(d[1].1, None);
        assert_eq!(d[1].2.as_deref(), Some(r#""13800000000""#));
        assert_eq!(d[2].1.as_deref(), Some(r#""1""#));
    }
}
