-- Answered reads per hour and grant, kept as audit entries are appended (in the same statement),
-- so that a day's reads under a grant, which the governed API needs for the grant's daily quota
-- at its first read of the day, are a sum of a few rows: counted from the log, a day of 350 k
-- entries took 3 s, and every read waited for it. Derived from the log, never the other way.
CREATE TABLE audit_grant_reads (
    hour     BIGINT NOT NULL,
    grant_id TEXT NOT NULL,
    reads    BIGINT NOT NULL,
    PRIMARY KEY (hour, grant_id)
);

-- The counts cover the entries after this one; those before it (appended before this migration)
-- are counted from the log when asked for.
CREATE TABLE audit_grant_reads_from (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    seq BIGINT NOT NULL
);
INSERT INTO audit_grant_reads_from (id, seq)
    SELECT 0, COALESCE(MAX(seq), -9223372036854775808) FROM audit_log;
