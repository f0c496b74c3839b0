//! The audit writer: appends events to the chain in batches, and answers each caller only once
//! its entry is committed.
//!
//! Auditing every read one transaction at a time would cost a commit per request; instead one
//! task takes whatever events are waiting (up to [`MAX_BATCH`]), chains them, stores them in one
//! transaction and only then tells each caller its sequence number. A caller answers its own
//! client after that, so a read that was answered is never missing from the log after a crash;
//! if the store fails (after one retry from where the stored chain stands, in case another
//! writer took the next number), every caller whose entry was not stored gets the error and
//! answers nothing. A transaction reported as failed whose entries the store holds after all
//! (its answer was lost with the connection) counts as stored and is not appended again. Every
//! [`Settings::checkpoint_every`] entries the writer signs a checkpoint over the entries since
//! the last one, in the same transaction as the entry that completes it.

use crate::audit::{self, Entry, Event, GENESIS};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tongban_store::{AuditRow, CheckpointRow, Store};

/// The most events one transaction takes.
pub const MAX_BATCH: usize = 1_024;

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] tongban_store::StoreError),
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("the audit log could not record the event: {0}")]
    NotRecorded(String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub checkpoint_every: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            checkpoint_every: 1_000,
        }
    }
}

type Request = (Event, oneshot::Sender<Result<i64, String>>);

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Request>,
    /// The public half of the node key the checkpoints are signed with.
    node: ed25519_dalek::VerifyingKey,
    /// The store the log is kept in, for those who read it back.
    store: Arc<dyn Store>,
}

fn into_row(e: Entry) -> AuditRow {
    AuditRow {
        seq: e.seq,
        at: e.event.at,
        actor: e.event.actor,
        action: e.event.action,
        subject: e.event.subject,
        detail: e.event.detail,
        prev: e.prev,
        hash: e.hash,
    }
}

/// A stored row as a chained entry.
pub fn from_row(r: AuditRow) -> Entry {
    Entry {
        seq: r.seq,
        event: Event {
            at: r.at,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            detail: r.detail,
        },
        prev: r.prev,
        hash: r.hash,
    }
}

fn to_checkpoint_row(c: audit::Checkpoint) -> CheckpointRow {
    CheckpointRow {
        from_seq: c.from_seq,
        to_seq: c.to_seq,
        root: c.root,
        key: c.key,
        signature: c.signature,
        at: c.at,
    }
}

/// A stored checkpoint row as a checkpoint.
pub fn checkpoint_from_row(c: CheckpointRow) -> audit::Checkpoint {
    audit::Checkpoint {
        from_seq: c.from_seq,
        to_seq: c.to_seq,
        root: c.root,
        key: c.key,
        signature: c.signature,
        at: c.at,
    }
}

/// Where the chain stands: the last entry, and the (sequence number, hash) of each entry since
/// the last checkpoint, which the next checkpoint's Merkle root covers.
struct Position {
    last_seq: i64,
    last_hash: String,
    pending: Vec<(i64, [u8; 32])>,
}

/// Why a write stopped, and the events it did not store (to try again or to refuse).
struct Unstored {
    error: String,
    events: Vec<Event>,
    /// The sequence number and hash of each entry of the transaction that failed (the first
    /// of `events`). A failure can be reported for a transaction that did commit: the
    /// connection was lost while the answer was on its way. [`Position::recover`] finds them
    /// in the store then, so that they are not appended a second time.
    attempted: Vec<(i64, String)>,
}

