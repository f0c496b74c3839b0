//! The embedded SQLite store: one file in the data directory, the default.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a committed transaction survives a
//! crash of the process (the WAL is on disk), and only a power loss can cost the last
//! transactions, never consistency. SQLite has one writer at a time. The sqlx pool keeps a single
//! writing connection for everything but the hottest writes; ingest chunks and audit batches
//! have a writing connection of their own on a thread of their own, and golden records are read
//! through read-only connections beside them (see `sqlite_direct`). The two writers take turns through one fair lock, the store's write turn, rather than SQLite's busy
//! handler, which retries after sleeps of up to 100 ms and can miss the microsecond gaps between
//! audit commits for as long as reads keep coming.
//!
//! This module opens the file and runs the SQLite migrations; the statements are in `backend`,
//! and in `sqlite_direct` for the paths driven through rusqlite.

use crate::{
    AuditRow, BatchRow, BatchStatus, CheckpointRow, ChunkOutcome, CleanedRecord, DepartmentRow,
    EntityLink, GoldenRecord, GrantRow, IncomingQuarantine, IncomingRecord, LibraryChanges,
    QuarantineEntry, QuarantineStatus, RecordStatus, RecordVersion, Relation, ResolutionRun,
    Result, SourceRow, Store, StoreError, TokenRow, UserRow, now_millis, resolution_kind,
};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqlitePool};
use std::str::FromStr;

pub struct SqliteStore {
    pool: SqlitePool,
    /// Read-only connections for the governed API's other hot reads (a subject's relations, a
    /// token, a user, a department's grants; golden records are read through `direct`): in WAL
    /// mode they read the last committed state while a writer works, instead of queueing behind
    /// its transactions.
    read: SqlitePool,
    /// The background checkpointer, stopped when the store is dropped.
    checkpointer: tokio::task::JoinHandle<()>,
    /// The golden-record read, the audit append and ingest chunks, through rusqlite (see
    /// `sqlite_direct`).
    direct: crate::sqlite_direct::Direct,
    /// Held by a writer for as long as its transaction runs: the sqlx pool's transactions, the
    /// writer thread's chunks and audit batches, and the checkpointer's restarts queue here,
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
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
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
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                    .read_only(true)
                    .busy_timeout(std::time::Duration::from_secs(30))
                    .pragma("cache_size", "-16384"),
            )
            .await?;
        // The file sqlx opened, as rusqlite and the checkpointer must open it too (a URL's
        // query string and escapes are sqlx's to read).
        let file = options.get_filename().to_string_lossy().into_owned();
        let turn = crate::WriteTurn::default();
        let checkpointer = checkpoint_in_background(&file, turn.clone()).await?;
        let direct = crate::sqlite_direct::Direct::open(&file, turn.clone())?;
        Ok(SqliteStore {
            pool,
            read,
            checkpointer,
            direct,
            turn,
        })
    }

    fn write_turn(&self) -> Option<crate::WriteTurn> {
        Some(self.turn.clone())
    }

    async fn backend_golden_record(
        &self,
        k: &str,
        entity_key: &str,
    ) -> Result<Option<GoldenRecord>> {
        self.direct.golden_record(k, entity_key)
    }

    async fn backend_store_chunk(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
    ) -> Result<ChunkOutcome> {
        self.direct
            .store_chunk(batch_id, source_id, records, quarantine)
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
        links: &[EntityLink],
        golden: &[GoldenRecord],
    ) -> Result<i64> {
        let creates: Vec<(String, String)> = crate::search_indexes(k)
            .into_iter()
            .map(|(name, path)| {
                let create = format!("CREATE INDEX {name} ON golden_{k} (({}))", json_text(path));
                (name, create)
            })
            .collect();
        let _turn = self.turn.clone().lock_owned().await;
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

    async fn backend_replace_relations(&self, relations: &[Relation]) -> Result<()> {
        let _turn = self.turn.clone().lock_owned().await;
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

/// How the writer pool's transactions begin. `IMMEDIATE` takes the write lock at once: the
/// writer thread (`sqlite_direct`) is a second writer, and a deferred transaction that read
/// before it wrote would fail outright, rather than wait, if that writer had committed between.
const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");

/// The WAL size past which the background task restarts it (see [`checkpoint_in_background`]).
const WAL_RESTART_BYTES: i64 = 1 << 30;
/// SQLite's default page size, which the store keeps: a WAL frame is one page.
const PAGE_BYTES: i64 = 4096;

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
    turn: crate::WriteTurn,
) -> Result<tokio::task::JoinHandle<()>> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .busy_timeout(std::time::Duration::from_millis(50)),
        )
        .await?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            // The answer says how many frames the WAL holds since it last started over.
            let frames: i64 = match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await
                .and_then(|row| row.try_get::<i64, _>(1))
            {
                Ok(frames) => frames,
                Err(e) => {
                    eprintln!("sqlite checkpoint: {e}");
                    continue;
                }
            };
            if frames.saturating_mul(PAGE_BYTES) > WAL_RESTART_BYTES {
                let _turn = turn.lock().await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                    .execute(&pool)
                    .await
                {
                    eprintln!("sqlite checkpoint: {e}");
                }
            }
        }
    }))
}

/// SQLite takes `?` markers as written.
fn fix(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_string())
}

// SQLite needs no source lock: its writers already take turns (the write turn, and IMMEDIATE
// transactions against other processes).
/// The text at a golden record's JSON `path` (already checked by [`crate::valid_json_path`]), in
/// exactly the form migration 0009's indexes use, so that SQLite can use them.
fn json_text(path: &str) -> String {
    format!("json_extract(record, '$.{path}')")
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
            SELECT (SELECT MAX(era) FROM audit_subjects, bounds WHERE era <= bounds.upto >> 18) \
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
