//! The store: the one trait behind which all SQL lives, with an SQLite and a PostgreSQL
//! implementation.
//!
//! Everything above this crate talks to `dyn Store` and never learns which database runs. The
//! trait speaks in the intake's terms — sources, batches, record versions, quarantine — and each
//! backend translates to its own SQL and migrations (`migrations/sqlite`, `migrations/postgres`).
//! The decisions that do not depend on the database (is an incoming record new, changed,
//! unchanged, or a duplicate within its batch?) are made once, in [`plan_chunk`], so both backends
//! behave identically by construction; the contract tests in `tests/contract.rs` hold them to it.
//!
//! The store does not clean, parse or judge records; it keeps what it is given, never deletes
//! and never overwrites a version: a changed record becomes a new version, a record missing from a
//! snapshot is marked withdrawn.

mod backend;
mod grant_reads;
mod pg_copy;
mod pg_held;
pub mod postgres;
pub mod raw_layout;
pub mod sqlite;
mod sqlite_direct;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why the store failed. Details of the database stay inside `Database`; callers above show
/// only the category to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    Url(String),
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("unknown kind of base-library entity {0:?}: use person, entity, building or room")]
    UnknownKind(String),
    #[error("not a golden-record path: {0:?}")]
    BadPath(String),
    /// A write that was to receive its golden records while it wrote the links never got them
    /// (the build that owed them stopped); the write changed nothing.
    #[error("the {0} library's golden records never came; nothing was written")]
    GoldenNeverCame(&'static str),
}

/// The kinds of base-library entity, each with its own link and golden-record tables.
pub const RESOLUTION_KINDS: &[&str] = &["person", "entity", "building", "room"];

/// `kind` if it is one of [`RESOLUTION_KINDS`]: the only text ever put into a table name.
pub fn resolution_kind(kind: &str) -> Result<&'static str> {
    RESOLUTION_KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .ok_or_else(|| StoreError::UnknownKind(kind.to_string()))
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The rows of a bulk replace as references in the order `cmp` gives. A resolution run hands
/// them over in that order already (sorted on all cores while the previous library was being
/// written), and checking costs the writing thread one pass where sorting would cost it seconds
/// at a million people; rows in any other order are sorted here.
pub(crate) fn in_key_order<T>(rows: &[T], cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<&T> {
    let mut refs: Vec<&T> = rows.iter().collect();
    if !refs.is_sorted_by(|a, b| cmp(a, b).is_le()) {
        refs.sort_unstable_by(|a, b| cmp(a, b));
    }
    refs
}

/// Links in primary-key order: source, record key, role. A resolution run sorts them so.
pub fn link_order(a: &LinkRef, b: &LinkRef) -> std::cmp::Ordering {
    (a.source_id, a.record_key, a.role).cmp(&(b.source_id, b.record_key, b.role))
}

/// Golden records in primary-key order. A resolution run sorts them so.
pub fn golden_order(a: &GoldenRecord, b: &GoldenRecord) -> std::cmp::Ordering {
    a.entity_key.cmp(&b.entity_key)
}

/// How many distinct entities the links name (a run's entity count).
pub(crate) fn distinct_entities(links: &dyn Rows<LinkRef<'_>>) -> usize {
    let mut seen = std::collections::HashSet::with_capacity(links.len() / 2);
    for i in 0..links.len() {
        seen.insert(links.row(i).entity_key);
    }
    seen.len()
}

/// Rows in an order of positions, each made as it is taken. A type of its own rather than a
/// closure over the rows: the futures that hold it across an await must hold for every
/// lifetime of the rows' text, which a closure's inferred signature does not show.
pub(crate) struct InOrder<'r, T> {
    rows: &'r dyn Rows<T>,
    order: std::vec::IntoIter<usize>,
}

impl<T> Iterator for InOrder<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.order.next().map(|i| self.rows.row(i))
    }
}

/// `rows` in the order `cmp` gives (see [`positions_in_key_order`]).
pub(crate) fn rows_in_key_order<'r, T>(
    rows: &'r dyn Rows<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> InOrder<'r, T> {
    InOrder {
        rows,
        order: positions_in_key_order(rows, cmp).into_iter(),
    }
}

/// Relations in primary-key order, each kept once (see [`Store::replace_relations`]).
pub(crate) struct RelationsOnce<'r, 'a> {
    sorted: InOrder<'r, RelationRef<'a>>,
    kept: Option<RelationRef<'a>>,
}

impl<'r, 'a> RelationsOnce<'r, 'a> {
    pub(crate) fn new(relations: &'r dyn Rows<RelationRef<'a>>) -> Self {
        RelationsOnce {
            sorted: rows_in_key_order(relations, RelationRef::cmp),
            kept: None,
        }
    }
}

impl<'a> Iterator for RelationsOnce<'_, 'a> {
    type Item = RelationRef<'a>;
    fn next(&mut self) -> Option<RelationRef<'a>> {
        for next in self.sorted.by_ref() {
            if !self.kept.is_some_and(|kept| stated_again(&kept, &next)) {
                self.kept = Some(next);
                return Some(next);
            }
        }
        None
    }
}

/// Rows a whole-table write reads one at a time, by position. A resolution run keeps its
/// millions of links and relations in a compact form of its own (interned numbers and positions:
/// a link 16 bytes rather than 64, a relation 24 rather than 80) and hands them over as they
/// are; each row is made only as it is written, never all of them at once.
pub trait Rows<T>: Sync {
    fn len(&self) -> usize;
    /// Row `i`, for `i` below [`Rows::len`].
    fn row(&self, i: usize) -> T;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rows already held as a slice.
pub struct SliceRows<'a, T>(pub &'a [T]);

impl<T: Copy + Sync> Rows<T> for SliceRows<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn row(&self, i: usize) -> T {
        self.0[i]
    }
}

/// The positions of `rows` in the order `cmp` gives, as [`in_key_order`] orders a slice: one
/// pass to check where a run sorted them already, a sort otherwise.
pub(crate) fn positions_in_key_order<T>(
    rows: &dyn Rows<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<usize> {
    let mut positions: Vec<usize> = (0..rows.len()).collect();
    let sorted = positions
        .windows(2)
        .all(|w| cmp(&rows.row(w[0]), &rows.row(w[1])).is_le());
    if !sorted {
        positions.sort_unstable_by(|&a, &b| cmp(&rows.row(a), &rows.row(b)));
    }
    positions
}

/// A backend's write turn: held by a writer for as long as its transaction runs, so that
/// writers on connections of their own take turns first come, first served (SQLite; see
/// `sqlite`).
pub(crate) type WriteTurn = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Held for the length of one write: the store's write turn where it has one, and, where the
/// store counts its own data generation, a move of that count when the write is over (committed
/// or not), so that a check made after the write returned never answers for what was read
/// before it.
pub(crate) struct Writing {
    pub(crate) _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    pub(crate) moves: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(count) = &self.moves {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A declared source, as registered from its mapping file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    pub id: String,
    pub department: String,
    pub name: String,
    pub subject: String,
    pub snapshot: bool,
    pub update_frequency: Option<String>,
    /// The mapping file's text, kept so quarantined records can be re-cleaned later.
    pub mapping: String,
    pub updated_at: i64,
}

/// The state of a batch (one delivery of one file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    Running,
    Complete,
    Failed,
    /// A batch left running by a process that died; a later batch of the source replaced it.
    Abandoned,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Running => "running",
            BatchStatus::Complete => "complete",
            BatchStatus::Failed => "failed",
            BatchStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Result<BatchStatus> {
        Ok(match s {
            "running" => BatchStatus::Running,
            "complete" => BatchStatus::Complete,
            "failed" => BatchStatus::Failed,
            "abandoned" => BatchStatus::Abandoned,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown batch status {other:?}"
                )));
            }
        })
    }
}

