//! The SQL shared by both backends, as a macro that implements [`crate::Store`] for a backend's
//! store type.
//!
//! SQLite and PostgreSQL accept the same statements here except for parameter markers (`?` versus
//! `$1`), so every statement is written once with `?` and passed through the backend's `$fix`
//! function. The decisions (new, changed, unchanged, duplicate) come from [`crate::plan_chunk`].
//! A macro rather than generic functions because sqlx's per-database trait bounds would dwarf the
//! SQL they guard.
//!
//! Some operations are each backend's own, because each has a faster way than the shared one:
//! storing an ingest chunk, replacing a library or the relations, applying an incremental
//! resolution's changes, reading every current record, reading a golden record (alone or with
//! its relations), reading an entity's relations and appending audit entries
//! (`backend_store_chunk`, `backend_replace_resolution`, `backend_replace_relations`,
//! `backend_apply_library_changes`, `backend_all_current_cleaned`, `backend_golden_record`,
//! `backend_golden_with_relations_from`, `backend_relations_from`, `backend_append_audit` in
//! `sqlite.rs` and `postgres.rs`). The audit
//! entries of a subject are found by each backend's own statement (`AUDIT_OF_SUBJECT`), because
//! SQLite keeps that index in bulk (see its migration 0010). The golden records' search columns
//! are plain columns each backend's own writes fill (SQLite by `json_extract` in the statement,
//! migration 0013; PostgreSQL from `search_values`, migration 0015).
//!
//! This module does not open connections or run migrations; each backend module does.

/// Implements `Store` for `$store` (with a `pool` field for everything and a `read` field for the
/// governed API's hot reads, which may be the same pool) on database `$db` with row type `$row`.
macro_rules! sql_backend {
    ($store:ident, $db:ty, $row:ty, $name:expr, $fix:path, $lock_sql:expr, $json_text:path, $begin_sql:expr) => {

/// A write transaction on the writer pool, holding the store's write turn (on a backend that
/// has one) until it commits or is dropped. It reads as the connection, like sqlx's own.
struct WriteTx {
    tx: sqlx::Transaction<'static, $db>,
    _turn: crate::Writing,
}

impl std::ops::Deref for WriteTx {
    type Target = <$db as sqlx::Database>::Connection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl WriteTx {
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

fn batch_row(r: &$row) -> Result<BatchRow> {
    Ok(BatchRow {
        id: r.try_get("id")?,
        source_id: r.try_get("source_id")?,
        file_name: r.try_get("file_name")?,
        status: BatchStatus::parse(r.try_get("status")?)?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: ChunkOutcome {
            records: r.try_get("records")?,
            inserted: r.try_get("inserted")?,
            updated: r.try_get("updated")?,
            unchanged: r.try_get("unchanged")?,
            quarantined: r.try_get("quarantined")?,
        },
        withdrawn: r.try_get("withdrawn")?,
        message: r.try_get("message")?,
    })
}

fn record_row(r: &$row) -> Result<RecordVersion> {
    Ok(RecordVersion {
        source_id: r.try_get("source_id")?,
        key: r.try_get("record_key")?,
        version: r.try_get("version")?,
        status: RecordStatus::parse(r.try_get("status")?)?,
        batch_id: r.try_get("batch_id")?,
        seen_batch: r.try_get("seen_batch")?,
        location: r.try_get("location")?,
        content_hash: r.try_get("content_hash")?,
        // A record kept as its values alone is given back as the object it was delivered as.
        raw: {
            let raw: String = r.try_get("raw")?;
            match r.try_get::<Option<String>, _>("raw_columns")? {
                Some(columns) => crate::raw_layout::splice(&columns, &raw).ok_or_else(|| {
                    StoreError::Corrupt(format!("a record's raw values do not fit its layout: {raw:?}"))
                })?,
                None => raw,
            }
        },
        cleaned: r.try_get("cleaned")?,
        issues: r.try_get("issues")?,
        ingested_at: r.try_get("ingested_at")?,
        withdrawn_at: r.try_get("withdrawn_at")?,
    })
}

fn quarantine_row(r: &$row) -> Result<QuarantineEntry> {
    Ok(QuarantineEntry {
        id: r.try_get("id")?,
        source_id: r.try_get("source_id")?,
        batch_id: r.try_get("batch_id")?,
        location: r.try_get("location")?,
        key: r.try_get("record_key")?,
        raw: r.try_get("raw")?,
        reasons: r.try_get("reasons")?,
        status: QuarantineStatus::parse(r.try_get("status")?)?,
        created_at: r.try_get("created_at")?,
        resolved_at: r.try_get("resolved_at")?,
        last_held_batch: r
            .try_get::<Option<i64>, _>("last_held_batch")?
            .unwrap_or(r.try_get("batch_id")?),
    })
}

fn link_row(r: &$row) -> Result<EntityLink> {
    Ok(EntityLink {
        source_id: r.try_get("source_id")?,
        record_key: r.try_get("record_key")?,
        role: r.try_get("role")?,
        entity_key: r.try_get("entity_key")?,
    })
}

fn audit_row(r: &$row) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail: r.try_get("detail")?,
        prev: r.try_get("prev")?,
        hash: r.try_get("hash")?,
    })
}

fn department_row(r: &$row) -> Result<DepartmentRow> {
    Ok(DepartmentRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        division: r.try_get("division")?,
        created_at: r.try_get("created_at")?,
    })
}

