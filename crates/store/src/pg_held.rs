//! A few PostgreSQL connections the store holds itself, for the statements the governed API runs
//! on every request or every audit batch (a golden record, a subject's relations, an audit
//! append).
//!
//! Why not sqlx's pool: it checks a connection with a round trip (a `Sync` and its
//! `ReadyForQuery`) when it hands it out, and again, in a task it spawns, when it takes it back;
//! no option turns off the second in sqlx 0.9. So each pooled statement costs PostgreSQL and the
//! server three exchanges where one would do. A held connection is used by one statement at a
//! time, under its own lock, and is free again the moment the statement's rows are in.
//!
//! This module does not decide what runs on these connections, and it never makes a caller wait
//! for one: when all are busy, or one cannot be opened, the pool serves. A connection on which a
//! statement failed is closed and opened again at its next use, since after an I/O error its
//! state is unknown. A read that failed because its connection was lost (the server restarted, or
//! ended the backend) is run again on the pool, so that the caller sees no error the pool would
//! not have given; a write is not, since it may have been committed before the connection went.
//! Instead a write's connection, when it has been idle long enough to have been ended meanwhile,
//! is checked first, as the pool would. A connection that cannot be opened is not tried again
//! for a second, so that a refusing server costs each request no more than the pool's own error.

use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgQueryResult, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};

/// How many connections are held. Beyond this the pool serves, so a burst is never queued behind
/// them; four keep PostgreSQL's backends busy on a small machine without the pool's overhead.
const HELD: usize = 4;

/// A write's held connection idle longer than this is checked before the write (under load they
/// are idle for microseconds, so the check is rarely paid).
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long opening a connection may take, and how long after a failed opening none is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_CONNECT_AFTER: Duration = Duration::from_secs(1);

type PgQuery<'q> = Query<'q, sqlx::Postgres, PgArguments>;

/// A held connection and when its last statement ended.
struct Idle {
    conn: PgConnection,
    since: Instant,
}

pub(crate) struct Held {
    url: String,
    slots: Vec<tokio::sync::Mutex<Option<Idle>>>,
    /// Until when no connection is opened, after one could not be.
    no_connect_until: std::sync::Mutex<Option<Instant>>,
}

/// A held connection taken out of its slot for one statement. The statement's method puts it
/// back when the statement succeeds; after a failure, or when the statement's future is dropped
/// half way, the connection is dropped (closed) instead and the slot opens a new one when next
/// used.
pub(crate) struct HeldConnection<'a> {
    slot: tokio::sync::MutexGuard<'a, Option<Idle>>,
    conn: PgConnection,
    /// How long it had been idle; zero for a connection just opened.
    idle: Duration,
}

impl Held {
    pub(crate) fn new(url: &str) -> Held {
        Held {
            url: url.to_string(),
            slots: (0..HELD).map(|_| tokio::sync::Mutex::new(None)).collect(),
            no_connect_until: std::sync::Mutex::new(None),
        }
    }

    /// A free held connection, opened now if its slot is empty, or `None` when every slot is busy
    /// or a connection cannot be opened (the caller then uses the pool).
    async fn get(&self) -> Option<HeldConnection<'_>> {
        for slot in &self.slots {
            let Ok(mut slot) = slot.try_lock() else {
                continue;
            };
            return match slot.take() {
                Some(Idle { conn, since }) => Some(HeldConnection {
                    slot,
                    conn,
                    idle: since.elapsed(),
                }),
                None => {
                    let conn = self.connect().await?;
                    Some(HeldConnection {
                        slot,
                        conn,
                        idle: Duration::ZERO,
                    })
                }
            };
        }
        None
    }

    /// A new connection, unless one failed to open within the last [`RETRY_CONNECT_AFTER`].
    async fn connect(&self) -> Option<PgConnection> {
        let now = Instant::now();
        if self
            .no_connect_until
            .lock()
            .map_or(true, |until| until.is_some_and(|t| now < t))
        {
            return None;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&self.url)).await {
            Ok(Ok(conn)) => Some(conn),
            _ => {
                if let Ok(mut until) = self.no_connect_until.lock() {
                    *until = Some(Instant::now() + RETRY_CONNECT_AFTER);
                }
                None
            }
        }
    }
}

impl Held {
    /// `query`'s rows, read on a held connection, or on `pool` when none is free or the held one
    /// was lost during the read. `query` makes the statement anew for each attempt.
    pub(crate) async fn fetch_all<'q>(
        &self,
        pool: &PgPool,
        query: impl Fn() -> PgQuery<'q>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        if let Some(held) = self.get().await {
            match held.fetch_all(query()).await {
                Err(e) if lost(&e) => {}
                done => return done,
            }
        }
        pool.fetch_all(query()).await
    }

    /// `query`'s row if any, as [`Held::fetch_all`] reads it.
    pub(crate) async fn fetch_optional<'q>(
        &self,
        pool: &PgPool,
        query: impl Fn() -> PgQuery<'q>,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        if let Some(held) = self.get().await {
            match held.fetch_optional(query()).await {
                Err(e) if lost(&e) => {}
                done => return done,
            }
        }
        pool.fetch_optional(query()).await
    }

    /// Runs a write once, on a held connection or else on `pool`. A held connection idle for
    /// more than [`CHECK_AFTER_IDLE`] is checked first; if the check fails, the pool serves.
    pub(crate) async fn execute(
        &self,
        pool: &PgPool,
        query: PgQuery<'_>,
    ) -> Result<PgQueryResult, sqlx::Error> {
        let held = match self.get().await {
            Some(held) if held.idle > CHECK_AFTER_IDLE => held.checked().await,
            held => held,
        };
        match held {
            Some(held) => held.execute(query).await,
            None => pool.execute(query).await,
        }
    }
}

/// Whether `e` says the connection itself is gone (its socket, or the server ending the backend:
/// SQLSTATE class 08, connection exception, or 57P, operator intervention), rather than that the
/// statement was refused.
fn lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl HeldConnection<'_> {
    fn put_back(mut self) {
        *self.slot = Some(Idle {
            conn: self.conn,
            since: Instant::now(),
        });
    }

    /// The connection if a round trip on it succeeds; else it is closed.
    async fn checked(mut self) -> Option<Self> {
        self.conn.ping().await.ok()?;
        Some(self)
    }

    async fn fetch_all(mut self, q: PgQuery<'_>) -> Result<Vec<PgRow>, sqlx::Error> {
        let rows = q.fetch_all(&mut self.conn).await?;
        self.put_back();
        Ok(rows)
    }

    async fn fetch_optional(mut self, q: PgQuery<'_>) -> Result<Option<PgRow>, sqlx::Error> {
        let row = q.fetch_optional(&mut self.conn).await?;
        self.put_back();
        Ok(row)
    }

    async fn execute(mut self, q: PgQuery<'_>) -> Result<PgQueryResult, sqlx::Error> {
        let done = q.execute(&mut self.conn).await?;
        self.put_back();
        Ok(done)
    }
}