impl Position {
    /// Read where the stored chain stands.
    async fn load(store: &dyn Store) -> Result<Position, AuditError> {
        let (last_seq, last_hash) = store
            .last_audit()
            .await?
            .map(|r| (r.seq, r.hash))
            .unwrap_or((0, GENESIS.to_string()));
        // Entries written since the last checkpoint are covered by the next one.
        let covered = store
            .audit_checkpoints()
            .await?
            .iter()
            .map(|c| c.to_seq)
            .max()
            .unwrap_or(0);
        let mut pending = Vec::new();
        let mut after = covered;
        loop {
            let page = store.audit_entries(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            pending.extend(page.iter().map(|r| (r.seq, audit::hash_bytes(&r.hash))));
        }
        Ok(Position {
            last_seq,
            last_hash,
            pending,
        })
    }

    /// Chain and store `events`; returns the sequence numbers committed and, if a transaction
    /// failed, why and the events not stored (those after the failure included).
    async fn write(
        &mut self,
        store: &dyn Store,
        key: &SigningKey,
        settings: &Settings,
        events: Vec<Event>,
    ) -> (Vec<i64>, Option<Unstored>) {
        let every = settings.checkpoint_every.max(1) as usize;
        let mut seqs = Vec::with_capacity(events.len());
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            // At most one checkpoint per transaction: take only what completes the range.
            let room = every.saturating_sub(self.pending.len()).max(1);
            let part: Vec<Event> = events.by_ref().take(room).collect();
            let rows: Vec<AuditRow> = audit::chain(self.last_seq, &self.last_hash, part)
                .into_iter()
                .map(into_row)
                .collect();
            let hashes = rows.iter().map(|r| (r.seq, audit::hash_bytes(&r.hash)));
            let complete = self.pending.len() + rows.len() >= every;
            let checkpoint = if complete {
                let mut range = self.pending.clone();
                range.extend(hashes.clone());
                audit::checkpoint_of(key, &range, tongban_store::now_millis())
            } else {
                None
            };
            if let Err(e) = store
                .append_audit(&rows, checkpoint.map(to_checkpoint_row).as_ref())
                .await
            {
                let attempted = rows.iter().map(|r| (r.seq, r.hash.clone())).collect();
                let mut unstored: Vec<Event> =
                    rows.into_iter().map(|r| from_row(r).event).collect();
                unstored.extend(events);
                return (
                    seqs,
                    Some(Unstored {
                        error: e.to_string(),
                        events: unstored,
                        attempted,
                    }),
                );
            }
            if complete {
                self.pending.clear();
            } else {
                self.pending.extend(hashes);
            }
            if let Some(last) = rows.last() {
                self.last_seq = last.seq;
                self.last_hash.clone_from(&last.hash);
            }
            seqs.extend(rows.iter().map(|r| r.seq));
        }
        (seqs, None)
    }
}

impl Position {
    /// Where the stored chain stands after a write failed with `u`, and which of `u`'s events
    /// are stored after all: the failed transaction's entries, when the store holds each of
    /// them at its sequence number with its hash (a hash covers the event and the entry before
    /// it, so an equal hash is this very entry, and the transaction stored all or none of
    /// them). Returns the position, their sequence numbers, and what is still to store.
    async fn recover(
        store: &dyn Store,
        u: Unstored,
    ) -> Result<(Position, Vec<i64>, Unstored), AuditError> {
        // A commit whose answer was lost may still be finishing while this runs. The position
        // is read first: if the entries turn up only afterwards, the position is read again so
        // that it includes them; if they land after the look, they are taken as not stored,
        // and writing them again from this position fails on their taken numbers: they may
        // then be reported as not recorded, but are never logged twice.
        let mut position = Position::load(store).await?;
        let committed = match u.attempted.first() {
            None => false,
            Some(&(first, _)) => {
                let stored = store
                    .audit_entries(first - 1, u.attempted.len() as i64)
                    .await?;
                stored.len() == u.attempted.len()
                    && stored
                        .iter()
                        .zip(&u.attempted)
                        .all(|(row, (seq, hash))| row.seq == *seq && &row.hash == hash)
            }
        };
        if !committed {
            return Ok((position, Vec::new(), u));
        }
        if let Some(&(last, _)) = u.attempted.last()
            && position.last_seq < last
        {
            position = Position::load(store).await?;
        }
        let seqs = u.attempted.iter().map(|(seq, _)| *seq).collect();
        let rest = Unstored {
            events: u.events.into_iter().skip(u.attempted.len()).collect(),
            attempted: Vec::new(),
            error: u.error,
        };
        Ok((position, seqs, rest))
    }
}

/// Sign a checkpoint now over the entries since the last one (if any): for an operator who
/// wants the tail of the log sealed before the regular checkpoint comes due. Returns it.
pub async fn checkpoint_now(
    store: &dyn Store,
    key: &SigningKey,
) -> Result<Option<audit::Checkpoint>, AuditError> {
    let position = Position::load(store).await?;
    let Some(c) = audit::checkpoint_of(key, &position.pending, tongban_store::now_millis()) else {
        return Ok(None);
    };
    store
        .append_audit(&[], Some(&to_checkpoint_row(c.clone())))
        .await?;
    Ok(Some(c))
}

/// Append events at once, without a writer task: for a command that records one
/// administrative change and exits. Concurrent writers are kept apart by the store, which
/// refuses a sequence number already taken.
pub async fn append_now(
    store: &dyn Store,
    key: &SigningKey,
    settings: &Settings,
    events: Vec<Event>,
) -> Result<Vec<i64>, AuditError> {
    let mut position = Position::load(store).await?;
    match position.write(store, key, settings, events).await {
        (seqs, None) => Ok(seqs),
        (mut seqs, Some(u)) => {
            // A transaction reported as failed may have committed; then only the events after
            // it are missing, and those are tried once from where the chain now stands.
            let error = u.error.clone();
            let (mut position, stored, rest) = Position::recover(store, u)
                .await
                .map_err(|_| AuditError::NotRecorded(error))?;
            if stored.is_empty() {
                return Err(AuditError::NotRecorded(rest.error));
            }
            seqs.extend(stored);
            match position.write(store, key, settings, rest.events).await {
                (more, None) => {
                    seqs.extend(more);
                    Ok(seqs)
                }
                (_, Some(u)) => Err(AuditError::NotRecorded(u.error)),
            }
        }
    }
}

