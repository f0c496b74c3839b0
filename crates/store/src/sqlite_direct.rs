//! The SQLite store's two hottest paths, driven through rusqlite rather than sqlx: reading one
//! golden record, and appending a batch of audit entries.
//!
//! Every governed read does both. Through sqlx each statement is a message to the connection's
//! own worker thread and an answer back, and an audit batch is three of them (begin, insert,
//! commit); on two cores those thread hand-offs, not SQLite, were most of what a read cost
//! (`tongban bench api`: 11.7 k governed reads/s, 17.7 k without the golden-record read, 18.5 k
//! without the audit append, 54 k without both). Here a golden record is read on the calling
//! thread from a small pool of read-only connections (a primary-key lookup of a few
//! microseconds, and in WAL mode a reader never waits for the writer), and an audit batch is
//! handed once to a thread that owns a connection of its own and writes it as one transaction
//! of cached prepared statements.
//!
//! That thread is a second writer beside the sqlx pool's single connection. The two take turns
//! through the store's write turn (a fair lock, see `sqlite`), and every sqlx transaction on
//! SQLite begins `IMMEDIATE` (see `sqlite::BEGIN`), so that a writer from another process, which
//! only SQLite's busy handler keeps apart, waits instead of failing on a stale snapshot. Both
//! rusqlite and sqlx link the same bundled SQLite (libsqlite3-sys 0.37).
//!
//! This module does not decide what is written or read; `backend` and the `Store` trait do.

use crate::{AuditRow, CheckpointRow, GoldenRecord, Result, StoreError};
use rusqlite::{OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::sync::Mutex;
use std::time::Duration;

/// How long an audit batch waits for a writer of another process (or a checkpoint) before
/// failing.
const BUSY: Duration = Duration::from_secs(30);
/// How long a golden-record read may wait (it runs on the caller's thread, an async worker):
/// a WAL reader waits only while the WAL is being recovered or started over.
const READ_BUSY: Duration = Duration::from_secs(1);
/// Read-only connections kept for reuse; more are opened when more threads read at once.
const KEPT_READERS: usize = 8;

type AuditJob = (
    Vec<AuditRow>,
    Option<CheckpointRow>,
    tokio::sync::oneshot::Sender<Result<()>>,
);

pub(crate) struct Direct {
    path: String,
    readers: Mutex<Vec<rusqlite::Connection>>,
    /// To the audit thread; it stops when this is dropped.
    audit: std::sync::mpsc::Sender<AuditJob>,
}

fn poisoned() -> StoreError {
    StoreError::Corrupt("a connection pool lock was poisoned by a panic".into())
}

impl Direct {
    /// Start the audit thread over the (already migrated) database at `path`, writing in
    /// `turn` with the store's other writers.
    pub(crate) fn open(path: &str, turn: crate::WriteTurn) -> Result<Direct> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY)?;
        // The same settings as the sqlx writer: a commit survives a crash of the process, and
        // this connection never checkpoints (the store's background task does).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let (tx, rx) = std::sync::mpsc::channel::<AuditJob>();
        std::thread::Builder::new()
            .name("sqlite-audit".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok((rows, checkpoint, reply)) = rx.recv() {
                    let _turn = turn.blocking_lock();
                    // A panic inside SQLite's wrapper must not stop the log for good: the
                    // batch fails (its transaction rolled back as it unwinds) and the next one
                    // is tried.
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        append(&mut conn, &rows, checkpoint.as_ref()).map_err(StoreError::from)
                    }))
                    .unwrap_or_else(|_| {
                        Err(StoreError::Corrupt("the audit append panicked".into()))
                    });
                    let _ = reply.send(done);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the audit thread: {e}")))?;
        Ok(Direct {
            path: path.to_string(),
            readers: Mutex::new(Vec::new()),
            audit: tx,
        })
    }

    fn reader(&self) -> Result<rusqlite::Connection> {
        if let Some(c) = self.readers.lock().map_err(|_| poisoned())?.pop() {
            return Ok(c);
        }
        let c = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(READ_BUSY)?;
        Ok(c)
    }

    /// The golden record of `entity_key` in table `golden_{kind}` (`kind` already checked by
    /// `resolution_kind`). Runs on the calling thread: one indexed lookup.
    pub(crate) fn golden_record(
        &self,
        kind: &str,
        entity_key: &str,
    ) -> Result<Option<GoldenRecord>> {
        let conn = self.reader()?;
        let sql = match kind {
            "person" => "SELECT record FROM golden_person WHERE entity_key = ?1",
            "entity" => "SELECT record FROM golden_entity WHERE entity_key = ?1",
            "building" => "SELECT record FROM golden_building WHERE entity_key = ?1",
            "room" => "SELECT record FROM golden_room WHERE entity_key = ?1",
            other => return Err(StoreError::UnknownKind(other.to_string())),
        };
        let found = conn.prepare_cached(sql).and_then(|mut st| {
            st.query_row(params![entity_key], |r| r.get::<_, String>(0))
                .optional()
        });
        if let Ok(mut kept) = self.readers.lock()
            && kept.len() < KEPT_READERS
        {
            kept.push(conn);
        }
        Ok(found?.map(|record| GoldenRecord {
            entity_key: entity_key.to_string(),
            record,
        }))
    }

    /// Append `rows` (and `checkpoint`) in one transaction on the audit thread.
    pub(crate) async fn append_audit(
        &self,
        rows: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.audit
            .send((rows.to_vec(), checkpoint.cloned(), reply))
            .map_err(|_| StoreError::Corrupt("the audit thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the audit thread has stopped".into()))??;
        Ok(())
    }
}

fn append(
    conn: &mut rusqlite::Connection,
    rows: &[AuditRow],
    checkpoint: Option<&CheckpointRow>,
) -> std::result::Result<(), rusqlite::Error> {
    // IMMEDIATE: take the write lock now, waiting for the sqlx writer if it holds it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for e in rows {
            insert.execute(params![
                e.seq, e.at, e.actor, e.action, e.subject, e.detail, e.prev, e.hash
            ])?;
        }
    }
    if let Some(c) = checkpoint {
        tx.execute(
            "INSERT INTO audit_checkpoints (from_seq, to_seq, root, key, signature, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![c.from_seq, c.to_seq, c.root, c.key, c.signature, c.at],
        )?;
    }
    // Dropping an uncommitted transaction (on any error above) rolls it back.
    tx.commit()
}
