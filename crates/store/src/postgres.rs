//! The PostgreSQL store (PostgreSQL 13 or later), for a city that outgrows one machine.
//!
//! Connections come from a pool shared by all requests; every `Store` method is one transaction.
//! This module opens the pool and runs the PostgreSQL migrations; the statements are in `backend`.

use crate::pg_copy::CopyRows;
use crate::{
    Action, AuditRow, BatchRow, BatchStatus, CheckpointRow, ChunkOutcome, CleanedRecord,
    DepartmentRow, EntityLink, GoldenRecord, GrantRow, IncomingQuarantine, IncomingRecord, Latest,
    LibraryChanges, LinkRef, QuarantineEntry, QuarantineStatus, RecordStatus, RecordVersion,
    Relation, RelationRef, ResolutionRun, Result, SUBJECT_ERA_BITS, SourceRow, Store, StoreError,
    TokenRow, UserRow, complete_eras_end, duplicate_reason, now_millis, plan_chunk,
    resolution_kind,
};
use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgListener, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres, QueryBuilder, Row};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL's connections already read while others write.
    read: PgPool,
    /// Connections for the governed API's statements, used before the pool (see `pg_held`).
    held: crate::pg_held::Held,
    /// What the store has heard of changes (see [`Generation`]).
    generation: Arc<Generation>,
    /// The tasks that listen for changes and keep the heartbeat going, stopped with the store.
    watchers: Vec<tokio::task::JoinHandle<()>>,
    /// The rounds of the bulk index by subject (see [`index_subjects`]).
    subject_rounds: Arc<SubjectRounds>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
    }
}

/// The channel on which every committed change to the golden records is announced (migration
/// 0011), and the one on which the store's heartbeat is.
const CHANGES: &str = "tongban_data";
const HEARTBEAT: &str = "tongban_heartbeat";
/// How often the heartbeat is sent, and how long without hearing it before the listening
/// connection is no longer trusted.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
const DEAF_AFTER_MS: u64 = 2_000;

/// The store's data generation on PostgreSQL, which has no cheap counterpart of SQLite's
/// `data_version`: a connection of its own LISTENs for the announcements that triggers make at
/// every commit to the golden records, each one moving the count on, and the store's own
/// writes (of any table) move it as they finish. The count is only given out while that
/// connection is known to hear: it must have heard the store's own heartbeat lately, and after
/// a reconnection the count moves on, since whatever was committed in between was not heard.
struct Generation {
    count: Arc<AtomicU64>,
    listening: AtomicBool,
    /// When a notification was last heard, in milliseconds since the store opened.
    heard_ms: AtomicU64,
    opened: std::time::Instant,
}

