-- A snapshot's batch withdraws the current records of its source that it did not see
-- (`seen_batch` older than the batch). Without an index that was a walk over every record of the
-- source, each row read from the table: a tenth of the time of ingesting the household register
-- into a fresh store, where nothing is withdrawn. With this index the walk visits only the
-- records it withdraws. A batch appends its records at the end of its source's range here
-- (`seen_batch` is the batch's id, which only grows), so keeping the index costs little on insert.
CREATE INDEX records_seen ON records (source_id, seen_batch) WHERE status = 'current';
