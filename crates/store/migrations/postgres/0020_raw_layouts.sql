-- A record's raw form kept as the JSON array of its values, its column names once in
-- `record_layouts` (see src/raw_layout.rs), as on SQLite (its migration 0016). `raw_layout`
-- names the layout a record's values stand under; NULL for a record whose `raw` is the object
-- itself, as every record stored before this migration is. Layouts are found by the md5 of
-- their text, since a long header could pass the size a b-tree entry may have.
CREATE TABLE record_layouts (
    id      BIGSERIAL PRIMARY KEY,
    columns TEXT NOT NULL
);
CREATE INDEX record_layouts_by_columns ON record_layouts (md5(columns));
ALTER TABLE records ADD COLUMN raw_layout BIGINT;