impl Generation {
    fn new() -> Generation {
        Generation {
            count: Arc::default(),
            listening: AtomicBool::new(false),
            heard_ms: AtomicU64::new(0),
            opened: std::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn heard(&self) {
        self.heard_ms.store(self.now_ms(), Ordering::SeqCst);
    }

    /// Whatever was cached before now may be stale.
    fn moved(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn current(&self) -> Option<u64> {
        let hears = self.listening.load(Ordering::SeqCst)
            && self
                .now_ms()
                .saturating_sub(self.heard_ms.load(Ordering::SeqCst))
                < DEAF_AFTER_MS;
        hears.then(|| self.count.load(Ordering::SeqCst))
    }
}

/// Listens for announced changes until the store is dropped; see [`Generation`]. A connection
/// that fails, is lost, or hears nothing (not even the heartbeat) for [`DEAF_AFTER_MS`] is
/// dropped, whatever state it was left in, and replaced through [`subscribe`]: sqlx's own
/// reconnection is off, so that every new connection moves the count on. A connection lost
/// without an error (a silent network) would otherwise keep the wait going for ever.
async fn listen(url: String, generation: Arc<Generation>, mut first: Option<PgListener>) {
    let deaf_after = std::time::Duration::from_millis(DEAF_AFTER_MS);
    // Whether the failure to listen again was already said: once an outage, not every half
    // second of it.
    let mut unable_said = false;
    loop {
        let mut listener = match first.take() {
            // Opening the store subscribed and started hearing.
            Some(l) => l,
            None => match subscribe(&url).await {
                Ok(l) => {
                    // Anything committed while nobody listened was missed.
                    generation.moved();
                    generation.heard();
                    generation.listening.store(true, Ordering::SeqCst);
                    if std::mem::take(&mut unable_said) {
                        eprintln!("postgres: listening for changes to the golden records again");
                    }
                    l
                }
                Err(e) => {
                    if !std::mem::replace(&mut unable_said, true) {
                        eprintln!(
                            "postgres: cannot listen for changes to the golden records ({e}); \
                             trying again every {} ms, and nothing is cached meanwhile",
                            HEARTBEAT_EVERY.as_millis()
                        );
                    }
                    tokio::time::sleep(HEARTBEAT_EVERY).await;
                    continue;
                }
            },
        };
        // Where the operator sees the store's other background failures: a replaced connection
        // means the governed API reads every golden record from the database until it hears.
        let why = loop {
            match tokio::time::timeout(deaf_after, listener.try_recv()).await {
                Ok(Ok(Some(n))) => {
                    if n.channel() == CHANGES {
                        generation.moved();
                    }
                    generation.heard();
                }
                Ok(Ok(None)) => break "the connection was closed".to_string(),
                Ok(Err(e)) => break e.to_string(),
                Err(_) => {
                    break format!("nothing heard, not even the heartbeat, for {DEAF_AFTER_MS} ms");
                }
            }
        };
        generation.listening.store(false, Ordering::SeqCst);
        generation.moved();
        eprintln!(
            "postgres: replacing the connection that listens for changes to the golden records \
             ({why}); nothing is cached until the new one listens"
        );
        drop(listener);
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

/// A connection of its own that listens on both channels and leaves reconnecting to [`listen`].
async fn subscribe(url: &str) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.eager_reconnect(false);
    listener.listen_all([CHANGES, HEARTBEAT]).await?;
    Ok(listener)
}

/// Sends the heartbeat that tells the listener its connection still hears, until the store is
/// dropped. A failed send is simply not heard, which is what it should mean.
async fn beat(pool: PgPool) {
    loop {
        let _ = sqlx::query("SELECT pg_notify($1, '')")
            .bind(HEARTBEAT)
            .execute(&pool)
            .await;
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

impl PgStore {
    /// Connects to `url`, brings the schema up to date, and starts listening for changes.
    pub async fn open(url: &str) -> Result<PgStore> {
        // sqlx checks a pooled connection with a round trip (a `Sync` and its `ReadyForQuery`)
        // before handing it out, and again when it comes back. The governed API's statements
        // avoid both on connections of their own (`held`); everything else keeps the checks, so
        // that a connection the server has ended is replaced before a statement fails on it.
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let generation = Arc::new(Generation::new());
        // The first subscription is made here, so that a store is listening once it is open.
        // A store that cannot listen yet (no connection to spare, say) still opens: nothing is
        // cached until the listener has subscribed.
        let first = subscribe(url).await.ok();
        if first.is_some() {
            generation.heard();
            generation.listening.store(true, Ordering::SeqCst);
        }
        let watchers = vec![
            tokio::spawn(listen(url.to_string(), generation.clone(), first)),
            tokio::spawn(beat(pool.clone())),
        ];
        Ok(PgStore {
            read: pool.clone(),
            held: crate::pg_held::Held::new(url),
            pool,
            generation,
            watchers,
            subject_rounds: Arc::default(),
        })
    }
}

impl PgStore {
    /// PostgreSQL's writers need no turn of ours: its own locks queue them.
    fn write_turn(&self) -> Option<crate::WriteTurn> {
        None
    }

    /// The count the listener moves on hearing a commit, moved at once by the store's own
    /// writes (see [`Generation`]).
    fn own_generation(&self) -> Option<Arc<AtomicU64>> {
        Some(self.generation.count.clone())
    }

    /// Replaces a library's links and golden records in one transaction (see the `Store` trait).
    async fn backend_replace_resolution(
        &self,
        k: &'static str,
        started_at: i64,
        summary: &str,
        links: &dyn crate::Rows<LinkRef<'_>>,
        golden: crate::GoldenRecords<'_>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        if matches!(golden, crate::GoldenRecords::Later(_)) {
            // The connection idles in this transaction while the golden records are built
            // (tens of seconds at a million people): a server that ends such sessions after a
            // while must not end this one.
            sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
                .execute(&mut *tx)
                .await?;
        }
        let run_id: i64 = sqlx::query_scalar(fix("INSERT INTO resolution_runs (kind, started_at, finished_at, mentions, entities, summary) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"))
            .bind(k)
            .bind(started_at)
            .bind(now_millis())
            .bind(links.len() as i64)
            .bind(crate::distinct_entities(links) as i64)
            .bind(summary)
            .fetch_one(&mut *tx)
            .await?;
        // `kind` was checked against the fixed list, so these names are ours, not input.
        // The new run goes into tables of its own beside the live ones, which then take their
        // place (see `swap_in`): meanwhile the live tables are not written, and locked only
        // against another run (see `begin_beside`).
        let (links_table, golden_table) = (format!("links_{k}"), format!("golden_{k}"));
        let links_next = begin_beside(&mut tx, &links_table).await?;
        let golden_next = begin_beside(&mut tx, &golden_table).await?;
        // The commit announces the new records itself, an empty run's too: the new table has
        // no trigger while it is written (it gets one when swapped in, below), and an empty
        // COPY is never sent.
        execute(&mut tx, "SELECT pg_notify('tongban_data', '')").await?;
        // By `COPY`, as the records are (see `backend_store_chunk`), frozen (see `begin_beside`).
        let copy_links = format!(
            "COPY {links_next} (source_id, record_key, role, entity_key, run_id) FROM STDIN (FORMAT binary, FREEZE)"
        );
        let in_order = crate::rows_in_key_order(links, crate::link_order);
        copy_in(&mut tx, &copy_links, in_order, |rows, l| {
            rows.row(5).text(l.source_id)?.text(l.record_key)?;
            rows.text(l.role)?.text(l.entity_key)?.int8(run_id);
            Ok(())
        })
        .await?;
        // Taken only now: while a run still builds them, the links go in meanwhile. Each part
        // is a `COPY` of its own as it comes.
        let mut golden = golden;
        // The search columns are written with the record (see `search_values`).
        let search = crate::search_columns(k);
        let search_names = crate::search_column_names(&search);
        let copy_golden = format!(
            "COPY {golden_next} (entity_key, record, run_id{search_names}) FROM STDIN (FORMAT binary, FREEZE)"
        );
        let fields = 3 + search.len() as i16;
        while let Some(part) = golden.next_part_async(k).await? {
            let part = crate::in_key_order(&part, crate::golden_order);
            copy_in(&mut tx, &copy_golden, &part, |rows, g| {
                rows.row(fields)
                    .text(&g.entity_key)?
                    .text(&g.record)?
                    .int8(run_id);
                for value in crate::search_values(&search, &g.record) {
                    match value {
                        Some(text) => rows.text(&text)?,
                        None => rows.null(),
                    };
                }
                Ok(())
            })
            .await?;
        }
        sqlx::query(fix(
            "UPDATE resolution_runs SET finished_at = ? WHERE id = ?",
        ))
        .bind(now_millis())
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        let mut golden_indexes = vec![Index::primary("entity_key")];
        golden_indexes.extend(search.iter().map(|c| Index::secondary(&c.index, &c.column)));
        swap_in(
            &mut tx,
            &[
                (
                    links_table.as_str(),
                    vec![
                        Index::primary("source_id, record_key, role"),
                        Index::secondary(&format!("links_{k}_by_entity"), "entity_key"),
                    ],
                ),
                (golden_table.as_str(), golden_indexes),
            ],
        )
        .await?;
        // The trigger the live table had (migration 0011), for the writes that come after.
        execute(
            &mut tx,
            &format!(
                "CREATE TRIGGER {golden_table}_announces AFTER INSERT OR UPDATE OR DELETE \
                 OR TRUNCATE ON {golden_table} FOR EACH STATEMENT \
                 EXECUTE FUNCTION tongban_data_changed()"
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(run_id)
    }

    /// Replaces every relation in one transaction (see the `Store` trait).
    async fn backend_replace_relations(
        &self,
        relations: &dyn crate::Rows<RelationRef<'_>>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // As a library's tables (see `replace_resolution`): written beside, then swapped in.
        let next = begin_beside(&mut tx, "relations").await?;
        let copy = format!(
            "COPY {next} (from_key, relation, to_key, source_id, record_key) \
             FROM STDIN (FORMAT binary, FREEZE)"
        );
        let once = crate::RelationsOnce::new(relations);
        copy_in(&mut tx, &copy, once, |rows, r| {
            rows.row(5)
                .text(r.from_key)?
                .text(r.relation)?
                .text(r.to_key)?;
            rows.text(r.source_id)?.text(r.record_key)?;
            Ok(())
        })
        .await?;
        swap_in(
            &mut tx,
            &[(
                "relations",
                vec![
                    Index::primary("from_key, relation, to_key, source_id, record_key"),
                    Index::secondary("relations_to", "to_key"),
                ],
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Current records after row `after_id` in row order, at most `limit`.
    async fn backend_all_current_cleaned(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<CleanedRecord>> {
        let rows = sqlx::query(fix(
            "SELECT id, source_id, record_key, cleaned, issues FROM records WHERE id > ? AND status = 'current'
             ORDER BY id LIMIT ?",
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<CleanedRecord> {
                Ok(CleanedRecord {
                    id: r.try_get("id")?,
                    source_id: r.try_get("source_id")?,
                    key: r.try_get("record_key")?,
                    cleaned: r.try_get("cleaned")?,
                    issues: r.try_get("issues")?,
                })
            })
            .collect()
    }

    /// Stores an ingest chunk in one transaction of multi-row statements, the source's lock
    /// held so that two batches of one source take turns (see the `Store` trait).
    async fn backend_store_chunk(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
        recleans: Option<Vec<i64>>,
    ) -> Result<ChunkOutcome> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        // Two batches of one source storing at once (two pushes) would both see a new key as
        // absent and both insert version 1; the source's lock makes them take turns. The same
        // statement holds the source's row, which stands in for a foreign key on every record.
        if sqlx::query(AssertSqlSafe(chunk_source()))
            .bind(source_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: "source",
                id: source_id.to_string(),
            });
        }
        let mut latest: HashMap<String, Latest> = HashMap::with_capacity(records.len());
        {
            let mut q = lookup(source_id, &records);
            for row in q.build().fetch_all(&mut *tx).await? {
                latest.insert(
                    row.try_get("record_key")?,
                    Latest {
                        id: row.try_get("id")?,
                        version: row.try_get("version")?,
                        status: RecordStatus::parse(row.try_get("status")?)?,
                        seen_batch: row.try_get("seen_batch")?,
                        hash: row.try_get("content_hash")?,
                    },
                );
            }
        }
        let plan = match &recleans {
            Some(from) => crate::plan_reclean(&records, from, &latest),
            None => plan_chunk(batch_id, &records, &latest),
        };
        let mut outcome = ChunkOutcome {
            records: records.len() as i64,
            ..Default::default()
        };
        let mut supersede = Vec::new();
        let mut unchanged = Vec::new();
        let mut inserts: Vec<(&IncomingRecord, i64, i64)> = Vec::new();
        let mut duplicates: Vec<IncomingQuarantine> = Vec::new();
        for (r, action) in records.iter().zip(&plan) {
            match action {
                Action::Insert {
                    version,
                    supersede: s,
                    seen_batch,
                } => {
                    if let Some(id) = s {
                        supersede.push(*id);
                        outcome.updated += 1;
                    } else {
                        outcome.inserted += 1;
                    }
                    inserts.push((r, *version, *seen_batch));
                }
                Action::Keep => outcome.unchanged += 1,
                Action::Unchanged(id) => {
                    unchanged.push(*id);
                    outcome.unchanged += 1;
                }
                Action::Duplicate { first } => duplicates.push(IncomingQuarantine {
                    key: Some(r.key.clone()),
                    location: r.location.clone(),
                    raw: r.raw_object(),
                    raw_hash: r.hash.clone(),
                    reasons: duplicate_reason(&r.key, first.as_deref()),
                }),
            }
        }
        let updates = !supersede.is_empty() || !unchanged.is_empty() || !quarantine.is_empty();
        if updates {
            sqlx::query(CHUNK_UPDATES).execute(&mut *tx).await?;
        }
        for group in supersede.chunks(ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Postgres> =
                QueryBuilder::new("UPDATE records SET status = 'superseded' WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in group {
                sep.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        if !unchanged.is_empty() {
            // A sighting per record, not a new version of its row (see migration
            // `record_sightings`); the ids as one array. Never lower it: a batch that started
            // later may already have seen the record, and a snapshot withdraws what no batch
            // from its own start on has seen. `plan_chunk` lists each record once per chunk, so
            // no row is updated twice by the one statement.
            sqlx::query(
                "INSERT INTO record_sightings (record_id, seen_batch) \
                 SELECT id, $2 FROM unnest($1::bigint[]) AS u(id) \
                 ON CONFLICT (record_id) DO UPDATE SET seen_batch = EXCLUDED.seen_batch \
                 WHERE record_sightings.seen_batch < EXCLUDED.seen_batch",
            )
            .bind(&unchanged)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        }
        // A record the department delivered but that was held in quarantine this time is still
        // in the delivery: its current version must not be withdrawn by a snapshot. A sighting
        // too, so that a bad row sent again every day does not rewrite the good version's row.
        // The keys filter `records`, so each record is named once however often its key was held.
        let held_keys: Vec<&str> = quarantine.iter().filter_map(|q| q.key.as_deref()).collect();
        for group in held_keys.chunks(ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO record_sightings (record_id, seen_batch) SELECT id, ",
            );
            q.push_bind(batch_id)
                .push(" FROM records WHERE status = 'current' AND source_id = ")
                .push_bind(source_id)
                .push(" AND record_key IN (");
            let mut sep = q.separated(", ");
            for k in group {
                sep.push_bind(*k);
            }
            q.push(
                ") ON CONFLICT (record_id) DO UPDATE SET seen_batch = EXCLUDED.seen_batch \
                 WHERE record_sightings.seen_batch < EXCLUDED.seen_batch",
            );
            q.build().execute(&mut *tx).await?;
        }
        if updates {
            // The rest needs no plan of its own, and under a forced custom plan PostgreSQL
            // would also plan anew the foreign-key check of every quarantined row.
            sqlx::query(CHUNK_INSERTS).execute(&mut *tx).await?;
        }
        // The new versions go in by `COPY`: PostgreSQL takes the values as they are, where a
        // multi-row `INSERT` had it parse every bound value and set up every row's expressions.
        const RECORD_COLUMNS: &str = "source_id, record_key, version, status, batch_id, \
             seen_batch, location, content_hash, raw, cleaned, issues, ingested_at, withdrawn_at, \
             raw_layout";
        let mut layouts = HashMap::new();
        for columns in crate::raw_layout::distinct_columns(
            inserts
                .iter()
                .filter_map(|(r, _, _)| r.raw_columns.as_ref()),
        ) {
            layouts.insert(columns, layout_id(&mut tx, columns).await?);
        }
        let copy_records = format!("COPY records ({RECORD_COLUMNS}) FROM STDIN (FORMAT binary)");
        copy_in(
            &mut tx,
            &copy_records,
            &inserts,
            |rows, (r, version, seen)| {
                rows.row(14).text(source_id)?.text(&r.key)?;
                rows.int8(*version).text("current")?;
                rows.int8(batch_id).int8(*seen).text(&r.location)?;
                rows.bytes(&r.hash)?.text(&r.raw)?.text(&r.cleaned)?;
                rows.text(&r.issues)?.int8(now).null();
                match r.raw_columns.as_ref().and_then(|c| layouts.get(&**c)) {
                    Some(id) => rows.int8(*id),
                    None => rows.null(),
                };
                Ok(())
            },
        )
        .await?;
        // A row already held is not held twice; its entry notes that it came again (0021).
        let held: Vec<&_> = quarantine.iter().chain(&duplicates).collect();
        if !held.is_empty() {
            sqlx::query(
                "UPDATE quarantine SET last_held_batch = $1 FROM unnest($3::bytea[], $4::text[]) AS a(raw_hash, location) \
                 WHERE quarantine.source_id = $2 AND quarantine.raw_hash = a.raw_hash \
                 AND quarantine.location = a.location AND quarantine.status = 'held'",
            )
            .bind(batch_id)
            .bind(source_id)
            .bind(held.iter().map(|e| e.raw_hash.as_slice()).collect::<Vec<&[u8]>>())
            .bind(held.iter().map(|e| e.location.as_str()).collect::<Vec<&str>>())
            .execute(&mut *tx)
            .await?;
        }
        for group in quarantine
            .iter()
            .chain(&duplicates)
            .collect::<Vec<_>>()
            .chunks(ROWS_PER_INSERT / 2)
        {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO quarantine (source_id, batch_id, location, record_key, raw, raw_hash, reasons, status, created_at) ",
            );
            q.push_values(group, |mut b, e| {
                b.push_bind(source_id)
                    .push_bind(batch_id)
                    .push_bind(&e.location)
                    .push_bind(&e.key)
                    .push_bind(&e.raw)
                    .push_bind(&e.raw_hash)
                    .push_bind(&e.reasons)
                    .push_bind("held")
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (source_id, raw_hash, location) WHERE status = 'held' DO NOTHING");
            let done = q.build().execute(&mut *tx).await?;
            outcome.quarantined += done.rows_affected() as i64;
        }
        sqlx::query(fix("UPDATE batches SET records = records + ?, inserted = inserted + ?, updated = updated + ?,
               unchanged = unchanged + ?, quarantined = quarantined + ? WHERE id = ?"),
        )
        .bind(outcome.records)
        .bind(outcome.inserted)
        .bind(outcome.updated)
        .bind(outcome.unchanged)
        .bind(outcome.quarantined)
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// What the listening connection has heard (see [`Generation`]): no round trip.
    async fn backend_data_generation(&self) -> Result<Option<u64>> {
        Ok(self.generation.current())
    }

    /// Stops the listeners and closes the pool's connections, each with a goodbye to the server
    /// (the held connections end when the store is dropped).
    async fn backend_close(&self) -> Result<()> {
        for w in &self.watchers {
            w.abort();
        }
        self.pool.close().await;
        Ok(())
    }

    async fn backend_golden_record(
        &self,
        k: &str,
        entity_key: &str,
    ) -> Result<Option<GoldenRecord>> {
        let sql = format!("SELECT entity_key, record FROM golden_{k} WHERE entity_key = $1");
        let query = || sqlx::query(AssertSqlSafe(sql.as_str())).bind(entity_key);
        let row = self.held.fetch_optional(&self.read, query).await?;
        row.map(|r| -> Result<GoldenRecord> {
            Ok(GoldenRecord {
                entity_key: r.try_get("entity_key")?,
                record: r.try_get("record")?,
            })
        })
        .transpose()
    }

    async fn backend_relations_from(&self, entity_key: &str) -> Result<Vec<Relation>> {
        let query = || {
            sqlx::query(
                "SELECT * FROM relations WHERE from_key = $1 \
                 ORDER BY relation, to_key, source_id, record_key",
            )
            .bind(entity_key)
        };
        relations(&self.held.fetch_all(&self.read, query).await?)
    }

    /// One statement: the record's row (part 0), then one row per relation (part 1) in the
    /// order of `relations_from`, so the record travels once.
    async fn backend_golden_with_relations_from(
        &self,
        k: &str,
        entity_key: &str,
    ) -> Result<(Option<GoldenRecord>, Vec<Relation>)> {
        let sql = format!(
            "SELECT 0 AS part, record, NULL::text AS relation, NULL::text AS to_key, \
                    NULL::text AS source_id, NULL::text AS record_key \
             FROM golden_{k} WHERE entity_key = $1 \
             UNION ALL \
             SELECT 1, NULL, relation, to_key, source_id, record_key \
             FROM relations WHERE from_key = $1 \
             ORDER BY part, relation, to_key, source_id, record_key"
        );
        let query = || sqlx::query(AssertSqlSafe(sql.as_str())).bind(entity_key);
        let rows = self.held.fetch_all(&self.read, query).await?;
        let mut golden = None;
        let mut relations = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<i32, _>("part")? == 0 {
                golden = Some(GoldenRecord {
                    entity_key: entity_key.to_string(),
                    record: r.try_get("record")?,
                });
            } else {
                relations.push(Relation {
                    from_key: entity_key.to_string(),
                    relation: r.try_get("relation")?,
                    to_key: r.try_get("to_key")?,
                    source_id: r.try_get("source_id")?,
                    record_key: r.try_get("record_key")?,
                });
            }
        }
        Ok((golden, relations))
    }

    /// Through sqlx: a handful of multi-row statements in one transaction, each a round trip.
    async fn backend_apply_library_changes(
        &self,
        changes: &[LibraryChanges],
        relations: &[Relation],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for change in changes {
            let k = resolution_kind(&change.kind)?;
            let run_id = change.run_id;
            for (old, new) in &change.renamed {
                sqlx::query(fix(&format!(
                    "UPDATE links_{k} SET entity_key = ? WHERE entity_key = ?"
                )))
                .bind(new)
                .bind(old)
                .execute(&mut *tx)
                .await?;
                sqlx::query(fix(&format!("DELETE FROM golden_{k} WHERE entity_key = ?")))
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
                // A relation may already exist under the new key, so it is copied without
                // duplicates and the old one removed, rather than updated in place.
                for (set, select) in [
                    ("from_key", "?, relation, to_key"),
                    ("to_key", "from_key, relation, ?"),
                ] {
                    sqlx::query(fix(&format!(
                        "INSERT INTO relations (from_key, relation, to_key, source_id, record_key)
                         SELECT {select}, source_id, record_key FROM relations WHERE {set} = ?
                         ON CONFLICT DO NOTHING"
                    )))
                    .bind(new)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(fix(&format!("DELETE FROM relations WHERE {set} = ?")))
                        .bind(old)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for group in change.links.chunks(LINKS_PER_INSERT) {
                let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
                    "INSERT INTO links_{k} (source_id, record_key, role, entity_key, run_id) "
                ));
                q.push_values(group, |mut b, l| {
                    b.push_bind(&l.source_id)
                        .push_bind(&l.record_key)
                        .push_bind(&l.role)
                        .push_bind(&l.entity_key)
                        .push_bind(run_id);
                });
                q.push(" ON CONFLICT (source_id, record_key, role) DO UPDATE SET entity_key = excluded.entity_key, run_id = excluded.run_id");
                q.build().execute(&mut *tx).await?;
            }
            // PostgreSQL's search columns are plain columns, written with the record (see
            // `search_values`).
            let search = crate::search_columns(k);
            let names = crate::search_column_names(&search);
            let updates: String = search
                .iter()
                .map(|c| format!(", {0} = excluded.{0}", c.column))
                .collect();
            for group in change.golden.chunks(ROWS_PER_INSERT) {
                let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
                    "INSERT INTO golden_{k} (entity_key, record, run_id{names}) "
                ));
                q.push_values(group, |mut b, g| {
                    b.push_bind(&g.entity_key)
                        .push_bind(&g.record)
                        .push_bind(run_id);
                    for value in crate::search_values(&search, &g.record) {
                        b.push_bind(value);
                    }
                });
                q.push(format!(
                    " ON CONFLICT (entity_key) DO UPDATE SET record = excluded.record, run_id = excluded.run_id{updates}"
                ));
                q.build().execute(&mut *tx).await?;
            }
        }
        for group in relations.chunks(LINKS_PER_INSERT) {
            let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO relations (from_key, relation, to_key, source_id, record_key) ",
            );
            q.push_values(group, |mut b, r| {
                b.push_bind(&r.from_key)
                    .push_bind(&r.relation)
                    .push_bind(&r.to_key)
                    .push_bind(&r.source_id)
                    .push_bind(&r.record_key);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        for (end, kind, key) in crate::stated_once_to_tidy(changes, relations) {
            sqlx::query(fix(&crate::later_citations_sql(end, "COLLATE \"C\"")))
                .bind(kind)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The entries go as one statement, each column as one array that `unnest` turns back into
    /// rows: a batch without a checkpoint (all but one in a thousand) is one round trip and its
    /// own transaction, instead of three (begin, insert, commit).
    async fn backend_append_audit(
        &self,
        entries: &[AuditRow],
        checkpoint: Option<&CheckpointRow>,
    ) -> Result<()> {
        let column = |f: fn(&AuditRow) -> &str| -> Vec<&str> { entries.iter().map(f).collect() };
        // The answered reads per hour and grant go in the same statement as the entries (a
        // data-modifying WITH runs to completion whether or not its rows are read), so that an
        // append stays one round trip and the counts one with the log.
        let reads = crate::grant_reads::by_hour(entries);
        // Entries at or below where the bulk index by subject stands (a log cut short and
        // written again) move it below them, in the same statement, so that lookups scan them
        // until a round indexes them (migration 0019).
        let insert = sqlx::query(
            "WITH logged AS ( \
                 INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev, hash) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                                      $5::text[], $6::text[], $7::text[], $8::text[])), \
             lowered AS ( \
                 UPDATE audit_subjects_upto SET upto = $12 WHERE upto > $12) \
             INSERT INTO audit_grant_reads (hour, grant_id, reads) \
             SELECT * FROM unnest($9::bigint[], $10::text[], $11::bigint[]) \
             ON CONFLICT (hour, grant_id) DO UPDATE \
                 SET reads = audit_grant_reads.reads + excluded.reads",
        )
        .bind(entries.iter().map(|e| e.seq).collect::<Vec<i64>>())
        .bind(entries.iter().map(|e| e.at).collect::<Vec<i64>>())
        .bind(column(|e| &e.actor))
        .bind(column(|e| &e.action))
        .bind(column(|e| &e.subject))
        .bind(column(|e| &e.detail))
        .bind(column(|e| &e.prev))
        .bind(column(|e| &e.hash))
        .bind(reads.keys().map(|(hour, _)| *hour).collect::<Vec<i64>>())
        .bind(reads.keys().map(|(_, g)| g.as_str()).collect::<Vec<&str>>())
        .bind(reads.values().copied().collect::<Vec<i64>>())
        .bind(
            entries
                .first()
                .map_or(i64::MAX, |e| e.seq.saturating_sub(1)),
        );
        let Some(c) = checkpoint else {
            self.held.execute(&self.pool, insert).await?;
            self.index_subjects_if_due(entries);
            return Ok(());
        };
        let mut tx = self.pool.begin().await?;
        insert.execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (from_seq, to_seq, root, key, signature, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.from_seq)
        .bind(c.to_seq)
        .bind(&c.root)
        .bind(&c.key)
        .bind(&c.signature)
        .bind(c.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.index_subjects_if_due(entries);
        Ok(())
    }
}

impl PgStore {
    /// Starts rounds of the bulk index by subject when the appended `entries` cross into a new
    /// era (so that the eras before it are complete), unless rounds are under way in this
    /// process, which then go on to the eras completed meanwhile. A round that fails, or finds
    /// another server's round under way, only leaves more for the next one (each starts where
    /// the index stands), and lookups scan what the index lacks.
    fn index_subjects_if_due(&self, entries: &[AuditRow]) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        let rounds = &self.subject_rounds;
        rounds.newest.fetch_max(last.seq, Ordering::SeqCst);
        if first.seq.saturating_sub(1) >> SUBJECT_ERA_BITS == last.seq >> SUBJECT_ERA_BITS
            || rounds.running.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let (pool, rounds) = (self.pool.clone(), rounds.clone());
        tokio::spawn(async move {
            let mut done = i64::MIN;
            loop {
                let end = complete_eras_end(rounds.newest.load(Ordering::SeqCst));
                if end > done {
                    if let Err(e) = index_subjects(&pool, end).await {
                        // Only the index is behind (lookups scan what it lacks) until a later
                        // era completes; said where the operator sees the store's other
                        // background failures.
                        eprintln!("postgres: indexing audit entries by subject: {e}");
                    }
                    done = end;
                    continue;
                }
                rounds.running.store(false, Ordering::SeqCst);
                // An append that completed an era just before `running` was cleared left it
                // to this task, which goes on if no other has started.
                let end = complete_eras_end(rounds.newest.load(Ordering::SeqCst));
                if end <= done || rounds.running.swap(true, Ordering::SeqCst) {
                    break;
                }
            }
        });
    }
}

/// Whether rounds of the bulk index by subject are under way, and the newest entry appended.
#[derive(Default)]
struct SubjectRounds {
    running: AtomicBool,
    newest: AtomicI64,
}

/// One round of the bulk index by subject: every entry after where the index stands up to `end`
/// goes in, sorted, and the index moves to `end` if nothing moved it meanwhile (an append that
/// lowered it). `end` is first brought down to the end of the last era the log completes as the
/// round finds it: after a log was cut short, the newest number this process appended may lie
/// far above it, and an append in flight at a number the round passed over would be neither
/// indexed nor scanned. Appends come in sequence order, after the newest committed entry, so
/// every entry up to the lowered `end` was committed before the round read the log.
///
/// Rounds take turns across servers (an advisory lock, tried and not waited for: a round under
/// way elsewhere covers the same entries). A round first deletes what the index already holds
/// in its range (entries a trigger indexed when they were changed in place), so that its insert
/// needs no `ON CONFLICT`, which cost a round of 16 k entries 60 ms of its 210. Where the index
/// stands is read first and passed in, so that the planner sees a range of the log: joined in,
/// the table of one row was estimated at two thousand, and the plan's cost set off JIT
/// compilation (170 ms a round).
async fn index_subjects(pool: &PgPool, end: i64) -> Result<()> {
    let mut tx = pool.begin().await?;
    let turn: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtext('tongban: audit entries by subject'))",
    )
    .fetch_one(&mut *tx)
    .await?;
    let upto: Option<i64> = sqlx::query_scalar("SELECT upto FROM audit_subjects_upto")
        .fetch_optional(&mut *tx)
        .await?;
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
        .fetch_one(&mut *tx)
        .await?;
    let end = end.min(complete_eras_end(newest.unwrap_or(0).saturating_add(1)));
    let Some(upto) = upto.filter(|&upto| turn && upto < end) else {
        return Ok(());
    };
    sqlx::query(
        "DELETE FROM audit_subjects \
         WHERE era >= $1 >> 14 AND era <= $2 >> 14 AND seq > $1 AND seq <= $2",
    )
    .bind(upto)
    .bind(end)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_subjects (era, subject, seq) \
         SELECT seq >> 14, subject, seq FROM audit_log WHERE seq > $1 AND seq <= $2 \
         ORDER BY seq >> 14, subject COLLATE \"C\", seq",
    )
    .bind(upto)
    .bind(end)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_subjects_upto SET upto = $2 WHERE upto = $1")
        .bind(upto)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Rows per multi-row statement (or ids per `IN` list) where rows are wider than links.
const ROWS_PER_INSERT: usize = 500;
/// Links have six short columns; more rows per statement means fewer round trips (PostgreSQL
/// allows 65 535 parameters).
const LINKS_PER_INSERT: usize = 2_000;

/// Two batches of one source storing at once (two pushes) would both see a new key as absent and
/// both insert version 1; this lock, held to the end of the transaction, makes them take turns.
const SOURCE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext(?))";

/// How a chunk's transaction begins: the source's lock (see [`SOURCE_LOCK`]), taken only if the
/// source exists, whose row is then held against deletion to the end of the transaction. The
/// `records` table has no foreign key to `sources` (migration 0014): checking it on every row
/// cost PostgreSQL a tenth to a fifth of an ingest, where this costs one statement a chunk.
///
/// It is built from [`SOURCE_LOCK`], so that chunks and the batch's other steps take the same
/// lock.
fn chunk_source() -> String {
    format!(
        "{} FROM sources WHERE id = $1 FOR KEY SHARE",
        SOURCE_LOCK.replace('?', "$1")
    )
}

/// How a chunk's updates begin. They bind hundreds of ids in IN lists; after five executions
/// PostgreSQL could switch to a generic plan that ignores the index, so they are planned for
/// their actual values. Only there: planning every statement anew cost each governed read its
/// plan (one connection-wide setting held the API to 5.5 k reads/s).
const CHUNK_UPDATES: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

/// Where a chunk's inserts begin: plans cached as the database is configured to.
const CHUNK_INSERTS: &str = "SET LOCAL plan_cache_mode TO DEFAULT";

/// Runs one statement of ours (names and SQL fixed by this file, not input).
async fn execute(conn: &mut PgConnection, sql: &str) -> Result<()> {
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An index a table rebuilt beside the live one must have: its primary key, or a secondary
/// index by name. A contract test holds the tables after a swap to the indexes, constraints and
/// triggers the migrations made, so an index added by a migration must be added here too.
struct Index {
    /// `None` for the primary key (named `<table>_pkey`, as PostgreSQL names it).
    name: Option<String>,
    columns: String,
}

impl Index {
    fn primary(columns: &str) -> Index {
        Index {
            name: None,
            columns: columns.to_string(),
        }
    }

    fn secondary(name: &str, columns: &str) -> Index {
        Index {
            name: Some(name.to_string()),
            columns: columns.to_string(),
        }
    }
}

/// Creates `<table>_next`, empty, with the live table's columns, in the transaction that will
/// swap it in (see [`swap_in`]); returns its name.
///
/// A run used to empty the live tables and fill them again in its transaction. On PostgreSQL
/// that was slow twice over: the deleted rows stayed in the heap and the primary key until a
/// vacuum, so a second run wrote the libraries in 99 s where the first took 40 s (300 k city);
/// and dropping the secondary indexes before the bulk write (the way to write them once, sorted)
/// took an ACCESS EXCLUSIVE lock on the live tables, so every read of them, the governed API's
/// included, waited for the whole run's commit. Written beside, the live tables stay readable
/// until the swap at the end, which holds them for the few statements it takes.
///
/// The new table is created in this transaction, so its rows can be written frozen (`COPY …
/// FREEZE`): they need no hint bits set and no freezing later, which the first reads after a
/// bulk load otherwise do (a run reading records just ingested took 76 s against 15 s).
/// What belongs to the live table alone is not carried over: privileges granted on it (an
/// operator who granted access to a library table grants it again after a run) and its place in
/// a publication that lists tables by name. A view on a live table makes the run fail
/// (PostgreSQL will not drop a table a view depends on) and changes nothing.
///
/// The live table is locked first in SHARE UPDATE EXCLUSIVE mode, which readers and incremental
/// writers pass but a second run of the same table waits on until the first commits. Without
/// it, two runs at once deadlocked: the second's `LIKE` held a lock on the live table while it
/// waited for the first's new table, and the first's `DROP` waited for that lock.
///
/// Incremental changes committed to the live tables while a run writes are dropped with them at
/// the swap (a run replaces the whole library from what it read); a long transaction holding a
/// lock on a live table (a dump, a report) holds the swap, and the readers queued behind it,
/// until it ends. Rows written frozen are visible even to a REPEATABLE READ snapshot taken
/// before the commit; the store takes no such snapshots.
async fn begin_beside(conn: &mut PgConnection, table: &str) -> Result<String> {
    let next = format!("{table}_next");
    execute(
        conn,
        &format!("LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE"),
    )
    .await?;
    execute(
        conn,
        &format!("CREATE TABLE {next} (LIKE {table} INCLUDING DEFAULTS INCLUDING STORAGE)"),
    )
    .await?;
    Ok(next)
}

/// Puts each filled `<table>_next` in its table's place, in the caller's transaction: its
/// indexes are built (each sorted once, after the bulk write), its statistics gathered so that
/// the first queries after the run plan as well as before it, the live table is dropped and the
/// new one takes its name and its indexes' names. Readers wait only from the drop to the commit.
async fn swap_in(conn: &mut PgConnection, tables: &[(&str, Vec<Index>)]) -> Result<()> {
    for (table, indexes) in tables {
        let next = format!("{table}_next");
        for index in indexes {
            let sql = match &index.name {
                None => format!(
                    "ALTER TABLE {next} ADD CONSTRAINT {next}_pkey PRIMARY KEY ({})",
                    index.columns
                ),
                Some(name) => format!("CREATE INDEX {name}_next ON {next} ({})", index.columns),
            };
            execute(conn, &sql).await?;
        }
        execute(conn, &format!("ANALYZE {next}")).await?;
    }
    for (table, indexes) in tables {
        let next = format!("{table}_next");
        execute(conn, &format!("DROP TABLE {table}")).await?;
        execute(conn, &format!("ALTER TABLE {next} RENAME TO {table}")).await?;
        for index in indexes {
            let sql = match &index.name {
                None => {
                    format!("ALTER TABLE {table} RENAME CONSTRAINT {next}_pkey TO {table}_pkey")
                }
                Some(name) => format!("ALTER INDEX {name}_next RENAME TO {name}"),
            };
            execute(conn, &sql).await?;
        }
    }
    Ok(())
}

/// The id of the layout (a raw record's column names, see `raw_layout`) whose text is
/// `columns`, added if the store has none yet. Called inside the chunk's transaction, so a layout
/// added by a chunk that is rolled back goes with it; two chunks adding the same layout at once
/// may each add a row, both valid, and later chunks take the first.
async fn layout_id(conn: &mut PgConnection, columns: &str) -> Result<i64> {
    let found = sqlx::query(
        "SELECT id FROM record_layouts WHERE md5(columns) = md5($1) AND columns = $1 \
         ORDER BY id LIMIT 1",
    )
    .bind(columns)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = found {
        return Ok(row.try_get(0)?);
    }
    let row = sqlx::query("INSERT INTO record_layouts (columns) VALUES ($1) RETURNING id")
        .bind(columns)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// Loads `rows` by binary `COPY` (`statement`, `… FROM STDIN (FORMAT binary)`), each encoded by
/// `encode` with as many fields as the statement names, within the caller's transaction.
async fn copy_in<T>(
    conn: &mut PgConnection,
    statement: &str,
    rows: impl IntoIterator<Item = T>,
    encode: impl Fn(&mut CopyRows, &T) -> Result<()>,
) -> Result<()> {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut encoded = CopyRows::new();
    for row in rows {
        // A row that cannot be encoded (a value over 2 GiB) ends the load: the dropped `COPY`
        // fails it, the caller's transaction rolls back, and sqlx closes the connection when
        // its check on return to the pool fails. An explicit abort could leave the connection
        // a reply out of step if PostgreSQL had already refused an earlier row.
        encode(&mut encoded, &row)?;
        if encoded.len() >= COPY_SEND_BYTES {
            copy.send(encoded.take()).await?;
        }
    }
    copy.send(encoded.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// How much of a `COPY` is encoded before it is sent: PostgreSQL stores the first rows while
/// the next are encoded, and a chunk's stream is never held whole.
const COPY_SEND_BYTES: usize = 1 << 20;

/// Rewrites `?` markers as `$1`, `$2`, …; the statements contain no `?` inside string literals.
fn fix(sql: &str) -> AssertSqlSafe<String> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    AssertSqlSafe(out)
}

/// The latest versions of a whole chunk's keys, as one array parameter (planning an IN list of
/// hundreds of parameters cost PostgreSQL 25 ms a query), each key looked up in the key index.
/// `= ANY($2)` let the planner pick its own way: while a first load has no statistics yet it
/// scanned every record of the source for each chunk (up to 0.5 s a chunk by 150 k records).
/// The subquery's `LIMIT` keeps it from being merged into a join, so each key is one probe of
/// the unique index of latest versions, whatever the statistics say.
fn lookup<'a>(source_id: &'a str, group: &'a [IncomingRecord]) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new("SELECT r.* FROM unnest(");
    q.push_bind(group.iter().map(|r| r.key.as_str()).collect::<Vec<&str>>());
    q.push(format!(
        "::text[]) AS k(key) CROSS JOIN LATERAL (SELECT id, record_key, version, status, \
         {} AS seen_batch, content_hash FROM records WHERE status <> 'superseded' AND source_id = ",
        crate::LAST_SEEN
    ));
    q.push_bind(source_id)
        .push(" AND record_key = k.key LIMIT 1) r");
    q
}

/// The text at a golden record's JSON `path` (already checked by [`crate::valid_json_path`]), for
/// searches on paths that have no search column; the columns hold this same expression.
fn json_text(path: &str) -> String {
    format!("((record::jsonb) #>> '{{{}}}')", path.replace('.', ","))
}

/// A subject's audit entries, newest first (`$1` the subject, `$2` how many at most): those
/// after where the bulk index by subject stands are scanned, the others found through it era by
/// era, newest era first, visiting only eras the index holds (each found by one descent below
/// the last: PostgreSQL 15 cannot skip through an index by itself), as on SQLite (see migration
/// 0019). An index entry counts only while the entry it points to still names the subject.
/// `LIMIT` cannot stop the walk early, so a lookup costs a descent per era: a few at a
/// million entries, about six thousand at a hundred million.
/// Where the index stands is a subquery, not a join, and the scan of the newest is bounded above
/// as well as below: otherwise the planner, which cannot know the bounds, took a scan of the
/// whole log (115 ms at 200 k entries, against 2 ms).
const AUDIT_OF_SUBJECT: &str = "\
    WITH RECURSIVE eras(era) AS ( \
        SELECT (SELECT MAX(era) FROM audit_subjects \
                WHERE era <= (SELECT upto FROM audit_subjects_upto) >> 14) \
        UNION ALL \
        SELECT (SELECT MAX(s.era) FROM audit_subjects s WHERE s.era < eras.era) \
        FROM eras WHERE eras.era IS NOT NULL) \
    SELECT * FROM ( \
        SELECT a.* FROM audit_log a \
        WHERE a.seq > (SELECT upto FROM audit_subjects_upto) \
          AND a.seq <= (SELECT MAX(seq) FROM audit_log) AND a.subject = $1 \
        UNION ALL \
        SELECT a.* FROM eras JOIN audit_subjects i ON i.era = eras.era \
            JOIN audit_log a ON a.seq = i.seq \
        WHERE i.subject = $1 AND i.seq <= (SELECT upto FROM audit_subjects_upto) \
          AND a.subject = $1) AS found \
    ORDER BY seq DESC LIMIT $2";

/// Answered reads per grant (`$1` after which entry, `$2`..`$3` the stamps) among the entries
/// from before the store kept the counts per hour (up to `audit_grant_reads_from`), as
/// [`crate::Store::audit_reads_per_grant`] defines them. A detail `jsonb` refuses fails the
/// statement (PostgreSQL 15 has no test for valid JSON that does not raise), and the store then
/// counts the details itself.
const AUDIT_READS_PER_GRANT: &str = "\
    SELECT g.value ->> 'grant' AS grant_id, COUNT(DISTINCT a.seq) AS reads \
    FROM (SELECT seq, detail::jsonb -> 'served_under' AS served FROM audit_log \
          WHERE seq > $1 AND at >= $2 AND at < $3 \
            AND seq <= (SELECT COALESCE(MAX(seq), -9223372036854775808) FROM audit_grant_reads_from) \
            AND action LIKE 'read.%' AND action NOT LIKE '%.denied' \
          OFFSET 0) a \
    CROSS JOIN LATERAL jsonb_array_elements( \
        CASE WHEN jsonb_typeof(a.served) = 'array' THEN a.served ELSE '[]'::jsonb END) g \
    WHERE jsonb_typeof(g.value -> 'grant') = 'string' \
    GROUP BY 1";

/// The details of the same entries, for counting them outside the database.
const AUDIT_READ_DETAILS: &str = "\
    SELECT detail FROM audit_log WHERE seq > $1 AND at >= $2 AND at < $3 \
      AND seq <= (SELECT COALESCE(MAX(seq), -9223372036854775808) FROM audit_grant_reads_from) \
      AND action LIKE 'read.%' AND action NOT LIKE '%.denied'";

crate::backend::sql_backend!(
    PgStore,
    Postgres,
    PgRow,
    "postgres",
    fix,
    Some(SOURCE_LOCK),
    json_text,
    None::<&'static str>
);
