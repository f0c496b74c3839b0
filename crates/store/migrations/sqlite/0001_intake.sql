-- Intake: sources, batches, versioned records and quarantine (SQLite).
CREATE TABLE sources (
    id               TEXT PRIMARY KEY,
    department       TEXT NOT NULL,
    name             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    snapshot         INTEGER NOT NULL,
    update_frequency TEXT,
    mapping          TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE batches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   TEXT NOT NULL REFERENCES sources(id),
    file_name   TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    records     BIGINT NOT NULL DEFAULT 0,
    inserted    BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    unchanged   BIGINT NOT NULL DEFAULT 0,
    quarantined BIGINT NOT NULL DEFAULT 0,
    withdrawn   BIGINT NOT NULL DEFAULT 0,
    message     TEXT
);

CREATE TABLE records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id    TEXT NOT NULL REFERENCES sources(id),
    record_key   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    batch_id     BIGINT NOT NULL,
    seen_batch   BIGINT NOT NULL,
    location     TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    raw          TEXT NOT NULL,
    cleaned      TEXT NOT NULL,
    issues       TEXT NOT NULL,
    ingested_at  BIGINT NOT NULL,
    withdrawn_at BIGINT,
    UNIQUE (source_id, record_key, version)
);
-- At most one non-superseded version (current or withdrawn) per key.
CREATE UNIQUE INDEX records_latest ON records (source_id, record_key) WHERE status <> 'superseded';

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   TEXT NOT NULL REFERENCES sources(id),
    batch_id    BIGINT NOT NULL,
    location    TEXT NOT NULL,
    record_key  TEXT,
    raw         TEXT NOT NULL,
    raw_hash    BLOB NOT NULL,
    reasons     TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT
);
-- Re-running a file after a crash must not hold the same raw record twice.
CREATE UNIQUE INDEX quarantine_held ON quarantine (source_id, raw_hash) WHERE status = 'held';
