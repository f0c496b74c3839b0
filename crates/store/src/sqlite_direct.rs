//! The SQLite store's hottest paths, driven through rusqlite rather than sqlx: reading one
//! golden record, appending a batch of audit entries, storing a chunk of ingested records, and
//! applying what resolving one new record changed.
//!
//! Every governed read does the first two. Through sqlx each statement is a message to the
//! connection's own worker thread and an answer back, and an audit batch is three of them (begin,
//! insert, commit); on two cores those thread hand-offs, not SQLite, were most of what a read cost
//! (`tongban bench api`: 11.7 k governed reads/s, 17.7 k without the golden-record read, 18.5 k
//! without the audit append, 54 k without both). Here a golden record is read on the calling
//! thread from a small pool of read-only connections (a primary-key lookup of a few
//! microseconds, and in WAL mode a reader never waits for the writer), and writes are handed
//! once to a thread that owns a connection of its own and runs each as one transaction of cached
//! prepared statements.
//!
//! Audit batches are the exception: they are appended on the calling thread, through a
//! connection that opens the audit file alone (see [`AuditWriter`]). Each batch had been two
//! hand-offs between threads (to the writer thread and back), and on two cores those wake-ups
//! cost as much as the append (`tongban bench api`: 35–40 k governed reads/s through the thread,
//! 44–45 k on the caller's).
//!
//! Ingest chunks go the same way. Through sqlx a chunk of 8,192 records was a few dozen
//! multi-row statements of hundreds of parameters each, every one compiled anew by SQLite and
//! its arguments copied twice on the way; here each record is one execution of a statement
//! prepared once per connection (`tongban bench ingest`).
//!
//! That thread is a second writer beside the sqlx pool's single connection. The two take turns
//! through the store's write turn (a fair lock, see `sqlite`), and every sqlx transaction on
//! SQLite begins `IMMEDIATE` (see `sqlite::BEGIN`), so that a writer from another process, which
//! only SQLite's busy handler keeps apart, waits instead of failing on a stale snapshot. Both
//! rusqlite and sqlx link the same bundled SQLite (libsqlite3-sys 0.37).
//!
//! The audit log's index by subject is kept in bulk between audit batches ([`SubjectIndexer`],
//! migration 0010), on a blocking thread, since kept with every append it cost a page written per
//! entry.
//!
//! This module does not decide what is written or read; `backend`, [`crate::plan_chunk`] and the
//! `Store` trait do.