/// One batch and its counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    pub id: i64,
    pub source_id: String,
    pub file_name: String,
    pub status: BatchStatus,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub counts: ChunkOutcome,
    pub withdrawn: i64,
    pub message: Option<String>,
}

/// A record as the intake hands it over: cleaned, with its issues, not blocked.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingRecord {
    pub key: String,
    pub location: String,
    /// The record as delivered: a JSON object of column name → text, or, when `raw_columns` is
    /// given, the JSON array of its values alone (see [`raw_layout`]).
    pub raw: String,
    /// The JSON array of the column names `raw`'s values stand under, shared by the records of
    /// one header; `None` when `raw` is the object itself.
    pub raw_columns: Option<std::sync::Arc<str>>,
    pub cleaned: String,
    pub issues: String,
    /// A hash of the record's JSON object: a re-delivered record with the same hash is unchanged.
    pub hash: Vec<u8>,
}

impl IncomingRecord {
    /// The record as the JSON object it was delivered as, whichever form `raw` holds.
    pub fn raw_object(&self) -> String {
        match &self.raw_columns {
            Some(columns) => {
                raw_layout::splice(columns, &self.raw).unwrap_or_else(|| self.raw.clone())
            }
            None => self.raw.clone(),
        }
    }
}

/// A record the intake could not accept, with the reasons as a JSON array of issues.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingQuarantine {
    pub key: Option<String>,
    pub location: String,
    pub raw: String,
    pub raw_hash: Vec<u8>,
    pub reasons: String,
}

/// What storing a chunk did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkOutcome {
    pub records: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub quarantined: i64,
}

impl ChunkOutcome {
    pub fn add(&mut self, o: &ChunkOutcome) {
        self.records += o.records;
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.quarantined += o.quarantined;
    }
}

/// The status of a stored record version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    Current,
    Superseded,
    Withdrawn,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Current => "current",
            RecordStatus::Superseded => "superseded",
            RecordStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Result<RecordStatus> {
        Ok(match s {
            "current" => RecordStatus::Current,
            "superseded" => RecordStatus::Superseded,
            "withdrawn" => RecordStatus::Withdrawn,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown record status {other:?}"
                )));
            }
        })
    }
}

/// One stored version of one record, with its provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordVersion {
    pub source_id: String,
    pub key: String,
    pub version: i64,
    pub status: RecordStatus,
    /// The batch that delivered this version first, and the last batch that delivered it.
    pub batch_id: i64,
    pub seen_batch: i64,
    pub location: String,
    pub content_hash: Vec<u8>,
    pub raw: String,
    pub cleaned: String,
    pub issues: String,
    pub ingested_at: i64,
    pub withdrawn_at: Option<i64>,
}

/// The state of a quarantined record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineStatus {
    /// Waiting for a data engineer.
    Held,
    /// Re-admitted after the mapping was fixed.
    Released,
    /// Set aside by a data engineer without storing it: the department delivered the record
    /// again in a later batch, or the row was never a record (a stray header, a test line).
    Dismissed,
    /// Closed by itself: a later batch delivered the entry's record readable, so the department
    /// has sent it again (corrected, or as it was before the bad row).
    Redelivered,
}

impl QuarantineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineStatus::Held => "held",
            QuarantineStatus::Released => "released",
            QuarantineStatus::Dismissed => "dismissed",
            QuarantineStatus::Redelivered => "redelivered",
        }
    }

    pub fn parse(s: &str) -> Result<QuarantineStatus> {
        Ok(match s {
            "held" => QuarantineStatus::Held,
            "released" => QuarantineStatus::Released,
            "dismissed" => QuarantineStatus::Dismissed,
            "redelivered" => QuarantineStatus::Redelivered,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown quarantine status {other:?}"
                )));
            }
        })
    }
}

/// One quarantined record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub source_id: String,
    pub batch_id: i64,
    pub location: String,
    pub key: Option<String>,
    pub raw: String,
    pub reasons: String,
    pub status: QuarantineStatus,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    /// The last batch that delivered this same row again, still unreadable (it is held once);
    /// the entry's own batch when none did.
    pub last_held_batch: i64,
}

/// A current record's key, cleaned fields and issues (both JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanedRecord {
    /// The stored version's row id: the order of [`Store::all_current_cleaned`].
    pub id: i64,
    pub source_id: String,
    pub key: String,
    pub cleaned: String,
    pub issues: String,
}

/// One mention (a record, or a role inside it) assigned to a base-library entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityLink {
    pub source_id: String,
    pub record_key: String,
    /// "subject" or the role the record gives the entity ("mother", "tenant", "employer", …).
    pub role: String,
    pub entity_key: String,
}

/// A link as a resolution run hands it to the store: [`EntityLink`]'s fields, borrowed. A run
/// holds every link of a kind at once (ten million at a million people) while it is written,
/// and most of their text is shared (a source, a role, an entity's key, a record's key among
/// its mentions), so the links borrow it rather than each own a copy: 64 bytes a link instead
/// of 96 and four allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkRef<'a> {
    pub source_id: &'a str,
    pub record_key: &'a str,
    pub role: &'a str,
    pub entity_key: &'a str,
}

impl EntityLink {
    /// This link, borrowed.
    pub fn borrowed(&self) -> LinkRef<'_> {
        LinkRef {
            source_id: &self.source_id,
            record_key: &self.record_key,
            role: &self.role,
            entity_key: &self.entity_key,
        }
    }

    /// These links, borrowed.
    pub fn all_borrowed(links: &[EntityLink]) -> Vec<LinkRef<'_>> {
        links.iter().map(EntityLink::borrowed).collect()
    }
}

/// Every link of a kind, a page at a time in (source, record key, role) order: the paging of
/// [`Store::entity_links`] that readers of a whole library share.
pub struct LinkPages {
    kind: String,
    limit: i64,
    after: Option<(String, String, String)>,
    done: bool,
}

