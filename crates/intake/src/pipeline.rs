//! The ingest pipeline: a file (or a pushed batch) through reading, cleaning and the store.
//!
//! A reader thread streams raw records in chunks to a cleaning thread, which cleans each chunk on
//! all cores and hands it to the async side, which stores it in one transaction. Reading,
//! cleaning and storing overlap, and memory holds at most a few chunks whatever the size of the
//! file.
//!
//! Crash safety comes from two properties rather than from one huge transaction: every chunk is
//! stored atomically, and storing is idempotent (a record with the same content is recognised
//! as unchanged, a quarantined record is held once). Killing the process at any moment and running
//! the same command again therefore leaves every record of the file stored exactly once; the
//! interrupted batch is marked abandoned. A snapshot withdraws missing records only when a batch
//! completes.
//!
//! This module decides nothing about values (`clean` does) and holds no SQL (`tongban-store` does).

use crate::clean::{Cleaned, Cleaner};
use crate::mapping::Mapping;
use crate::reader::{Item, ReadSummary, read_file, read_file_counting};
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tongban_store::{BatchRow, IncomingQuarantine, IncomingRecord, SourceRow, Store, StoreError};

/// Records cleaned and stored together (one transaction each).
pub const CHUNK: usize = 8192;

/// Why an ingest failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Read(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{path}: no record of the snapshot could be stored ({quarantined} quarantined); nothing of source {source_id} was withdrawn (to withdraw everything on purpose, ingest it with --allow-empty)"
    )]
    EmptySnapshot {
        path: String,
        source_id: String,
        quarantined: i64,
    },
    #[error("the reader or cleaning thread stopped unexpectedly")]
    Reader,
}

/// What an ingest did.
#[derive(Clone, Debug)]
pub struct IngestReport {
    pub batch: BatchRow,
    pub read: ReadSummary,
    /// A snapshot that withdrew nothing because some records could not be read.
    pub withdrawal_skipped: bool,
    /// Held quarantine entries of the source this batch closed: it delivered their records
    /// readable ([`redelivered`]).
    pub redelivered: Vec<i64>,
}

/// The source row a mapping declares.
pub fn source_row(mapping: &Mapping, mapping_text: &str) -> SourceRow {
    let s = &mapping.source;
    SourceRow {
        id: s.id.clone(),
        department: s.department.clone(),
        name: s.name.clone(),
        subject: format!("{:?}", s.subject).to_lowercase(),
        snapshot: s.snapshot,
        update_frequency: s.update_frequency.clone(),
        mapping: mapping_text.to_string(),
        updated_at: tongban_store::now_millis(),
    }
}

/// The JSON array of a record's issues, as stored.
fn issues_json(c: &Cleaned) -> String {
    if c.issues.is_empty() {
        return "[]".to_string();
    }
    serde_json::to_string(&c.issues).unwrap_or_else(|_| "[]".to_string())
}

/// Turns one read item into what the store takes: a record, or a quarantine entry.
pub fn prepare(mapping: &Mapping, item: Item) -> Result<IncomingRecord, IncomingQuarantine> {
    prepare_with(&Cleaner::new(mapping), item)
}