impl AuditLog {
    /// Start the writer over `store`, continuing its chain, signing checkpoints with `key`.
    pub async fn start(
        store: Arc<dyn Store>,
        key: SigningKey,
        settings: Settings,
    ) -> Result<AuditLog, AuditError> {
        let node = key.verifying_key();
        let mut position = Position::load(store.as_ref()).await?;
        let (tx, mut rx) = mpsc::channel::<Request>(4 * MAX_BATCH);
        let kept_in = store.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Let the tasks already running on this worker send their events first: most
                // reads arrive while the previous batch commits, and a batch that waits one turn
                // of the scheduler takes about twelve entries instead of four or five, each
                // commit writing its pages for more of them (`tongban bench api`: 28 k → 30–31 k
                // governed reads/s).
                tokio::task::yield_now().await;
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let (events, replies): (Vec<Event>, Vec<_>) = batch.into_iter().unzip();
                let (mut seqs, mut failure) = position
                    .write(store.as_ref(), &key, &settings, events)
                    .await;
                // Another writer (an administrative command, say) may have taken the next
                // number, or the transaction committed but its answer was lost: continue from
                // where the stored chain now stands, count what it holds of this batch as
                // stored, and try the rest once more before giving up on them.
                if let Some(u) = failure.take() {
                    let error = u.error.clone();
                    match Position::recover(store.as_ref(), u).await {
                        Ok((p, stored, rest)) => {
                            position = p;
                            seqs.extend(stored);
                            // Nothing left (the whole failed part was stored) writes nothing.
                            let (more, again) = position
                                .write(store.as_ref(), &key, &settings, rest.events)
                                .await;
                            seqs.extend(more);
                            failure = again;
                        }
                        Err(_) => {
                            // Nothing is known of what the store holds: no caller of this
                            // batch not yet answered is told its entry is stored.
                            failure = Some(Unstored {
                                error,
                                events: Vec::new(),
                                attempted: Vec::new(),
                            });
                        }
                    }
                }
                let mut replies = replies.into_iter();
                for (reply, seq) in replies.by_ref().zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
                if let Some(u) = failure {
                    // Continue from where the stored chain stands; what it holds of the second
                    // try's failed transaction was stored, but the callers it belongs to are
                    // told it was not (the entry stays in the log: a read refused after all
                    // leaves one entry too many, never one too few).
                    if let Ok(p) = Position::load(store.as_ref()).await {
                        position = p;
                    }
                    for reply in replies {
                        let _ = reply.send(Err(u.error.clone()));
                    }
                }
            }
        });
        Ok(AuditLog {
            tx,
            node,
            store: kept_in,
        })
    }

    /// The store the log is kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key that verifies this log's checkpoints.
    pub fn node_key(&self) -> ed25519_dalek::VerifyingKey {
        self.node
    }

    /// Record an event; returns its sequence number once it is committed.
    pub async fn append(&self, event: Event) -> Result<i64, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| AuditError::Stopped)?;
        answer
            .await
            .map_err(|_| AuditError::Stopped)?
            .map_err(AuditError::NotRecorded)
    }
}

impl AuditLog {
    /// Record several events, sent together so that they share a batch; returns their sequence
    /// numbers once all are committed, or the first error.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<i64>, AuditError> {
        let mut answers = Vec::with_capacity(events.len());
        for event in events {
            let (reply, answer) = oneshot::channel();
            self.tx
                .send((event, reply))
                .await
                .map_err(|_| AuditError::Stopped)?;
            answers.push(answer);
        }
        let mut seqs = Vec::with_capacity(answers.len());
        for answer in answers {
            seqs.push(
                answer
                    .await
                    .map_err(|_| AuditError::Stopped)?
                    .map_err(AuditError::NotRecorded)?,
            );
        }
        Ok(seqs)
    }
}

/// How far an entry's time may run behind an earlier entry's in the log. Entries are stamped when
/// their event happens and appended moments later in the order they reach the writer (a read
/// waits for its entry before it is answered), so times in the log are in order only to within
/// a request's time; an hour is far beyond any.
pub const STAMP_SLACK_MS: i64 = 3_600_000;