use crate::{
    Action, AuditRow, CheckpointRow, ChunkOutcome, CleanedRecord, GoldenRecord, IncomingQuarantine,
    IncomingRecord, Latest, LibraryChanges, LinkRef, RecordStatus, RelationRef, Result,
    SUBJECT_ERA_BITS, StoreError, complete_eras_end, duplicate_reason, now_millis, plan_chunk,
};
use rusqlite::{OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a write waits for a writer of another process (or a checkpoint) before failing.
const BUSY: Duration = Duration::from_secs(30);
/// How long a golden-record read may wait (it runs on the caller's thread, an async worker):
/// a WAL reader waits only while the WAL is being recovered or started over.
const READ_BUSY: Duration = Duration::from_secs(1);
/// Read-only connections kept for reuse; more are opened when more threads read at once.
const KEPT_READERS: usize = 8;

/// A write for the writer thread, with where its answer goes.
enum Job {
    Chunk {
        batch_id: i64,
        source_id: String,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
        /// For re-cleaned records, the version each was read from (see `plan_reclean`).
        recleans: Option<Vec<i64>>,
        reply: tokio::sync::oneshot::Sender<Result<ChunkOutcome>>,
    },
    Library {
        changes: Vec<LibraryChanges>,
        relations: Vec<crate::Relation>,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
}

/// A pooled read-only connection, with the main file's `data_version` it last answered.
struct Reader {
    conn: rusqlite::Connection,
    seen_version: Option<i64>,
}

pub(crate) struct Direct {
    path: String,
    readers: Mutex<Vec<Reader>>,
    /// See [`Direct::data_generation`]. Shared with the store, whose own writes move it.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// When a check of `data_version` last began, in nanoseconds since `opened` (0: never).
    checked_at: std::sync::atomic::AtomicU64,
    opened: std::time::Instant,
    /// To the writer thread; it stops when this is dropped.
    writer: std::sync::mpsc::Sender<Job>,
    /// The store's write turn, which audit appends take as the writer thread's jobs do.
    turn: crate::WriteTurn,
    /// Appends audit batches (see [`Direct::append_audit`]).
    audit: std::sync::Arc<tokio::sync::Mutex<AuditWriter>>,
}

/// The connection audit batches are appended through, with the index by subject it keeps.
///
/// It opens the audit file as its main database, not attached beside the store's file: a write
/// transaction begun `IMMEDIATE` takes the write lock of every database of its connection, and
/// an append need take only the audit file's. Appends still take the store's write turn, since
/// the store's other connections attach the audit file and their transactions lock it too.
struct AuditWriter {
    conn: rusqlite::Connection,
    subjects: SubjectIndexer,
}

fn poisoned() -> StoreError {
    StoreError::Corrupt("a connection pool lock was poisoned by a panic".into())
}

impl Direct {
    /// Start the writer thread over the (already migrated) database at `path`, writing in
    /// `turn` with the store's other writers.
    pub(crate) fn open(path: &str, turn: crate::WriteTurn) -> Result<Direct> {
        let conn = open_writer(path)?;
        let audit = AuditWriter {
            conn: open_audit_writer(&crate::sqlite::audit_file(path))?,
            subjects: SubjectIndexer::default(),
        };
        let writer_turn = turn.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let moved = generation.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    let _turn = writer_turn.blocking_lock();
                    if !conn.is_autocommit() {
                        // Left open by a panic (see `guarded`); nothing of it was committed.
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    match job {
                        Job::Chunk {
                            batch_id,
                            source_id,
                            records,
                            quarantine,
                            recleans,
                            reply,
                        } => {
                            let done = guarded("storing a chunk", || {
                                store_chunk(
                                    &mut conn,
                                    batch_id,
                                    &source_id,
                                    &records,
                                    quarantine,
                                    recleans.as_deref(),
                                )
                            });
                            // Before the caller has its answer, as the store's other writes do.
                            moved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let _ = reply.send(done);
                        }
                        Job::Library {
                            changes,
                            relations,
                            reply,
                        } => {
                            let done = guarded("applying library changes", || {
                                apply_library_changes(&mut conn, &changes, &relations)
                            });
                            moved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let _ = reply.send(done);
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Direct {
            path: path.to_string(),
            readers: Mutex::new(Vec::new()),
            generation,
            checked_at: std::sync::atomic::AtomicU64::new(0),
            opened: std::time::Instant::now(),
            writer: tx,
            turn,
            audit: std::sync::Arc::new(tokio::sync::Mutex::new(audit)),
        })
    }

    /// The generation count (see [`Direct::data_generation`]), for the store's own writes to move.
    pub(crate) fn generation(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.generation.clone()
    }

    /// The database file.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Returns a read-only connection to the pool, unless the pool is full.
    fn keep(&self, reader: Reader) {
        if let Ok(mut kept) = self.readers.lock()
            && kept.len() < KEPT_READERS
        {
            kept.push(reader);
        }
    }

    /// `read`'s answer on a pooled read-only connection, which goes back to the pool whatever
    /// the answer.
    fn read<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let reader = self.reader()?;
        let answer = read(&reader.conn);
        self.keep(reader);
        Ok(answer?)
    }

    fn reader(&self) -> Result<Reader> {
        if let Some(r) = self.readers.lock().map_err(|_| poisoned())?.pop() {
            return Ok(r);
        }
        let c = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(READ_BUSY)?;
        attach_audit(&c, &self.path, false)?;
        Ok(Reader {
            conn: c,
            seen_version: None,
        })
    }

    /// A number that changes whenever the main file may have changed since it was last asked,
    /// and stays the same while only the audit log (its own file) is written: what a cache of
    /// golden records checks its entries against (see `Store::data_generation`).
    ///
    /// This store's own writes move it before they return (the `Writing` guard, and the writer
    /// thread after each chunk). Another process's commit is found by a check of the file, made
    /// at most once every [`RECHECK_AFTER`]: a check opens a read transaction, whose locks on
    /// the shared-memory index were a third of a governed lookup's time when every lookup made
    /// one. So a commit by another process is served at most that long after it.
    ///
    /// The check: SQLite's `PRAGMA main.data_version` changes on a connection when another
    /// connection committed to the file, but each connection counts on its own; so each pooled
    /// reader remembers the version it last saw, and a reader that sees a new one moves the
    /// shared generation on before it goes back to the pool. A reader opened afresh has seen
    /// nothing and moves it too (a lost cache, never a stale one). Why nothing read before a
    /// commit is taken for newer: after a commit, the first check on each reader sees it and
    /// moves the generation on before the time it began is recorded; a call that skips the check
    /// does so only on a check begun less than `RECHECK_AFTER` before it, and reads the
    /// generation after that check's time, so after its move.
    pub(crate) fn data_generation(&self) -> Result<u64> {
        use std::sync::atomic::Ordering;
        // Nanoseconds since `opened`, never 0 (0 stands for "never checked").
        let now = (self.opened.elapsed().as_nanos() as u64).max(1);
        let last = self.checked_at.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < RECHECK_AFTER.as_nanos() as u64 {
            return Ok(self.generation.load(Ordering::Acquire));
        }
        let mut r = self.reader()?;
        let version = r
            .conn
            .prepare_cached("PRAGMA main.data_version")
            .and_then(|mut st| st.query_row([], |row| row.get::<_, i64>(0)));
        let generation = version.map(|v| {
            if r.seen_version.replace(v) != Some(v) {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            // The time this check began: a commit made before it is seen by it, and the
            // generation has moved for it by now.
            self.checked_at.fetch_max(now, Ordering::AcqRel);
            self.generation.load(Ordering::Acquire)
        });
        self.keep(r);
        Ok(generation?)
    }

    /// The golden record of `entity_key` in table `golden_{kind}` (`kind` already checked by
    /// `resolution_kind`). Runs on the calling thread: one indexed lookup.
    pub(crate) fn golden_record(
        &self,
        kind: &str,
        entity_key: &str,
    ) -> Result<Option<GoldenRecord>> {
        let sql = match kind {
            "person" => "SELECT record FROM golden_person WHERE entity_key = ?1",
            "entity" => "SELECT record FROM golden_entity WHERE entity_key = ?1",
            "building" => "SELECT record FROM golden_building WHERE entity_key = ?1",
            "room" => "SELECT record FROM golden_room WHERE entity_key = ?1",
            other => return Err(StoreError::UnknownKind(other.to_string())),
        };
        let found = self.read(|conn| {
            conn.prepare_cached(sql)?
                .query_row(params![entity_key], |r| r.get::<_, String>(0))
                .optional()
        })?;
        Ok(found.map(|record| GoldenRecord {
            entity_key: entity_key.to_string(),
            record,
        }))
    }

    /// The relations from `entity_key`, ordered as `Store::relations_from` promises. Runs on the
    /// calling thread like [`Direct::golden_record`], which a governed read pairs it with: one
    /// index range, where sqlx handed the statement and each row across its worker thread.
    pub(crate) fn relations_from(&self, entity_key: &str) -> Result<Vec<crate::Relation>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT from_key, relation, to_key, source_id, record_key FROM relations \
                 WHERE from_key = ?1 ORDER BY relation, to_key, source_id, record_key",
            )?
            .query_map(params![entity_key], |r| {
                Ok(crate::Relation {
                    from_key: r.get(0)?,
                    relation: r.get(1)?,
                    to_key: r.get(2)?,
                    source_id: r.get(3)?,
                    record_key: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    /// Current records after row `after_id` in row order, at most `limit`: the pages resolution
    /// reads every record through. Runs on the calling thread from a pooled read-only
    /// connection; through sqlx every row was handed over from its worker thread.
    pub(crate) fn all_current_cleaned(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<CleanedRecord>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT id, source_id, record_key, cleaned, issues FROM records \
                 WHERE id > ?1 AND status = 'current' ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after_id, limit], |r| {
                Ok(CleanedRecord {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    key: r.get(2)?,
                    cleaned: r.get(3)?,
                    issues: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    /// Append `rows` (and `checkpoint`) in one transaction, on the calling thread, in the
    /// store's write turn. The append blocks the caller's thread for the length of a commit (a
    /// batch of a dozen entries: tens of microseconds), which costs a runtime less than the two
    /// thread hand-offs it replaces; while another process holds the audit file's write lock it
    /// blocks until that lets go, at most the busy timeout. The server appends from one task, so
    /// that holds up one async worker at most. A step of the index by subject, when one is due, runs
    /// afterwards on a blocking thread, still holding the turn and the connection, so that it
    /// holds the next batch back rather than this one.
    pub(crate) async fn append_audit(
        &self,
        rows: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<()> {
        // Read off the entries before taking the writer, which the next batch waits for.
        let reads = crate::grant_reads::by_hour(rows);
        let turn = self.turn.clone().lock_owned().await;
        let mut writer = self.audit.clone().lock_owned().await;
        let w = &mut *writer;
        if !w.conn.is_autocommit() {
            // Left open by a panic (see `guarded`); nothing of it was committed.
            let _ = w.conn.execute_batch("ROLLBACK");
        }
        // Before the append, so that a lookup answered after it finds its entries (see
        // `SubjectIndexer::make_room`).
        if let Some(first) = rows.first() {
            w.subjects.make_room(&w.conn, first.seq);
        }
        let done = guarded("the audit append", || {
            append(&mut w.conn, rows, checkpoint, &reads).map_err(StoreError::from)
        });
        if done.is_ok()
            && let Some(last) = rows.last()
            && w.subjects.due(last.seq)
        {
            let (last, appended) = (last.seq, rows.len());
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                let w = &mut *writer;
                w.subjects.steps(&w.conn, last, appended);
            });
        }
        done
    }

    /// Store an ingest chunk in one transaction on the writer thread.
    pub(crate) async fn store_chunk(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
        recleans: Option<Vec<i64>>,
    ) -> Result<ChunkOutcome> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Chunk {
            batch_id,
            source_id: source_id.to_string(),
            records,
            quarantine,
            recleans,
            reply,
        })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Apply an incremental resolution's changes in one transaction on the writer thread (see
    /// [`apply_library_changes`]).
    pub(crate) async fn apply_library_changes(
        &self,
        changes: Vec<LibraryChanges>,
        relations: Vec<crate::Relation>,
    ) -> Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Library {
            changes,
            relations,
            reply,
        })?;
        answer.await.map_err(|_| stopped())?
    }

    fn send(&self, job: Job) -> Result<()> {
        self.writer.send(job).map_err(|_| stopped())
    }
}

/// A writing connection with the same settings as the sqlx writer: a commit survives a crash
/// of the process, the connection never checkpoints (the store's background task does), and
/// bulk writes find the indexes they extend in a 64 MiB page cache.
fn open_writer(path: &str) -> Result<rusqlite::Connection> {
    let conn = open_for_writing(path)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    attach_audit(&conn, path, true)?;
    // Room for every statement a writer runs: a chunk's (two sizes each) and an incremental
    // resolution's (four a kind, one a search column and five shared, 29 in all).
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A writing connection for replacing a library or the relations: the writer's settings, but
/// temporary files on disk. Building an index on millions of rows sorts them, and SQLite keeps
/// the sort's spilled runs in memory when `temp_store` is MEMORY: at 1 M people that put the
/// resolution's peak at 2.10–2.19 GiB rather than 1.67 (`tongban resolve`), all of it while the
/// next library was being built beside it. On disk they cost no time measured (108.6–112.9 s
/// against 134.4–138.0 s for the same run).
fn open_bulk_writer(path: &str) -> Result<rusqlite::Connection> {
    let conn = open_writer(path)?;
    conn.pragma_update(None, "temp_store", "file")?;
    Ok(conn)
}

/// The connection audit batches are appended through (see [`AuditWriter`]): the audit file
/// alone, with the settings the store's writers give it (`sqlite::AUDIT_SETTINGS`), never
/// checkpointing (the store's background task does).
fn open_audit_writer(audit_path: &str) -> Result<rusqlite::Connection> {
    let conn = open_for_writing(audit_path)?;
    for sql in crate::sqlite::AUDIT_SETTINGS {
        // The same settings, on this connection's main database.
        let sql = sql.replace("PRAGMA audit.", "PRAGMA main.");
        // A PRAGMA that sets a value answers with a row or not, depending on the pragma.
        conn.query_row(&sql, [], |_| Ok(())).optional()?;
    }
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A statement per size of a batch's insert, besides BEGIN, COMMIT, the checkpoint's insert
    // and the index's statements.
    conn.set_prepared_statement_cache_capacity(AUDIT_ROWS_PER_STATEMENT + 16);
    Ok(conn)
}

/// A connection for writing to the file at `path`, with room for bound values
/// ([`more_lookaside`]), waiting up to [`BUSY`] for another writer.
fn open_for_writing(path: &str) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    more_lookaside(&conn);
    conn.busy_timeout(BUSY)?;
    Ok(conn)
}

/// Gives the writing connection room for the values its statements hold. A chunk's insert binds
/// 64 rows of thirteen values, and SQLite copies each bound text into memory of its own; its
/// per-connection lookaside (a few dozen slots by default) runs out at once, and every copy then
/// went to the C allocator and back, a tenth of the writer thread's instructions (callgrind,
/// `tongban bench ingest`). 512 slots of 2 KiB (1 MiB) hold a statement's values. Failure
/// (SQLITE_BUSY, if lookaside memory were in use) leaves the default, which only costs speed.
fn more_lookaside(conn: &rusqlite::Connection) {
    // SAFETY: `conn.handle()` is the connection's live handle, used on this thread only, right
    // after opening, before any statement exists; SQLITE_DBCONFIG_LOOKASIDE takes a buffer
    // pointer (null: SQLite allocates it), a slot size and a slot count, as passed here.
    unsafe {
        rusqlite::ffi::sqlite3_db_config(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            std::ffi::c_int::from(2048u16),
            std::ffi::c_int::from(512u16),
        );
    }
}

/// Attaches the audit log's file to `conn`, opened on the database file `path`, as every
/// connection of the store has it, with `sqlite::AUDIT_SETTINGS` when `writing`.
fn attach_audit(conn: &rusqlite::Connection, path: &str, writing: bool) -> Result<()> {
    conn.execute(
        crate::sqlite::ATTACH_AUDIT,
        [crate::sqlite::audit_file(path)],
    )?;
    if writing {
        for sql in crate::sqlite::AUDIT_SETTINGS {
            // A PRAGMA that sets a value answers with a row or not, depending on the pragma.
            conn.query_row(sql, [], |_| Ok(())).optional()?;
        }
    }
    Ok(())
}

/// Runs a long write on the calling thread, letting the runtime move its other tasks elsewhere
/// meanwhile when it can (a multi-threaded runtime; a single-threaded one, as in tests, just
/// waits). Whole-library writes borrow gigabytes of rows from the caller, which a hand-off to
/// another thread would have to copy.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Inserts `rows` into `table` (`columns` listed as in the statement), [`ROWS_PER_STATEMENT`]
/// a statement, each row's values given by `bind`.
fn insert_rows<T>(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    columns: &[&str],
    rows: impl IntoIterator<Item = T>,
    bind: impl Fn(
        &T,
        &mut dyn FnMut(&dyn rusqlite::ToSql) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()>,
) -> Result<()> {
    let marks = format!("({})", vec!["?"; columns.len()].join(", "));
    let head = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let insert_group = |group: &[T]| -> Result<()> {
        let mut insert = tx.prepare_cached(&rows_sql(&head, &marks, group.len(), ""))?;
        let mut at = 0;
        for row in group {
            bind(row, &mut |v| {
                at += 1;
                insert.raw_bind_parameter(at, v)
            })?;
        }
        insert.raw_execute()?;
        Ok(())
    };
    let mut group = Vec::with_capacity(ROWS_PER_STATEMENT);
    for row in rows {
        group.push(row);
        if group.len() == ROWS_PER_STATEMENT {
            insert_group(&group)?;
            group.clear();
        }
    }
    if !group.is_empty() {
        insert_group(&group)?;
    }
    Ok(())
}

/// Replaces a library's links and golden records in one transaction, as the `Store` trait
/// describes; `k` is the checked kind and `search_indexes` the statements that create its
/// search indexes. Rows go in in primary-key order (golden records within each part as it
/// comes; a run sends its parts in key order too) and the secondary indexes are dropped first
/// and built once after their table's rows, as on PostgreSQL: the links' index before golden
/// records still being built are waited for (holding the write lock meanwhile), the search
/// indexes at the end. The run's `finished_at` is stamped once the last golden record has come.
pub(crate) fn replace_resolution(
    path: &str,
    k: &'static str,
    started_at: i64,
    summary: &str,
    links: &dyn crate::Rows<LinkRef<'_>>,
    golden: crate::GoldenRecords<'_>,
    search_indexes: &[(String, String)],
) -> Result<i64> {
    let mut conn = open_bulk_writer(path)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let run_id: i64 = tx.query_row(
        "INSERT INTO resolution_runs (kind, started_at, finished_at, mentions, entities, summary) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        params![
            k,
            started_at,
            now_millis(),
            links.len() as i64,
            crate::distinct_entities(links) as i64,
            summary
        ],
        |r| r.get(0),
    )?;
    // `k` was checked against the fixed list, so these names are ours, not input.
    tx.execute_batch(&format!("DROP INDEX IF EXISTS links_{k}_by_entity"))?;
    for (name, _) in search_indexes {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    tx.execute_batch(&format!("DELETE FROM links_{k}; DELETE FROM golden_{k};"))?;
    insert_rows(
        &tx,
        &format!("links_{k}"),
        &["source_id", "record_key", "role", "entity_key", "run_id"],
        crate::rows_in_key_order(links, crate::link_order),
        |l, bind| {
            bind(&l.source_id)?;
            bind(&l.record_key)?;
            bind(&l.role)?;
            bind(&l.entity_key)?;
            bind(&run_id)
        },
    )?;
    // Indexed before the golden records are taken: while a run still builds them, this is the
    // writer's work it would otherwise wait to begin.
    tx.execute_batch(&format!(
        "CREATE INDEX links_{k}_by_entity ON links_{k} (entity_key)"
    ))?;
    let mut golden = golden;
    let search = crate::search_columns(k);
    while let Some(part) = golden.next_part(k)? {
        let part = crate::in_key_order(&part, crate::golden_order);
        for group in part.chunks(ROWS_PER_STATEMENT) {
            let mut insert = tx.prepare_cached(&golden_insert_sql(k, &search, group.len()))?;
            let mut at = 0;
            for g in group {
                insert.raw_bind_parameter(at + 1, &g.entity_key)?;
                insert.raw_bind_parameter(at + 2, &g.record)?;
                insert.raw_bind_parameter(at + 3, run_id)?;
                at += 3;
            }
            insert.raw_execute()?;
        }
    }
    tx.execute(
        "UPDATE resolution_runs SET finished_at = ?1 WHERE id = ?2",
        params![now_millis(), run_id],
    )?;
    for (_, create) in search_indexes {
        tx.execute_batch(create)?;
    }
    tx.commit()?;
    Ok(run_id)
}

/// Replaces every relation in one transaction: rows in primary-key order, duplicates dropped,
/// the index by target built once at the end.
pub(crate) fn replace_relations(
    path: &str,
    relations: &dyn crate::Rows<RelationRef<'_>>,
) -> Result<()> {
    let mut conn = open_bulk_writer(path)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("DELETE FROM relations; DROP INDEX IF EXISTS relations_to;")?;
    insert_rows(
        &tx,
        "relations",
        &["from_key", "relation", "to_key", "source_id", "record_key"],
        crate::RelationsOnce::new(relations),
        |r, bind| {
            bind(&r.from_key)?;
            bind(&r.relation)?;
            bind(&r.to_key)?;
            bind(&r.source_id)?;
            bind(&r.record_key)
        },
    )?;
    tx.execute_batch("CREATE INDEX relations_to ON relations (to_key)")?;
    tx.commit()?;
    Ok(())
}

/// Applies what resolving one new record changed, as `Store::apply_library_changes` describes,
/// in one IMMEDIATE transaction of statements prepared once per connection, one row each.
///
/// A record changes a few rows (a handful of links, golden records and relations), so each
/// statement's execution is the work. Through sqlx each of the ten or so statements was a
/// hand-off to its worker thread and back and a multi-row statement compiled anew for its row
/// count; that was most of a record's stored latency at a million people (`tongban bench
/// incremental`).
fn apply_library_changes(
    conn: &mut rusqlite::Connection,
    changes: &[LibraryChanges],
    relations: &[crate::Relation],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for change in changes {
        // Checked against the fixed list, so the table names below are ours, not input.
        let k = crate::resolution_kind(&change.kind)?;
        for (old, new) in &change.renamed {
            tx.prepare_cached(&format!(
                "UPDATE links_{k} SET entity_key = ?1 WHERE entity_key = ?2"
            ))?
            .execute(params![new, old])?;
            tx.prepare_cached(&format!("DELETE FROM golden_{k} WHERE entity_key = ?1"))?
                .execute(params![old])?;
            // A relation may already exist under the new key, so it is copied without
            // duplicates and the old one removed, rather than updated in place.
            for (set, select) in [
                ("from_key", "?1, relation, to_key"),
                ("to_key", "from_key, relation, ?1"),
            ] {
                tx.prepare_cached(&format!(
                    "INSERT INTO relations (from_key, relation, to_key, source_id, record_key) \
                     SELECT {select}, source_id, record_key FROM relations WHERE {set} = ?2 \
                     ON CONFLICT DO NOTHING"
                ))?
                .execute(params![new, old])?;
                tx.prepare_cached(&format!("DELETE FROM relations WHERE {set} = ?1"))?
                    .execute(params![old])?;
            }
        }
        let mut link = tx.prepare_cached(&format!(
            "INSERT INTO links_{k} (source_id, record_key, role, entity_key, run_id) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (source_id, record_key, role) \
             DO UPDATE SET entity_key = excluded.entity_key, run_id = excluded.run_id"
        ))?;
        for l in &change.links {
            link.execute(params![
                l.source_id,
                l.record_key,
                l.role,
                l.entity_key,
                change.run_id
            ])?;
        }
        // A record already stored keeps its search columns in the upsert: assigning one would
        // rewrite its index entry even with the same text (migration 0013). Each is then
        // assigned on its own, and only where the new record changed it.
        let search = crate::search_columns(k);
        let mut golden = tx.prepare_cached(&format!(
            "{} ON CONFLICT (entity_key) \
             DO UPDATE SET record = excluded.record, run_id = excluded.run_id",
            golden_insert_sql(k, &search, 1)
        ))?;
        for g in &change.golden {
            golden.execute(params![g.entity_key, g.record, change.run_id])?;
        }
        drop(golden);
        for c in &search {
            let value = crate::sqlite::json_text_of("record", c.path);
            let mut update = tx.prepare_cached(&format!(
                "UPDATE golden_{k} SET {column} = {value} \
                 WHERE entity_key = ?1 AND {column} IS NOT {value}",
                column = c.column
            ))?;
            for g in &change.golden {
                update.execute(params![g.entity_key])?;
            }
        }
    }
    let mut relation = tx.prepare_cached(
        "INSERT INTO relations (from_key, relation, to_key, source_id, record_key) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )?;
    for r in relations {
        relation.execute(params![
            r.from_key,
            r.relation,
            r.to_key,
            r.source_id,
            r.record_key
        ])?;
    }
    drop(relation);
    for (end, kind, key) in crate::stated_once_to_tidy(changes, relations) {
        tx.prepare_cached(&crate::later_citations_sql(end, ""))?
            .execute(params![kind, key])?;
    }
    tx.commit()?;
    Ok(())
}

/// An insert of `rows` golden records of kind `k` (checked) with their search columns filled as
/// searches read them, by the same `json_extract` of the record: `?1`, `?2`, `?3` the first
/// row's key, record and run, `?4`… the next row's.
fn golden_insert_sql(k: &str, search: &[crate::SearchColumn], rows: usize) -> String {
    let names = crate::search_column_names(search);
    let mut sql = format!("INSERT INTO golden_{k} (entity_key, record, run_id{names}) VALUES ");
    for row in 0..rows {
        let at = row * 3;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(?{}, ?{}, ?{}", at + 1, at + 2, at + 3));
        for c in search {
            sql.push_str(", ");
            sql.push_str(&crate::sqlite::json_text_of(
                &format!("?{}", at + 2),
                c.path,
            ));
        }
        sql.push(')');
    }
    sql
}

fn stopped() -> StoreError {
    StoreError::Corrupt("the SQLite writer thread has stopped".into())
}

/// Runs one write. A panic inside SQLite's wrapper must not stop the writer for good: the write
/// fails and the next one is tried. A transaction the panic left open (the audit append and the
/// index steps begin theirs from cached statements, which do not roll back as they unwind) is
/// rolled back before the writer thread's next job.
fn guarded<T>(what: &str, write: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(write))
        .unwrap_or_else(|_| Err(StoreError::Corrupt(format!("{what} panicked"))))
}

/// Rows bound in one statement when a chunk looks up or inserts records. One statement for many
/// rows keeps SQLite's index cursors where the last row left them, so keys that arrive in order
/// (as a file's do) are found and inserted without a seek from the root each; with a statement
/// per row, SQLite's part of storing a record doubled (callgrind, `tongban bench ingest`).
/// 64 rows of 13 parameters stay far below SQLite's limit of 32,766.
const ROWS_PER_STATEMENT: usize = 64;

/// Audit entries inserted by one statement; one statement per size up to this is cached.
const AUDIT_ROWS_PER_STATEMENT: usize = 16;

/// How long a check of the file's `data_version` stands for (see [`Direct::data_generation`]).
pub(crate) const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

/// `head`, then `row` `n` times separated by commas, then `tail`: a statement for `n` rows,
/// prepared once per size and cached by the connection.
fn rows_sql(head: &str, row: &str, n: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + (row.len() + 2) * n + tail.len());
    sql.push_str(head);
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// The id of the layout (a raw record's column names, see `raw_layout`) whose text is
/// `columns`, added if the store has none yet. Called inside the chunk's transaction, so a
/// layout added by a chunk that is rolled back goes with it.
fn layout_id(tx: &rusqlite::Transaction, columns: &str) -> Result<i64> {
    let mut find =
        tx.prepare_cached("SELECT id FROM record_layouts WHERE columns = ?1 ORDER BY id LIMIT 1")?;
    if let Some(id) = find.query_row(params![columns], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO record_layouts (columns) VALUES (?1)")?
        .execute(params![columns])?;
    Ok(tx.last_insert_rowid())
}

/// Stores one chunk as the `Store` trait describes, in one IMMEDIATE transaction: the latest
/// version of each key looked up, the plan made by [`plan_chunk`] (or, for re-cleaned records,
/// [`crate::plan_reclean`]; both shared with PostgreSQL),
/// replaced versions superseded before their successors are inserted (one non-superseded
/// version per key is a unique index), and the batch's counts updated.
fn store_chunk(
    conn: &mut rusqlite::Connection,
    batch_id: i64,
    source_id: &str,
    records: &[IncomingRecord],
    quarantine: Vec<IncomingQuarantine>,
    recleans: Option<&[i64]>,
) -> Result<ChunkOutcome> {
    let now = now_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut latest: HashMap<String, Latest> = HashMap::with_capacity(records.len());
    for group in records.chunks(ROWS_PER_STATEMENT) {
        let mut find = tx.prepare_cached(&rows_sql(
            &format!(
                "SELECT id, record_key, version, status, {}, content_hash FROM records \
                 WHERE status <> 'superseded' AND source_id = ? AND record_key IN (",
                crate::LAST_SEEN
            ),
            "?",
            group.len(),
            ")",
        ))?;
        find.raw_bind_parameter(1, source_id)?;
        for (i, r) in group.iter().enumerate() {
            find.raw_bind_parameter(i + 2, &r.key)?;
        }
        let mut rows = find.raw_query();
        while let Some(row) = rows.next()? {
            latest.insert(
                row.get(1)?,
                Latest {
                    id: row.get(0)?,
                    version: row.get(2)?,
                    status: RecordStatus::parse(&row.get::<_, String>(3)?)?,
                    seen_batch: row.get(4)?,
                    hash: row.get(5)?,
                },
            );
        }
    }
    let plan = match recleans {
        Some(from) => crate::plan_reclean(records, from, &latest),
        None => plan_chunk(batch_id, records, &latest),
    };
    let mut outcome = ChunkOutcome {
        records: records.len() as i64,
        ..Default::default()
    };
    let mut duplicates = Vec::new();
    {
        let mut supersede =
            tx.prepare_cached("UPDATE records SET status = 'superseded' WHERE id = ?1")?;
        // A sighting, not a write of the record's row (see migration `record_sightings`). Never
        // lower it: a batch that started later may already have seen the record, and a
        // snapshot withdraws what no batch from its own start on has seen.
        let mut seen = tx.prepare_cached(
            "INSERT INTO record_sightings (record_id, seen_batch) VALUES (?2, ?1) \
             ON CONFLICT (record_id) DO UPDATE SET seen_batch = excluded.seen_batch \
             WHERE seen_batch < excluded.seen_batch",
        )?;
        for action in &plan {
            match action {
                Action::Insert {
                    supersede: Some(id),
                    ..
                } => {
                    supersede.execute(params![id])?;
                    outcome.updated += 1;
                }
                Action::Insert { .. } => outcome.inserted += 1,
                Action::Unchanged(id) => {
                    seen.execute(params![batch_id, id])?;
                    outcome.unchanged += 1;
                }
                Action::Keep => outcome.unchanged += 1,
                Action::Duplicate { .. } => {}
            }
        }
        // A record the department delivered but that was held in quarantine this time is still
        // in the delivery: its current version must not be withdrawn by a snapshot. A sighting
        // too, so that a bad row sent again every day does not rewrite the good version's row.
        let mut held = tx.prepare_cached(
            "INSERT INTO record_sightings (record_id, seen_batch) \
             SELECT id, ?1 FROM records WHERE status = 'current' AND source_id = ?2 \
             AND record_key = ?3 \
             ON CONFLICT (record_id) DO UPDATE SET seen_batch = excluded.seen_batch \
             WHERE seen_batch < excluded.seen_batch",
        )?;
        for key in quarantine.iter().filter_map(|q| q.key.as_deref()) {
            held.execute(params![batch_id, source_id, key])?;
        }
        let mut inserts = Vec::with_capacity(records.len());
        // Only records stored anew need their layout (as on PostgreSQL).
        let mut layouts = HashMap::new();
        for columns in crate::raw_layout::distinct_columns(
            records
                .iter()
                .zip(&plan)
                .filter(|(_, action)| matches!(action, Action::Insert { .. }))
                .filter_map(|(r, _)| r.raw_columns.as_ref()),
        ) {
            layouts.insert(columns, layout_id(&tx, columns)?);
        }
        for (r, action) in records.iter().zip(&plan) {
            match action {
                Action::Insert {
                    version,
                    seen_batch,
                    ..
                } => {
                    let layout = r
                        .raw_columns
                        .as_ref()
                        .and_then(|c| layouts.get(&**c).copied());
                    inserts.push((r, *version, *seen_batch, layout));
                }
                Action::Duplicate { first } => duplicates.push(IncomingQuarantine {
                    key: Some(r.key.clone()),
                    location: r.location.clone(),
                    raw: r.raw_object(),
                    raw_hash: r.hash.clone(),
                    reasons: duplicate_reason(&r.key, first.as_deref()),
                }),
                Action::Unchanged(_) | Action::Keep => {}
            }
        }
        insert_rows(
            &tx,
            "records",
            &[
                "source_id",
                "record_key",
                "version",
                "status",
                "batch_id",
                "seen_batch",
                "location",
                "content_hash",
                "raw",
                "cleaned",
                "issues",
                "ingested_at",
                "withdrawn_at",
                "raw_layout",
            ],
            &inserts,
            |(r, version, seen_batch, layout), bind| {
                bind(&source_id)?;
                bind(&r.key)?;
                bind(version)?;
                bind(&"current")?;
                bind(&batch_id)?;
                bind(seen_batch)?;
                bind(&r.location)?;
                bind(&r.hash)?;
                bind(&r.raw)?;
                bind(&r.cleaned)?;
                bind(&r.issues)?;
                bind(&now)?;
                bind(&None::<i64>)?;
                bind(layout)
            },
        )?;
        // A row already held is not held twice; its entry notes that it came again (0017).
        let mut held_again = tx.prepare_cached(
            "UPDATE quarantine SET last_held_batch = ?1 WHERE source_id = ?2 AND raw_hash = ?3 \
             AND location = ?4 AND status = 'held'",
        )?;
        let mut hold = tx.prepare_cached(
            "INSERT INTO quarantine (source_id, batch_id, location, record_key, raw, raw_hash, \
             reasons, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'held', ?8) \
             ON CONFLICT (source_id, raw_hash, location) WHERE status = 'held' DO NOTHING",
        )?;
        for e in quarantine.iter().chain(&duplicates) {
            held_again.execute(params![batch_id, source_id, e.raw_hash, e.location])?;
            outcome.quarantined += hold.execute(params![
                source_id, batch_id, e.location, e.key, e.raw, e.raw_hash, e.reasons, now
            ])? as i64;
        }
        tx.prepare_cached(
            "UPDATE batches SET records = records + ?1, inserted = inserted + ?2, \
             updated = updated + ?3, unchanged = unchanged + ?4, quarantined = quarantined + ?5 \
             WHERE id = ?6",
        )?
        .execute(params![
            outcome.records,
            outcome.inserted,
            outcome.updated,
            outcome.unchanged,
            outcome.quarantined,
            batch_id
        ])?;
    }
    // Dropping an uncommitted transaction (on any error above) rolls it back.
    tx.commit()?;
    Ok(outcome)
}

fn append(
    conn: &mut rusqlite::Connection,
    rows: &[AuditRow],
    checkpoint: Option<&CheckpointRow>,
    reads: &GrantReads,
) -> std::result::Result<(), rusqlite::Error> {
    in_cached_transaction(conn, || append_rows(conn, rows, checkpoint, reads))
}

/// Runs `write` in one IMMEDIATE transaction (taking the write lock at once, waiting for the
/// sqlx writer if it holds it) whose BEGIN and COMMIT come from the statement cache: audit
/// batches and index steps are small and come thousands of times a second, and rusqlite's
/// `Transaction` parses both anew every time. On an error nothing is kept.
fn in_cached_transaction<T>(
    conn: &rusqlite::Connection,
    write: impl FnOnce() -> std::result::Result<T, rusqlite::Error>,
) -> std::result::Result<T, rusqlite::Error> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let written = write().and_then(|t| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(t)
    });
    if written.is_err() && !conn.is_autocommit() {
        // The rollback's own failure adds nothing to report.
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
}

/// The last sequence number of `seq`'s era: its low bits all set (never overflows, whatever a
/// tampered log holds).
fn era_last(seq: i64) -> i64 {
    seq | ((1 << SUBJECT_ERA_BITS) - 1)
}

/// The most eras one round indexes: an index far behind catches up this many eras a round,
/// while a round's entries held in memory stay bounded.
const SUBJECT_ROUND_ERAS: i64 = 8;

/// Where a round that starts with the index at `upto`, the first entry after it at `next` and
/// the log at `last_seq` ends: at the end of the last complete era, at most
/// [`SUBJECT_ROUND_ERAS`] eras from `next`'s (numbers skipped by the log cost nothing); `None`
/// while `next`'s era is not complete.
fn round_end(upto: i64, next: i64, last_seq: i64) -> Option<i64> {
    let first = era_last(upto.saturating_add(1).max(next));
    if last_seq < first {
        return None;
    }
    let complete = if era_last(last_seq) == last_seq {
        last_seq
    } else {
        complete_eras_end(last_seq)
    };
    Some(complete.min(first.saturating_add((SUBJECT_ROUND_ERAS - 1) << SUBJECT_ERA_BITS)))
}

/// Entries one step of a round reads from the log, or writes to the index in one transaction.
/// A round in one transaction held the audit appends behind it for 15–37 ms every 16 k entries,
/// which set the p99 of governed reads (`tongban bench api`). Steps of 2,048 still held one
/// batch in eighty or so back by a few milliseconds (p99 9.6–10.3 ms on this VM); steps of 512
/// halve that (4.8–5.6 ms) at the same throughput. Written sorted to an era of their own, the
/// entries of a step fill its index pages in order however small the step.
const SUBJECT_INDEX_STEP: usize = 512;

/// The bulk index by subject (see migration 0010), advanced one step after each audit batch on
/// a blocking thread. A round reads the entries after where the index stands up to the end of
/// the last complete era ([`round_end`]), a step at a time,
/// sorts them in index order, and writes them a step at a time; its last step moves
/// `audit_subjects_upto` to the round's end. Entries a round has written but not yet covered by
/// `upto` are ignored by lookups (which scan them), and a round cut short by an error or a crash
/// is simply done again (`INSERT OR IGNORE`).
#[derive(Default)]
struct SubjectIndexer {
    /// Where the index stands, read the first time it is needed.
    upto: Option<i64>,
    /// The round's entries as (era, subject, seq); sorted once all are read.
    pending: Vec<(i64, String, i64)>,
    /// The last sequence number read into `pending`.
    read_to: i64,
    /// How many of the sorted `pending` are written; `None` while the round still reads.
    written: Option<usize>,
    /// The last sequence number of the round under way (see [`round_end`]).
    end: Option<i64>,
}

impl SubjectIndexer {
    /// No round under way, the index standing at `upto`.
    fn standing_at(upto: i64) -> SubjectIndexer {
        SubjectIndexer {
            upto: Some(upto),
            read_to: upto,
            ..SubjectIndexer::default()
        }
    }

    /// The steps due now that a batch of `appended` entries ending at `last_seq` is in the log:
    /// one, and as many more as it takes to read and write twice what was appended (each entry
    /// takes two steps, one reading and one writing), so that the index keeps up with batches of
    /// any size. A failed step only delays the index, so its error is not the callers'; the
    /// round starts over.
    fn steps(&mut self, conn: &rusqlite::Connection, last_seq: i64, appended: usize) {
        for _ in 0..1 + 4 * appended / SUBJECT_INDEX_STEP {
            let done = guarded("indexing audit entries by subject", || {
                self.step(conn, last_seq).map_err(StoreError::from)
            });
            match done {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    // Only the index is behind (lookups scan what it lacks); said where the
                    // operator sees the store's other background failures.
                    eprintln!("sqlite: indexing audit entries by subject: {e}");
                    *self = SubjectIndexer::default();
                    break;
                }
            }
        }
    }

    /// Whether [`SubjectIndexer::steps`] after a batch ending at `last_seq` would do anything:
    /// a round under way, or one due.
    fn due(&self, last_seq: i64) -> bool {
        self.upto.is_some_and(|upto| {
            self.end.is_some() || round_end(upto, upto.saturating_add(1), last_seq).is_some()
        })
    }

    /// Before entries from `first_seq` on are appended: read where the index stands, if not
    /// known yet, and move it below them if they would be at or below it (after a log was cut
    /// short and written again they would be neither scanned nor indexed); the round then
    /// starts over. A failure leaves the index as it stands and is only reported.
    fn make_room(&mut self, conn: &rusqlite::Connection, first_seq: i64) {
        let upto = match self.upto {
            Some(u) => u,
            None => {
                match conn.query_row("SELECT upto FROM audit_subjects_upto", [], |r| r.get(0)) {
                    Ok(u) => {
                        *self = SubjectIndexer::standing_at(u);
                        u
                    }
                    Err(e) => {
                        eprintln!("sqlite: indexing audit entries by subject: {e}");
                        return;
                    }
                }
            }
        };
        if first_seq <= upto {
            let below = first_seq.saturating_sub(1);
            let lowered = conn
                .prepare_cached("UPDATE audit_subjects_upto SET upto = MIN(upto, ?1)")
                .and_then(|mut s| s.execute(params![below]));
            match lowered {
                Ok(_) => *self = SubjectIndexer::standing_at(below),
                Err(e) => {
                    eprintln!("sqlite: indexing audit entries by subject: {e}");
                    *self = SubjectIndexer::default();
                }
            }
        }
    }

    /// One step if one is due; whether there was one. `make_room` has read where the index
    /// stands, unless a step before this one started the round over.
    fn step(
        &mut self,
        conn: &rusqlite::Connection,
        last_seq: i64,
    ) -> std::result::Result<bool, rusqlite::Error> {
        let Some(upto) = self.upto else {
            return Ok(false);
        };
        match self.written {
            None => {
                let end = match self.end {
                    Some(end) => end,
                    None => {
                        // The round starts at the era of the first entry after the index, so
                        // that a jump in the numbers is passed over at once.
                        let next: Option<i64> = conn
                            .prepare_cached("SELECT MIN(seq) FROM audit_log WHERE seq > ?1")?
                            .query_row(params![upto], |r| r.get(0))?;
                        let next = next.unwrap_or(upto.saturating_add(1));
                        match round_end(upto, next, last_seq) {
                            Some(end) => end,
                            None => return Ok(false),
                        }
                    }
                };
                self.end = Some(end);
                let before = self.pending.len();
                let mut read = conn.prepare_cached(
                    "SELECT subject, seq FROM audit_log WHERE seq > ?1 AND seq <= ?2 \
                     ORDER BY seq LIMIT ?3",
                )?;
                let rows =
                    read.query_map(params![self.read_to, end, SUBJECT_INDEX_STEP as i64], |r| {
                        let seq: i64 = r.get(1)?;
                        Ok((seq >> SUBJECT_ERA_BITS, r.get::<_, String>(0)?, seq))
                    })?;
                for row in rows {
                    let row = row?;
                    self.read_to = row.2;
                    self.pending.push(row);
                }
                if self.pending.len() - before < SUBJECT_INDEX_STEP {
                    // The round's eras are read: every entry up to their end was appended before
                    // the round began (appends come in sequence order), so the round covers them
                    // whole, numbers missing from the log included.
                    self.read_to = end;
                    self.pending.sort_unstable();
                    self.written = Some(0);
                }
                Ok(true)
            }
            Some(written) => {
                let end = (written + SUBJECT_INDEX_STEP).min(self.pending.len());
                let last = end == self.pending.len();
                if last {
                    // A log cut below what the round read (entries deleted: tampering) may have
                    // had entries appended since at numbers the round passed over; the round
                    // starts again rather than leave them behind `upto`.
                    let newest: Option<i64> = conn
                        .prepare_cached("SELECT MAX(seq) FROM audit_log")?
                        .query_row([], |r| r.get(0))?;
                    if newest.is_some_and(|n| n < self.read_to) {
                        *self = SubjectIndexer::default();
                        return Ok(true);
                    }
                }
                in_cached_transaction(conn, || {
                    let mut insert = conn.prepare_cached(
                        "INSERT OR IGNORE INTO audit_subjects (era, subject, seq) \
                         VALUES (?1, ?2, ?3)",
                    )?;
                    for (era, subject, seq) in &self.pending[written..end] {
                        insert.execute(params![era, subject, seq])?;
                    }
                    if last {
                        // Never backwards: another process may have indexed further.
                        conn.prepare_cached("UPDATE audit_subjects_upto SET upto = MAX(upto, ?1)")?
                            .execute(params![self.read_to])?;
                    }
                    Ok(())
                })?;
                if last {
                    *self = SubjectIndexer::standing_at(self.read_to);
                } else {
                    self.written = Some(end);
                }
                Ok(true)
            }
        }
    }
}

/// Answered reads per (hour, grant), as [`crate::grant_reads::by_hour`] reads them off a batch.
type GrantReads = std::collections::BTreeMap<(i64, String), i64>;

/// The inserts of [`append`], inside its transaction.
fn append_rows(
    conn: &rusqlite::Connection,
    rows: &[AuditRow],
    checkpoint: Option<&CheckpointRow>,
    reads: &GrantReads,
) -> std::result::Result<(), rusqlite::Error> {
    // A statement of up to AUDIT_ROWS_PER_STATEMENT rows: a batch is a dozen entries or so, and
    // one execution for them all steps the b-tree cursor once per row instead of starting over.
    for group in rows.chunks(AUDIT_ROWS_PER_STATEMENT) {
        let mut insert = conn.prepare_cached(&rows_sql(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev, hash) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?)",
            group.len(),
            "",
        ))?;
        let mut at = 0;
        for e in group {
            for v in [
                &e.seq as &dyn rusqlite::ToSql,
                &e.at,
                &e.actor,
                &e.action,
                &e.subject,
                &e.detail,
                &e.prev,
                &e.hash,
            ] {
                at += 1;
                insert.raw_bind_parameter(at, v)?;
            }
        }
        insert.raw_execute()?;
    }
    if let Some(c) = checkpoint {
        conn.prepare_cached(
            "INSERT INTO audit_checkpoints (from_seq, to_seq, root, key, signature, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            c.from_seq,
            c.to_seq,
            c.root,
            c.key,
            c.signature,
            c.at
        ])?;
    }
    // The answered reads per hour and grant, in the same transaction as the entries.
    for ((hour, grant), n) in reads {
        conn.prepare_cached(
            "INSERT INTO audit_grant_reads (hour, grant_id, reads) VALUES (?1, ?2, ?3) \
             ON CONFLICT (hour, grant_id) DO UPDATE SET reads = reads + excluded.reads",
        )?
        .execute(params![hour, grant, n])?;
    }
    Ok(())
}

#[cfg(test)]
mod era_tests {
    use super::{era_last, round_end};

    #[test]
    fn rounds_end_where_complete_eras_do() {
        assert_eq!(era_last(0), 16_383);
        assert_eq!(era_last(16_383), 16_383);
        assert_eq!(era_last(16_384), 32_767);
        assert_eq!(era_last(-1), -1);
        // The era after the index is not complete yet.
        assert_eq!(round_end(0, 1, 16_382), None);
        assert_eq!(round_end(0, 1, 16_383), Some(16_383));
        assert_eq!(round_end(16_383, 16_384, 40_000), Some(32_767));
        // An index lowered into the middle of an era finishes that era.
        assert_eq!(round_end(100, 101, 20_000), Some(16_383));
        // At most eight eras from the first entry, however far the log has gone.
        assert_eq!(round_end(0, 1, 10_000_000), Some(8 * 16_384 - 1));
        // Numbers the log skipped cost nothing: the round starts at the next entry's era.
        assert_eq!(round_end(0, 5_000_000, 5_100_000), Some(5_095_423));
        assert_eq!(round_end(0, 5_000_000, 5_001_000), None);
        // A tampered log at the end of the range neither overflows nor goes backwards.
        assert_eq!(
            round_end(i64::MAX - 10, i64::MAX - 9, i64::MAX),
            Some(i64::MAX)
        );
        assert_eq!(round_end(i64::MIN, i64::MIN, i64::MIN + 5), None);
    }
}
