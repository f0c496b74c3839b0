-- The audit log's own file, attached to every SQLite connection of the store as schema `audit`
-- (see `sqlite::AUDIT_SCHEMA`). Run whenever the store opens: everything is created only if
-- missing. The tables are those of migrations 0005 and 0010, which created them in the main
-- file; the store moves them here (see `sqlite::move_audit_log`).
--
-- Why a file of its own: in WAL mode a commit to a file makes every reader of that file empty
-- its page cache, and the audit log commits a batch every few hundred microseconds while
-- governed lookups read golden records; and a WAL frame is a whole page, so a batch of a dozen
-- entries writes one small page here (4 KiB) while the main file's pages are large (16 KiB)
-- for bulk ingest. It also lets the log be kept, copied and archived on its own.
CREATE TABLE IF NOT EXISTS audit.audit_log (
    seq     INTEGER PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit.audit_checkpoints (
    from_seq  BIGINT NOT NULL,
    to_seq    BIGINT NOT NULL,
    root      TEXT NOT NULL,
    key       TEXT NOT NULL,
    signature TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (from_seq, to_seq)
);

CREATE TABLE IF NOT EXISTS audit.audit_subjects (
    era     INTEGER NOT NULL,
    subject TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (era, subject, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit.audit_subjects_upto (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    upto INTEGER NOT NULL
);
INSERT OR IGNORE INTO audit.audit_subjects_upto (id, upto) VALUES (0, 0);

-- Answered reads per hour and grant, kept as entries are appended (in the same transaction), so
-- that a day's reads under a grant (for its daily quota) are a sum of a few rows. The counts
-- cover the entries after `audit_grant_reads_from.seq`, set when the file reached version 2
-- (see `AUDIT_UPGRADE_GRANT_READS` in `sqlite.rs`); those before are counted from the log.
CREATE TABLE IF NOT EXISTS audit.audit_grant_reads (
    hour     INTEGER NOT NULL,
    grant_id TEXT NOT NULL,
    reads    INTEGER NOT NULL,
    PRIMARY KEY (hour, grant_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit.audit_grant_reads_from (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    seq INTEGER NOT NULL
);

-- A trigger's body names tables of its own schema. Its era is `seq >> 14` (see
-- `AUDIT_UPGRADE_ERAS` in `sqlite.rs`, which replaces the trigger of files made before).
CREATE TRIGGER IF NOT EXISTS audit.audit_subjects_changed AFTER UPDATE OF seq, subject ON audit_log
BEGIN
    INSERT OR IGNORE INTO audit_subjects (era, subject, seq)
        VALUES (NEW.seq >> 14, NEW.subject, NEW.seq);
END;