/// The sequence number to read the log after (see `Store::audit_entries`) so as to see every
/// entry stamped at `at` or later, without reading what came long before: found by bisection
/// over the sequence numbers, a few lookups however long the log, and set back by
/// [`STAMP_SLACK_MS`] so that entries stamped slightly out of order are not missed. `i64::MIN`
/// when the log must be read from its start.
pub async fn read_after_for(store: &dyn Store, at: i64) -> Result<i64, AuditError> {
    let target = at.saturating_sub(STAMP_SLACK_MS);
    let Some(first) = store.audit_entries(i64::MIN, 1).await?.into_iter().next() else {
        return Ok(i64::MIN);
    };
    if first.at >= target {
        return Ok(i64::MIN);
    }
    let Some(last) = store.last_audit().await? else {
        return Ok(i64::MIN);
    };
    if last.at < target {
        return Ok(last.seq);
    }
    // `lo` is an entry stamped before the target; the first entry at or after `hi` is stamped
    // at or after it. Sequence numbers have no gaps in a chained log, but a gap would only
    // make a probe land further on.
    let (mut lo, mut hi) = (first.seq, last.seq);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match store.audit_entries(mid - 1, 1).await?.into_iter().next() {
            Some(e) if e.seq < hi && e.at < target => lo = e.seq,
            Some(e) if e.seq < hi => hi = e.seq,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// Verify the whole stored log against the node's key, streaming the entries.
pub async fn verify_store(
    store: &dyn Store,
    node: &ed25519_dalek::VerifyingKey,
) -> Result<audit::LogCheck, AuditError> {
    let mut check = audit::LogCheck::new();
    let mut after = i64::MIN;
    loop {
        let page = store.audit_entries(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in page {
            check.entry(&from_row(row));
        }
    }
    let checkpoints: Vec<audit::Checkpoint> = store
        .audit_checkpoints()
        .await?
        .into_iter()
        .map(checkpoint_from_row)
        .collect();
    check.checkpoints(&checkpoints, node);
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: i64) -> Event {
        Event {
            at: 1_700_000_000_000 + i,
            actor: "clerk".into(),
            action: "read.person".into(),
            subject: format!("P{i:05}"),
            detail: "{}".into(),
        }
    }

    /// The failed transaction's entries as `Position::write` would have made them.
    fn rows_at(position: &Position, events: Vec<Event>) -> Vec<AuditRow> {
        audit::chain(position.last_seq, &position.last_hash, events)
            .into_iter()
            .map(into_row)
            .collect()
    }

    #[tokio::test]
    async fn a_transaction_stored_despite_its_error_is_not_appended_twice() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = tongban_store::open(&url).await.unwrap();
        let store = store.as_ref();
        let key = SigningKey::from_bytes(&[7; 32]);
        let settings = Settings::default();
        let mut position = Position::load(store).await.unwrap();
        let (seqs, failure) = position
            .write(store, &key, &settings, (1..=3).map(event).collect())
            .await;
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(failure.is_none());

        // Entries 4 and 5 committed, but the writer heard an error (the answer was lost).
        let rows = rows_at(&position, vec![event(4), event(5)]);
        store.append_audit(&rows, None).await.unwrap();
        let lost = Unstored {
            error: "connection lost".into(),
            events: (4..=6).map(event).collect(),
            attempted: rows.iter().map(|r| (r.seq, r.hash.clone())).collect(),
        };
        let (mut position, stored, rest) = Position::recover(store, lost).await.unwrap();
        assert_eq!(stored, vec![4, 5]);
        assert_eq!(rest.events, vec![event(6)]);
        assert_eq!(position.last_seq, 5);
        let (seqs, failure) = position.write(store, &key, &settings, rest.events).await;
        assert_eq!(seqs, vec![6]);
        assert!(failure.is_none());
        let check = verify_store(store, &key.verifying_key()).await.unwrap();
        assert!(check.findings.is_empty(), "{:?}", check.findings);
        assert_eq!(check.entries, 6, "each event once");

        // A transaction that did not commit: its number is free, or another writer's entry
        // holds it. Nothing of it counts as stored, and every event is still to store.
        let mine = rows_at(&position, vec![event(7)]);
        let other = rows_at(&position, vec![event(70)]);
        for stored_first in [None, Some(&other)] {
            if let Some(rows) = stored_first {
                store.append_audit(rows, None).await.unwrap();
            }
            let failed = Unstored {
                error: "refused".into(),
                events: vec![event(7), event(8)],
                attempted: mine.iter().map(|r| (r.seq, r.hash.clone())).collect(),
            };
            let (position, stored, rest) = Position::recover(store, failed).await.unwrap();
            assert!(stored.is_empty());
            assert_eq!(rest.events, vec![event(7), event(8)]);
            assert_eq!(position.last_seq, 6 + i64::from(stored_first.is_some()));
        }
    }
}
