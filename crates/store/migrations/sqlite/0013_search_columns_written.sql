-- The search columns of the golden records (0011) become plain columns that the store fills as
-- it writes each record, with the same `json_extract` of the record that generated them.
--
-- Why: SQLite counts a generated column as changed whenever a column it is computed from is
-- assigned, so every update of a golden record rewrote the record's entry in each search index,
-- even when the searched text stayed the same (it nearly always does: a new record joining a
-- person changes the provenance, not the name). Each rewritten entry dirtied an index page that
-- went to the write-ahead log and again to the file at the checkpoint: for a person, four pages
-- on top of the record's own one (measured in SQLite alone, 5.25 pages a one-row update against
-- 1.25 with the search columns left out). The store now assigns a search column only when its
-- value changed (`sqlite_direct::apply_library_changes`). The values already stored are kept.
--
-- Whatever writes a golden record from outside the store must now fill its search columns too,
-- or searches will not find it by its new values.
--
-- The first start of a binary with this migration copies every golden record once, in one
-- transaction, and builds the eight search indexes again (timed in the README, "Session 18").

CREATE TABLE golden_person_written (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_name TEXT,
    search_phone TEXT,
    search_citizen_id TEXT,
    search_residence TEXT
);
INSERT INTO golden_person_written
    SELECT entity_key, record, run_id, search_name, search_phone, search_citizen_id, search_residence
    FROM golden_person;
DROP TABLE golden_person;
ALTER TABLE golden_person_written RENAME TO golden_person;
CREATE INDEX golden_person_by_name ON golden_person (search_name);
CREATE INDEX golden_person_by_phone ON golden_person (search_phone);
CREATE INDEX golden_person_by_citizen_id ON golden_person (search_citizen_id);
CREATE INDEX golden_person_by_residence ON golden_person (search_residence);

CREATE TABLE golden_entity_written (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_name TEXT,
    search_credit_code TEXT
);
INSERT INTO golden_entity_written
    SELECT entity_key, record, run_id, search_name, search_credit_code FROM golden_entity;
DROP TABLE golden_entity;
ALTER TABLE golden_entity_written RENAME TO golden_entity;
CREATE INDEX golden_entity_by_name ON golden_entity (search_name);
CREATE INDEX golden_entity_by_credit_code ON golden_entity (search_credit_code);

CREATE TABLE golden_room_written (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_address_key TEXT
);
INSERT INTO golden_room_written
    SELECT entity_key, record, run_id, search_address_key FROM golden_room;
DROP TABLE golden_room;
ALTER TABLE golden_room_written RENAME TO golden_room;
CREATE INDEX golden_room_by_address_key ON golden_room (search_address_key);

CREATE TABLE golden_building_written (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_address_key TEXT
);
INSERT INTO golden_building_written
    SELECT entity_key, record, run_id, search_address_key FROM golden_building;
DROP TABLE golden_building;
ALTER TABLE golden_building_written RENAME TO golden_building;
CREATE INDEX golden_building_by_address_key ON golden_building (search_address_key);
