-- Resolution: which base-library entity each mention belongs to, and the golden records.
-- A resolution run replaces one kind (person, entity, building, room) as a whole, so each kind
-- has its own two tables: emptying a whole table is immediate where deleting a million rows of
-- one kind from a shared table took longer than computing them. The mentions and the records
-- they come from are never touched.
CREATE TABLE resolution_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    mentions    BIGINT NOT NULL,
    entities    BIGINT NOT NULL,
    summary     TEXT NOT NULL
);

CREATE TABLE links_person (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
);
CREATE INDEX links_person_by_entity ON links_person (entity_key);

CREATE TABLE golden_person (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL
);

CREATE TABLE links_entity (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
);
CREATE INDEX links_entity_by_entity ON links_entity (entity_key);

CREATE TABLE golden_entity (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL
);

CREATE TABLE links_building (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
);
CREATE INDEX links_building_by_entity ON links_building (entity_key);

CREATE TABLE golden_building (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL
);

CREATE TABLE links_room (
    source_id  TEXT NOT NULL,
    record_key TEXT NOT NULL,
    role       TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source_id, record_key, role)
);
CREATE INDEX links_room_by_entity ON links_room (entity_key);

CREATE TABLE golden_room (
    entity_key TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    run_id     BIGINT NOT NULL
);
