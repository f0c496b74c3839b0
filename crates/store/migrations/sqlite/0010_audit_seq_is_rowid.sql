-- The audit log keyed by its sequence number itself, and found by subject through an index kept
-- in bulk.
--
-- Declared `BIGINT PRIMARY KEY`, `seq` was a separate index beside SQLite's own rowid, so every
-- append wrote two b-trees besides the one by subject; as `INTEGER PRIMARY KEY` it is the rowid,
-- and an append extends the table alone.
--
-- The index by subject (0008) is replaced. Subjects arrive in no order, so each appended entry
-- dirtied a page of that index of its own, and in WAL mode a commit writes every page it
-- dirtied in full: four of every five bytes the audit log wrote were that index's
-- (`tongban bench api`: 150 MB/s of writes at 21 k reads/s; 45 MB/s without it). Now the store
-- adds the entries after `audit_subjects_upto.upto` to `audit_subjects` in rounds of about
-- 16 k entries, sorted, written 2,048 to a transaction, so that each page is written once for
-- many entries; and the index is ordered by era (`seq >> 18`, about 262 k entries) first, so
-- that a round writes among the newest era's pages only, however long the log grows. A lookup
-- by subject probes each era present and scans the entries after `upto`.
--
-- Appends come in sequence order, after everything a round has read. A sequence number or
-- subject changed in place (tampering, which `tongban audit verify` reports) is indexed at once
-- by the trigger below, so that a subject's list still shows every entry that names it; the
-- store lowers `upto` when it appends at or below it (a log cut short and written again). A
-- trigger on every insert as well cost a tenth of the governed reads' throughput.
CREATE TABLE audit_log_by_seq (
    seq     INTEGER PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
INSERT INTO audit_log_by_seq (seq, at, actor, action, subject, detail, prev, hash)
    SELECT seq, at, actor, action, subject, detail, prev, hash FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_by_seq RENAME TO audit_log;

CREATE TABLE audit_subjects (
    era     INTEGER NOT NULL,
    subject TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (era, subject, seq)
) WITHOUT ROWID;
CREATE TABLE audit_subjects_upto (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    upto INTEGER NOT NULL
);
INSERT INTO audit_subjects (era, subject, seq)
    SELECT seq >> 18, subject, seq FROM audit_log ORDER BY 1, 2, 3;
INSERT INTO audit_subjects_upto (id, upto) SELECT 0, COALESCE(MAX(seq), 0) FROM audit_log;

CREATE TRIGGER audit_subjects_changed AFTER UPDATE OF seq, subject ON audit_log
BEGIN
    INSERT OR IGNORE INTO audit_subjects (era, subject, seq)
        VALUES (NEW.seq >> 18, NEW.subject, NEW.seq);
END;
