//! The embedded SQLite store: a file in the data directory, the default, and the audit log's
//! own file beside it (`tongban.db` and `tongban.audit.db`), attached to every connection as
//! schema `audit` (see [`audit_file`] and `migrations/sqlite-audit/audit.sql` for why). No
//! transaction writes both: SQLite would commit each file's WAL on its own.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a committed transaction survives a
//! crash of the process (the WAL is on disk), and only a power loss can cost the last
//! transactions, never consistency. SQLite has one writer at a time. The sqlx pool keeps a single
//! writing connection for everything but the hottest writes; ingest chunks, incremental
//! resolution's changes and audit batches have writing connections of their own (see
//! `sqlite_direct`), and golden records are read
//! through read-only connections beside them (see `sqlite_direct`). The two writers take turns through one fair lock, the store's write turn, rather than SQLite's busy
//! handler, which retries after sleeps of up to 100 ms and can miss the microsecond gaps between
//! audit commits for as long as reads keep coming.
//!
//! This module opens the file and runs the SQLite migrations; the statements are in `backend`,
//! and in `sqlite_direct` for the paths driven through rusqlite.

use crate::{
    AuditRow, BatchRow, BatchStatus, CheckpointRow, ChunkOutcome, CleanedRecord, DepartmentRow,
    EntityLink, GoldenRecord, GrantRow, IncomingQuarantine, IncomingRecord, LibraryChanges,
    LinkRef, QuarantineEntry, QuarantineStatus, RecordStatus, RecordVersion, Relation, RelationRef,
    ResolutionRun, Result, SourceRow, Store, StoreError, TokenRow, UserRow, now_millis,
    resolution_kind,
};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqlitePool};
use std::str::FromStr;

