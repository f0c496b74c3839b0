//! The ingest pipeline: a file (or a pushed batch) through reading, cleaning and the store.
//!
//! A reader thread streams raw records, cleans them in chunks on all cores and hands each cleaned
//! chunk to the async side, which stores it in one transaction. Reading and cleaning the next
//! chunk overlaps with storing the last, and memory holds at most a few chunks whatever the size
//! of the file.
//!
//! Crash safety comes from two properties rather than from one huge transaction: every chunk is
//! stored atomically, and storing is idempotent (a record with the same content is recognised
//! as unchanged, a quarantined record is held once). Killing the process at any moment and running
//! the same command again therefore leaves every record of the file stored exactly once; the
//! interrupted batch is marked abandoned. A snapshot withdraws missing records only when a batch
//! completes.
//!
//! This module decides nothing about values (`clean` does) and holds no SQL (`tongban-store` does).

use crate::clean::{Cleaned, clean_record};
use crate::mapping::Mapping;
use crate::reader::{Item, ReadSummary, read_file_counting};
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
        "{path}: no record of the snapshot could be stored ({quarantined} quarantined); nothing of source {source_id} was withdrawn (allow an empty snapshot to withdraw everything on purpose)"
    )]
    EmptySnapshot {
        path: String,
        source_id: String,
        quarantined: i64,
    },
    #[error("the reader thread stopped unexpectedly")]
    Reader,
}

/// What an ingest did.
#[derive(Clone, Debug)]
pub struct IngestReport {
    pub batch: BatchRow,
    pub read: ReadSummary,
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
    serde_json::to_string(&c.issues).unwrap_or_else(|_| "[]".to_string())
}

/// Turns one read item into what the store takes: a record, or a quarantine entry.
pub fn prepare(mapping: &Mapping, item: Item) -> Result<IncomingRecord, IncomingQuarantine> {
    match item {
        Item::Record(raw) => {
            let json = raw.to_json();
            let hash = blake3::hash(json.as_bytes()).as_bytes().to_vec();
            let cleaned = clean_record(mapping, &raw);
            let location = raw.location.to_string();
            if cleaned.blocked() {
                Err(IncomingQuarantine {
                    key: (!cleaned.key.is_empty()).then(|| cleaned.key.clone()),
                    location,
                    raw: json,
                    raw_hash: hash,
                    reasons: issues_json(&cleaned),
                })
            } else {
                Ok(IncomingRecord {
                    key: cleaned.key.clone(),
                    location,
                    raw: json,
                    cleaned: serde_json::to_string(&cleaned.fields)
                        .unwrap_or_else(|_| "{}".to_string()),
                    issues: issues_json(&cleaned),
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
    }
}

type Prepared = (Vec<IncomingRecord>, Vec<IncomingQuarantine>);

/// The store side hung up (it failed and stopped receiving).
#[derive(Debug)]
pub struct StoreGone;

impl std::fmt::Display for StoreGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store stopped taking records")
    }
}

impl std::error::Error for StoreGone {}

fn prepare_chunk(mapping: &Mapping, items: Vec<Item>) -> Prepared {
    let results: Vec<_> = items.into_par_iter().map(|i| prepare(mapping, i)).collect();
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

/// Ingests a pushed batch of JSON lines for an already registered source, as one batch.
/// `snapshot` says whether the batch is the source's full data (withdrawing what it lacks).
pub async fn ingest_ndjson(
    store: &dyn Store,
    mapping: Arc<Mapping>,
    origin: &str,
    body: Vec<u8>,
    snapshot: bool,
) -> Result<IngestReport, IngestError> {
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
    // Two chunks in flight: one being stored while the next is read and cleaned.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Prepared>(2);
    let reader_mapping = mapping.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<ReadSummary, String> {
        let mut chunk = Vec::with_capacity(CHUNK);
        let send = |chunk: Vec<Item>| {
            tx.blocking_send(prepare_chunk(&reader_mapping, chunk))
                .map_err(|_| StoreGone)
        };
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
    let (mut stored, mut quarantined) = (0i64, 0i64);
    let mut store_error = None;
    while let Some((records, quarantine)) = rx.recv().await {
        quarantined += quarantine.len() as i64;
        match store
            .store_chunk(batch_id, &mapping.source.id, &records, &quarantine)
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
    let read = reader.await.map_err(|_| IngestError::Reader)?;
    if let Some(e) = store_error {
        let _ = store.fail_batch(batch_id, "storing a chunk failed").await;
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
    let batch = store.finish_batch(batch_id, snapshot).await?;
    Ok(IngestReport { batch, read })
}
