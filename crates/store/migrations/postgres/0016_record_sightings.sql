-- The latest batch that delivered a record unchanged, kept beside the record instead of in it.
-- A department's daily snapshot repeats most of its records; moving `records.seen_batch` for
-- each of them wrote a new version of every row (raw and cleaned text included) and an entry
-- in each of its indexes, so re-ingesting an unchanged export cost as much as loading it the
-- first time and left the table half dead rows. A sighting is a row of two integers. A
-- record's batch of last delivery is the larger of its own `seen_batch` (the batch that stored
-- it) and its sighting's.
--
-- No foreign key: records are never deleted, and the only writer inserts ids it has just read
-- from `records` in the same transaction, so the check would cost a lookup per row for nothing.
-- Half of each page is left free so that the next day's update of a sighting can stay on its
-- page without touching the index (a heap-only update).
CREATE TABLE record_sightings (
    record_id  BIGINT PRIMARY KEY,
    seen_batch BIGINT NOT NULL
) WITH (fillfactor = 50);