pub struct SqliteStore {
    pool: SqlitePool,
    /// Read-only connections for the governed API's other hot reads (a subject's relations, a
    /// token, a user, a department's grants; golden records are read through `direct`): in WAL
    /// mode they read the last committed state while a writer works, instead of queueing behind
    /// its transactions.
    read: SqlitePool,
    /// The background checkpointer, stopped when the store is closed or dropped.
    checkpointer: tokio::task::JoinHandle<()>,
    /// The checkpointer's connection: closing it waits for a checkpoint in flight, which
    /// stopping the task does not end.
    checkpoints: SqlitePool,
    /// The golden-record read, the audit append, ingest chunks and incremental resolution's
    /// changes, through rusqlite (see `sqlite_direct`).
    direct: crate::sqlite_direct::Direct,
    /// Held by a writer for as long as its transaction runs: the sqlx pool's transactions, the
    /// writer thread's jobs, audit batches, and the checkpointer's restarts queue here,
    /// first come first served.
    turn: crate::WriteTurn,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and brings its schema up to date.
    pub async fn open(path: &str) -> Result<SqliteStore> {
        without_memory_statistics();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .page_size(NEW_PAGE_BYTES)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(30))
            // A 64 MiB page cache and in-memory temporary tables: ingest touches the key index
            // of every record it stores. Checkpointing the WAL every 64 MiB rather than every
            // 4 MiB lets a bulk load write each page once instead of many times (about 20 %
            // faster ingest, measured with `tongban bench ingest`).
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // The writer never checkpoints: a checkpoint writes the WAL back into the database
            // file and syncs it, which took the single writer (and every read waiting for its
            // audit entry) away for hundreds of milliseconds. A task of the store's own does it
            // instead, on its own connection, beside the writer (see `checkpoint_in_background`).
            .pragma("wal_autocheckpoint", "0");
        // The file sqlx opens, as rusqlite and the checkpointer must open it too (a URL's
        // query string and escapes are sqlx's to read), and the audit log's file beside it.
        let file = options.get_filename().to_string_lossy().into_owned();
        let audit = audit_file(&file);
        // Attaching creates the audit file; whether there was one decides below whether an
        // empty log may be started.
        let had_main = std::path::Path::new(&file).exists();
        let had_audit = std::path::Path::new(&audit).exists();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(attach_audit(&audit, true))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        move_audit_log(&pool, had_main && !had_audit, &audit).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(attach_audit(&audit, false))
            .connect_with(
                SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                    .read_only(true)
                    .busy_timeout(std::time::Duration::from_secs(30))
                    .pragma("cache_size", "-16384"),
            )
            .await?;
        let turn = crate::WriteTurn::default();
        let (checkpointer, checkpoints) =
            checkpoint_in_background(&file, &audit, turn.clone()).await?;
        let direct = crate::sqlite_direct::Direct::open(&file, turn.clone())?;
        Ok(SqliteStore {
            pool,
            read,
            checkpointer,
            checkpoints,
            direct,
            turn,
        })
    }

    fn write_turn(&self) -> Option<crate::WriteTurn> {
        Some(self.turn.clone())
    }

    /// The generation this store's own writes move at once; other processes' commits move it
    /// when a check of the file's `data_version` finds them (see `Direct::data_generation`).
    fn own_generation(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        Some(self.direct.generation())
    }

    async fn backend_data_generation(&self) -> Result<Option<u64>> {
        self.direct.data_generation().map(Some)
    }

    /// Stops the checkpointer and waits for a checkpoint it has in flight (SQLite runs one at a
    /// time and refuses a second at once), copies each file's WAL into the file beside any other
    /// process's work (`PASSIVE`), then truncates it (`TRUNCATE`, which needs the file's write
    /// lock and no reader in the log), and closes the pools whatever came of that.
    ///
    /// The truncation waits at most [`CLOSE_BUSY`] a file: beside a running server or a long
    /// ingest of another process it would otherwise hold this command for the writer
    /// connection's 30 s busy timeout and the other process's writes behind it; there the log is
    /// left to whoever closes last.
    async fn backend_close(&self) -> Result<()> {
        self.checkpointer.abort();
        self.checkpoints.close().await;
        let checkpointed = async {
            let _turn = self.turn.lock().await;
            let mut conn = self.pool.acquire().await?;
            sqlx::query(AssertSqlSafe(format!(
                "PRAGMA busy_timeout = {}",
                CLOSE_BUSY.as_millis()
            )))
            .execute(&mut *conn)
            .await?;
            for schema in ["main", "audit"] {
                for mode in ["PASSIVE", "TRUNCATE"] {
                    sqlx::query(AssertSqlSafe(format!(
                        "PRAGMA {schema}.wal_checkpoint({mode})"
                    )))
                    .fetch_one(&mut *conn)
                    .await?;
                }
            }
            // The connection closes with the pool below, so its busy timeout is not restored.
            Ok::<(), StoreError>(())
        }
        .await;
        self.read.close().await;
        self.pool.close().await;
        checkpointed
    }

    async fn backend_golden_record(
        &self,
        k: &str,
        entity_key: &str,
    ) -> Result<Option<GoldenRecord>> {
        self.direct.golden_record(k, entity_key)
    }

    /// Two reads on the calling thread: in the process, there is no round trip to save.
    async fn backend_golden_with_relations_from(
        &self,
        k: &str,
        entity_key: &str,
    ) -> Result<(Option<GoldenRecord>, Vec<Relation>)> {
        let golden = self.backend_golden_record(k, entity_key).await?;
        Ok((golden, Store::relations_from(self, entity_key).await?))
    }

    async fn backend_relations_from(&self, entity_key: &str) -> Result<Vec<Relation>> {
        self.direct.relations_from(entity_key)
    }

    async fn backend_store_chunk(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
        recleans: Option<Vec<i64>>,
    ) -> Result<ChunkOutcome> {
        self.direct
            .store_chunk(batch_id, source_id, records, quarantine, recleans)
            .await
    }

    async fn backend_apply_library_changes(
        &self,
        changes: &[LibraryChanges],
        relations: &[Relation],
    ) -> Result<()> {
        self.direct
            .apply_library_changes(changes.to_vec(), relations.to_vec())
            .await
    }

    async fn backend_all_current_cleaned(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<CleanedRecord>> {
        crate::sqlite_direct::blocking(|| self.direct.all_current_cleaned(after_id, limit))
    }

    async fn backend_replace_resolution(
        &self,
        k: &'static str,
        started_at: i64,
        summary: &str,
        links: &dyn crate::Rows<LinkRef<'_>>,
        golden: crate::GoldenRecords<'_>,
    ) -> Result<i64> {
        let creates: Vec<(String, String)> = crate::search_columns(k)
            .into_iter()
            .map(|c| {
                let create = format!("CREATE INDEX {} ON golden_{k} ({})", c.index, c.column);
                (c.index, create)
            })
            .collect();
        let _writing = self.hold_write_turn().await;
        crate::sqlite_direct::blocking(|| {
            crate::sqlite_direct::replace_resolution(
                self.direct.path(),
                k,
                started_at,
                summary,
                links,
                golden,
                &creates,
            )
        })
    }

    async fn backend_replace_relations(
        &self,
        relations: &dyn crate::Rows<RelationRef<'_>>,
    ) -> Result<()> {
        let _writing = self.hold_write_turn().await;
        crate::sqlite_direct::blocking(|| {
            crate::sqlite_direct::replace_relations(self.direct.path(), relations)
        })
    }

    async fn backend_append_audit(
        &self,
        entries: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<()> {
        self.direct.append_audit(entries, checkpoint).await
    }
}

/// Turns SQLite's memory statistics off, once per process, before SQLite first starts. With them
/// on (SQLite's default), every allocation SQLite makes takes one global mutex to count it: 5 %
/// of the writer thread's instructions in an ingest (callgrind), and a lock the writer and the
/// readers of the governed API contend for. The store never reads the statistics.
fn without_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` must not run beside any other SQLite call. Only this store
        // uses SQLite in the process, and every way to it passes here first: this `Once` runs
        // before the first connection, and other threads wait on it. After SQLite has started
        // (a connection opened elsewhere first) the call changes nothing and answers
        // SQLITE_MISUSE, which is ignored. SQLITE_CONFIG_MEMSTATUS takes one `int`.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                std::ffi::c_int::from(0u8),
            );
        }
    });
}

/// The audit log's file beside the database file `path`: `tongban.db` → `tongban.audit.db`
/// (see `migrations/sqlite-audit/audit.sql` for why it is a file of its own). Every connection
/// the store opens attaches it as schema `audit`; statements name its tables unqualified.
pub fn audit_file(path: &str) -> String {
    match path.strip_suffix(".db") {
        Some(stem) => format!("{stem}.audit.db"),
        None => format!("{path}.audit"),
    }
}

/// The audit file's tables, created if missing each time the store opens.
const AUDIT_SCHEMA: &str = include_str!("../migrations/sqlite-audit/audit.sql");

/// Attaches the audit file (`?1`) to a connection as schema `audit`.
pub(crate) const ATTACH_AUDIT: &str = "ATTACH DATABASE ?1 AS audit";

/// What a writing connection sets on the attached audit file after [`ATTACH_AUDIT`], the
/// settings the main file has (they are per file): WAL, `synchronous = NORMAL` and a page
/// cache, and SQLite's small default page size when the file is new. Its commits are a dozen
/// entries of a few hundred bytes and a WAL frame is a whole page: in the main file, which then
/// had 16 KiB pages, governed lookups fell from 26–27 k to 18–22 k req/s (`tongban bench api`).
/// A file of its own also keeps audit commits from emptying the golden records' readers' page
/// caches, whatever the page size.
pub(crate) const AUDIT_SETTINGS: &[&str] = &[
    "PRAGMA audit.page_size = 4096",
    "PRAGMA audit.journal_mode = WAL",
    "PRAGMA audit.synchronous = NORMAL",
    "PRAGMA audit.cache_size = -16384",
];

/// What an sqlx `after_connect` hook returns.
type Attaching<'c> = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::result::Result<(), sqlx::Error>> + Send + 'c>,
>;

/// An sqlx `after_connect` hook attaching the audit file, with [`AUDIT_SETTINGS`] when `writing`.
fn attach_audit(
    audit: &str,
    writing: bool,
) -> impl for<'c> Fn(&'c mut sqlx::SqliteConnection, sqlx::pool::PoolConnectionMetadata) -> Attaching<'c>
+ Send
+ Sync
+ 'static {
    let audit = audit.to_string();
    move |conn, _| {
        let audit = audit.clone();
        Box::pin(async move {
            sqlx::query(ATTACH_AUDIT)
                .bind(audit)
                .execute(&mut *conn)
                .await?;
            if writing {
                for sql in AUDIT_SETTINGS {
                    sqlx::query(*sql).execute(&mut *conn).await?;
                }
            }
            Ok(())
        })
    }
}

/// Creates the audit file's tables if missing, and moves the audit log out of the main file if
/// it is still there (migrations 0005–0010 created it there; a store from before the split has
/// its log there). Crash-safe without one transaction over both files, which SQLite does not
/// make atomic in WAL mode: the entries are first copied into the audit file in a transaction of
/// that file alone (a copy already there is skipped), and only after that commits are the main
/// file's tables dropped, in a transaction of the main file alone. Killed in between, the next
/// start copies nothing new and drops them.
///
/// `audit_missing`: the database file existed and the audit file did not. If the log has already
/// been moved out of the main file, that file was lost (or only the database was copied or
/// restored); starting an empty log would hide it, so opening fails instead.
async fn move_audit_log(pool: &SqlitePool, audit_missing: bool, audit: &str) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let in_main: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'audit_log'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if in_main.is_none() && audit_missing {
        // Attaching made an empty file (and its WAL): do not leave it to pass for the log.
        drop(conn);
        pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{audit}{suffix}"));
        }
        return Err(StoreError::Corrupt(format!(
            "the audit log's file {audit} is missing beside the database: restore it with the \
             database (they are kept and copied together); no new log is started over a lost one"
        )));
    }
    sqlx::raw_sql(AUDIT_SCHEMA).execute(&mut *conn).await?;
    if in_main.is_some() {
        copy_audit_log_out_of_main(&mut conn).await?;
    }
    let version: i64 = sqlx::query_scalar("PRAGMA audit.user_version")
        .fetch_one(&mut *conn)
        .await?;
    // The audit file's layout version (`PRAGMA audit.user_version`): 1 since the index by
    // subject has eras of 2^14 entries, 2 since answered reads are counted per hour and grant.
    // A newer file's appends may keep more than this binary would: it is not written to.
    if version > AUDIT_FILE_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the audit log's file {audit} has layout version {version}, made by a newer Tongban \
             (this one knows up to {AUDIT_FILE_VERSION}); downgrades are not supported"
        )));
    }
    for (to, upgrade) in [(1, AUDIT_UPGRADE_ERAS), (2, AUDIT_UPGRADE_GRANT_READS)] {
        if version < to
            && let Err(e) = sqlx::raw_sql(upgrade).execute(&mut *conn).await
        {
            // Nothing of it is kept; the connection goes back to the pool without it open.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(e.into());
        }
    }
    Ok(())
}

/// The newest layout of the audit file this binary knows (see [`move_audit_log`]).
const AUDIT_FILE_VERSION: i64 = 2;

/// Version 1 → 2: the counts of answered reads per hour and grant (tables in the audit file's
/// schema) start after the last entry the file holds; the entries up to it are counted from
/// the log when asked for. (A new file passes here too, its log empty or just copied in.)
const AUDIT_UPGRADE_GRANT_READS: &str = "\
    BEGIN IMMEDIATE; \
    INSERT OR IGNORE INTO audit.audit_grant_reads_from (id, seq) \
        SELECT 0, COALESCE(MAX(seq), -9223372036854775808) FROM audit.audit_log; \
    PRAGMA audit.user_version = 2; \
    COMMIT;";

/// Version 0 → 1: the index by subject re-keyed from eras of 2^18 entries to eras of 2^14, the
/// width of a round of the index (see `sqlite_direct::SubjectIndexer`), so that a round writes a
/// fresh era in order instead of among the many pages of an era a sixteenth full. One
/// transaction of the audit file: killed before its commit, the next start does it again. The
/// trigger goes first, since renaming a table re-reads every trigger of the schema and this one
/// names the table being replaced.
const AUDIT_UPGRADE_ERAS: &str = "\
    BEGIN IMMEDIATE; \
    DROP TRIGGER IF EXISTS audit.audit_subjects_changed; \
    CREATE TABLE audit.audit_subjects_by_era ( \
        era     INTEGER NOT NULL, \
        subject TEXT NOT NULL, \
        seq     INTEGER NOT NULL, \
        PRIMARY KEY (era, subject, seq) \
    ) WITHOUT ROWID; \
    INSERT OR IGNORE INTO audit.audit_subjects_by_era (era, subject, seq) \
        SELECT seq >> 14, subject, seq FROM audit.audit_subjects ORDER BY seq >> 14, subject, seq; \
    DROP TABLE audit.audit_subjects; \
    ALTER TABLE audit.audit_subjects_by_era RENAME TO audit_subjects; \
    CREATE TRIGGER audit.audit_subjects_changed AFTER UPDATE OF seq, subject ON audit_log \
    BEGIN \
        INSERT OR IGNORE INTO audit_subjects (era, subject, seq) \
            VALUES (NEW.seq >> 14, NEW.subject, NEW.seq); \
    END; \
    PRAGMA audit.user_version = 1; \
    COMMIT;";

/// The copy of [`move_audit_log`]: entries into the audit file, then the main file's tables
/// dropped. The index by subject is copied with eras of the current width (a copy made again
/// after an interrupted move may land in an upgraded file).
async fn copy_audit_log_out_of_main(conn: &mut sqlx::SqliteConnection) -> Result<()> {
    // The copy must be on disk before the drop can be: with `synchronous = NORMAL` a WAL commit
    // is not synced, and after a power loss the drop could survive without the copy.
    sqlx::raw_sql(
        "PRAGMA audit.synchronous = FULL; \
         BEGIN IMMEDIATE; \
         INSERT OR IGNORE INTO audit.audit_log SELECT * FROM main.audit_log ORDER BY seq; \
         INSERT OR IGNORE INTO audit.audit_checkpoints SELECT * FROM main.audit_checkpoints; \
         INSERT OR IGNORE INTO audit.audit_subjects \
             SELECT seq >> 14, subject, seq FROM main.audit_subjects; \
         INSERT OR REPLACE INTO audit.audit_subjects_upto SELECT * FROM main.audit_subjects_upto; \
         COMMIT; \
         PRAGMA audit.synchronous = NORMAL;",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::raw_sql(
        "BEGIN IMMEDIATE; \
         DROP TRIGGER IF EXISTS main.audit_subjects_changed; \
         DROP TABLE IF EXISTS main.audit_subjects; \
         DROP TABLE IF EXISTS main.audit_subjects_upto; \
         DROP TABLE IF EXISTS main.audit_checkpoints; \
         DROP TABLE IF EXISTS main.audit_log; \
         COMMIT;",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How the writer pool's transactions begin. `IMMEDIATE` takes the write lock at once: the
/// writer thread (`sqlite_direct`) is a second writer, and a deferred transaction that read
/// before it wrote would fail outright, rather than wait, if that writer had committed between.
const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");

/// How long closing the store waits for another process's readers or writer before it leaves
/// a WAL as it is (see `backend_close`).
const CLOSE_BUSY: std::time::Duration = std::time::Duration::from_millis(200);

/// The WAL size past which the background task restarts it (see [`checkpoint_in_background`]).
const WAL_RESTART_BYTES: i64 = 1 << 30;
/// The page size of databases the store creates: SQLite's default of 4 KiB. From session 8 to
/// 17 it was 16 KiB, which made bulk loads allocate, balance and log a quarter as many pages
/// (then 2.6–2.75 s instead of 3.4–3.7 s to ingest the household register; by session 18 the
/// difference had shrunk to 6–8 %). But every row that incremental resolution changes lies on a
/// page of its own, which goes to the WAL and again to the file at the checkpoint, so 16 KiB
/// pages wrote four times the bytes: at a million people 543 KiB a resolved record instead of
/// 186 KiB, and the disk's queue put a p99 of 11–17 ms on storing one instead of 4.9 ms
/// (`tongban bench incremental --people 1000000`). The price is paid by bulk writes of the
/// libraries: a full resolve of a million people took 17–22 % longer (README, "Session 18").
/// A database created with another size keeps it (WAL mode cannot change it in place).
const NEW_PAGE_BYTES: u32 = 4096;

/// Checkpoint the WAL every half second from a connection of its own, for as long as the
/// runtime runs. PASSIVE: it copies what no reader still needs and never waits for the writer
/// or blocks it, so writes go on while it syncs.
///
/// Under steady load that is not enough: SQLite starts the WAL over only when a checkpoint has
/// copied every frame and no reader still uses one, and with a governed read every few
/// microseconds that moment never came (1.4 GB of WAL after ten seconds of `tongban bench api`,
/// and every page lookup searched all of it). So once the WAL holds more than
/// [`WAL_RESTART_BYTES`] the task takes the write turn and asks for a RESTART checkpoint, which
/// copies what the passive one left and waits until no reader is in the WAL, so that the next
/// writer starts the file over (it keeps its size on disk). Writers wait meanwhile (20–50 ms
/// here); a reader that keeps it waiting past the connection's short busy timeout makes it give
/// up until the next round rather than hold every writer back.
async fn checkpoint_in_background(
    path: &str,
    audit: &str,
    turn: crate::WriteTurn,
) -> Result<(tokio::task::JoinHandle<()>, SqlitePool)> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .after_connect(attach_audit(audit, false))
        .connect_with(
            SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .busy_timeout(std::time::Duration::from_millis(50)),
        )
        .await?;
    // Each file has a WAL of its own, whose frames are that file's pages.
    let mut files = Vec::new();
    for schema in ["main", "audit"] {
        let page_bytes: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("PRAGMA {schema}.page_size")))
                .fetch_one(&pool)
                .await?;
        files.push((schema, page_bytes));
    }
    let checkpoints = pool.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            for &(schema, page_bytes) in &files {
                // The answer says how many frames the WAL holds since it last started over.
                let frames: i64 = match sqlx::query(AssertSqlSafe(format!(
                    "PRAGMA {schema}.wal_checkpoint(PASSIVE)"
                )))
                .fetch_one(&pool)
                .await
                .and_then(|row| row.try_get::<i64, _>(1))
                {
                    Ok(frames) => frames,
                    Err(e) => {
                        eprintln!("sqlite checkpoint of {schema}: {e}");
                        continue;
                    }
                };
                if frames.saturating_mul(page_bytes) > WAL_RESTART_BYTES {
                    let _turn = turn.lock().await;
                    if let Err(e) = sqlx::query(AssertSqlSafe(format!(
                        "PRAGMA {schema}.wal_checkpoint(RESTART)"
                    )))
                    .execute(&pool)
                    .await
                    {
                        eprintln!("sqlite checkpoint of {schema}: {e}");
                    }
                }
            }
        }
    });
    Ok((task, checkpoints))
}

/// SQLite takes `?` markers as written.
fn fix(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_string())
}

// SQLite needs no source lock: its writers already take turns (the write turn, and IMMEDIATE
// transactions against other processes).
/// The text at a golden record's JSON `path` (already checked by [`crate::valid_json_path`]), for
/// searches on paths that have no search column; the columns hold this same expression.
fn json_text(path: &str) -> String {
    json_text_of("record", path)
}

/// The text at `path` in the JSON that the SQL expression `json` gives: the same expression
/// searches use (`json_text`) and the store fills the golden records' search columns with.
pub(crate) fn json_text_of(json: &str, path: &str) -> String {
    format!("json_extract({json}, '$.{path}')")
}

/// A subject's audit entries, newest first (`?1` the subject, `?2` how many at most): those
/// after where the bulk index by subject stands are scanned, the others found through it era by
/// era, newest era first, visiting only eras the index holds (each found by one seek below the
/// last), so that the cost follows the number of eras and not the span of sequence numbers (see
/// migration 0010). An index entry counts only while the entry it points to still names the
/// subject. All of the subject's entries are gathered before `LIMIT` applies: a person's list
/// is short.
const AUDIT_OF_SUBJECT: &str = "\
    WITH RECURSIVE \
        bounds(upto) AS (SELECT upto FROM audit_subjects_upto), \
        eras(era) AS ( \
            SELECT (SELECT MAX(era) FROM audit_subjects, bounds WHERE era <= bounds.upto >> 14) \
            UNION ALL \
            SELECT (SELECT MAX(s.era) FROM audit_subjects s WHERE s.era < eras.era) \
            FROM eras WHERE eras.era IS NOT NULL) \
    SELECT * FROM ( \
        SELECT a.* FROM audit_log a \
        WHERE a.seq > (SELECT upto FROM audit_subjects_upto) AND a.subject = ?1 \
        UNION ALL \
        SELECT a.* FROM bounds CROSS JOIN eras CROSS JOIN audit_subjects i CROSS JOIN audit_log a \
        WHERE eras.era IS NOT NULL AND i.era = eras.era AND i.subject = ?1 \
          AND i.seq <= bounds.upto AND a.seq = i.seq AND a.subject = ?1) \
    ORDER BY seq DESC LIMIT ?2";

/// Answered reads per grant (`?1` after which entry, `?2`..`?3` the stamps) among the entries
/// from before the store kept the counts per hour (up to `audit_grant_reads_from`), as
/// [`crate::Store::audit_reads_per_grant`] defines them. A detail that is not JSON (or whose
/// `served_under` is not an array) is read as listing nothing, rather than failing the count.
/// `GLOB` because SQLite's `LIKE` ignores case.
const AUDIT_READS_PER_GRANT: &str = "\
    SELECT g AS grant_id, COUNT(DISTINCT seq) AS reads FROM ( \
        SELECT a.seq AS seq, json_extract(j.value, '$.grant') AS g \
        FROM audit_log a, json_each( \
            CASE WHEN json_valid(a.detail) AND json_type(a.detail, '$.served_under') = 'array' \
                 THEN a.detail ELSE '{\"served_under\":[]}' END, '$.served_under') j \
        WHERE a.seq > ?1 AND a.at >= ?2 AND a.at < ?3 \
          AND a.seq <= (SELECT COALESCE(MAX(seq), -9223372036854775808) FROM audit_grant_reads_from) \
          AND a.action GLOB 'read.*' AND NOT a.action GLOB '*.denied' \
          AND j.type = 'object' AND json_type(j.value, '$.grant') = 'text') \
    GROUP BY g";

/// The details of the same entries, for counting them outside the database.
const AUDIT_READ_DETAILS: &str = "\
    SELECT detail FROM audit_log WHERE seq > ?1 AND at >= ?2 AND at < ?3 \
      AND seq <= (SELECT COALESCE(MAX(seq), -9223372036854775808) FROM audit_grant_reads_from) \
      AND action GLOB 'read.*' AND NOT action GLOB '*.denied'";

crate::backend::sql_backend!(
    SqliteStore,
    Sqlite,
    SqliteRow,
    "sqlite",
    fix,
    None::<&str>,
    json_text,
    BEGIN
);
