-- The audit log found by subject through an index kept in bulk, as on SQLite (its migration
-- 0010 and the audit file's version 1).
--
-- Subjects arrive in no order, so the index of 0008 took every appended entry to a leaf page of
-- its own: `tongban bench api` served 16.2–16.6 k governed reads a second with it and 18.7–19.4 k
-- with it dropped, since each entry's index insertion cost PostgreSQL more than the rest of its
-- append. Now the store adds the entries after `audit_subjects_upto.upto` to `audit_subjects`
-- once an era of 16,384 sequence numbers (`seq >> 14`) is complete, in one round, sorted, so
-- that an era's entries go to a key range of their own in order. A lookup by subject probes each
-- era present and scans the entries after `upto`. Subjects are ordered bytewise (`COLLATE "C"`),
-- which sorts a round's entries faster than the cluster's locale and finds them as well.
--
-- An append at or below `upto` (a log cut short and written again) lowers it, and a sequence
-- number or subject changed in place (tampering, which `tongban audit verify` reports) is indexed
-- at once by the trigger below, so that a subject's list still shows every entry that names it.
-- Servers of an earlier version still appending while this runs wait for it, so that no entry
-- lands at or below `upto` without being indexed.
LOCK TABLE audit_log IN SHARE MODE;
CREATE TABLE audit_subjects (
    era     BIGINT NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (era, subject, seq)
);
CREATE TABLE audit_subjects_upto (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    upto BIGINT NOT NULL
);
INSERT INTO audit_subjects (era, subject, seq)
    SELECT seq >> 14, subject, seq FROM audit_log ORDER BY seq >> 14, subject COLLATE "C", seq;
INSERT INTO audit_subjects_upto (id, upto) SELECT 0, COALESCE(MAX(seq), 0) FROM audit_log;
DROP INDEX audit_log_by_subject;

CREATE FUNCTION audit_subjects_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_subjects (era, subject, seq)
        VALUES (NEW.seq >> 14, NEW.subject, NEW.seq)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER audit_subjects_changed AFTER UPDATE OF seq, subject ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_subjects_changed();
-- Statistics for the table of one row, which the planner otherwise takes for thousands, and for
-- the index's first lookups.
ANALYZE audit_subjects_upto;
ANALYZE audit_subjects;