/// [`prepare`] with a cleaner made once for many records.
pub fn prepare_with(
    cleaner: &Cleaner<'_>,
    item: Item,
) -> Result<IncomingRecord, IncomingQuarantine> {
    match item {
        Item::Record(raw) => {
            // Stored as its values alone, the header kept once (see `raw_layout`); the hash is
            // the object's, so that records stored either way compare alike.
            let forms = cleaner.raw_forms(&raw);
            let hash = forms.hash.to_vec();
            let cleaned = cleaner.clean(&raw);
            let location = raw.location.to_string();
            if cleaned.blocked() {
                Err(IncomingQuarantine {
                    key: (!cleaned.key.is_empty()).then(|| cleaned.key.clone()),
                    location,
                    // Quarantine keeps the object, which a data engineer reads and releases.
                    raw: cleaner.raw_json(&raw),
                    raw_hash: hash,
                    reasons: issues_json(&cleaned),
                })
            } else {
                let issues = issues_json(&cleaned);
                Ok(IncomingRecord {
                    key: cleaned.key,
                    location,
                    raw: forms.values,
                    raw_columns: Some(forms.columns),
                    issues,
                    cleaned: cleaned.fields_json,
                    hash,
                })
            }
        }
        Item::Unreadable {
            location,
            raw,
            problem,
        } => {
            let reasons = serde_json::json!([{
                "code": format!("read.{}", problem_code(&problem)),
                "field": "record",
                "raw": raw,
                "message": format!("{location}: {problem}"),
                "severity": "blocking",
            }]);
            Err(IncomingQuarantine {
                key: None,
                location: location.to_string(),
                raw_hash: blake3::hash(raw.as_bytes()).as_bytes().to_vec(),
                raw,
                reasons: reasons.to_string(),
            })
        }
    }
}

fn problem_code(p: &crate::reader::RecordProblem) -> &'static str {
    use crate::reader::RecordProblem::*;
    match p {
        Ragged { .. } => "ragged_row",
        NotAnObject { .. } => "not_an_object",
        InvalidJson { .. } => "invalid_json",
        Undecodable { .. } => "undecodable",
        NulCharacter => "nul_character",
        TooLarge { .. } => "too_large",
    }
}

/// A cleaned chunk: the records to store and the entries to hold in quarantine.
pub type Prepared = (Vec<IncomingRecord>, Vec<IncomingQuarantine>);

/// The store side hung up (it failed and stopped receiving).
#[derive(Debug)]
pub struct StoreGone;

impl std::fmt::Display for StoreGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store stopped taking records")
    }
}

impl std::error::Error for StoreGone {}

/// Cleans a chunk of items on all cores; records go to the store, the rest to quarantine.
pub fn prepare_chunk(mapping: &Mapping, items: Vec<Item>) -> Prepared {
    let mut cleaner = Cleaner::new(mapping);
    // A file has one header, so the first record's tells where every record's columns are.
    if let Some(columns) = items.iter().find_map(|i| match i {
        Item::Record(r) => Some(r.columns.clone()),
        Item::Unreadable { .. } => None,
    }) {
        cleaner = cleaner.with_columns(&columns);
    }
    let results: Vec<_> = items
        .into_par_iter()
        .map(|i| prepare_with(&cleaner, i))
        .collect();
    let mut records = Vec::with_capacity(results.len());
    let mut quarantine = Vec::new();
    for r in results {
        match r {
            Ok(rec) => records.push(rec),
            Err(q) => quarantine.push(q),
        }
    }
    (records, quarantine)
}

/// An error's message followed by those of its sources, as one line for a batch's failure message.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// Something that delivers items to a sink and says what it read, or why it stopped.
pub type Producer = Box<
    dyn FnOnce(&mut dyn FnMut(Item) -> Result<(), StoreGone>) -> Result<ReadSummary, String> + Send,
>;

/// Ingests `path` as `mapping` declares into `store`, as one batch. `bytes_read` counts progress.
pub async fn ingest_file(
    store: &dyn Store,
    mapping: Arc<Mapping>,
    mapping_text: &str,
    path: &Path,
    bytes_read: Arc<AtomicU64>,
    allow_empty: bool,
) -> Result<IngestReport, IngestError> {
    // A file that cannot be read at all (a wrong declared encoding, a header without the
    // mapping's columns, an empty file, a directory) is refused before anything about it is
    // stored: its source is registered, or its mapping replaced, only for a file that reads up
    // to its first record. The first 64 KiB are read twice for it.
    match read_file(path, &mapping, &mut |_| Err(StoreGone)) {
        Ok(_) | Err(crate::reader::ReadError::Sink(StoreGone)) => {}
        Err(e) => return Err(IngestError::Read(with_sources(&e))),
    }
    store
        .put_source(&source_row(&mapping, mapping_text))
        .await?;
    let shown = path.display().to_string();
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    let reader_mapping = mapping.clone();
    let reader_path = path.to_path_buf();
    let producer: Producer = Box::new(move |sink| {
        read_file_counting(&reader_path, &reader_mapping, Some(&bytes_read), sink)
            .map_err(|e| with_sources(&e))
    });
    let snapshot = mapping.source.snapshot;
    ingest_items(
        store,
        mapping,
        &file_name,
        &shown,
        producer,
        snapshot,
        allow_empty,
    )
    .await
}