impl LinkPages {
    /// Pages of at most `limit` links of `kind`.
    pub fn new(kind: &str, limit: i64) -> LinkPages {
        LinkPages {
            kind: kind.to_string(),
            limit,
            after: None,
            done: false,
        }
    }

    /// The next page, or `None` once every link was given. A page shorter than the limit is
    /// the last, without asking again.
    pub async fn next(&mut self, store: &dyn Store) -> Result<Option<Vec<EntityLink>>> {
        if self.done {
            return Ok(None);
        }
        let after = self
            .after
            .as_ref()
            .map(|(s, k, r)| (s.as_str(), k.as_str(), r.as_str()));
        let page = store.entity_links(&self.kind, after, self.limit).await?;
        self.done = (page.len() as i64) < self.limit;
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some((
            last.source_id.clone(),
            last.record_key.clone(),
            last.role.clone(),
        ));
        Ok(Some(page))
    }
}

/// The golden-record paths searches use, per kind. Each has a column holding the text at the
/// path, indexed, on both backends: a plain column the store fills as it writes the record, on
/// SQLite with `json_extract` (migrations 0011 and 0013), on PostgreSQL from [`search_values`]
/// (migrations 0010 and 0015). A search on another path is correct but scans.
pub const SEARCH_PATHS: &[(&str, &str)] = &[
    ("person", "fields.name.value"),
    ("person", "fields.phone.value"),
    ("person", "fields.citizen_id.value"),
    ("person", "fields.residence.value"),
    ("entity", "fields.name.value"),
    ("entity", "fields.credit_code.value"),
    ("room", "address_key"),
    ("building", "address_key"),
];

/// One search path of a kind's golden records: the column that holds its text and
/// the index on that column, named as the migrations name them (`search_name` and
/// `golden_person_by_name` for `fields.name.value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchColumn {
    pub path: &'static str,
    pub column: String,
    pub index: String,
}

/// The search columns of one kind's golden records. `replace_resolution` builds their indexes
/// after a bulk write: SQLite drops them first, PostgreSQL builds them on the new run's table
/// before it is swapped in.
pub fn search_columns(kind: &str) -> Vec<SearchColumn> {
    SEARCH_PATHS
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(k, path)| {
            let field = path
                .strip_prefix("fields.")
                .and_then(|p| p.strip_suffix(".value"))
                .unwrap_or(path);
            SearchColumn {
                path,
                column: format!("search_{field}"),
                index: format!("golden_{k}_by_{field}"),
            }
        })
        .collect()
}

/// The text at each of `columns`' paths in a golden record, as PostgreSQL's `#>>` gives it for
/// the values golden records hold there (the libraries put only strings at search paths): a
/// string unescaped, `None` where the path is missing, leads through something that is not an
/// object, or ends at `null`. Any other value is given as serde_json writes it, which is not
/// PostgreSQL's text for it (`jsonb` writes `{"a": 1}` with spaces and its own key order, and
/// `1.50` may come out as `1.5`). A record that is not JSON has no text at any path.
///
/// PostgreSQL parsed a person's golden record as `jsonb` once per search column as the row was
/// written, about 40 µs a parse on this machine class; the writer extracts all of them from one
/// parse here instead.
pub fn search_values(columns: &[SearchColumn], record: &str) -> Vec<Option<String>> {
    if columns.is_empty() {
        return Vec::new();
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(record) else {
        return vec![None; columns.len()];
    };
    columns
        .iter()
        .map(|c| {
            let mut at = &json;
            for key in c.path.split('.') {
                at = at.as_object()?.get(key)?;
            }
            match at {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }
        })
        .collect()
}

/// `, search_name, search_phone, …`: the names of `columns` for a statement's column list, after
/// the columns it names first.
pub(crate) fn search_column_names(columns: &[SearchColumn]) -> String {
    columns.iter().map(|c| format!(", {}", c.column)).collect()
}

/// Whether `path` may name a place in a golden record: dot-separated keys of lower-case ASCII
/// letters and underscores. Paths are spliced into SQL (as JSON paths), so this check is what
/// keeps them harmless.
pub fn valid_json_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 64
        && path
            .split('.')
            .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

/// A golden record: the surviving value of every field with its provenance, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenRecord {
    pub entity_key: String,
    pub record: String,
}

/// A library's golden records as a whole-library write receives them: ready, or still being
/// built when the write begins. Writing a library is one thread's work and at a million people
/// the longest stretch of a run, so a run hands the person library over as soon as its
/// clusters have keys: the write puts the links in (on SQLite it also indexes them) while the
/// golden records are built on the other cores, and takes them part by part as they come.
///
/// While it waits the write holds, on SQLite, the store's write turn and the file's write lock,
/// waiting on the calling thread; on PostgreSQL, an open transaction on a pooled connection
/// (idle meanwhile, so the write turns off `idle_in_transaction_session_timeout` for it) and
/// the lock that keeps another run of the kind out. The records must come from a thread that
/// does not need the caller's runtime to go on (a run builds them on a thread of its own, or
/// before it writes).
pub enum GoldenRecords<'a> {
    Ready(&'a [GoldenRecord]),
    /// Sent in parts, each written as it comes, so that the writer need never hold them all
    /// (a gigabyte of text at a million people; a run keeps them packed meanwhile): the parts
    /// may come in any order, key order being only the faster, and [`GoldenPart::End`] follows
    /// the last. A sender dropped before the end (the build stopped) fails the write, which
    /// then changes nothing.
    Later(std::sync::mpsc::Receiver<GoldenPart>),
}

/// What a run sends of golden records it builds while their library is written.
#[derive(Debug)]
pub enum GoldenPart {
    Records(Vec<GoldenRecord>),
    /// Every record has been sent.
    End,
}

impl<'a> GoldenRecords<'a> {
    /// The next part of the records, waiting on this thread for it if it is still being built;
    /// None once every record has come.
    pub(crate) fn next_part(
        &mut self,
        kind: &'static str,
    ) -> Result<Option<std::borrow::Cow<'a, [GoldenRecord]>>> {
        match self {
            GoldenRecords::Ready(golden) => {
                let part = std::mem::take(golden);
                Ok((!part.is_empty()).then_some(std::borrow::Cow::Borrowed(part)))
            }
            GoldenRecords::Later(parts) => match parts.recv() {
                Ok(GoldenPart::Records(part)) => Ok(Some(std::borrow::Cow::Owned(part))),
                Ok(GoldenPart::End) => {
                    *self = GoldenRecords::Ready(&[]);
                    Ok(None)
                }
                Err(_) => Err(StoreError::GoldenNeverCame(kind)),
            },
        }
    }

    /// As [`GoldenRecords::next_part`], for an async writer: a wait runs on the runtime's
    /// blocking threads.
    pub(crate) async fn next_part_async(
        &mut self,
        kind: &'static str,
    ) -> Result<Option<std::borrow::Cow<'a, [GoldenRecord]>>> {
        let parts = match std::mem::replace(self, GoldenRecords::Ready(&[])) {
            GoldenRecords::Later(parts) => parts,
            ready => {
                *self = ready;
                return self.next_part(kind);
            }
        };
        let (parts, next) = tokio::task::spawn_blocking(move || {
            let next = parts.recv();
            (parts, next)
        })
        .await
        .map_err(|e| match e.try_into_panic() {
            // A panic in the wait is the caller's to see, not a build that stopped.
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => StoreError::Corrupt(format!(
                "waiting for the {kind} library's golden records was cancelled: {e}"
            )),
        })?;
        match next {
            Ok(GoldenPart::Records(part)) => {
                *self = GoldenRecords::Later(parts);
                Ok(Some(std::borrow::Cow::Owned(part)))
            }
            // Every record has come, and the records are left empty for a later call.
            Ok(GoldenPart::End) => Ok(None),
            Err(_) => Err(StoreError::GoldenNeverCame(kind)),
        }
    }
}

