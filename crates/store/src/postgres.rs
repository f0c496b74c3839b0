//! The PostgreSQL store, for a city that outgrows one machine (and, through it, Citus,
//! YugabyteDB or CockroachDB).
//!
//! Connections come from a pool shared by all requests; every `Store` method is one transaction.
//! This module opens the pool and runs the PostgreSQL migrations; the statements are in `backend`.

use crate::{
    Action, AuditRow, BatchRow, BatchStatus, CheckpointRow, ChunkOutcome, CleanedRecord,
    DepartmentRow, EntityLink, GoldenRecord, GrantRow, IncomingQuarantine, IncomingRecord, Latest,
    LibraryChanges, QuarantineEntry, QuarantineStatus, RecordStatus, RecordVersion, Relation,
    ResolutionRun, Result, SourceRow, Store, StoreError, TokenRow, UserRow, duplicate_reason,
    now_millis, plan_chunk, resolution_kind,
};
use async_trait::async_trait;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres, QueryBuilder, Row};
use std::collections::HashMap;

pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL's connections already read while others write.
    read: PgPool,
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str) -> Result<PgStore> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            read: pool.clone(),
            pool,
        })
    }
}

impl PgStore {
    /// PostgreSQL's writers need no turn of ours: its own locks queue them.
    fn write_turn(&self) -> Option<crate::WriteTurn> {
        None
    }

    async fn backend_golden_record(
        &self,
        k: &str,
        entity_key: &str,
    ) -> Result<Option<GoldenRecord>> {
        let sql = format!("SELECT entity_key, record FROM golden_{k} WHERE entity_key = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(entity_key)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| -> Result<GoldenRecord> {
            Ok(GoldenRecord {
                entity_key: r.try_get("entity_key")?,
                record: r.try_get("record")?,
            })
        })
        .transpose()
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
        let insert = sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev, hash) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                                  $5::text[], $6::text[], $7::text[], $8::text[])",
        )
        .bind(entries.iter().map(|e| e.seq).collect::<Vec<i64>>())
        .bind(entries.iter().map(|e| e.at).collect::<Vec<i64>>())
        .bind(column(|e| &e.actor))
        .bind(column(|e| &e.action))
        .bind(column(|e| &e.subject))
        .bind(column(|e| &e.detail))
        .bind(column(|e| &e.prev))
        .bind(column(|e| &e.hash));
        let Some(c) = checkpoint else {
            insert.execute(&self.pool).await?;
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
        Ok(())
    }
}

/// How a chunk's transaction begins. Its statements bind hundreds of keys in IN lists; after
/// five executions PostgreSQL would switch to a generic plan that ignores the key index (300 ms
/// a chunk instead of 2), so the chunk's statements are planned for their actual values. Only
/// there: planning every statement anew cost each governed read its plan (one connection-wide
/// setting held the API to 5.5 k reads/s).
const CHUNK_SETUP: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

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

/// The latest versions of a whole chunk's keys, as one array parameter: planning an IN list of
/// hundreds of parameters cost PostgreSQL 25 ms a query, an array costs nothing.
fn lookup<'a>(source_id: &'a str, group: &'a [IncomingRecord]) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(crate::LOOKUP_SQL);
    q.push_bind(source_id).push(" AND record_key = ANY(");
    q.push_bind(group.iter().map(|r| r.key.as_str()).collect::<Vec<&str>>());
    q.push(")");
    q
}

/// The text at a golden record's JSON `path` (already checked by [`crate::valid_json_path`]), in
/// exactly the form migration 0009's indexes use, so that PostgreSQL can use them.
fn json_text(path: &str) -> String {
    format!("((record::jsonb) #>> '{{{}}}')", path.replace('.', ","))
}

crate::backend::sql_backend!(
    PgStore,
    Postgres,
    PgRow,
    "postgres",
    fix,
    lookup,
    usize::MAX,
    Some("SELECT pg_advisory_xact_lock(hashtext(?))"),
    json_text,
    None::<&'static str>,
    Some(CHUNK_SETUP)
);