/// Ingests a pushed batch of JSON lines for an already registered source, as one batch; a
/// snapshot source's batch withdraws what it lacks, as its mapping declares.
pub async fn ingest_ndjson(
    store: &dyn Store,
    mapping: Arc<Mapping>,
    origin: &str,
    body: Vec<u8>,
) -> Result<IngestReport, IngestError> {
    let snapshot = mapping.source.snapshot;
    let name = origin.to_string();
    let producer: Producer = Box::new(move |sink| {
        crate::reader::read_ndjson(std::io::Cursor::new(body), &name, sink)
            .map_err(|e| with_sources(&e))
    });
    ingest_items(store, mapping, origin, origin, producer, snapshot, false).await
}

/// The common path: items from `producer`, cleaned in chunks on all cores, stored chunk by chunk.
async fn ingest_items(
    store: &dyn Store,
    mapping: Arc<Mapping>,
    batch_name: &str,
    shown: &str,
    producer: Producer,
    snapshot: bool,
    allow_empty: bool,
) -> Result<IngestReport, IngestError> {
    let batch_id = store.begin_batch(&mapping.source.id, batch_name).await?;
    // Three stages on their own threads, so that reading the next chunk, cleaning the one
    // before it (on all cores) and storing the one before that overlap. Each hand-off holds at
    // most two chunks, which keeps memory flat.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Prepared>(2);
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(1);
    let cleaner_mapping = mapping.clone();
    let cleaner = tokio::task::spawn_blocking(move || {
        // When the store side hangs up, this stops and drops `raw_rx`, which stops the reader.
        for chunk in raw_rx {
            if tx
                .blocking_send(prepare_chunk(&cleaner_mapping, chunk))
                .is_err()
            {
                break;
            }
        }
    });
    let reader = tokio::task::spawn_blocking(move || -> Result<ReadSummary, String> {
        let mut chunk = Vec::with_capacity(CHUNK);
        let send = |chunk: Vec<Item>| raw_tx.send(chunk).map_err(|_| StoreGone);
        let summary = producer(&mut |item| {
            chunk.push(item);
            if chunk.len() >= CHUNK {
                send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))?;
            }
            Ok(())
        })?;
        if !chunk.is_empty() {
            send(chunk).map_err(|e| e.to_string())?;
        }
        Ok(summary)
    });
    let (mut stored, mut quarantined, mut keyless) = (0i64, 0i64, 0i64);
    let mut store_error = None;
    while let Some((records, quarantine)) = rx.recv().await {
        quarantined += quarantine.len() as i64;
        keyless += quarantine.iter().filter(|q| q.key.is_none()).count() as i64;
        match store
            .store_chunk(batch_id, &mapping.source.id, records, quarantine)
            .await
        {
            Ok(o) => stored += o.records,
            Err(e) => {
                store_error = Some(e);
                break;
            }
        }
    }
    drop(rx);
    // A stage that panicked leaves the batch failed, not running.
    let (read, cleaned) = (reader.await, cleaner.await);
    let Ok(read) = read.and_then(|r| cleaned.map(|()| r)) else {
        let _ = store
            .fail_batch(batch_id, &IngestError::Reader.to_string())
            .await;
        return Err(IngestError::Reader);
    };
    if let Some(e) = store_error {
        let _ = store
            .fail_batch(
                batch_id,
                &format!("storing a chunk failed: {}", with_sources(&e)),
            )
            .await;
        return Err(e.into());
    }
    let read = match read {
        Ok(r) => r,
        Err(message) => {
            store.fail_batch(batch_id, &message).await?;
            return Err(IngestError::Read(message));
        }
    };
    if snapshot && stored == 0 && !allow_empty {
        let err = IngestError::EmptySnapshot {
            path: shown.to_string(),
            source_id: mapping.source.id.clone(),
            quarantined,
        };
        store.fail_batch(batch_id, &err.to_string()).await?;
        return Err(err);
    }
    // A record that could not be read has no key, so a snapshot cannot tell which stored record
    // it was: rather than withdraw something the department did deliver, it withdraws nothing.
    let withdraw = snapshot && keyless == 0;
    let batch = store.finish_batch(batch_id, withdraw).await?;
    let redelivered = close_redelivered(store, &mapping.source.id, batch_id).await?;
    Ok(IngestReport {
        batch,
        read,
        withdrawal_skipped: snapshot && !withdraw,
        redelivered,
    })
}