/// A relation between two library entities, and the record that states it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    pub from_key: String,
    /// "spouse", "mother", "father", "guardian", "employee_of", "legal_rep_of", "lives_in",
    /// "registered_in", "rents", "lets", "owns", "in_building".
    pub relation: String,
    pub to_key: String,
    pub source_id: String,
    pub record_key: String,
}

/// Relations that follow from an entity's own key rather than from what one record says: a
/// room lies in the building its address names, however many records mention the room. The
/// store keeps each such relation once per pair of entities, under the least (source, record
/// key) of the records that state it, so that a batch run and records resolved one at a time
/// cite the same record. Kept once per record instead, they were 2.6 M of the 6.9 M relations
/// a million people's records state.
pub const STATED_ONCE: &[&str] = &["in_building"];

/// Whether `next`, sorted after `kept`, adds nothing to it: the same relation from the same
/// record, or a [`STATED_ONCE`] relation between the same entities. Sorted relations keep the
/// least citation with `dedup_by(|next, kept| stated_again(kept, next))`.
pub fn stated_again(kept: &RelationRef<'_>, next: &RelationRef<'_>) -> bool {
    kept.from_key == next.from_key
        && kept.relation == next.relation
        && kept.to_key == next.to_key
        && ((kept.source_id == next.source_id && kept.record_key == next.record_key)
            || STATED_ONCE.contains(&kept.relation))
}

/// Where a change may have left a [`STATED_ONCE`] relation cited twice: (the end the key is
/// at, relation, key), once each. A new relation of such a kind is looked at from its source;
/// an entity renamed from both ends, since the relations of its old key joined its new one's.
pub(crate) fn stated_once_to_tidy<'a>(
    changes: &'a [LibraryChanges],
    relations: &'a [Relation],
) -> Vec<(&'static str, &'static str, &'a str)> {
    let mut out: Vec<(&'static str, &'static str, &'a str)> = Vec::new();
    for kind in STATED_ONCE {
        out.extend(
            relations
                .iter()
                .filter(|r| r.relation == *kind)
                .map(|r| ("from_key", *kind, r.from_key.as_str())),
        );
        for (_, new) in changes.iter().flat_map(|c| &c.renamed) {
            out.push(("from_key", kind, new));
            out.push(("to_key", kind, new));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The statement that removes every later citation of a [`STATED_ONCE`] relation at one end:
/// binds the relation, then the key at `end` (`from_key` or `to_key`, checked by the caller).
/// `collate` makes the comparison of text bytewise, as Rust's is (PostgreSQL's `COLLATE "C"`;
/// SQLite compares bytes already).
pub(crate) fn later_citations_sql(end: &str, collate: &str) -> String {
    format!(
        "DELETE FROM relations WHERE relation = ? AND {end} = ? AND EXISTS ( \
         SELECT 1 FROM relations AS s WHERE s.from_key = relations.from_key \
         AND s.relation = relations.relation AND s.to_key = relations.to_key \
         AND (s.source_id {collate} < relations.source_id {collate} \
              OR (s.source_id = relations.source_id \
                  AND s.record_key {collate} < relations.record_key {collate})))"
    )
}

/// A relation as a resolution run hands it to the store: [`Relation`]'s fields, borrowed, in
/// the same order so that both sort alike. A run derives millions (seven million at a million
/// people), all of whose text its links already hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelationRef<'a> {
    pub from_key: &'a str,
    pub relation: &'a str,
    pub to_key: &'a str,
    pub source_id: &'a str,
    pub record_key: &'a str,
}

impl RelationRef<'_> {
    /// This relation with text of its own.
    pub fn to_relation(&self) -> Relation {
        Relation {
            from_key: self.from_key.to_string(),
            relation: self.relation.to_string(),
            to_key: self.to_key.to_string(),
            source_id: self.source_id.to_string(),
            record_key: self.record_key.to_string(),
        }
    }
}

impl Relation {
    /// This relation, borrowed.
    pub fn borrowed(&self) -> RelationRef<'_> {
        RelationRef {
            from_key: &self.from_key,
            relation: &self.relation,
            to_key: &self.to_key,
            source_id: &self.source_id,
            record_key: &self.record_key,
        }
    }

    /// These relations, borrowed.
    pub fn all_borrowed(relations: &[Relation]) -> Vec<RelationRef<'_>> {
        relations.iter().map(Relation::borrowed).collect()
    }
}

/// What resolving new records incrementally changed in one kind's library.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryChanges {
    /// "person", "entity", "room" or "building".
    pub kind: String,
    /// The run the links and golden records are recorded under.
    pub run_id: i64,
    /// Links to add or re-point (a mention already linked takes the new entity).
    pub links: Vec<EntityLink>,
    /// Golden records to add or replace.
    pub golden: Vec<GoldenRecord>,
    /// Entities that now go by another key, as (old, new): two entities a new record showed to
    /// be one, or an entity whose anchor changed. Their links and relations follow; the old
    /// golden record goes.
    pub renamed: Vec<(String, String)>,
}

/// One audit-log entry as stored (see `tongban_sharing::audit` for what the fields mean).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

/// A signed checkpoint over audit entries `from_seq..=to_seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRow {
    pub from_seq: i64,
    pub to_seq: i64,
    pub root: String,
    pub key: String,
    pub signature: String,
    pub at: i64,
}

/// A department.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentRow {
    pub id: String,
    pub name: String,
    /// The division it serves (a division code).
    pub division: String,
    pub created_at: i64,
}

/// A user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub department: Option<String>,
    pub role: String,
    /// A division or grid code.
    pub jurisdiction: String,
    pub created_at: i64,
}

