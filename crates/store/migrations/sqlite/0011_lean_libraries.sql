-- Leaner base libraries: each table one b-tree where it can be, and searches through plain
-- columns rather than expressions over the JSON.
--
-- Links and relations become WITHOUT ROWID tables ordered by their primary key. As rowid tables
-- each row was stored twice, once in the table and once in the primary key's index, and a
-- resolution run wrote both (1 M people: 7 M relations, 1.3 GB in two b-trees, 0.7 GB in one).
--
-- Each golden-record table gains a stored generated column per search path (`search_name` is
-- `json_extract(record, '$.fields.name.value')`, the very expression 0009 indexed), and the
-- search indexes are on those columns. Building an index over an expression parsed every
-- record's JSON once per index, four times for the people, after every run; the generated
-- columns parse it once as the row is written, and the indexes sort plain text. A search
-- compares the same value as before.

CREATE TABLE links_person_lean (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
) WITHOUT ROWID;
INSERT INTO links_person_lean (source_id, record_key, role, entity_key, run_id)
    SELECT source_id, record_key, role, entity_key, run_id FROM links_person;
DROP TABLE links_person;
ALTER TABLE links_person_lean RENAME TO links_person;
CREATE INDEX links_person_by_entity ON links_person (entity_key);

CREATE TABLE golden_person_lean (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_name TEXT GENERATED ALWAYS AS (json_extract(record, '$.fields.name.value')) STORED,
    search_phone TEXT GENERATED ALWAYS AS (json_extract(record, '$.fields.phone.value')) STORED,
    search_citizen_id TEXT GENERATED ALWAYS AS (json_extract(record, '$.fields.citizen_id.value')) STORED,
    search_residence TEXT GENERATED ALWAYS AS (json_extract(record, '$.fields.residence.value')) STORED
);
INSERT INTO golden_person_lean (entity_key, record, run_id)
    SELECT entity_key, record, run_id FROM golden_person;
DROP TABLE golden_person;
ALTER TABLE golden_person_lean RENAME TO golden_person;
CREATE INDEX golden_person_by_name ON golden_person (search_name);
CREATE INDEX golden_person_by_phone ON golden_person (search_phone);
CREATE INDEX golden_person_by_citizen_id ON golden_person (search_citizen_id);
CREATE INDEX golden_person_by_residence ON golden_person (search_residence);

CREATE TABLE links_entity_lean (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
) WITHOUT ROWID;
INSERT INTO links_entity_lean (source_id, record_key, role, entity_key, run_id)
    SELECT source_id, record_key, role, entity_key, run_id FROM links_entity;
DROP TABLE links_entity;
ALTER TABLE links_entity_lean RENAME TO links_entity;
CREATE INDEX links_entity_by_entity ON links_entity (entity_key);

CREATE TABLE golden_entity_lean (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_name TEXT GENERATED ALWAYS AS (json_extract(record, '$.fields.name.value')) STORED,
    search_credit_code TEXT GENERATED ALWAYS AS (json_extract(record, '$.fields.credit_code.value')) STORED
);
INSERT INTO golden_entity_lean (entity_key, record, run_id)
    SELECT entity_key, record, run_id FROM golden_entity;
DROP TABLE golden_entity;
ALTER TABLE golden_entity_lean RENAME TO golden_entity;
CREATE INDEX golden_entity_by_name ON golden_entity (search_name);
CREATE INDEX golden_entity_by_credit_code ON golden_entity (search_credit_code);

CREATE TABLE links_room_lean (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
) WITHOUT ROWID;
INSERT INTO links_room_lean (source_id, record_key, role, entity_key, run_id)
    SELECT source_id, record_key, role, entity_key, run_id FROM links_room;
DROP TABLE links_room;
ALTER TABLE links_room_lean RENAME TO links_room;
CREATE INDEX links_room_by_entity ON links_room (entity_key);

CREATE TABLE golden_room_lean (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_address_key TEXT GENERATED ALWAYS AS (json_extract(record, '$.address_key')) STORED
);
INSERT INTO golden_room_lean (entity_key, record, run_id)
    SELECT entity_key, record, run_id FROM golden_room;
DROP TABLE golden_room;
ALTER TABLE golden_room_lean RENAME TO golden_room;
CREATE INDEX golden_room_by_address_key ON golden_room (search_address_key);

CREATE TABLE links_building_lean (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
) WITHOUT ROWID;
INSERT INTO links_building_lean (source_id, record_key, role, entity_key, run_id)
    SELECT source_id, record_key, role, entity_key, run_id FROM links_building;
DROP TABLE links_building;
ALTER TABLE links_building_lean RENAME TO links_building;
CREATE INDEX links_building_by_entity ON links_building (entity_key);

CREATE TABLE golden_building_lean (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    search_address_key TEXT GENERATED ALWAYS AS (json_extract(record, '$.address_key')) STORED
);
INSERT INTO golden_building_lean (entity_key, record, run_id)
    SELECT entity_key, record, run_id FROM golden_building;
DROP TABLE golden_building;
ALTER TABLE golden_building_lean RENAME TO golden_building;
CREATE INDEX golden_building_by_address_key ON golden_building (search_address_key);

CREATE TABLE relations_lean (
    from_key   TEXT NOT NULL,
    relation   TEXT NOT NULL,
    to_key     TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    PRIMARY KEY (from_key, relation, to_key, source_id, record_key)
) WITHOUT ROWID;
INSERT INTO relations_lean SELECT from_key, relation, to_key, source_id, record_key FROM relations;
DROP TABLE relations;
ALTER TABLE relations_lean RENAME TO relations;
CREATE INDEX relations_to ON relations (to_key);