/// The held entries whose record the department has since delivered readable, so that holding
/// them only keeps old rows on the scorecard: for each record key, the last batch that
/// delivered a version (stored anew or unchanged) came after the last batch that delivered a
/// held row of it. A batch that holds a key's row also keeps the key's good version seen (a
/// snapshot must not withdraw it), so the two meet in that batch and the entry stays held; a row
/// held again is held once, and its `last_held_batch` says when it came last. A delivery is a
/// version's `seen_batch` (a newly stored version's is its own batch), not its `batch_id`, which a
/// re-clean moves without any delivery. An entry without a key (an unreadable row) is never
/// closed, nor one held as a duplicate beside a stored row of the same batch until a later batch
/// delivers the key. `held` pairs each entry with its key's last delivery, as
/// [`Store::held_with_deliveries`] gives them; every held entry of a key must be there.
pub fn redelivered(held: &[(tongban_store::QuarantineEntry, Option<i64>)]) -> Vec<i64> {
    let mut last_held: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (e, _) in held {
        if let Some(key) = &e.key {
            let last = last_held.entry(key).or_insert(i64::MIN);
            *last = (*last).max(e.batch_id).max(e.last_held_batch);
        }
    }
    held.iter()
        .filter(|(e, delivered)| {
            let Some(key) = &e.key else { return false };
            delivered.is_some_and(|d| Some(&d) > last_held.get(key.as_str()))
        })
        .map(|(e, _)| e.id)
        .collect()
}