fn user_row(r: &$row) -> Result<UserRow> {
    Ok(UserRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        department: r.try_get("department")?,
        role: r.try_get("role")?,
        jurisdiction: r.try_get("jurisdiction")?,
        created_at: r.try_get("created_at")?,
    })
}

fn token_row(r: &$row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        secret_hash: r.try_get("secret_hash")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn grant_row(r: &$row) -> Result<GrantRow> {
    Ok(GrantRow {
        id: r.try_get("id")?,
        department: r.try_get("department")?,
        resource: r.try_get("resource")?,
        fields: r.try_get("fields")?,
        purpose: r.try_get("purpose")?,
        legal_basis: r.try_get("legal_basis")?,
        scope: r.try_get("scope")?,
        valid_from: r.try_get("valid_from")?,
        valid_to: r.try_get("valid_to")?,
        daily_quota: r.try_get("daily_quota")?,
        status: r.try_get("status")?,
        decided_by: r.try_get("decided_by")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A record's columns as read back: `seen_batch` is the last batch that delivered the record,
/// its sighting included.
fn record_select() -> String {
    format!("source_id, record_key, version, status, batch_id, {} AS seen_batch, location, content_hash, raw, \
             (SELECT columns FROM record_layouts WHERE id = records.raw_layout) AS raw_columns, \
             cleaned, issues, ingested_at, withdrawn_at", crate::LAST_SEEN)
}

impl $store {
    /// The store's write turn (on a backend that has one) for a write outside a transaction:
    /// on SQLite a statement on the sqlx pool would otherwise wait in SQLite's busy handler,
    /// which polls every 100 ms and can miss every gap between the writer thread's chunks for
    /// as long as an ingest runs, and then fail.
    ///
    /// Every write but an audit append holds it (or a transaction that does) to its end, when
    /// it moves on the store's own generation count, which would otherwise move only once the
    /// commit's announcement is heard (PostgreSQL) or the file is next checked (SQLite).
    async fn hold_write_turn(&self) -> crate::Writing {
        let turn = match self.write_turn() {
            Some(turn) => Some(turn.lock_owned().await),
            None => None,
        };
        crate::Writing {
            _turn: turn,
            moves: self.own_generation(),
        }
    }

    /// Moves a held quarantine entry to `status` (released or dismissed), stamped now; an
    /// entry that is not held is not found.
    async fn close_quarantined(&self, id: i64, status: QuarantineStatus) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        let done = sqlx::query($fix("UPDATE quarantine SET status = ?, resolved_at = ? WHERE id = ? AND status = 'held'"))
            .bind(status.as_str())
            .bind(now_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "held quarantine entry", id: id.to_string() });
        }
        Ok(())
    }

    /// A write transaction, begun with the backend's `$begin_sql` if it has one, after taking
    /// the store's write turn if it has one.
    async fn begin_write(&self) -> Result<WriteTx> {
        let turn = self.hold_write_turn().await;
        let tx = match $begin_sql {
            Some(sql) => self.pool.begin_with(sql).await?,
            None => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }
}

#[async_trait]
impl Store for $store {
    fn backend(&self) -> &'static str {
        $name
    }

    async fn close(&self) -> Result<()> {
        self.backend_close().await
    }

    async fn put_source(&self, s: &SourceRow) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        sqlx::query($fix("INSERT INTO sources (id, department, name, subject, snapshot, update_frequency, mapping, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET department = excluded.department, name = excluded.name,
               subject = excluded.subject, snapshot = excluded.snapshot,
               update_frequency = excluded.update_frequency, mapping = excluded.mapping,
               updated_at = excluded.updated_at"),
        )
        .bind(&s.id)
        .bind(&s.department)
        .bind(&s.name)
        .bind(&s.subject)
        .bind(s.snapshot)
        .bind(&s.update_frequency)
        .bind(&s.mapping)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn source(&self, id: &str) -> Result<Option<SourceRow>> {
        let row = sqlx::query($fix("SELECT * FROM sources WHERE id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| source_row(&r)).transpose()
    }

    async fn sources(&self) -> Result<Vec<SourceRow>> {
        let rows = sqlx::query($fix("SELECT * FROM sources ORDER BY id")).fetch_all(&self.pool).await?;
        rows.iter().map(source_row).collect()
    }

    async fn begin_batch(&self, source_id: &str, file_name: &str) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        sqlx::query($fix("UPDATE batches SET status = 'abandoned', finished_at = ? WHERE source_id = ? AND status = 'running'"))
            .bind(now_millis())
            .bind(source_id)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar($fix("INSERT INTO batches (source_id, file_name, status, started_at) VALUES (?, ?, 'running', ?) RETURNING id"),
        )
        .bind(source_id)
        .bind(file_name)
        .bind(now_millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn store_chunk(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        quarantine: Vec<IncomingQuarantine>,
    ) -> Result<ChunkOutcome> {
        self.backend_store_chunk(batch_id, source_id, records, quarantine, None)
            .await
    }

    async fn store_recleaned(
        &self,
        batch_id: i64,
        source_id: &str,
        records: Vec<IncomingRecord>,
        from_versions: Vec<i64>,
    ) -> Result<ChunkOutcome> {
        if from_versions.len() != records.len() {
            return Err(StoreError::Corrupt(format!(
                "{} re-cleaned records with {} versions read",
                records.len(),
                from_versions.len()
            )));
        }
        self.backend_store_chunk(batch_id, source_id, records, Vec::new(), Some(from_versions))
            .await
    }

    async fn finish_batch(&self, batch_id: i64, withdraw_missing: bool) -> Result<BatchRow> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        let source_id: String = sqlx::query_scalar($fix("SELECT source_id FROM batches WHERE id = ?"))
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "batch", id: batch_id.to_string() })?;
        if let Some(lock) = $lock_sql {
            sqlx::query($fix(lock)).bind(&source_id).execute(&mut *tx).await?;
        }
        let withdrawn = if withdraw_missing {
            // A record this batch found unchanged has a sighting of it (or of a later batch),
            // not a newer `seen_batch`: the index walk still visits it, the sighting spares it.
            sqlx::query($fix("UPDATE records SET status = 'withdrawn', withdrawn_at = ?
                 WHERE source_id = ? AND status = 'current' AND seen_batch < ?
                 AND NOT EXISTS (SELECT 1 FROM record_sightings s
                                 WHERE s.record_id = records.id AND s.seen_batch >= ?)"),
            )
            .bind(now)
            .bind(&source_id)
            .bind(batch_id)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64
        } else {
            0
        };
        sqlx::query($fix("UPDATE batches SET status = 'complete', finished_at = ?, withdrawn = ? WHERE id = ?"))
            .bind(now)
            .bind(withdrawn)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query($fix("SELECT * FROM batches WHERE id = ?")).bind(batch_id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        batch_row(&row)
    }

    async fn fail_batch(&self, batch_id: i64, message: &str) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        sqlx::query($fix("UPDATE batches SET status = 'failed', finished_at = ?, message = ? WHERE id = ?"))
            .bind(now_millis())
            .bind(message)
            .bind(batch_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn batches(&self, source_id: Option<&str>) -> Result<Vec<BatchRow>> {
        let rows = sqlx::query($fix("SELECT * FROM batches WHERE source_id = COALESCE(?, source_id) ORDER BY id"))
            .bind(source_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(batch_row).collect()
    }

    async fn record_history(&self, source_id: &str, key: &str) -> Result<Vec<RecordVersion>> {
        let rows = sqlx::query($fix(&format!(
            "SELECT {} FROM records WHERE source_id = ? AND record_key = ? ORDER BY version", record_select()
        )))
        .bind(source_id)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_row).collect()
    }

    async fn current_records(&self, source_id: &str, after_key: Option<&str>, limit: i64) -> Result<Vec<RecordVersion>> {
        let rows = sqlx::query($fix(&format!(
            "SELECT {} FROM records WHERE source_id = ? AND status = 'current' AND record_key > ?
             ORDER BY record_key LIMIT ?", record_select()
        )))
        .bind(source_id)
        .bind(after_key.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_row).collect()
    }

    async fn all_current_cleaned(&self, after_id: i64, limit: i64) -> Result<Vec<CleanedRecord>> {
        self.backend_all_current_cleaned(after_id, limit).await
    }

    async fn last_record_id(&self) -> Result<i64> {
        let last: i64 = sqlx::query_scalar($fix("SELECT COALESCE(MAX(id), 0) FROM records"))
            .fetch_one(&self.pool)
            .await?;
        Ok(last)
    }

    async fn record_counts(&self, source_id: &str) -> Result<(i64, i64, i64)> {
        let row = sqlx::query($fix("SELECT COALESCE(SUM(CASE WHEN status = 'current' THEN 1 ELSE 0 END), 0) AS c,
                    COALESCE(SUM(CASE WHEN status = 'superseded' THEN 1 ELSE 0 END), 0) AS s,
                    COALESCE(SUM(CASE WHEN status = 'withdrawn' THEN 1 ELSE 0 END), 0) AS w
             FROM records WHERE source_id = ?"),
        )
        .bind(source_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("c")?, row.try_get("s")?, row.try_get("w")?))
    }

    async fn quarantine_list(&self, source_id: Option<&str>, status: Option<QuarantineStatus>, limit: i64) -> Result<Vec<QuarantineEntry>> {
        let rows = sqlx::query($fix("SELECT * FROM quarantine WHERE source_id = COALESCE(?, source_id) AND status = COALESCE(?, status) ORDER BY id LIMIT ?"),
        )
        .bind(source_id)
        .bind(status.map(QuarantineStatus::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(quarantine_row).collect()
    }

    async fn quarantine_entry(&self, id: i64) -> Result<Option<QuarantineEntry>> {
        let row = sqlx::query($fix("SELECT * FROM quarantine WHERE id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| quarantine_row(&r)).transpose()
    }

    async fn release_quarantined(&self, id: i64) -> Result<()> {
        self.close_quarantined(id, QuarantineStatus::Released).await
    }

    async fn dismiss_quarantined(&self, id: i64) -> Result<()> {
        self.close_quarantined(id, QuarantineStatus::Dismissed).await
    }

    async fn mark_redelivered(&self, id: i64) -> Result<()> {
        self.close_quarantined(id, QuarantineStatus::Redelivered).await
    }

    async fn held_with_deliveries(&self, source_id: &str, delivered_by: Option<i64>) -> Result<Vec<(QuarantineEntry, Option<i64>)>> {
        // Both subqueries find a key's versions by the (source_id, record_key, version) unique
        // index; the held entries by the partial index on held ones.
        // A version's last delivery is its sighting where a later batch found it unchanged.
        let rows = sqlx::query($fix(&format!(
            "SELECT q.*, (SELECT MAX({seen}) FROM records
                          WHERE records.source_id = q.source_id AND records.record_key = q.record_key) AS delivered
             FROM quarantine q
             WHERE q.source_id = ? AND q.status = 'held'
               AND (CAST(? AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM records
                    WHERE records.source_id = q.source_id AND records.record_key = q.record_key
                      AND {seen} = CAST(? AS BIGINT)))
             ORDER BY q.id",
            seen = crate::LAST_SEEN
        )))
        .bind(source_id)
        .bind(delivered_by)
        .bind(delivered_by)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((quarantine_row(r)?, r.try_get::<Option<i64>, _>("delivered")?)))
            .collect()
    }

    async fn replace_resolution_with(
        &self,
        kind: &str,
        started_at: i64,
        summary: &str,
        links: &dyn $crate::Rows<LinkRef<'_>>,
        golden: $crate::GoldenRecords<'_>,
    ) -> Result<i64> {
        self.backend_replace_resolution(resolution_kind(kind)?, started_at, summary, links, golden)
            .await
    }

    async fn latest_resolution(&self, kind: &str) -> Result<Option<ResolutionRun>> {
        resolution_kind(kind)?;
        let row = sqlx::query($fix("SELECT * FROM resolution_runs WHERE kind = ? ORDER BY id DESC LIMIT 1"))
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<ResolutionRun> {
            Ok(ResolutionRun {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                mentions: r.try_get("mentions")?,
                entities: r.try_get("entities")?,
                summary: r.try_get("summary")?,
            })
        })
        .transpose()
    }

    async fn entity_links(&self, kind: &str, after: Option<(&str, &str, &str)>, limit: i64) -> Result<Vec<EntityLink>> {
        let k = resolution_kind(kind)?;
        let (s, key, r) = after.unwrap_or(("", "", ""));
        let sql = format!(
            "SELECT source_id, record_key, role, entity_key FROM links_{k}
             WHERE source_id > ? OR (source_id = ? AND (record_key > ? OR (record_key = ? AND role > ?)))
             ORDER BY source_id, record_key, role LIMIT ?"
        );
        let rows = sqlx::query($fix(&sql))
            .bind(s)
            .bind(s)
            .bind(key)
            .bind(key)
            .bind(r)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_row).collect()
    }

    async fn links_of_entity(&self, kind: &str, entity_key: &str) -> Result<Vec<EntityLink>> {
        let k = resolution_kind(kind)?;
        let sql = format!(
            "SELECT source_id, record_key, role, entity_key FROM links_{k} WHERE entity_key = ? ORDER BY source_id, record_key, role"
        );
        let rows = sqlx::query($fix(&sql)).bind(entity_key).fetch_all(&self.pool).await?;
        rows.iter().map(link_row).collect()
    }

    async fn entity_of(&self, kind: &str, source_id: &str, record_key: &str, role: &str) -> Result<Option<String>> {
        let k = resolution_kind(kind)?;
        let sql = format!("SELECT entity_key FROM links_{k} WHERE source_id = ? AND record_key = ? AND role = ?");
        Ok(sqlx::query_scalar($fix(&sql))
            .bind(source_id)
            .bind(record_key)
            .bind(role)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn golden_record(&self, kind: &str, entity_key: &str) -> Result<Option<GoldenRecord>> {
        self.backend_golden_record(resolution_kind(kind)?, entity_key).await
    }

    async fn golden_with_relations_from(
        &self,
        kind: &str,
        entity_key: &str,
    ) -> Result<(Option<GoldenRecord>, Vec<Relation>)> {
        self.backend_golden_with_relations_from(resolution_kind(kind)?, entity_key).await
    }

    async fn data_generation(&self) -> Result<Option<u64>> {
        self.backend_data_generation().await
    }

    async fn append_audit(&self, entries: &[AuditRow], checkpoint: Option<&CheckpointRow>) -> Result<()> {
        self.backend_append_audit(entries, checkpoint).await
    }

    async fn replace_relations_from(&self, relations: &dyn $crate::Rows<RelationRef<'_>>) -> Result<()> {
        self.backend_replace_relations(relations).await
    }

    async fn apply_library_changes(
        &self,
        changes: &[LibraryChanges],
        relations: &[Relation],
    ) -> Result<()> {
        self.backend_apply_library_changes(changes, relations).await
    }

    async fn add_resolution_run(
        &self,
        kind: &str,
        started_at: i64,
        summary: &str,
        mentions: i64,
        entities: i64,
    ) -> Result<i64> {
        let _turn = self.hold_write_turn().await;
        resolution_kind(kind)?;
        let id: i64 = sqlx::query_scalar($fix("INSERT INTO resolution_runs (kind, started_at, finished_at, mentions, entities, summary) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"))
            .bind(kind)
            .bind(started_at)
            .bind(now_millis())
            .bind(mentions)
            .bind(entities)
            .bind(summary)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn last_audit(&self) -> Result<Option<AuditRow>> {
        let row = sqlx::query("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(audit_row).transpose()
    }

    async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query($fix("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_of_subject(&self, subject: &str, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(AUDIT_OF_SUBJECT)
            .bind(subject)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_reads_per_grant(
        &self,
        after: i64,
        from_hour: i64,
        until_hour: i64,
    ) -> Result<std::collections::HashMap<String, u64>> {
        let kept = sqlx::query($fix(
            "SELECT grant_id, CAST(SUM(reads) AS BIGINT) AS reads FROM audit_grant_reads \
             WHERE hour >= ? AND hour < ? GROUP BY grant_id",
        ))
        .bind(from_hour)
        .bind(until_hour)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = std::collections::HashMap::new();
        for r in &kept {
            let n: i64 = r.try_get("reads")?;
            counts.insert(r.try_get("grant_id")?, u64::try_from(n).unwrap_or(0));
        }
        // Entries from before the counts were kept (none, once the range begins after that).
        let (from_at, until_at) = (
            from_hour.saturating_mul(crate::grant_reads::HOUR_MS),
            until_hour.saturating_mul(crate::grant_reads::HOUR_MS),
        );
        let counted = sqlx::query(AUDIT_READS_PER_GRANT)
            .bind(after)
            .bind(from_at)
            .bind(until_at)
            .fetch_all(&self.pool)
            .await;
        let older = match counted {
            Ok(rows) => rows
                .iter()
                .map(|r| -> Result<(String, u64)> {
                    let n: i64 = r.try_get("reads")?;
                    Ok((r.try_get("grant_id")?, u64::try_from(n).unwrap_or(0)))
                })
                .collect::<Result<Vec<_>>>()?,
            // The database refused a detail as JSON (PostgreSQL: a data exception, SQLSTATE
            // class 22, such as `jsonb` refusing an escaped NUL): the details are read and
            // counted here. SQLite's statement reads a detail it cannot parse as listing
            // nothing, and any other failure is reported.
            Err(sqlx::Error::Database(e)) if e.code().is_some_and(|c| c.starts_with("22")) => {
                let details: Vec<String> = sqlx::query_scalar(AUDIT_READ_DETAILS)
                    .bind(after)
                    .bind(from_at)
                    .bind(until_at)
                    .fetch_all(&self.pool)
                    .await?;
                crate::grant_reads::count_details(details.iter().map(String::as_str))
                    .into_iter()
                    .collect()
            }
            Err(e) => return Err(e.into()),
        };
        for (g, n) in older {
            *counts.entry(g).or_insert(0) += n;
        }
        Ok(counts)
    }

    async fn audit_checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY from_seq, to_seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| -> Result<CheckpointRow> {
                Ok(CheckpointRow {
                    from_seq: r.try_get("from_seq")?,
                    to_seq: r.try_get("to_seq")?,
                    root: r.try_get("root")?,
                    key: r.try_get("key")?,
                    signature: r.try_get("signature")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    async fn put_department(&self, d: &DepartmentRow) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        sqlx::query($fix("INSERT INTO departments (id, name, division, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, division = excluded.division"))
            .bind(&d.id)
            .bind(&d.name)
            .bind(&d.division)
            .bind(d.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn departments(&self) -> Result<Vec<DepartmentRow>> {
        let rows = sqlx::query("SELECT * FROM departments ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(department_row).collect()
    }

    async fn put_user(&self, u: &UserRow) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        sqlx::query($fix("INSERT INTO users (id, name, department, role, jurisdiction, created_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, department = excluded.department,
                role = excluded.role, jurisdiction = excluded.jurisdiction"))
            .bind(&u.id)
            .bind(&u.name)
            .bind(&u.department)
            .bind(&u.role)
            .bind(&u.jurisdiction)
            .bind(u.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query($fix("SELECT * FROM users WHERE id = ?")).bind(id).fetch_optional(&self.read).await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(user_row).collect()
    }

    async fn set_password(&self, user_id: &str, hash: &str) -> Result<bool> {
        let _turn = self.hold_write_turn().await;
        let done = sqlx::query($fix("UPDATE users SET password_hash = ? WHERE id = ?"))
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar($fix("SELECT password_hash FROM users WHERE id = ?"))
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.flatten())
    }

    async fn insert_token(&self, t: &TokenRow) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        sqlx::query($fix("INSERT INTO tokens (id, user_id, secret_hash, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)"))
            .bind(&t.id)
            .bind(&t.user_id)
            .bind(&t.secret_hash)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.revoked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let row = sqlx::query($fix("SELECT * FROM tokens WHERE id = ?")).bind(id).fetch_optional(&self.read).await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn tokens_of(&self, user_id: &str) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query($fix("SELECT * FROM tokens WHERE user_id = ? ORDER BY created_at DESC, id"))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, id: &str, at: i64) -> Result<bool> {
        let _turn = self.hold_write_turn().await;
        let done = sqlx::query($fix("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"))
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_grant(&self, g: &GrantRow) -> Result<()> {
        let _turn = self.hold_write_turn().await;
        sqlx::query($fix("INSERT INTO grants (id, department, resource, fields, purpose, legal_basis, scope,
                valid_from, valid_to, daily_quota, status, decided_by, reason, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, decided_by = excluded.decided_by,
                reason = excluded.reason, updated_at = excluded.updated_at"))
            .bind(&g.id)
            .bind(&g.department)
            .bind(&g.resource)
            .bind(&g.fields)
            .bind(&g.purpose)
            .bind(&g.legal_basis)
            .bind(&g.scope)
            .bind(g.valid_from)
            .bind(g.valid_to)
            .bind(g.daily_quota)
            .bind(&g.status)
            .bind(&g.decided_by)
            .bind(&g.reason)
            .bind(g.created_at)
            .bind(g.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn grant(&self, id: &str) -> Result<Option<GrantRow>> {
        let row = sqlx::query($fix("SELECT * FROM grants WHERE id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(grant_row).transpose()
    }

    async fn grants(&self, department: Option<&str>) -> Result<Vec<GrantRow>> {
        let rows = sqlx::query($fix("SELECT * FROM grants WHERE department = COALESCE(?, department) ORDER BY created_at, id"))
            .bind(department)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(grant_row).collect()
    }

    async fn library_counts(&self, kind: &str) -> Result<(i64, i64)> {
        let k = resolution_kind(kind)?;
        let links: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM links_{k}")))
            .fetch_one(&self.pool)
            .await?;
        let golden: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM golden_{k}")))
            .fetch_one(&self.pool)
            .await?;
        Ok((links, golden))
    }

    async fn relations_page(&self, after: Option<&Relation>, limit: i64) -> Result<Vec<Relation>> {
        let empty = Relation {
            from_key: String::new(),
            relation: String::new(),
            to_key: String::new(),
            source_id: String::new(),
            record_key: String::new(),
        };
        let a = after.unwrap_or(&empty);
        // Spelled out rather than as a row comparison, which SQLite and PostgreSQL order alike
        // but plan differently.
        let rows = sqlx::query($fix("SELECT * FROM relations WHERE
                from_key > ? OR (from_key = ? AND (relation > ? OR (relation = ? AND (to_key > ?
                OR (to_key = ? AND (source_id > ? OR (source_id = ? AND record_key > ?)))))))
                ORDER BY from_key, relation, to_key, source_id, record_key LIMIT ?"))
            .bind(&a.from_key)
            .bind(&a.from_key)
            .bind(&a.relation)
            .bind(&a.relation)
            .bind(&a.to_key)
            .bind(&a.to_key)
            .bind(&a.source_id)
            .bind(&a.source_id)
            .bind(&a.record_key)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        relations(&rows)
    }

    async fn search_golden(
        &self,
        kind: &str,
        criteria: &[(&str, &str)],
        limit: i64,
    ) -> Result<Vec<GoldenRecord>> {
        let k = resolution_kind(kind)?;
        if criteria.is_empty() {
            return Ok(Vec::new());
        }
        let columns = crate::search_columns(k);
        let mut sql = format!("SELECT entity_key, record FROM golden_{k} WHERE ");
        for (i, (path, _)) in criteria.iter().enumerate() {
            if !crate::valid_json_path(path) {
                return Err(StoreError::BadPath(path.to_string()));
            }
            if i > 0 {
                sql.push_str(" AND ");
            }
            // A search path has a column holding the same text, indexed; any other path is
            // read out of the JSON row by row.
            match columns.iter().find(|c| c.path == *path) {
                Some(c) => sql.push_str(&c.column),
                None => sql.push_str(&$json_text(path)),
            }
            sql.push_str(" = ?");
        }
        sql.push_str(" ORDER BY entity_key LIMIT ?");
        let fixed = $fix(&sql);
        let mut q = sqlx::query(fixed);
        for (_, value) in criteria {
            q = q.bind(*value);
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| -> Result<GoldenRecord> {
                Ok(GoldenRecord {
                    entity_key: r.try_get("entity_key")?,
                    record: r.try_get("record")?,
                })
            })
            .collect()
    }

    async fn golden_page(&self, kind: &str, after: Option<&str>, limit: i64) -> Result<Vec<GoldenRecord>> {
        let k = resolution_kind(kind)?;
        let rows = sqlx::query($fix(&format!(
            "SELECT entity_key, record FROM golden_{k} WHERE entity_key > ? ORDER BY entity_key LIMIT ?"
        )))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<GoldenRecord> {
                Ok(GoldenRecord {
                    entity_key: r.try_get("entity_key")?,
                    record: r.try_get("record")?,
                })
            })
            .collect()
    }

    async fn relations_of(&self, entity_key: &str) -> Result<Vec<Relation>> {
        let rows = sqlx::query($fix("SELECT * FROM relations WHERE from_key = ? UNION SELECT * FROM relations WHERE to_key = ?
                ORDER BY relation, from_key, to_key, source_id, record_key"))
            .bind(entity_key)
            .bind(entity_key)
            .fetch_all(&self.read)
            .await?;
        relations(&rows)
    }

    async fn relations_from(&self, entity_key: &str) -> Result<Vec<Relation>> {
        self.backend_relations_from(entity_key).await
    }
}

/// Relations as rows of the `relations` table read them.
fn relations(rows: &[$row]) -> Result<Vec<Relation>> {
    rows.iter()
        .map(|r| -> Result<Relation> {
            Ok(Relation {
                from_key: r.try_get("from_key")?,
                relation: r.try_get("relation")?,
                to_key: r.try_get("to_key")?,
                source_id: r.try_get("source_id")?,
                record_key: r.try_get("record_key")?,
            })
        })
        .collect()
}

fn source_row(r: &$row) -> Result<SourceRow> {
    Ok(SourceRow {
        id: r.try_get("id")?,
        department: r.try_get("department")?,
        name: r.try_get("name")?,
        subject: r.try_get("subject")?,
        snapshot: r.try_get("snapshot")?,
        update_frequency: r.try_get("update_frequency")?,
        mapping: r.try_get("mapping")?,
        updated_at: r.try_get("updated_at")?,
    })
}

    };
}

pub(crate) use sql_backend;
