-- The last batch in which a held entry's row was delivered again. A row quarantined again in a
-- later batch, with the same raw text at the same place, is not inserted a second time (the
-- unique index on held entries); this column says that the department sent it again, still
-- unreadable. Without it, a record whose bad row came again looked as if the department had
-- delivered it again, readable, because the held row keeps its good version seen (so that a
-- snapshot does not withdraw it), and the held entry could be closed as delivered. NULL means
-- the entry's own batch.
ALTER TABLE quarantine ADD COLUMN last_held_batch BIGINT;