/// Closes the held entries of `source_id` that [`redelivered`] finds among the keys batch
/// `batch_id` delivered (a release or an older batch is not this file's doing), marking them
/// `redelivered`; the ids it closed.
pub async fn close_redelivered(
    store: &dyn Store,
    source_id: &str,
    batch_id: i64,
) -> Result<Vec<i64>, IngestError> {
    let held = store
        .held_with_deliveries(source_id, Some(batch_id))
        .await?;
    let mut closed = Vec::new();
    for id in redelivered(&held) {
        // Closed meanwhile by a dismissal or a parallel push: the batch stands all the same.
        match store.mark_redelivered(id).await {
            Ok(()) => closed.push(id),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(closed)
}

/// The held entries of `source_id` whose record a later batch delivered readable
/// ([`redelivered`]), for `tongban quarantine dismiss --delivered`.
pub async fn find_redelivered(
    store: &dyn Store,
    source_id: &str,
) -> Result<Vec<tongban_store::QuarantineEntry>, StoreError> {
    let held = store.held_with_deliveries(source_id, None).await?;
    let ids: std::collections::HashSet<i64> = redelivered(&held).into_iter().collect();
    Ok(held
        .into_iter()
        .map(|(e, _)| e)
        .filter(|e| ids.contains(&e.id))
        .collect())
}

/// The name of the batch a quarantine release stores its records in.
pub const QUARANTINE_RELEASE_BATCH: &str = "quarantine release";

/// How the names of re-cleaning batches begin (`tongban reclean`).
pub const RECLEAN_BATCH_PREFIX: &str = "re-clean";

/// Whether a batch holds a delivery from the department: a quarantine release and a re-clean
/// store records the department delivered earlier, so they say nothing of how fresh its data is.
pub fn delivers(batch: &tongban_store::BatchRow) -> bool {
    batch.file_name != QUARANTINE_RELEASE_BATCH
        && !batch.file_name.starts_with(RECLEAN_BATCH_PREFIX)
}

/// What releasing quarantined records did.
#[derive(Clone, Debug, Default)]
pub struct ReleaseReport {
    /// Entries whose record is now stored.
    pub released: Vec<i64>,
    /// Entries left held, each with the reason.
    pub held: Vec<(i64, String)>,
}

/// The message of the first blocking reason in a JSON array of issues (the one that held the
/// record), else of the first reason of any kind.
pub fn first_message(reasons: &str) -> String {
    serde_json::from_str::<Vec<crate::clean::Issue>>(reasons)
        .ok()
        .and_then(|v| {
            v.iter()
                .find(|i| i.severity == crate::clean::Severity::Blocking)
                .or(v.first())
                .map(|i| i.message.clone())
        })
        .unwrap_or_else(|| reasons.to_string())
}

/// Re-cleans held entries of one source with `mapping` and stores, in one batch, those that now
/// pass. An entry stays held when its raw row is unreadable, when it still fails, when it was held
/// as a duplicate key or when a later batch already delivered its key (both would replace data the
/// department sent afterwards: pass `replace` to do it on purpose), and when another entry of
/// this release has the same key (only the first is admitted). Only entries whose record was
/// actually stored are marked released.
pub async fn release_quarantined(
    store: &dyn Store,
    mapping: &Mapping,
    entries: &[tongban_store::QuarantineEntry],
    replace: bool,
) -> Result<ReleaseReport, IngestError> {
    use tongban_store::QuarantineStatus;
    let mut report = ReleaseReport::default();
    let mut admitted: Vec<(i64, IncomingRecord)> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.status == QuarantineStatus::Held)
    {
        // The hash computed below equals the one a re-ingest of the same file computes.
        let Some(raw) =
            crate::reader::raw_record_from_object(&e.raw, crate::reader::Location::Line(0))
        else {
            report.held.push((
                e.id,
                "the raw row is unreadable; fix the file and ingest it again".into(),
            ));
            continue;
        };
        if !replace && e.reasons.contains("record_key.duplicate") {
            report.held.push((e.id, "held as a duplicate key: releasing it would replace the first delivery (use --replace)".into()));
            continue;
        }
        match prepare(mapping, Item::Record(raw)) {
            Ok(mut rec) => {
                if admitted.iter().any(|(_, r)| r.key == rec.key) {
                    report.held.push((
                        e.id,
                        format!("another entry of this release has key {:?}", rec.key),
                    ));
                    continue;
                }
                if !replace
                    && let Some(latest) = store
                        .record_history(&mapping.source.id, &rec.key)
                        .await?
                        .last()
                    && latest.seen_batch > e.last_held_batch
                {
                    report.held.push((
                        e.id,
                        format!(
                            "batch {} delivered key {:?} after this entry was held (use --replace)",
                            latest.seen_batch, rec.key
                        ),
                    ));
                    continue;
                }
                rec.location = format!("{} (released from quarantine {})", e.location, e.id);
                admitted.push((e.id, rec));
            }
            Err(q) => report
                .held
                .push((e.id, format!("still fails: {}", first_message(&q.reasons)))),
        }
    }
    if !admitted.is_empty() {
        let batch = store
            .begin_batch(&mapping.source.id, QUARANTINE_RELEASE_BATCH)
            .await?;
        let records: Vec<IncomingRecord> = admitted.iter().map(|(_, r)| r.clone()).collect();
        store
            .store_chunk(batch, &mapping.source.id, records, Vec::new())
            .await?;
        store.finish_batch(batch, false).await?;
        for (id, _) in &admitted {
            store.release_quarantined(*id).await?;
            report.released.push(*id);
        }
    }
    Ok(report)
}

/// A source's quality scorecard, built from what the store holds: every current record, the
/// held quarantine entries, and the last complete batch's time for freshness.
pub async fn scorecard(
    store: &dyn Store,
    source_id: &str,
) -> Result<crate::quality::Scorecard, IngestError> {
    use crate::clean::Issue;
    use tongban_store::{BatchStatus, QuarantineStatus};
    let src = store
        .source(source_id)
        .await?
        .ok_or_else(|| IngestError::Read(format!("source {source_id} is not registered")))?;
    let mapping = Mapping::parse(&src.mapping, &format!("the stored mapping of {source_id}"))
        .map_err(|e| IngestError::Read(e.to_string()))?;
    let mut b = crate::quality::ScorecardBuilder::new(mapping);
    let mut after: Option<String> = None;
    loop {
        let page = store
            .current_records(source_id, after.as_deref(), 10_000)
            .await?;
        for r in &page {
            let cleaned: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&r.cleaned).unwrap_or_default();
            let issues: Vec<Issue> = serde_json::from_str(&r.issues).unwrap_or_default();
            b.add_record(&cleaned, &issues);
        }
        match page.last() {
            Some(last) if page.len() == 10_000 => after = Some(last.key.clone()),
            _ => break,
        }
    }
    for q in store
        .quarantine_list(Some(source_id), Some(QuarantineStatus::Held), i64::MAX)
        .await?
    {
        let raw: serde_json::Value =
            serde_json::from_str(&q.raw).unwrap_or(serde_json::Value::Null);
        let reasons: Vec<Issue> = serde_json::from_str(&q.reasons).unwrap_or_default();
        b.add_quarantined(&raw, &reasons);
    }
    let last = store
        .batches(Some(source_id))
        .await?
        .iter()
        .filter(|b| b.status == BatchStatus::Complete && delivers(b))
        .filter_map(|b| b.finished_at)
        .max();
    Ok(b.finish(last, tongban_store::now_millis()))
}

