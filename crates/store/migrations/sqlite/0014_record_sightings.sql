-- The latest batch that delivered a record unchanged, kept beside the record instead of in it.
-- A department's daily snapshot repeats most of its records; moving `records.seen_batch` for
-- each of them rewrote every page of the records table and of its `records_seen` index, so
-- re-ingesting an unchanged export of the household register wrote as many bytes as loading it
-- the first time (317 MB against 343 MB for 112 k records) and took as long. A sighting is a
-- row of two integers. A record's batch of last delivery is the larger of its own
-- `seen_batch` (the batch that stored it) and its sighting's.
--
-- No foreign key: records are never deleted, and the only writer inserts ids it has just read
-- from `records` in the same transaction, so the check would cost a lookup per row for nothing.
CREATE TABLE record_sightings (
    record_id  INTEGER PRIMARY KEY,
    seen_batch BIGINT NOT NULL
);