/// An API token: its secret only as a hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A data request or grant (see `tongban_sharing::policy::Grant`); `fields` is a JSON array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub id: String,
    pub department: String,
    pub resource: String,
    pub fields: String,
    pub purpose: String,
    pub legal_basis: String,
    pub scope: String,
    pub valid_from: i64,
    pub valid_to: i64,
    pub daily_quota: i64,
    pub status: String,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One resolution run of one kind of entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolutionRun {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub mentions: i64,
    pub entities: i64,
    /// What the run measured and learned, as JSON.
    pub summary: String,
}

/// The store. Every method is one transaction: it happens completely or not at all.
#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Ends this process's use of the store and leaves it tidy for the next one. On SQLite the
    /// write-ahead logs are copied into their files and emptied: SQLite does that only when the
    /// last connection closes, which a command's exit does not wait for, so an ingest or a
    /// resolve left a log as large as what it wrote (355 MB beside a 478 MB file after resolving
    /// 112 k records), kept on disk and read through again by the next process to open the file.
    /// On PostgreSQL the pool's connections are closed. Nothing may be asked of the store
    /// afterwards (the connections of its hottest paths close only when it is dropped). A log
    /// another process is reading or writing is left, after a short wait, for whoever closes
    /// last.
    async fn close(&self) -> Result<()>;

    /// Registers or updates a source from its mapping.
    async fn put_source(&self, source: &SourceRow) -> Result<()>;
    async fn source(&self, id: &str) -> Result<Option<SourceRow>>;
    async fn sources(&self) -> Result<Vec<SourceRow>>;

    /// Opens a batch for a source; batches the source left running are marked abandoned.
    async fn begin_batch(&self, source_id: &str, file_name: &str) -> Result<i64>;

    /// Stores a chunk of a batch: new records become version 1, changed ones a new version,
    /// unchanged ones are marked seen by this batch, records whose key was already delivered in
    /// this batch go to quarantine as duplicates, and `quarantine` is held (once: a record
    /// already held with the same raw hash is not held twice).
    async fn store_chunk(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
    ) -> Result<ChunkOutcome>;

    /// Stores records re-cleaned from their stored raw form (under newer cleaning rules or a
    /// fixed mapping) as a chunk of the batch: each becomes a new version of its key, with the
    /// same raw record and content hash, superseding version `from_versions[i]` if that is
    /// still the key's current version ([`plan_reclean`]); the others are left as stored and
    /// counted unchanged. A re-clean delivers nothing, so no sighting is recorded and the new
    /// version keeps the old one's last delivering batch.
    async fn store_recleaned(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        from_versions: Vec<i64>,
    ) -> Result<ChunkOutcome>;

    /// Completes a batch. For a snapshot source, every current record that neither this batch
    /// nor a batch started after it delivered is marked withdrawn (never deleted): two batches
    /// of one source running at once do not withdraw each other's records.
    async fn finish_batch(&self, batch_id: i64, withdraw_missing: bool) -> Result<BatchRow>;

    /// Marks a batch failed with a message (what was stored so far stays stored).
    async fn fail_batch(&self, batch_id: i64, message: &str) -> Result<()>;

    async fn batches(&self, source_id: Option<&str>) -> Result<Vec<BatchRow>>;

    /// Every version of one record, oldest first.
    async fn record_history(&self, source_id: &str, key: &str) -> Result<Vec<RecordVersion>>;

    /// Current records of a source in key order, after `after_key`, at most `limit`.
    async fn current_records(
        &self,
        source_id: &str,
        after_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecordVersion>>;

    /// Every source's current records in storage order after row `after_id`, at most `limit`,
    /// with only what resolution reads (not the raw record, most of a row's bytes). Storage
    /// order is a sequential scan; key order would visit the table at random.
    async fn all_current_cleaned(&self, after_id: i64, limit: i64) -> Result<Vec<CleanedRecord>>;

    /// The row id of the newest record version, 0 in an empty store: at least as many as there
    /// are current records, found without counting them (a reader of every record sizes what
    /// it collects by it).
    async fn last_record_id(&self) -> Result<i64>;

    /// Counts of current, superseded and withdrawn versions of a source.
    async fn record_counts(&self, source_id: &str) -> Result<(i64, i64, i64)>;

    async fn quarantine_list(
        &self,
        source_id: Option<&str>,
        status: Option<QuarantineStatus>,
        limit: i64,
    ) -> Result<Vec<QuarantineEntry>>;
    async fn quarantine_entry(&self, id: i64) -> Result<Option<QuarantineEntry>>;

    /// Marks a held entry released (after its record was stored by a release batch).
    async fn release_quarantined(&self, id: i64) -> Result<()>;

    /// Marks a held entry dismissed: nothing is stored for it, and it no longer counts as
    /// held (the scorecard's quarantined records, `quarantine list`). The entry is kept.
    async fn dismiss_quarantined(&self, id: i64) -> Result<()>;

    /// Marks a held entry redelivered: a later batch delivered its record readable (the
    /// decision is the intake's, `tongban_intake::pipeline::redelivered`). The entry is kept.
    async fn mark_redelivered(&self, id: i64) -> Result<()>;

    /// The held entries of `source_id`, each with the last batch that delivered a version of its
    /// record key (the greatest `seen_batch`; `None` for an entry without a key or with a key
    /// never stored), in id order. With `delivered_by`, only the entries of keys that batch
    /// delivered (a version of the key has it as `seen_batch`), every held entry of such a key
    /// included. One query: a batch's closing of redelivered entries must not read each held
    /// key's history apart, since a source may hold thousands and a push delivers a few rows.
    async fn held_with_deliveries(
        &self,
        source_id: &str,
        delivered_by: Option<i64>,
    ) -> Result<Vec<(QuarantineEntry, Option<i64>)>>;

    /// Replaces the links and golden records of one kind of entity (person, entity, building,
    /// room) with a new run's, in one transaction: readers see the old result or the new one,
    /// never a mixture. Returns the run's id.
    async fn replace_resolution(
        &self,
        kind: &str,
        started_at: i64,
        summary: &str,
        links: &[LinkRef<'_>],
        golden: &[GoldenRecord],
    ) -> Result<i64> {
        self.replace_resolution_with(
            kind,
            started_at,
            summary,
            &SliceRows(links),
            GoldenRecords::Ready(golden),
        )
        .await
    }

    /// As [`Store::replace_resolution`], with links read by position (see [`Rows`]) and golden
    /// records that may still be being built when the write begins (see [`GoldenRecords`]).
    async fn replace_resolution_with(
        &self,
        kind: &str,
        started_at: i64,
        summary: &str,
        links: &dyn Rows<LinkRef<'_>>,
        golden: GoldenRecords<'_>,
    ) -> Result<i64>;

    /// The latest run of a kind.
    async fn latest_resolution(&self, kind: &str) -> Result<Option<ResolutionRun>>;

    /// Links of a kind in (source, record key, role) order after `after`, at most `limit`.
    async fn entity_links(
        &self,
        kind: &str,
        after: Option<(&str, &str, &str)>,
        limit: i64,
    ) -> Result<Vec<EntityLink>>;

    /// The mentions linked to one entity.
    async fn links_of_entity(&self, kind: &str, entity_key: &str) -> Result<Vec<EntityLink>>;

    /// The entity a mention is linked to.
    async fn entity_of(
        &self,
        kind: &str,
        source_id: &str,
        record_key: &str,
        role: &str,
    ) -> Result<Option<String>>;

    async fn golden_record(&self, kind: &str, entity_key: &str) -> Result<Option<GoldenRecord>>;

    /// For callers that cache what they read (the governed API's parsed golden records): a
    /// number that stays the same for as long as the golden records did not change, and changes
    /// once they may have, by this store or another process. An entry cached under one
    /// generation may be served while `data_generation` still answers it. `None` when the
    /// backend cannot tell at the moment: then nothing may be cached.
    ///
    /// On both backends the store's own writes move it before they return. On SQLite another
    /// process's commit (to any table but the audit log's) moves it once the store checks the
    /// file's `data_version`, which it does at most once a millisecond: such a commit is served
    /// at most a millisecond after it. On PostgreSQL another process's commit to the golden
    /// records moves it once the store hears it announced (LISTEN/NOTIFY, normally within a
    /// millisecond of the commit), and it is `None` while the listening connection is lost or
    /// has not heard the store's own heartbeat for two seconds; commits by others to other
    /// tables do not move it there.
    async fn data_generation(&self) -> Result<Option<u64>>;

    /// Golden records of `kind` whose JSON text at each criterion's path equals its value (all
    /// must hold), in key order, at most `limit`. A path is dot-separated keys of lower-case
    /// letters and underscores (`fields.name.value`, `address_key`); the paths in
    /// [`SEARCH_PATHS`] are indexed, others scan the table.
    async fn search_golden(
        &self,
        kind: &str,
        criteria: &[(&str, &str)],
        limit: i64,
    ) -> Result<Vec<GoldenRecord>>;

    /// Replaces every relation, in one transaction; a relation given twice, or a
    /// [`STATED_ONCE`] one between the same entities by several records, is kept once (under
    /// its least source and record key).
    async fn replace_relations(&self, relations: &[RelationRef<'_>]) -> Result<()> {
        self.replace_relations_from(&SliceRows(relations)).await
    }

    /// As [`Store::replace_relations`], with the relations read by position (see [`Rows`]).
    async fn replace_relations_from(&self, relations: &dyn Rows<RelationRef<'_>>) -> Result<()>;

    /// Applies what resolving new records changed, for every kind at once, and adds the
    /// relations they state, in one transaction: a record is resolved completely or not at
    /// all. Links and golden records are upserted, so applying the same changes twice changes
    /// nothing. A [`STATED_ONCE`] relation stays cited once, by the least record that states
    /// it, as [`Store::replace_relations`] would keep it.
    async fn apply_library_changes(
        &self,
        changes: &[LibraryChanges],
        relations: &[Relation],
    ) -> Result<()>;

    /// Records a run that changed a library in place (an incremental one) rather than
    /// replacing it; returns its id.
    async fn add_resolution_run(
        &self,
        kind: &str,
        started_at: i64,
        summary: &str,
        mentions: i64,
        entities: i64,
    ) -> Result<i64>;

    /// How many links and golden records a kind's library holds.
    async fn library_counts(&self, kind: &str) -> Result<(i64, i64)>;

    /// Appends audit entries (and a checkpoint, if given) in one transaction. Fails, storing
    /// nothing, if any sequence number is already taken: entries are never overwritten.
    async fn append_audit(
        &self,
        entries: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<()>;

    /// The last audit entry, if any.
    async fn last_audit(&self) -> Result<Option<AuditRow>>;

    /// Audit entries with sequence numbers after `after`, in order, at most `limit`.
    async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>>;

    /// Every checkpoint, in order.
    async fn audit_checkpoints(&self) -> Result<Vec<CheckpointRow>>;

    /// The audit entries about one subject (an entity key), newest first, at most `limit`.
    async fn audit_of_subject(&self, subject: &str, limit: i64) -> Result<Vec<AuditRow>>;

    /// Answered reads per grant stamped in the hours `[from_hour, until_hour)` (hours since the
    /// Unix epoch, UTC, so that a day in any time zone a whole number of hours from UTC is a
    /// range of them): an entry whose action is `read.…` and does not end in `.denied` counts
    /// once under every grant its detail lists in `served_under[].grant` (a string). A detail
    /// that is not JSON, or lists no grant, counts under none. `after`: an entry at or before
    /// which none is stamped in the range (from a search by stamp): of the entries counted from
    /// the log (below), those up to it are not read. Details the API never writes (changed by
    /// hand: a key given twice, nesting hundreds deep) may be read differently by the kept
    /// counts and by the database's JSON functions.
    ///
    /// Kept per hour and grant as entries are appended (in the same transaction), so that a
    /// server's first read under a grant on a busy day, which needs the day's count for the
    /// quota, does not read the day's whole log: counting 350 k entries took PostgreSQL 3 s.
    /// Entries from before the store kept these counts are counted from the log.
    async fn audit_reads_per_grant(
        &self,
        after: i64,
        from_hour: i64,
        until_hour: i64,
    ) -> Result<HashMap<String, u64>>;

    /// Adds or updates a department.
    async fn put_department(&self, d: &DepartmentRow) -> Result<()>;
    async fn departments(&self) -> Result<Vec<DepartmentRow>>;

    /// Adds or updates a user (its department must exist).
    async fn put_user(&self, u: &UserRow) -> Result<()>;
    async fn user(&self, id: &str) -> Result<Option<UserRow>>;
    async fn users(&self) -> Result<Vec<UserRow>>;
    /// Sets a user's console password hash; false if there is no such user.
    async fn set_password(&self, user_id: &str, hash: &str) -> Result<bool>;
    /// A user's console password hash, if they have one.
    async fn password_hash(&self, user_id: &str) -> Result<Option<String>>;

    /// Stores a new token (its id must be new).
    async fn insert_token(&self, t: &TokenRow) -> Result<()>;
    async fn token(&self, id: &str) -> Result<Option<TokenRow>>;
    /// Tokens of a user, newest first.
    async fn tokens_of(&self, user_id: &str) -> Result<Vec<TokenRow>>;
    /// Marks a token revoked at `at`; false if there is no such token or it was revoked already.
    async fn revoke_token(&self, id: &str, at: i64) -> Result<bool>;

    /// Adds a request or stores a grant's new state.
    async fn put_grant(&self, g: &GrantRow) -> Result<()>;
    async fn grant(&self, id: &str) -> Result<Option<GrantRow>>;
    /// Every grant, or a department's, oldest first.
    async fn grants(&self, department: Option<&str>) -> Result<Vec<GrantRow>>;

    /// Relations from or to an entity.
    async fn relations_of(&self, entity_key: &str) -> Result<Vec<Relation>>;

    /// Relations from an entity only, in the order of [`Store::relations_of`]: what a
    /// subject's community is found from at its first governed read, one index range instead
    /// of two merged without duplicates (PostgreSQL executed it in a third of the time).
    async fn relations_from(&self, entity_key: &str) -> Result<Vec<Relation>>;

    /// A golden record and the relations from its entity, as [`Store::golden_record`] and
    /// [`Store::relations_from`] give them, read together: a subject's first governed read needs
    /// both (the record, and its community from the relations), and on PostgreSQL this is one
    /// statement and one round trip instead of two.
    async fn golden_with_relations_from(
        &self,
        kind: &str,
        entity_key: &str,
    ) -> Result<(Option<GoldenRecord>, Vec<Relation>)>;

    /// Every relation in key order after `after`, at most `limit`.
    async fn relations_page(&self, after: Option<&Relation>, limit: i64) -> Result<Vec<Relation>>;

    /// A kind's golden records in key order after `after`, at most `limit`.
    async fn golden_page(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GoldenRecord>>;
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or `postgres://…`.
pub async fn open(url: &str) -> Result<Box<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(sqlite::SqliteStore::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::Url(url.to_string()))
    }
}

/// The index by subject is ordered by era first, an era being the entries whose sequence
/// numbers agree but for their last 14 bits (`seq >> 14`, the literal in both backends' SQL and
/// schemas): 16,384 entries. On both backends a round indexes the eras completed since the last
/// one (normally one), so its sorted entries go to a key range of their own, in order, each
/// index page written about once. With eras of 2^18 (until the audit file's version 1) a round
/// of 16 k entries was inserted among an era's earlier ones, and each of its steps wrote most
/// of that era's pages again: the steps took 5.7 % of the server's time under `tongban bench
/// api`, and the appends that waited behind them set its p99 (14 ms against 6 ms with the index
/// off). A lookup by subject scans at most about an era and a half of entries besides one probe
/// per era.
pub(crate) const SUBJECT_ERA_BITS: u32 = 14;

/// The last sequence number of the last era complete once `newest` is in the log.
pub(crate) fn complete_eras_end(newest: i64) -> i64 {
    (newest & !((1 << SUBJECT_ERA_BITS) - 1)).saturating_sub(1)
}

/// SQL, on a row of `records` named `records`, for the last batch that delivered the record: the
/// larger of the batch that stored it (`records.seen_batch`) and the batch of its sighting, where
/// a batch that found it unchanged recorded one (see migration `record_sightings`). Both
/// backends read it the same way, so it is written once.
pub(crate) const LAST_SEEN: &str = "COALESCE((SELECT CASE WHEN s.seen_batch > records.seen_batch \
     THEN s.seen_batch ELSE records.seen_batch END FROM record_sightings s \
     WHERE s.record_id = records.id), records.seen_batch)";

/// The latest (non-superseded) version of a key as a backend reads it.
#[derive(Clone, Debug)]
pub struct Latest {
    pub id: i64,
    pub version: i64,
    pub status: RecordStatus,
    pub seen_batch: i64,
    pub hash: Vec<u8>,
}

/// What to do with one incoming record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Insert as version `version`; if `supersede` is set, that row becomes superseded first.
    /// `seen_batch` is the last batch that delivered the new row's content: the storing batch
    /// for a delivery, the replaced version's for a re-clean (which delivers nothing).
    Insert {
        version: i64,
        supersede: Option<i64>,
        seen_batch: i64,
    },
    /// A re-cleaned record whose key changed since it was read: the stored version stays.
    Keep,
    /// Same content as the current version (row id): record that this batch saw it (a sighting;
    /// the record's own row is not written).
    Unchanged(i64),
    /// The key was already delivered in this batch (at the given location, when known).
    Duplicate { first: Option<String> },
}

/// Decides, for each incoming record in order, what storing it means. Shared by both backends so
/// that their behaviour cannot drift apart.
pub fn plan_chunk(
    batch_id: i64,
    records: &[IncomingRecord],
    latest: &HashMap<String, Latest>,
) -> Vec<Action> {
    let mut in_chunk: HashMap<&str, &str> = HashMap::with_capacity(records.len());
    records
        .iter()
        .map(|r| {
            if let Some(first) = in_chunk.get(r.key.as_str()) {
                return Action::Duplicate {
                    first: Some((*first).to_string()),
                };
            }
            in_chunk.insert(&r.key, &r.location);
            match latest.get(&r.key) {
                Some(l) if l.seen_batch == batch_id => Action::Duplicate { first: None },
                Some(l) if l.status == RecordStatus::Current && l.hash == r.hash => {
                    Action::Unchanged(l.id)
                }
                Some(l) => Action::Insert {
                    version: l.version + 1,
                    supersede: Some(l.id),
                    seen_batch: batch_id,
                },
                None => Action::Insert {
                    version: 1,
                    supersede: None,
                    seen_batch: batch_id,
                },
            }
        })
        .collect()
}

/// Decides, for records re-cleaned from what the store holds (see [`Store::store_recleaned`]),
/// which become a new version: a record whose key is still current at the version it was read
/// from (`from_versions[i]`), once per key. Anything else (changed, withdrawn or re-cleaned
/// again since it was read, or named twice) keeps what is stored. The new version keeps the
/// replaced one's last delivery, so that snapshots and quarantine releases judge it as before.
pub fn plan_reclean(
    records: &[IncomingRecord],
    from_versions: &[i64],
    latest: &HashMap<String, Latest>,
) -> Vec<Action> {
    let mut in_chunk: std::collections::HashSet<&str> =
        std::collections::HashSet::with_capacity(records.len());
    records
        .iter()
        .zip(
            from_versions
                .iter()
                .map(Some)
                .chain(std::iter::repeat(None)),
        )
        .map(|(r, from)| match (latest.get(&r.key), from) {
            (Some(l), Some(&from))
                if l.status == RecordStatus::Current
                    && l.version == from
                    && in_chunk.insert(r.key.as_str()) =>
            {
                Action::Insert {
                    version: l.version + 1,
                    supersede: Some(l.id),
                    seen_batch: l.seen_batch,
                }
            }
            _ => Action::Keep,
        })
        .collect()
}

/// The quarantine reason of a duplicate key, as a JSON array of one issue.
pub fn duplicate_reason(key: &str, first: Option<&str>) -> String {
    let message = match first {
        Some(loc) => format!("record key {key:?} was already delivered in this batch at {loc}"),
        None => format!("record key {key:?} was already delivered in this batch"),
    };
    serde_json::json!([{
        "code": "record_key.duplicate",
        "field": "record",
        "raw": key,
        "message": message,
        "severity": "blocking",
    }])
    .to_string()
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_values_are_the_text_at_each_path() {
        let person = search_columns("person");
        let record = r#"{"fields":{"name":{"value":"\u5f20\"三\\"},"phone":{"value":null},
            "citizen_id":{"value":320105},"residence":{"value":{"b":1, "a":[true]}}}}"#;
        assert_eq!(
            search_values(&person, record),
            [
                Some("张\"三\\".to_string()),
                None,
                Some("320105".to_string()),
                Some(r#"{"b":1,"a":[true]}"#.to_string())
            ]
        );
        // Missing paths, a path through a non-object, a duplicate key (the last one counts, as
        // in PostgreSQL) and text that is not JSON.
        let odd = r#"{"fields":{"name":"flat","phone":{"value":"1","value":"2"}}}"#;
        assert_eq!(
            search_values(&person, odd),
            [None, Some("2".to_string()), None, None]
        );
        assert_eq!(search_values(&person, "not json"), [None, None, None, None]);
        let room = search_columns("room");
        assert_eq!(
            search_values(&room, r#"{"address_key":"唯亭|12|3|1001"}"#),
            [Some("唯亭|12|3|1001".to_string())]
        );
    }

    /// Rows handed over in key order are taken as they are; rows in any other order are sorted,
    /// so a caller's order can never decide what the store writes.
    #[test]
    fn bulk_rows_come_out_in_key_order_whatever_order_they_came_in() {
        let link = |s: &'static str, k: &'static str, r: &'static str, e: &'static str| LinkRef {
            source_id: s,
            record_key: k,
            role: r,
            entity_key: e,
        };
        let sorted = vec![
            link("a", "1", "mother", "P2"),
            link("a", "1", "subject", "P1"),
            link("b", "0", "subject", "P1"),
        ];
        let ordered = in_key_order(&sorted, link_order);
        assert!(
            ordered
                .iter()
                .zip(&sorted)
                .all(|(a, b)| std::ptr::eq(*a, b))
        );
        let mut shuffled = sorted.clone();
        shuffled.reverse();
        shuffled.swap(0, 1);
        let ordered: Vec<LinkRef> = in_key_order(&shuffled, link_order)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(ordered, sorted);
        assert_eq!(distinct_entities(&SliceRows(&shuffled)), 2);
        // Rows read by position come out the same way.
        let rows = SliceRows(&sorted);
        let positions = positions_in_key_order(&rows, link_order);
        assert_eq!(positions, vec![0, 1, 2]);
        let rows = SliceRows(&shuffled);
        let ordered: Vec<LinkRef> = positions_in_key_order(&rows, link_order)
            .into_iter()
            .map(|i| rows.row(i))
            .collect();
        assert_eq!(ordered, sorted);
    }

    fn rec(key: &str, hash: u8) -> IncomingRecord {
        IncomingRecord {
            key: key.into(),
            location: format!("line {hash}"),
            raw: String::new(),
            raw_columns: None,
            cleaned: String::new(),
            issues: String::new(),
            hash: vec![hash],
        }
    }

    #[test]
    fn plans_new_changed_unchanged_and_duplicate_records() {
        let mut latest = HashMap::new();
        latest.insert(
            "a".to_string(),
            Latest {
                id: 10,
                version: 1,
                status: RecordStatus::Current,
                seen_batch: 1,
                hash: vec![1],
            },
        );
        latest.insert(
            "b".to_string(),
            Latest {
                id: 11,
                version: 2,
                status: RecordStatus::Current,
                seen_batch: 1,
                hash: vec![1],
            },
        );
        latest.insert(
            "c".to_string(),
            Latest {
                id: 12,
                version: 1,
                status: RecordStatus::Withdrawn,
                seen_batch: 1,
                hash: vec![1],
            },
        );
        latest.insert(
            "d".to_string(),
            Latest {
                id: 13,
                version: 1,
                status: RecordStatus::Current,
                seen_batch: 2,
                hash: vec![1],
            },
        );
        let plan = plan_chunk(
            2,
            &[
                rec("a", 1),
                rec("b", 2),
                rec("c", 1),
                rec("d", 1),
                rec("e", 5),
                rec("e", 6),
            ],
            &latest,
        );
        assert_eq!(
            plan,
            [
                Action::Unchanged(10),
                Action::Insert {
                    version: 3,
                    supersede: Some(11),
                    seen_batch: 2
                },
                Action::Insert {
                    version: 2,
                    supersede: Some(12),
                    seen_batch: 2
                },
                Action::Duplicate { first: None },
                Action::Insert {
                    version: 1,
                    supersede: None,
                    seen_batch: 2
                },
                Action::Duplicate {
                    first: Some("line 5".into())
                },
            ]
        );
    }

    #[test]
    fn a_reclean_replaces_only_the_version_it_read() {
        let current = |id, version, seen_batch| Latest {
            id,
            version,
            status: RecordStatus::Current,
            seen_batch,
            hash: vec![1],
        };
        let mut latest = HashMap::new();
        latest.insert("a".to_string(), current(10, 1, 3));
        latest.insert("b".to_string(), current(11, 3, 4));
        latest.insert(
            "c".to_string(),
            Latest {
                status: RecordStatus::Withdrawn,
                ..current(12, 1, 1)
            },
        );
        let plan = plan_reclean(
            &[
                rec("a", 1),
                rec("b", 1),
                rec("c", 1),
                rec("d", 1),
                rec("a", 1),
                rec("e", 1),
            ],
            &[1, 2, 1, 1, 1],
            &latest,
        );
        assert_eq!(
            plan,
            [
                // Still at the version read: a new version, keeping its last delivery.
                Action::Insert {
                    version: 2,
                    supersede: Some(10),
                    seen_batch: 3
                },
                // Changed since it was read, withdrawn, unknown, named twice, no version given.
                Action::Keep,
                Action::Keep,
                Action::Keep,
                Action::Keep,
                Action::Keep,
            ]
        );
    }
}

/// Helpers for tests of this and other crates that need an empty PostgreSQL database.
pub mod testing {
    use sqlx::Connection;

    /// Creates (dropping any leftover of the same name) a database called `t_{name}_{pid}` on the
    /// server `url` names, and returns its URL.
    pub async fn fresh_postgres(url: &str, name: &str) -> crate::Result<String> {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let db = format!("t_{name}_{}", std::process::id());
        for sql in [
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
        }
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
        Ok(format!("{base}/{db}"))
    }

    /// Runs one SQL statement against the database a store URL names, behind the store's back:
    /// for tests that must tamper with what the store wrote (the audit log, say). Never used
    /// outside tests.
    pub async fn execute_raw(url: &str, sql: &str) -> crate::Result<u64> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        if let Some(path) = url.strip_prefix("sqlite://") {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
            sqlx::query(crate::sqlite::ATTACH_AUDIT)
                .bind(crate::sqlite::audit_file(path))
                .execute(&mut conn)
                .await?;
            Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
        }
    }
}
