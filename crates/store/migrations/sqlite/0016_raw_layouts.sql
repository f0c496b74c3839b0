-- A record's raw form kept as the JSON array of its values, its column names once in
-- `record_layouts` (see src/raw_layout.rs). In a department's export every record repeated the
-- same column names in its raw JSON object: half of the household register's 387 bytes a
-- record, written twice (the write-ahead log, then the checkpoint). `raw_layout` names the
-- layout a record's values stand under; NULL for a record whose `raw` is the object itself, as
-- every record stored before this migration is. Layouts are looked up by their text, so the
-- index; no foreign key, since the store alone writes both and a layout is never deleted.
CREATE TABLE record_layouts (
    id      INTEGER PRIMARY KEY,
    columns TEXT NOT NULL
);
CREATE INDEX record_layouts_by_columns ON record_layouts (columns);
ALTER TABLE records ADD COLUMN raw_layout INTEGER;
