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
//! equal and are skipped, and each stored chunk is atomic.
//!
//! This module decides no values (`clean` does), holds no SQL (the store's
//! `store_recleaned` does) and does not resolve: run `tongban resolve` afterwards for the base
//! libraries to see the new values.

use crate::clean::Cleaner;
use crate::mapping::Mapping;
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
            if rec.key != stored.key {
                return Outcome::Skipped(format!(
                    "the mapping now derives record key {:?}; ingest the file again to store it under that key",
                    rec.key
                ));
            }
            if rec.cleaned == stored.cleaned && rec.issues == stored.issues {
                return Outcome::Same;
            }
            // The same delivery: where it came from and the hash a re-ingest compares with.
            rec.location = stored.location.clone();
            rec.hash = stored.content_hash.clone();
            Outcome::Changed(rec)
        }
        Err(q) => Outcome::Blocked(first_message(&q.reasons)),
    }
}

/// The fields of two cleaned records (JSON objects) whose values differ, with both values.
fn changed_fields(before: &str, after: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let parse = |t: &str| -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(t).unwrap_or_default()
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

/// Re-cleans every current record of `mapping`'s source with `mapping` and, unless `dry_run`,
/// stores those that changed as new versions in one batch named `batch_name`. `examined`
/// counts progress.
pub async fn reclean_source(
    store: &dyn Store,
    mapping: &Mapping,
    batch_name: &str,
    dry_run: bool,
    examined: &AtomicU64,
) -> Result<RecleanReport, IngestError> {
    let source_id = mapping.source.id.clone();
    let mut report = RecleanReport {
        source_id: source_id.clone(),
        ..Default::default()
    };
    let mut batch_id: Option<i64> = None;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .current_records(&source_id, after.as_deref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        let full = page.len() as i64 == PAGE;
        let mut cleaner = Cleaner::new(mapping);
        if let Some(raw) = page
            .iter()
            .find_map(|r| raw_record_from_object(&r.raw, Location::Line(0)))
        {
            cleaner = cleaner.with_columns(&raw.columns);
        }
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
            let id = match batch_id {
                Some(id) => id,
                None => {
                    let id = store.begin_batch(&source_id, batch_name).await?;
                    batch_id = Some(id);
                    id
                }
            };
            let outcome = store
                .store_recleaned(id, &source_id, records, from_versions)
                .await;
            match outcome {
                Ok(o) => {
                    report.stored += o.updated as u64;
                    report.kept += o.unchanged as u64;
                }
                Err(e) => {
                    let _ = store
                        .fail_batch(id, &format!("storing re-cleaned records failed: {e}"))
                        .await;
                    return Err(e.into());
                }
            }
        }
        if !full {
            break;
        }
    }
    if let Some(id) = batch_id {
        // A re-clean delivers nothing, so it withdraws nothing whatever the source declares.
        report.batch = Some(store.finish_batch(id, false).await?);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

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