#[cfg(test)]
mod tests {
    use super::redelivered;
    use tongban_store::{QuarantineEntry, QuarantineStatus};

    fn entry(id: i64, key: Option<&str>, batch: i64, last_held: i64) -> QuarantineEntry {
        QuarantineEntry {
            id,
            source_id: "s".into(),
            batch_id: batch,
            location: format!("line {id}"),
            key: key.map(str::to_string),
            raw: "{}".into(),
            reasons: "[]".into(),
            status: QuarantineStatus::Held,
            created_at: 0,
            resolved_at: None,
            last_held_batch: last_held,
        }
    }

    #[test]
    fn an_entry_closes_only_when_its_record_came_readable_after_its_last_bad_row() {
        // Each key's last delivery (the greatest seen_batch of its versions):
        // K1 stored in batch 1, its row held in batch 2 (the good version seen there too), then
        // delivered readable and unchanged in batch 3. K2's held row came again in batch 3,
        // which kept the good version seen. K3: a new version stored in batch 4. K4 stored and
        // held as a duplicate in the same batch 5. K5: a re-clean stored a version in batch 6
        // but kept seen_batch 2, since the department sent nothing after batch 2.
        let held = vec![
            (entry(1, Some("k1"), 2, 2), Some(3)),
            (entry(2, Some("k2"), 2, 3), Some(3)),
            (entry(3, Some("k3"), 2, 2), Some(4)),
            (entry(4, Some("k4"), 5, 5), Some(5)),
            (entry(5, None, 2, 2), None),
            (entry(6, Some("never-stored"), 2, 2), None),
            // A second row of K1, at another line of batch 3, held there.
            (entry(7, Some("k1"), 3, 3), Some(3)),
            (entry(8, Some("k5"), 2, 2), Some(2)),
        ];
        // Entry 7 holds K1's row of batch 3, so K1's delivery in batch 3 was not readable
        // for certain: neither K1 entry closes. Without it, entry 1 would.
        assert_eq!(redelivered(&held), vec![3]);
        assert_eq!(redelivered(&held[..6]), vec![1, 3]);
    }
}
